"""A checkpoint that cannot be written (full disk, file size limit) stops training at once with one clear error."""

import errno
import json
import os
import pathlib
import subprocess
import sys
import textwrap
import time

import jax.numpy as jnp
import pytest
import tiny
from orbax.checkpoint._src.path import async_path

from it_jax.train import checkpoints as checkpoints_lib
from it_jax.train import trainer as trainer_lib
from it_jax.train.state import TrainState

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def full_disk_at(monkeypatch):
    """`full_disk_at(step)`: Orbax's background commit of `step` (renaming it into place) fails with ENOSPC."""

    def install(step: int) -> None:
        rename = async_path.rename

        async def failing(src, dst):
            if pathlib.Path(dst).name == str(step):
                raise OSError(errno.ENOSPC, "No space left on device", str(dst))
            return await rename(src, dst)

        monkeypatch.setattr(async_path, "rename", failing)

    return install


def _logged_steps(model_dir) -> list[int]:
    return [json.loads(line)["step"] for line in (model_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_failed_background_save_stops_training_at_the_next_step(tmp_path, full_disk_at, monkeypatch):
    common = {
        "trainer": tiny.t5_trainer(),
        "batches": tiny.t5_batches,
        "model_dir": tmp_path,
        "save_every": 1,
        "log_every": 1,
        "tensorboard": False,
    }
    trainer_lib.train(num_steps=3, **common)
    full_disk_at(4)
    with pytest.raises(checkpoints_lib.CheckpointSaveError) as raised:
        trainer_lib.train(num_steps=8, **common)
    message = str(raised.value)
    assert f"saving the checkpoint of step 4 to {tmp_path / 'checkpoints' / '4'} failed" in message
    assert "[ENOSPC] No space left on device" in message and "the last complete checkpoint is step 3" in message
    assert _logged_steps(tmp_path)[-1] in (4, 5)  # no step ran after the one following the failed save
    checkpointer = checkpoints_lib.Checkpointer(tmp_path / "checkpoints")
    assert checkpointer.all_steps() == [1, 2, 3]
    checkpointer.close()

    monkeypatch.undo()  # the disk has room again: the same command resumes from step 3
    state = trainer_lib.train(num_steps=5, **common)
    assert int(state.step) == 5 and _logged_steps(tmp_path) == [1, 2, 3, 4, 5]


def _tiny_state(value: float) -> TrainState:
    return TrainState(step=jnp.int32(0), params={"w": jnp.full((2,), value)}, opt_state=())


def test_raise_if_save_failed_reports_once_and_close_stays_quiet(tmp_path, full_disk_at, caplog):
    checkpointer = checkpoints_lib.Checkpointer(tmp_path, save_every=1)
    checkpointer.save(1, _tiny_state(1.0), {}, data_position=1)
    checkpointer.manager.wait_until_finished()
    checkpointer.raise_if_save_failed()  # a save that succeeded raises nothing
    full_disk_at(2)
    assert checkpointer.save(2, _tiny_state(2.0), {}, data_position=2)
    deadline = time.monotonic() + 10
    with pytest.raises(checkpoints_lib.CheckpointSaveError, match="step 2 .* last complete checkpoint is step 1"):
        while time.monotonic() < deadline:
            checkpointer.raise_if_save_failed()
            time.sleep(0.01)
    checkpointer.close()  # the failure was reported: closing neither raises it again nor logs its traceback
    orbax_errors = [r for r in caplog.records if r.levelname == "ERROR" and "orbax" in r.pathname]
    assert orbax_errors  # Orbax logged the failure, in one line per record
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in orbax_errors)


WRITER = textwrap.dedent(
    """
    import resource, signal, sys
    import jax
    import jax.numpy as jnp
    from it_jax.train import checkpoints
    from it_jax.train.state import TrainState

    def state(seed):  # random values: 64 KiB that do not compress
        return TrainState(step=jnp.int32(0), params={"w": jax.random.normal(jax.random.key(seed), (128, 128))},
                          opt_state=())

    checkpointer = checkpoints.Checkpointer(sys.argv[1], save_every=1)
    checkpointer.save(3, state(3), {}, data_position=3)
    checkpointer.manager.wait_until_finished()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))  # the array cannot be written
    checkpointer.save(4, state(4), {}, data_position=4)
    try:
        checkpointer.close()
    except checkpoints.CheckpointSaveError as error:
        print(f"error: {error}", flush=True)
        sys.exit(3)
    """
)


def test_a_real_write_error_is_reported_in_one_line_without_tracebacks(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", WRITER, str(tmp_path)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 3, output[-3000:]
    (error,) = [line for line in result.stdout.splitlines() if line.startswith("error: ")]
    assert f"saving the checkpoint of step 4 to {tmp_path / '4'} failed: [EFBIG] File too large" in error
    assert "the last complete checkpoint is step 3" in error
    assert "Traceback" not in output and "Event loop is closed" not in output, output[-3000:]
    assert len(output.splitlines()) < 30, output[-3000:]  # was ~500 lines of tracebacks for one failed save
