"""A quiet, informative start-up: --help's defaults, --print_config (from another directory), no library noise
on stderr unless --verbose, and the phase lines of a run."""

import os
import pathlib
import subprocess
import sys

import tiny

REPO = pathlib.Path(__file__).resolve().parents[2]
TRAIN = str(REPO / "scripts" / "train.py")


def _run(*args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "XLA_FLAGS": "", "PYTHONPATH": str(REPO)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the scripts' own default, not the test session's
    result = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_help_states_the_default_gin_file(tmp_path):
    shown = " ".join(_run(TRAIN, "--help", cwd=tmp_path).stdout.split())
    assert "(default: runs/demo.gin, under gin/)" in shown
    assert "--print_config" in shown and "--verbose" in shown and "--compilation_cache_dir" in shown


def test_print_config_parses_from_elsewhere_and_builds_nothing(tmp_path):
    result = _run(
        TRAIN, "--print_config", "--gin_file=runs/flan2021_mirrors.gin", "--gin_bindings=train_run.num_steps = 7",
        f"--model_dir={tmp_path / 'run'}", cwd=tmp_path,
    )
    assert "train_run.num_steps = 7" in result.stdout
    spiece = REPO.parent / "shared" / "data" / "tokenizers" / "t5" / "spiece.model"
    assert f"'{spiece}'" in result.stdout  # make_vocabulary.sentencepiece_model: relative to the gin file
    assert not (tmp_path / "run").exists()
    assert result.stderr == ""  # TensorFlow was imported: its start-up lines are held back


def test_verbose_lets_tensorflow_log(tmp_path):
    quiet = _run(TRAIN, "--print_config", cwd=tmp_path)
    verbose = _run(TRAIN, "--print_config", "--verbose", cwd=tmp_path)
    assert quiet.stdout == verbose.stdout
    assert quiet.stderr == "" and len(verbose.stderr.splitlines()) > 0


def test_a_run_announces_its_phases_and_warns_of_its_schedule(tmp_path):
    bindings = [*tiny.T5_GIN_BINDINGS, "TRAIN_STEPS = 2", "make_schedule.warmup_steps = 5", "main.evaluate = False"]
    result = _run(
        TRAIN, f"--model_dir={tmp_path / 'run'}", f"--compilation_cache_dir={tmp_path / 'cache'}",
        *(f"--gin_bindings={b}" for b in bindings), cwd=REPO,
    )
    lines = result.stdout.splitlines()
    phases = [line for line in lines if line.startswith(("building the input pipeline for", "compiling", "first step"))]
    assert [p.split()[0] for p in phases] == ["building", "compiling", "first"], lines
    assert "make_schedule.warmup_steps = 5 ≥ train_run.num_steps = 2" in result.stderr
    assert [line for line in result.stderr.splitlines() if not line.startswith("warning: ")] == []
