"""A damaged newest checkpoint is moved aside and the run resumes from the one before, bitwise as if uninterrupted."""

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny
from jax.sharding import NamedSharding, PartitionSpec

from it_jax.train import checkpoints as checkpoints_lib
from it_jax.train import integrity
from it_jax.train import resume as resume_lib
from it_jax.train import trainer as trainer_lib
from it_jax.train.state import TrainState

REPO = pathlib.Path(__file__).resolve().parents[2]
STEPS = 6


@pytest.fixture(scope="module")
def trainer():
    return tiny.t5_trainer()


def _train(trainer, model_dir, num_steps, **kwargs):
    return trainer_lib.train(
        trainer=trainer,
        batches=tiny.t5_batches,
        model_dir=model_dir,
        num_steps=num_steps,
        log_every=1,
        tensorboard=False,
        **kwargs,
    )


@pytest.fixture(scope="module")
def reference(trainer, tmp_path_factory):
    """The parameters after an uninterrupted run of STEPS steps."""
    state = _train(trainer, tmp_path_factory.mktemp("straight"), STEPS, save_every=100)
    return [np.asarray(x) for x in jax.tree.leaves(state.params)]


@pytest.fixture(scope="module")
def saved(trainer, tmp_path_factory):
    """A model directory trained 4 steps, keeping the checkpoints of steps 2, 3 and 4."""
    model_dir = tmp_path_factory.mktemp("saved")
    _train(trainer, model_dir, 4, save_every=1, keep_checkpoints=3)
    assert sorted(p.name for p in (model_dir / "checkpoints").iterdir()) == ["2", "3", "4"]
    return model_dir


@pytest.fixture
def run(saved, tmp_path) -> pathlib.Path:
    return pathlib.Path(shutil.copytree(saved, tmp_path / "run"))


def _largest_array_file(step_dir: pathlib.Path) -> pathlib.Path:
    return max((step_dir / "state" / "ocdbt.process_0" / "d").iterdir(), key=lambda p: p.stat().st_size)


def truncate(step_dir):
    path = _largest_array_file(step_dir)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_a_bit(step_dir):
    path = _largest_array_file(step_dir)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def break_state_metadata(step_dir):
    (step_dir / "state" / "_METADATA").write_text('{"tree_metadata": {', encoding="utf-8")


def break_step_metadata(step_dir):
    (step_dir / "_CHECKPOINT_METADATA").write_text("{not json", encoding="utf-8")


def empty(step_dir):
    shutil.rmtree(step_dir)
    step_dir.mkdir()


def drop_commit_marker(step_dir):
    (step_dir / "commit_success.txt").unlink()


def drop_data_item(step_dir):
    shutil.rmtree(step_dir / "data")


DAMAGE = {
    truncate: "could not read the state's arrays (ValueError: OUT_OF_RANGE: Error reading",
    flip_a_bit: "fingerprint mismatch",
    break_state_metadata: "could not read state/_METADATA (JSONDecodeError",
    break_step_metadata: "_CHECKPOINT_METADATA is not valid JSON",
    empty: "no commit_success.txt",
    drop_commit_marker: "no commit_success.txt",
    drop_data_item: "item data missing",
}


def _assert_same_params(state, reference):
    for a, b in zip(jax.tree.leaves(state.params), reference, strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)


def _steps(checkpoints) -> list[int]:
    checkpointer = checkpoints_lib.Checkpointer(checkpoints)
    try:
        return checkpointer.all_steps()
    finally:
        checkpointer.close()


