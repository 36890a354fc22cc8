import json
import time

import jax.numpy as jnp
import pytest
import tensorflow as tf

from it_jax.train import metrics


def _stats(loss_sum: float, tokens: float = 10.0) -> dict:
    return {
        "nll_sum": jnp.float32(loss_sum), "z_loss_sum": jnp.float32(0.0), "correct": jnp.float32(5.0),
        "tokens": jnp.float32(tokens), "learning_rate": jnp.float32(0.1), "grad_norm": jnp.float32(2.0),
        "real_tokens": jnp.float32(30.0),
    }


def _events(directory) -> dict[str, list[tuple[int, float]]]:
    found: dict[str, list[tuple[int, float]]] = {}
    for path in directory.glob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                found.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    return found


def test_records_rates_mfu_and_tensorboard_events(tmp_path):
    logger = metrics.MetricsLogger(
        tmp_path, start_step=0, num_steps=4, log_every=2, peak_flops_per_device=1e12, tensorboard=True
    )
    logger.flops_per_step = 8e12
    for step in range(1, 5):
        logger.update(step, _stats(20.0))
    logger.log_eval(4, {"eval/loss": 1.5, "eval/accuracy": 0.25})
    logger.close()

    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 4]
    first, second, evaluation = records
    assert first["loss"] == pytest.approx(2.0) and first["accuracy"] == pytest.approx(0.5)
    assert first["learning_rate"] == pytest.approx(0.1) and first["grad_norm"] == pytest.approx(2.0)
    # The first step (compilation) is timed apart and left out of the window's rates.
    assert "first_step_s" in first and "first_step_s" not in second
    assert second["tokens_per_s"] == pytest.approx(2 * 30.0 / (2 * second["step_time_s"]), rel=1e-6)
    # 8 simulated devices share the step's 8e12 FLOPs against a 1e12 FLOP/s peak each.
    assert second["tflops_per_s_per_device"] == pytest.approx(1.0 / second["step_time_s"], rel=1e-6)
    assert second["mfu"] == pytest.approx(second["tflops_per_s_per_device"], rel=1e-6)
    assert evaluation == {"step": 4, "eval/loss": 1.5, "eval/accuracy": 0.25}

    events = _events(tmp_path / "tensorboard")
    assert events["train/loss"] == [(2, pytest.approx(2.0)), (4, pytest.approx(2.0))]
    assert events["eval/accuracy"] == [(4, 0.25)]
    assert "train/mfu" in events


def test_resuming_drops_records_after_the_restored_step(tmp_path):
    logger = metrics.MetricsLogger(tmp_path, start_step=0, num_steps=3, log_every=1)
    for step in range(1, 4):
        logger.update(step, _stats(float(step)))
    logger.close()
    metrics.MetricsLogger(tmp_path, start_step=2, num_steps=3, log_every=1).close()
    assert [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_time_spent_evaluating_is_left_out_of_the_step_time(tmp_path):
    logger = metrics.MetricsLogger(tmp_path, start_step=0, num_steps=3, log_every=3)
    logger.update(1, _stats(1.0))
    time.sleep(1.0)
    logger.log_eval(1, {"eval/loss": 1.0}, seconds=1.0)
    logger.update(2, _stats(1.0))
    record = logger.update(3, _stats(1.0))
    logger.close()
    assert record["step_time_s"] < 0.4


class _FakeClock:
    """A clock that moves only when told (for the logger and tqdm)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_progress_rate_and_eta_leave_out_the_compiling_first_step(tmp_path, monkeypatch, capsys):
    import io

    import tqdm

    clock = _FakeClock()
    monkeypatch.setattr(tqdm.std, "time", clock)
    bar = io.StringIO()
    logger = metrics.MetricsLogger(tmp_path, start_step=0, num_steps=20, log_every=100, progress_file=bar, clock=clock)
    clock.now += 100.0  # the first step compiles for 100 s
    logger.update(1, _stats(20.0))
    assert "first step in" in capsys.readouterr().out  # its phase line
    for step in range(2, 11):  # then 2 s a step
        clock.now += 2.0
        logger.update(step, _stats(20.0))
    shown = logger.progress.format_dict
    rate = shown["rate"] or (shown["n"] - shown["initial"]) / shown["elapsed"]
    assert rate == pytest.approx(0.5)  # steps/s: the 100 s step would make it ~0.08
    assert (shown["total"] - shown["n"]) / rate == pytest.approx(20.0)  # the ETA: 10 steps left at 2 s
    logger.progress.refresh()
    assert "00:20" in bar.getvalue().rsplit("\r", 1)[-1]
    logger.close()
