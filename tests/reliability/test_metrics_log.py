"""metrics.jsonl survives a kill mid-write: a cut-short line is dropped with a notice, no step is logged twice."""

import json
import shutil

import pytest
import tiny

from it_jax.train import metrics as metrics_lib
from it_jax.train import trainer as trainer_lib


def _records(steps) -> str:
    return "".join(json.dumps({"step": step, "loss": 1.0 / step}) + "\n" for step in steps)


def _steps(model_dir) -> list[int]:
    return [json.loads(line)["step"] for line in (model_dir / "metrics.jsonl").read_text().splitlines()]


def _resume_logger(model_dir, start_step):
    metrics_lib.MetricsLogger(model_dir, start_step=start_step, num_steps=10).close()


def test_a_line_cut_short_is_dropped_with_a_notice(tmp_path, capsys):
    path = tmp_path / "metrics.jsonl"
    path.write_text(_records([1, 2, 3, 4]) + '{"step": 5, "loss": 0.')
    _resume_logger(tmp_path, start_step=4)
    assert f"{path}: line 5 is not a whole record" in capsys.readouterr().out
    assert _steps(tmp_path) == [1, 2, 3, 4]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]  # no temporary file left


def test_garbled_lines_anywhere_are_dropped_and_later_steps_forgotten(tmp_path, capsys):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(_records([1, 2]).encode() + b"\x00\xff\x00garbage\n" + _records([3, 4, 5, 6]).encode() + b"[]\n")
    _resume_logger(tmp_path, start_step=4)
    out = capsys.readouterr().out
    assert "line 3 is not a whole record" in out and "line 8 is not a whole record" in out
    assert _steps(tmp_path) == [1, 2, 3, 4]


def test_a_kill_during_the_rewrite_loses_nothing(tmp_path, monkeypatch):
    path = tmp_path / "metrics.jsonl"
    original = _records([1, 2, 3, 4, 5, 6])
    path.write_text(original)

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(metrics_lib.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        _resume_logger(tmp_path, start_step=4)
    assert path.read_text() == original


def test_after_resumption_no_step_is_logged_twice(tmp_path, capsys):
    common = {"trainer": tiny.t5_trainer(), "batches": tiny.t5_batches, "model_dir": tmp_path, "tensorboard": False}
    trainer_lib.train(num_steps=4, save_every=2, log_every=1, **common)
    # Killed while logging step 5, after the checkpoint of step 4 was lost: the run resumes from step 2.
    shutil.rmtree(tmp_path / "checkpoints" / "4")
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"step": 5, "lo')
    trainer_lib.train(num_steps=6, save_every=2, log_every=1, **common)
    out = capsys.readouterr().out
    assert "Resuming from step 2" in out and "line 5 is not a whole record" in out
    assert _steps(tmp_path) == [1, 2, 3, 4, 5, 6]
