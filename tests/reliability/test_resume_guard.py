"""Resuming checks the run's settings and the state's shapes against the checkpoint before reading any array."""

import copy
import dataclasses
import shutil

import jax
import jax.numpy as jnp
import pytest
import tiny

from it_jax import errors, sharding
from it_jax.models import t5
from it_jax.models.spec import ModelSpec
from it_jax.train import checkpoints as checkpoints_lib
from it_jax.train import optimizers
from it_jax.train import resume as resume_lib
from it_jax.train import trainer as trainer_lib
from it_jax.train.state import TrainState

METADATA = {
    "architecture": "t5",
    "model_config": {"vocab_size": 64, "d_model": 32, "d_ff": 64, "num_heads": 4},
    "vocabulary": "ByteVocabulary",
    "vocabulary_spec": {"kind": "byte", "extra_ids": 0},
    "layout": {"architecture": "t5", "bos_id": None},
    "task_feature_lengths": {"inputs": 12, "targets": 6},
    "data": {
        "mixture": "synthetic",
        "tasks": ["synthetic_a", "synthetic_b"],
        "batch_size": 8,
        "pack": True,
        "seed": 0,
        "cap": 3000,
        "temperature": 1.0,
    },
    "optimization": {
        "schedule": {"base_learning_rate": 0.01, "warmup_steps": 2, "decay": "constant"},
        "optimizer": {"name": "adamw"},
        "loss": {"label_smoothing": 0.0, "z_loss": 0.0, "normalization": "real_tokens"},
    },
}


def _changed(changes: dict, drop: tuple[str, ...] = ()) -> dict:
    """METADATA with `{dotted name: value}` changes and the dotted names in `drop` removed."""
    metadata = copy.deepcopy(METADATA)
    for name, value in [*changes.items(), *((name, None) for name in drop)]:
        *parents, key = name.split(".")
        node = metadata
        for parent in parents:
            node = node[parent]
        if name in drop:
            del node[key]
        else:
            node[key] = value
    return metadata


@pytest.fixture(scope="module")
def trainer():
    return tiny.t5_trainer()


@pytest.fixture(scope="module")
def saved(trainer, tmp_path_factory):
    """A model directory trained 2 steps (a checkpoint each) under METADATA."""
    model_dir = tmp_path_factory.mktemp("saved")
    trainer_lib.train(
        trainer=trainer, batches=tiny.t5_batches, model_dir=model_dir, num_steps=2, save_every=1,
        metadata=METADATA, tensorboard=False,
    )
    return model_dir


@pytest.fixture
def run(saved, tmp_path):
    return shutil.copytree(saved, tmp_path / "run")


def _resume(trainer, run, metadata, *, num_steps=3, starts=None, **kwargs):
    def batches(position):
        if starts is not None:
            starts.append(position)
        return tiny.t5_batches(position)

    return trainer_lib.train(
        trainer=trainer, batches=batches, model_dir=run, num_steps=num_steps, save_every=1, metadata=metadata,
        tensorboard=False, **kwargs,
    )


def _untouched(run) -> bool:
    return sorted(p.name for p in (run / "checkpoints").iterdir()) == ["1", "2"]


def test_changed_data_settings_are_refused_listing_every_difference(trainer, run):
    metadata = _changed({"data.batch_size": 64, "data.mixture": "flan", "task_feature_lengths.inputs": 24})
    with pytest.raises(resume_lib.ResumeMismatch) as raised:
        _resume(trainer, run, metadata)
    message = str(raised.value)
    assert f"cannot resume from step 2 in {run / 'checkpoints'}" in message
    assert "data.batch_size: 8 in the checkpoint, 64 now" in message
    assert 'data.mixture: "synthetic" in the checkpoint, "flan" now' in message
    assert "task_feature_lengths.inputs: 12 in the checkpoint, 24 now" in message
    assert "train_run.allow_changes = ['data']" in message and "a new --model_dir" in message
    assert _untouched(run)


def test_an_allowed_data_change_restarts_the_input_at_zero(trainer, run, capsys):
    starts = []
    metadata = _changed({"data.batch_size": 64})
    _resume(trainer, run, metadata, starts=starts, allow_changes=("data",))
    out = capsys.readouterr().out
    assert "The data settings changed since step 2" in out and "data.batch_size: 8 in the checkpoint, 64 now" in out
    assert "the input restarts at position 0" in out and "Resuming from step 2 (input position 0)" in out
    assert starts == [0]
    checkpointer = checkpoints_lib.Checkpointer(run / "checkpoints")
    assert checkpointer.data_position(3) == 1 and checkpointer.metadata(3)["data"]["batch_size"] == 64
    checkpointer.close()


