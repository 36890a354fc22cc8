"""Where the paths in gin configs point: never at the working directory by accident.

- A gin file named to `launch.parse_config` (`--gin_file`): the path as given (absolute, or relative to the
  working directory) if that file exists, else under the repository's `gin/` ("runs/demo.gin").
- `include` in a gin file: relative to the including file's directory first, then under `gin/`; never the
  working directory ("models/t5_tiny.gin" from `gin/runs/demo.gin` is `gin/models/t5_tiny.gin`).
- An input path bound in a gin file (`PATH_BINDINGS`: the SentencePiece model, the data directory, the
  checkpoint to start from) as a relative string literal is relative to that gin file's directory. The same
  settings given on the command line (`--gin_bindings`, `--data_dir`) are relative to the working directory,
  as is a value that comes through a macro. Outputs (`run_config.model_dir`, `MODEL_DIR`,
  `eval_run.output_dir`) stay relative to the working directory.

Gin reads each file through `open_resolved`, registered as a gin file reader for names starting with `SCHEME`:
the file's text with its includes and input paths rewritten as absolute paths, line for line, so gin's error
locations still name the file and line.
"""

from __future__ import annotations

import io
import logging
import os
import pathlib
from collections.abc import Sequence

import gin
from gin import config_parser

SCHEME = "it_jax-gin:"
# (configurable, parameter) pairs whose values are input paths, resolved against the binding gin file.
PATH_BINDINGS = frozenset(
    {
        ("make_vocabulary", "sentencepiece_model"),
        ("make_vocabulary", "tokenizer_dir"),
        ("run_config", "data_dir"),
        ("train_run", "init_from"),
    }
)
GIN_DIR = pathlib.Path(__file__).resolve().parent / "gin"  # shipped with the package: it_jax/gin/


class _Placeholders(config_parser.ParserDelegate):
    """Lets the parser read references and macros without looking them up (only the statements matter)."""

    def configurable_reference(self, scoped_configurable_name, evaluate):
        return None

    def macro(self, macro_name):
        return None


def resolve_gin_file(name: str | os.PathLike) -> pathlib.Path:
    """A gin file named on the command line: as given if it exists, else under `GIN_DIR`."""
    for candidate in (pathlib.Path(name), GIN_DIR / name):
        if candidate.is_file():
            return candidate.resolve()
    raise FileNotFoundError(f"gin file {str(name)!r} is neither a file nor under {GIN_DIR}")


def resolve_include(name: str, including_file: pathlib.Path) -> pathlib.Path:
    """An included gin file: relative to the including file's directory, else under `GIN_DIR`."""
    candidates = [pathlib.Path(name)] if os.path.isabs(name) else [including_file.parent / name, GIN_DIR / name]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    tried = " nor ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"{including_file}: include {name!r} is neither {tried}")


def _is_input_path(statement: config_parser.BindingStatement) -> bool:
    configurable = statement.selector.rsplit(".", 1)[-1]
    value = statement.value
    return (
        (configurable, statement.arg_name) in PATH_BINDINGS
        and isinstance(value, str)
        and bool(value)
        and not os.path.isabs(value)
        and "://" not in value
    )


def _rewritten(statement: config_parser.BindingStatement, directory: pathlib.Path) -> str:
    """`statement` as one binding line with its relative path made absolute against `directory`."""
    key = f"{statement.scope}/" if statement.scope else ""
    key += f"{statement.selector}.{statement.arg_name}"
    if not statement.location.line_content.lstrip().startswith(key):
        raise ValueError(
            f"{statement.location.filename}:{statement.location.line_num}: bind {key} on a line of its own "
            "(not in a block), so that its relative path can be resolved against the file"
        )
    return f"{key} = {os.path.normpath(directory / statement.value)!r}"


def resolved_text(path: pathlib.Path) -> str:
    """The text of gin file `path` with its includes (`SCHEME` + absolute path) and its relative input paths
    (`PATH_BINDINGS`) made absolute; every other line is kept, so line numbers still match the file."""
    text = path.read_text(encoding="utf-8")
    reader = io.StringIO(text)
    reader.name = str(path)
    statements = list(config_parser.ConfigParser(reader, _Placeholders()))
    lines = text.splitlines()
    starts = sorted({s.location.line_num for s in statements}) + [len(lines) + 1]
    for statement in statements:
        first = statement.location.line_num
        if isinstance(statement, config_parser.IncludeStatement):
            replacement = f"include {SCHEME + str(resolve_include(statement.filename, path))!r}"
        elif isinstance(statement, config_parser.BindingStatement) and _is_input_path(statement):
            replacement = _rewritten(statement, path.parent)
        else:
            continue
        end = starts[starts.index(first) + 1] - 1  # the statement's last line (comments after it go too)
        lines[first - 1 : end] = [replacement] + [""] * (end - first)
    return "\n".join(lines) + "\n"


def open_resolved(name: str) -> io.StringIO:
    """gin's file reader for `SCHEME` names: the named file's `resolved_text`, named after the file."""
    path = pathlib.Path(name[len(SCHEME) :])
    reader = io.StringIO(resolved_text(path))
    reader.name = str(path)
    return reader


def _is_resolved_name(name: str) -> bool:
    return str(name).startswith(SCHEME)


def parse(gin_files: Sequence[str | os.PathLike], bindings: Sequence[str] = ()) -> None:
    """Parses `gin_files` (see `resolve_gin_file`) under the path rules above, then `bindings`; finalizes."""
    gin.config.register_file_reader(open_resolved, _is_resolved_name)
    files = [SCHEME + str(resolve_gin_file(name)) for name in gin_files]
    # gin's reader of files on `sys.path`, asked before this module's, logs an error for each name it lacks;
    # a failure to parse still raises.
    logging.disable(logging.ERROR)
    try:
        gin.parse_config_files_and_bindings(files, list(bindings))
    finally:
        logging.disable(logging.NOTSET)
