import os
import signal
import threading

import jax
import pytest

from it_jax import sharding
from it_jax.train import preemption
from it_jax.train import trainer as trainer_lib
from it_jax.train.checkpoints import Checkpointer


def test_sigterm_finishes_the_step_saves_and_stops(tmp_path, stacked_spec, optimizer, schedule, make_lm_batch):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")
    trainer = trainer_lib.Trainer(
        spec=stacked_spec, optimizer=optimizer, schedule=schedule, mesh=sharding.create_mesh(devices=jax.devices()[:1])
    )
    starts = []

    def batches(position):
        starts.append(position)
        while True:
            if position == 3:  # the notice arrives while step 4's batch is being read
                os.kill(os.getpid(), signal.SIGTERM)
            yield make_lm_batch(position)
            position += 1

    previous = signal.getsignal(signal.SIGTERM)
    common = {"trainer": trainer, "batches": batches, "model_dir": tmp_path, "save_every": 100, "tensorboard": False}
    with pytest.raises(preemption.Preempted) as stopped:
        trainer_lib.train(num_steps=100, **common)
    assert stopped.value.step == 4
    assert signal.getsignal(signal.SIGTERM) is previous
    checkpointer = Checkpointer(tmp_path / "checkpoints")
    assert checkpointer.all_steps() == [4] and checkpointer.data_position(4) == 4
    checkpointer.close()
    state = trainer_lib.train(num_steps=5, **common)
    assert int(state.step) == 5 and starts == [0, 4]