def _logged_steps(model_dir) -> list[int]:
    return [json.loads(line)["step"] for line in (model_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__)
def test_a_damaged_latest_step_falls_back_to_the_previous_one(trainer, reference, run, damage, capsys):
    checkpoints = run / "checkpoints"
    damage(checkpoints / "4")
    state = _train(trainer, run, STEPS, save_every=1, keep_checkpoints=3)

    out = capsys.readouterr().out
    unreadable = next(line for line in out.splitlines() if line.startswith("Checkpoint step 4 in"))
    assert DAMAGE[damage] in unreadable and ".corrupt-" in unreadable
    assert "Resuming from step 3 (input position 3)" in out
    (moved,) = checkpoints.glob("4.corrupt-*")  # kept under a new name, not deleted
    assert moved.is_dir() and moved.name in unreadable
    assert sorted(p.name for p in checkpoints.iterdir() if p.name.isdigit()) == ["4", "5", "6"]
    _assert_same_params(state, reference)
    assert _logged_steps(run) == list(range(1, STEPS + 1))


@pytest.mark.parametrize("leftover", ["5.orbax-checkpoint-tmp", "5.orbax-checkpoint-tmp-1764410100123456"])
def test_a_save_left_half_done_by_a_crash_is_not_a_step(trainer, reference, run, leftover, capsys):
    checkpoints = run / "checkpoints"
    shutil.copytree(checkpoints / "4", checkpoints / leftover)
    (checkpoints / leftover / "commit_success.txt").unlink()
    assert _steps(checkpoints) == [2, 3, 4]

    state = _train(trainer, run, STEPS, save_every=1, keep_checkpoints=3)
    out = capsys.readouterr().out
    assert "Resuming from step 4 (input position 4)" in out and "unreadable" not in out
    assert not list(checkpoints.glob("*.corrupt-*"))
    _assert_same_params(state, reference)


def test_every_step_damaged_is_a_clear_error_listing_them(trainer, run):
    checkpoints = run / "checkpoints"
    flip_a_bit(checkpoints / "4")
    truncate(checkpoints / "3")
    empty(checkpoints / "2")
    with pytest.raises(resume_lib.NoReadableCheckpoint) as raised:
        _train(trainer, run, STEPS, save_every=1)
    message = str(raised.value)
    assert "step 4 (fingerprint mismatch" in message and "step 2 (no commit_success.txt" in message
    assert "step 3 (could not read the state's arrays" in message and str(checkpoints) in message
    assert sorted(p.name.split(".")[0] for p in checkpoints.glob("*.corrupt-*")) == ["2", "3", "4"]
    assert _steps(checkpoints) == []  # moved directories are not steps


def test_a_checkpoint_without_fingerprints_restores_with_a_notice(trainer, reference, run, capsys):
    data = run / "checkpoints" / "4" / "data" / "metadata"
    saved = json.loads(data.read_text())
    assert set(saved["fingerprints"]) >= {"step", "params.token_embedder.embedding", "opt_state.1.0.count"}
    data.write_text(json.dumps({"batches_consumed": saved["batches_consumed"]}))
    state = _train(trainer, run, STEPS, save_every=1)
    out = capsys.readouterr().out
    assert "Step 4 was saved without integrity fingerprints" in out and "Resuming from step 4" in out
    _assert_same_params(state, reference)


def test_non_finite_values_are_refused_at_restore(trainer, tmp_path):
    state = trainer.init(0)
    params = jax.tree.map(lambda x: x, state.params)
    params["decoder"]["final_norm"]["scale"] = params["decoder"]["final_norm"]["scale"].at[3].set(jnp.nan)
    checkpointer = checkpoints_lib.Checkpointer(tmp_path, save_every=1)
    checkpointer.save(1, state.replace(params=params), {}, data_position=1)
    checkpointer.close()
    checkpointer = checkpoints_lib.Checkpointer(tmp_path)
    with pytest.raises(checkpoints_lib.CorruptCheckpoint, match=r"non-finite values in params\.decoder\.final_norm"):
        checkpointer.restore(trainer.abstract_state(), 1)
    checkpointer.close()


def test_fingerprints_do_not_depend_on_the_mesh_and_catch_swapped_values():
    x = jax.random.normal(jax.random.key(0), (16, 24), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (8, 4, 6), jnp.bfloat16)
    tree = {"x": x, "b": b, "count": jnp.arange(10, dtype=jnp.int32)}
    mesh = jax.make_mesh((2, 4), ("a", "c"), devices=jax.devices()[:8])
    sharded = {
        "x": jax.device_put(x, NamedSharding(mesh, PartitionSpec("a", "c"))),
        "b": jax.device_put(b, NamedSharding(mesh, PartitionSpec("c", None, "a"))),
        "count": jax.device_put(tree["count"], NamedSharding(mesh, PartitionSpec())),
    }
    expected = integrity.fingerprints(tree)
    assert integrity.fingerprints(sharded) == expected
    assert expected["count"] == (45, sum(i * (i + 1) for i in range(10)), 0)  # sum, position-weighted sum
    swapped = x.at[0, 0].set(x[0, 1]).at[0, 1].set(x[0, 0])
    total, weighted, _ = integrity.fingerprints({"x": swapped})["x"]
    assert total == expected["x"][0] and weighted != expected["x"][1]


AGREEING_WORKER = textwrap.dedent(
    """
    import sys
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    import jax.numpy as jnp
    from jax.experimental import multihost_utils
    from jax.sharding import NamedSharding, PartitionSpec
    from it_jax.train import checkpoints, distributed, resume
    from it_jax.train.state import TrainState

    directory, port, process_id = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=process_id)
    mesh = jax.make_mesh((2,), ("data",))  # one device in each process
    target = TrainState(
        step=jax.ShapeDtypeStruct((), jnp.int32, sharding=NamedSharding(mesh, PartitionSpec())),
        params={"w": jax.ShapeDtypeStruct((8,), jnp.float32, sharding=NamedSharding(mesh, PartitionSpec("data")))},
        opt_state=(),
    )
    if process_id == 1:  # the arrays of step 2 cannot be read on this host only (a flaky mount, say)
        read = checkpoints.Checkpointer._restore_tree

        def failing(self, step, target, **kwargs):
            if step == 2:
                raise OSError(5, "Input/output error", str(self.directory / "2" / "state"))
            return read(self, step, target, **kwargs)

        checkpoints.Checkpointer._restore_tree = failing
    checkpointer = checkpoints.Checkpointer(directory)
    resumed = resume.resume(checkpointer, target, metadata={})
    w = multihost_utils.process_allgather(resumed.state.params["w"], tiled=True)
    print(f"process {process_id} resumed step {resumed.step} with w = {[float(x) for x in w]}", flush=True)
    checkpointer.close()
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_all_processes_fall_back_together_when_one_cannot_read_a_step(tmp_path):
    checkpointer = checkpoints_lib.Checkpointer(tmp_path, save_every=1)
    for step in (1, 2):
        state = TrainState(step=jnp.int32(step), params={"w": jnp.arange(8.0) * step}, opt_state=())
        checkpointer.save(step, state, {}, data_position=step)
    checkpointer.close()
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
           "PYTHONPATH": str(REPO)}
    for var in ("IT_JAX_COORDINATOR_ADDRESS", "JAX_COORDINATOR_ADDRESS"):
        env.pop(var, None)
    port = _free_port()
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", AGREEING_WORKER, str(tmp_path), str(port), str(i)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for i in range(2)
    ]
    try:
        outputs = [worker.communicate(timeout=120)[0] for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert [worker.returncode for worker in workers] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    for i, out in enumerate(outputs):
        assert f"process {i} resumed step 1 with w = {[float(x) for x in range(8)]}" in out
    assert f"Checkpoint step 2 in {tmp_path} is unreadable (unreadable on process 1)" in outputs[0]
    assert (
        f"[process 1] step 2 in {tmp_path} is unreadable here: could not read the state's arrays (OSError: [Errno 5] "
        "Input/output error" in outputs[1]
    )
    assert "Checkpoint step 2" not in outputs[1]  # process 0 reports (and renames) for all
    assert [p.name.split(".")[0] for p in tmp_path.glob("*.corrupt-*")] == ["2"] and (tmp_path / "1").is_dir()
