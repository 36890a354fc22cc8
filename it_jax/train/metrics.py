"""Training metrics: a progress bar, periodic log lines, `metrics.jsonl` and TensorBoard, from process 0 only.

Every `log_every` steps one record of the window's means goes to `model_dir/metrics.jsonl` and to
TensorBoard event files in `model_dir/tensorboard/` (as `train/<name>`): the objective's values from the
window's summed statistics (cross-entropy's: loss (mean token NLL) and token accuracy), learning rate, gradient norm, real (non-padding) tokens per second, step time, and with the
model's FLOPs per step, model TFLOP/s per device and MFU (model FLOPs utilization against
`peak_flops_per_device`). Evaluation records (`eval/*`) are separate lines with their step.
The run's first step (compilation) is timed on its own (`first_step_s`) and left out of the rates, as is
the time spent evaluating; the progress bar appears once it is done, so that its rate and ETA are the steady
state's. Start-up phases are one line each (`phase`), and the first step's line counts from the process's
start (`mark_process_start`).
"""

from __future__ import annotations

import json
import os
import pathlib
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

import jax
import tqdm

from it_jax.run_dir import RunDirectory
from it_jax.train import objectives

_process_start = time.time()  # replaced by `mark_process_start` with the entry point's own start


def mark_process_start(started: float) -> None:
    """Records when the process started (`time.time()`), for the first step's phase line."""
    global _process_start
    _process_start = started


def seconds_since_start() -> float:
    """Wall-clock seconds since the process started (see `mark_process_start`)."""
    return time.time() - _process_start


def phase(message: str) -> None:
    """Prints one start-up phase line (e.g. "compiling the train step") on process 0."""
    if jax.process_index() == 0:
        print(message, flush=True)


class _SummaryWriter:
    """TensorBoard scalars via TensorFlow's summary writer (imported here, kept off accelerators).

    Scalars are written with the `scalars` plugin's metadata by `tf.summary.write`, which is TensorFlow's
    own, so the `tensorboard` package is needed only to view them.
    """

    def __init__(self, directory: pathlib.Path):
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:  # devices were initialized already (e.g. by the input pipeline)
            pass
        self._tf = tf
        self._writer = tf.summary.create_file_writer(str(directory))
        plugin = summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
        self._metadata = summary_pb2.SummaryMetadata(plugin_data=plugin).SerializeToString()

    def scalars(self, step: int, values: dict[str, float]) -> None:
        with self._writer.as_default(step=step):
            for name, value in values.items():
                self._tf.summary.write(name, self._tf.constant(value, self._tf.float32), metadata=self._metadata)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


_LABELS = {"accuracy": "token acc"}  # the progress line's names of cross-entropy's values


