"""Gin paths resolve against the gin files, never the working directory (`it_jax.gin_paths`)."""

import os
import pathlib

import pytest

import gin
from it_jax import gin_paths, launch

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> pathlib.Path:
    """A working directory outside the checkout, holding decoys named like the repository's gin files."""
    work = tmp_path / "work"
    for decoy in ("models/t5_tiny.gin", "gin/models/t5_tiny.gin", "runs/demo.gin"):
        (work / decoy).parent.mkdir(parents=True, exist_ok=True)
        (work / decoy).write_text("T5Config.d_model = 7\n")
    monkeypatch.chdir(work)
    return work


def _write(path: pathlib.Path, text: str) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_repository_runs_parse_from_another_directory_without_its_decoys(elsewhere):
    launch.parse_config(["runs/flan2021_mirrors.gin"])
    assert gin.query_parameter("T5Config.d_model") == 128  # gin/models/t5_tiny.gin, not a decoy
    shared = REPO.parent / "shared" / "data"
    assert gin.query_parameter("make_vocabulary.sentencepiece_model") == str(shared / "tokenizers/t5/spiece.model")
    assert gin.query_parameter("run_config.data_dir") == str(shared / "tfds_jsonl")
    assert gin.query_parameter("%MODEL_DIR") == "runs/flan2021_mirrors"  # outputs stay relative to the working dir


def test_includes_look_beside_the_including_file_first_then_under_gin(elsewhere, tmp_path):
    configs = tmp_path / "configs"
    _write(configs / "models" / "t5_tiny.gin", "T5Config.d_model = 64\n")
    _write(configs / "base.gin", "train_run.batch_size = 4\n")
    run = _write(
        configs / "run.gin",
        "include 'runs/demo.gin'\ninclude 'models/t5_tiny.gin'\ninclude 'base.gin'\n",
    )
    launch.parse_config([str(run)])
    assert gin.query_parameter("T5Config.d_model") == 64  # beside run.gin, not gin/models/
    assert gin.query_parameter("train_run.batch_size") == 4
    assert gin.query_parameter("%HELDOUT_CLUSTER") == "entailment"  # runs/demo.gin: only under gin/


def test_input_paths_in_a_gin_file_are_relative_to_it_and_bindings_to_the_working_dir(elsewhere, tmp_path):
    configs = tmp_path / "configs" / "nested"
    run = _write(
        configs / "run.gin",
        "include 'runs/demo.gin'\n"
        "train_run.init_from = \\\n    '../ckpt'  # a statement over two lines\n"
        "make_vocabulary.sentencepiece_model = 'spm/spiece.model'\n"
        "SPIECE = 'macro/spiece.model'\n"
        "run_config.data_dir = 'gs://bucket/data'\n",
    )
    launch.parse_config([str(run)], ["run_config.model_dir = 'out'"])
    assert gin.query_parameter("train_run.init_from") == str(tmp_path / "configs" / "ckpt")
    assert gin.query_parameter("make_vocabulary.sentencepiece_model") == str(configs / "spm" / "spiece.model")
    assert gin.query_parameter("run_config.data_dir") == "gs://bucket/data"  # a URL is left alone
    assert gin.query_parameter("run_config.model_dir") == "out"
    gin.clear_config()
    launch.parse_config([str(run)], ["train_run.init_from = 'typed/here'"])
    assert gin.query_parameter("train_run.init_from") == "typed/here"  # the command line's: the working dir's


def test_rewritten_lines_keep_the_line_numbers_of_errors(elsewhere, tmp_path):
    run = _write(
        tmp_path / "bad.gin",
        "include 'runs/demo.gin'\ntrain_run.init_from = (\n    'ckpt')\n\nno_such_configurable.x = 3\n",
    )
    lines = gin_paths.resolved_text(run).splitlines()
    assert len(lines) == 5 and lines[4] == "no_such_configurable.x = 3"
    with pytest.raises(ValueError, match="no_such_configurable") as raised:
        launch.parse_config([str(run)])
    assert f'In file "{run}", line 5' in str(raised.value)
    _write(run, "train_run.batch_size = = 3\n")
    with pytest.raises(SyntaxError) as raised:
        launch.parse_config([str(run)])
    assert (raised.value.filename, raised.value.lineno) == (str(run), 1)


def test_gin_files_resolve_as_given_else_under_gin_and_missing_ones_say_where_they_were_looked_for(elsewhere):
    assert gin_paths.resolve_gin_file("runs/demo.gin") == (elsewhere / "runs" / "demo.gin").resolve()  # as given
    expected = REPO / "it_jax" / "gin" / "runs" / "demo_decoder.gin"
    assert gin_paths.resolve_gin_file("runs/demo_decoder.gin") == expected
    with pytest.raises(FileNotFoundError, match="runs/nothing.gin"):
        gin_paths.resolve_gin_file("runs/nothing.gin")
    including = _write(elsewhere / "inc.gin", "include 'nowhere.gin'\n")
    with pytest.raises(FileNotFoundError) as raised:
        launch.parse_config([str(including)])
    assert str(elsewhere / "nowhere.gin") in str(raised.value)
    assert str(REPO / "it_jax" / "gin" / "nowhere.gin") in str(raised.value)
    assert os.getcwd() == str(elsewhere)