def test_schedule_changes_need_allow_changes(trainer, run, capsys):
    metadata = _changed({"optimization.schedule.base_learning_rate": 0.02})
    with pytest.raises(resume_lib.ResumeMismatch) as raised:
        _resume(trainer, run, metadata)
    message = str(raised.value)
    assert "optimization.schedule.base_learning_rate: 0.01 in the checkpoint, 0.02 now" in message
    assert "train_run.allow_changes = ['schedule']" in message and "position 0" not in message

    _resume(trainer, run, metadata, allow_changes=["schedule"])
    out = capsys.readouterr().out
    assert "The schedule settings changed since step 2" in out and "Resuming from step 2 (input position 2)" in out


def test_model_settings_never_change(trainer, run):
    metadata = _changed({"model_config.d_ff": 128, "data.seed": 1})
    with pytest.raises(resume_lib.ResumeMismatch) as raised:
        _resume(trainer, run, metadata, allow_changes=("data", "schedule"))
    message = str(raised.value)
    assert "model_config.d_ff: 64 in the checkpoint, 128 now" in message and "data.seed" not in message
    assert "The model's settings cannot change within a run" in message
    assert _untouched(run)


def test_settings_absent_on_one_side_are_listed_not_compared(trainer, run, capsys):
    _resume(trainer, run, _changed({}, drop=("optimization", "data.temperature")))
    out = capsys.readouterr().out
    (notice,) = [line for line in out.splitlines() if line.startswith("Resume check: not compared")]
    assert notice.endswith(": data.temperature, optimization") and "Resuming from step 2" in out

    _resume(trainer, run, {}, num_steps=4)  # no metadata (library use): nothing to compare, nothing to say
    out = capsys.readouterr().out
    assert "Resume check" not in out and "Resuming from step 3" in out


def _trainer_with(**config_changes) -> trainer_lib.Trainer:
    config = dataclasses.replace(tiny.TINY, **config_changes)
    schedule = optimizers.make_schedule(base_learning_rate=1e-2, warmup_steps=2, decay="constant")
    return trainer_lib.Trainer(
        spec=ModelSpec.create(lambda rngs: t5.T5(config, rngs=rngs)),
        optimizer=optimizers.make_optimizer(schedule, name="adamw"),
        schedule=schedule,
        mesh=sharding.create_mesh(devices=jax.devices()[:1], data=1),
    )


def test_a_changed_model_shape_names_each_array_and_both_shapes(run):
    with pytest.raises(resume_lib.ShapeMismatch) as raised:
        _resume(_trainer_with(d_ff=128), run, {})
    message = str(raised.value)
    assert "params.encoder.layers.0.mlp.wi_0.kernel: (32, 64) in the checkpoint, (32, 128) in the model" in message
    assert "opt_state.1.0.mu.encoder.layers.0.mlp.wi_0.kernel" in message and "strict" not in message
    assert _untouched(run)


def test_missing_and_extra_arrays_are_named():
    target = TrainState(
        step=jax.ShapeDtypeStruct((), jnp.int32),
        params={"kept": jax.ShapeDtypeStruct((2,), jnp.float32), "new": jax.ShapeDtypeStruct((4,), jnp.float32)},
        opt_state=(),
    )
    saved = {"step": (), "params.kept": (2,), "params.old": (3,)}
    with pytest.raises(resume_lib.ShapeMismatch, match=r"not in the checkpoint: params\.new; not in the model: "
                       r"params\.old"):
        resume_lib.check_shapes(saved, target, where="step 1")
    resume_lib.check_shapes({"step": (), "params.kept": (2,), "params.new": (4,)}, target, where="step 1")


def test_unknown_allow_changes_values_are_a_config_error(trainer, tmp_path):
    with pytest.raises(errors.ConfigError) as raised:
        _resume(trainer, tmp_path, METADATA, allow_changes=("data", "model"))
    assert "['model']" in str(raised.value) and "['data', 'schedule']" in str(raised.value)