def _parse_record(line: str) -> dict[str, Any] | None:
    """A `metrics.jsonl` line's record, or None if the line is not a JSON object with an integer step."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("step"), int):
        return None
    return record


class MetricsLogger:
    """Accumulates per-step statistics and reports them every `log_every` steps.

    Args:
      model_dir: where `metrics.jsonl` and `tensorboard/` go.
      start_step: the step training starts from (records after it are dropped: those steps rerun).
      num_steps: the total number of steps (for the progress bar).
      log_every: the reporting interval in steps.
      peak_flops_per_device: the accelerator's peak FLOP/s, to report MFU (None: no MFU).
      tensorboard: also write TensorBoard event files.
      progress_file: where the progress bar goes (default: stderr, shown only on a terminal).
      clock: the step timer (seconds; `time.perf_counter`).
      summarize: summed statistics -> the logged values (`Objective.metrics`; default: cross-entropy's).

    Set `flops_per_step` (model FLOPs of one step) to report TFLOP/s and MFU.
    """

    def __init__(
        self,
        model_dir: str | pathlib.Path,
        *,
        start_step: int,
        num_steps: int,
        log_every: int = 10,
        peak_flops_per_device: float | None = None,
        tensorboard: bool = False,
        progress_file: IO[str] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        summarize: Callable[[Mapping[str, float]], dict[str, float]] = objectives.token_metrics,
    ):
        self.enabled = jax.process_index() == 0
        self._clock = clock
        self._summarize = summarize
        self.log_every = log_every
        self.peak_flops_per_device = peak_flops_per_device
        self.flops_per_step: float | None = None
        self.path = RunDirectory(model_dir).metrics
        if self.enabled and self.path.exists():
            self._drop_records_after(start_step)
        self.writer = None
        if self.enabled and tensorboard:
            self.writer = _SummaryWriter(RunDirectory(model_dir).tensorboard)
        self.num_steps = num_steps
        self._progress_file = progress_file
        self.progress: tqdm.tqdm | None = None  # created after the first step (see `_start_progress`)
        self._first_step_s: float | None = None
        self._compiled = False
        self._reset(self._clock())

    def _start_progress(self, step: int) -> None:
        """The progress bar, from `step` (the first, compiling step, done): its rate and ETA leave it out."""
        disable = None if self._progress_file is None else False  # None: shown on a terminal only
        self.progress = tqdm.tqdm(
            total=self.num_steps, initial=step, desc="train", unit="step", disable=disable if self.enabled else True,
            dynamic_ncols=True, file=self._progress_file,
        )

    def _drop_records_after(self, step: int) -> None:
        """On resumption, forget what was logged after the restored checkpoint (those steps rerun).

        A line that is not a whole record (a write cut short by a kill) is dropped with a notice. The file is
        rewritten beside itself and then swapped in, so a kill during the rewrite loses nothing.
        """
        kept = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            record = _parse_record(line)
            if record is None:
                if line.strip():
                    print(f"{self.path}: line {number} is not a whole record (a write cut short?); dropped", flush=True)
                continue
            if record["step"] <= step:
                kept.append(line + "\n")
        partial = self.path.with_name(self.path.name + ".tmp")
        with partial.open("w", encoding="utf-8") as f:
            f.writelines(kept)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, self.path)

    def _reset(self, now: float) -> None:
        self._window_start = now
        self._excluded_s = 0.0
        self._sums: dict[str, Any] = {}
        self._steps = 0
        self._timed_steps = 0
        self._timed_tokens: Any = 0.0

    def update(self, step: int, stats: dict[str, Any]) -> dict[str, float] | None:
        """Adds one step's statistics (device arrays: no sync); every `log_every` steps logs the window's means."""
        if not self._compiled:
            jax.block_until_ready(stats)
            now = self._clock()
            self._first_step_s = now - self._window_start
            self._window_start = now
            self._compiled = True
            phase(f"first step in {seconds_since_start():.1f} s")
            self._start_progress(step)
        else:
            self.progress.update(1)
            self._timed_steps += 1
            self._timed_tokens = self._timed_tokens + stats["real_tokens"]
        self._steps += 1
        for name, value in stats.items():
            self._sums[name] = self._sums.get(name, 0.0) + value
        if step % self.log_every:
            return None
        record = self._record(step, self._clock())
        if self.enabled:
            self.progress.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{record['learning_rate']:.2e}")
            values = "  ".join(f"{_LABELS.get(name, name)} {record[name]:.4g}" for name in self._objective_names)
            self.progress.write(
                f"step {step:>6}  {values}  lr {record['learning_rate']:.2e}  grad norm {record['grad_norm']:.3f}  "
                f"tokens/s {record['tokens_per_s']:,.0f}" + (f"  MFU {record['mfu']:.1%}" if "mfu" in record else "")
            )
            self._write(step, record, prefix="train/")
        return record

    def _record(self, step: int, now: float) -> dict[str, float]:
        sums = {name: float(value) for name, value in self._sums.items()}
        if self._timed_steps:
            elapsed = now - self._window_start - self._excluded_s
            step_time, tokens_per_s = elapsed / self._timed_steps, float(self._timed_tokens) / elapsed
        else:  # only the first step is in this window
            step_time = self._first_step_s
            tokens_per_s = sums["real_tokens"] / step_time
        values = self._summarize(sums)
        self._objective_names = list(values)
        record = {
            "step": step,
            **values,
            "learning_rate": sums["learning_rate"] / self._steps,
            "grad_norm": sums["grad_norm"] / max(self._steps - sums.get("skipped", 0.0), 1.0),
            "tokens_per_s": tokens_per_s,
            "step_time_s": step_time,
        }
        if sums.get("skipped"):
            record["skipped_steps"] = sums["skipped"]
        if self._steps > self._timed_steps:
            record["first_step_s"] = self._first_step_s
        if self.flops_per_step:
            per_device = self.flops_per_step / step_time / jax.device_count()
            record["tflops_per_s_per_device"] = per_device / 1e12
            if self.peak_flops_per_device:
                record["mfu"] = per_device / self.peak_flops_per_device
        self._reset(now)
        return record

    def log_eval(self, step: int, metrics: dict[str, float], *, seconds: float = 0.0) -> None:
        """Logs evaluation metrics (names like `eval/loss`) of `step` as their own record.

        `seconds` spent evaluating are left out of the training rates.
        """
        self._excluded_s += seconds
        if not self.enabled:
            return
        tqdm.tqdm.write(f"step {step:>6}  " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        self._write(step, {"step": step, **metrics}, prefix="")

    def _write(self, step: int, record: dict[str, float], *, prefix: str) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            self.writer.scalars(step, {prefix + name: value for name, value in record.items() if name != "step"})

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close()
        if self.writer is not None:
            self.writer.close()
