"""Training metrics: a progress bar, periodic log lines and `metrics.jsonl`, from process 0 only."""

from __future__ import annotations

import json
import pathlib
import time
from typing import Any

import jax
import tqdm


class MetricsLogger:
    """Accumulates per-step statistics and reports them every `log_every` steps."""

    def __init__(self, model_dir: str | pathlib.Path, *, start_step: int, num_steps: int, log_every: int = 10):
        self.enabled = jax.process_index() == 0
        self.log_every = log_every
        self.path = pathlib.Path(model_dir) / "metrics.jsonl"
        if self.enabled and self.path.exists():
            self._drop_records_after(start_step)
        self.progress = tqdm.tqdm(
            total=num_steps, initial=start_step, desc="train", unit="step", disable=None if self.enabled else True,
            dynamic_ncols=True,
        )
        self._reset(time.perf_counter())

    def _drop_records_after(self, step: int) -> None:
        """On resumption, forget what was logged after the restored checkpoint (those steps rerun)."""
        lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
        self.path.write_text("".join(l for l in lines if json.loads(l)["step"] <= step), encoding="utf-8")

    def _reset(self, now: float) -> None:
        self._window_start = now
        self._sums: dict[str, Any] = {}
        self._steps = 0

    def update(self, step: int, stats: dict[str, Any]) -> dict[str, float] | None:
        """Adds one step's statistics (device arrays: no sync); every `log_every` steps logs the window's means."""
        self.progress.update(1)
        self._steps += 1
        for name, value in stats.items():
            self._sums[name] = self._sums.get(name, 0.0) + value
        if step % self.log_every:
            return None
        self._sums = {name: float(value) for name, value in self._sums.items()}
        now = time.perf_counter()
        elapsed = now - self._window_start
        record = {
            "step": step,
            "loss": self._sums["nll_sum"] / max(self._sums["tokens"], 1.0),
            "accuracy": self._sums["correct"] / max(self._sums["tokens"], 1.0),
            "learning_rate": self._sums["learning_rate"] / self._steps,
            "grad_norm": self._sums["grad_norm"] / self._steps,
            "tokens_per_s": self._sums["real_tokens"] / elapsed,
            "step_time_s": elapsed / self._steps,
        }
        self._reset(now)
        if self.enabled:
            self.progress.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{record['learning_rate']:.2e}")
            self.progress.write(
                f"step {step:>6}  loss {record['loss']:.4f}  token acc {record['accuracy']:.3f}  "
                f"lr {record['learning_rate']:.2e}  grad norm {record['grad_norm']:.3f}  "
                f"tokens/s {record['tokens_per_s']:,.0f}"
            )
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        return record

    def close(self) -> None:
        self.progress.close()
