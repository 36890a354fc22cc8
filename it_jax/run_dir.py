"""Where a run keeps what it writes: the one definition of a run directory's layout.

    <root>/run.json         the run context (model, vocabulary, layout, lengths, task modules, data, code)
    <root>/config.gin       the gin configuration the run was started with
    <root>/checkpoints/     Orbax checkpoints, one directory per step
    <root>/metrics.jsonl    one JSON record per logged step
    <root>/tensorboard/     TensorBoard event files
    <root>/eval/            evaluation reports (results.json, results.md, predictions/)
    <root>/adapters.safetensors   a LoRA run's final adapters alone (`it_jax.models.lora.save_adapters`)
"""

from __future__ import annotations

import dataclasses
import pathlib


@dataclasses.dataclass(frozen=True)
class RunDirectory:
    """The paths of one run directory (nothing is created by constructing it)."""

    root: pathlib.Path

    def __init__(self, root: str | pathlib.Path):
        object.__setattr__(self, "root", pathlib.Path(root))

    @property
    def run_json(self) -> pathlib.Path:
        return self.root / "run.json"

    @property
    def config_gin(self) -> pathlib.Path:
        return self.root / "config.gin"

    @property
    def checkpoints(self) -> pathlib.Path:
        return self.root / "checkpoints"

    @property
    def metrics(self) -> pathlib.Path:
        return self.root / "metrics.jsonl"

    @property
    def tensorboard(self) -> pathlib.Path:
        return self.root / "tensorboard"

    @property
    def eval(self) -> pathlib.Path:
        return self.root / "eval"

    @property
    def adapters(self) -> pathlib.Path:
        return self.root / "adapters.safetensors"

    def is_run(self) -> bool:
        """Whether the directory holds a run (its context, or checkpoints written by training)."""
        return self.run_json.is_file() or self.checkpoints.is_dir()
