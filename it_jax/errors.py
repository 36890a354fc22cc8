"""Errors a user fixes from the message alone; the entry points print them as one line and exit non-zero.

Subclasses live beside the code that raises them (divergence, checkpoints, resumption, data); the messages
say what is wrong, where (file, line, gin binding, step) and what to do.
"""

from __future__ import annotations


class RunError(Exception):
    """A failure its message fully explains: `scripts/_cli.run_resumable` prints it without a traceback."""

    exit_code = 1

    def __init__(self, message: str, *args):
        super().__init__(message, *args)
        self.message = message  # kept apart: gin appends "In call to configurable ..." to str(error)


class ConfigError(RunError, ValueError):
    """A setting is invalid (a gin binding, a flag): found before any data is read or anything compiles."""


class DataError(RunError, ValueError):
    """An input is unusable: the message names the task, split, file and line (or record index)."""


def root_cause(error: BaseException) -> BaseException:
    """The innermost explicit cause of `error` (Orbax wraps TensorStore's precise read errors in vaguer ones)."""
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def one_line(error: BaseException) -> str:
    """`Type: first line of the message` of an error (at most 400 characters), for one-line reports."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:400]
