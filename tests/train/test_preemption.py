import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import jax
import pytest

from it_jax import sharding
from it_jax.train import preemption
from it_jax.train import trainer as trainer_lib
from it_jax.train.checkpoints import Checkpointer

DRIVER = pathlib.Path(__file__).with_name("preemption_driver.py")
REPO = pathlib.Path(__file__).resolve().parents[2]


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


def _driver(model_dir, num_steps, *, wait=True):
    env = {
        **os.environ,
        "XLA_FLAGS": "",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(REPO)])),
    }
    log = open(pathlib.Path(model_dir).with_suffix(".log"), "a")
    args = [sys.executable, str(DRIVER), str(model_dir), str(num_steps)]
    process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    if wait:
        process.wait(timeout=300)
    return process


def _logged_steps(model_dir) -> list[int]:
    path = pathlib.Path(model_dir) / "metrics.jsonl"
    return [json.loads(line)["step"] for line in path.read_text().splitlines()] if path.exists() else []


def test_a_training_process_saves_and_exits_cleanly_on_sigterm_and_rerunning_resumes(tmp_path):
    model_dir = tmp_path / "run"
    log = model_dir.with_suffix(".log")
    process = _driver(model_dir, 10**6, wait=False)
    deadline = time.monotonic() + 300
    while not _logged_steps(model_dir) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert process.poll() is None, log.read_text()[-3000:]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 0, log.read_text()[-3000:]

    saved = sorted(int(p.name) for p in (model_dir / "checkpoints").iterdir() if p.name.isdigit())
    assert len(saved) == 1 and saved[0] == _logged_steps(model_dir)[-1]
    assert f"Preempted: saved step {saved[0]}" in log.read_text()

    resumed = _driver(model_dir, saved[0] + 2)
    assert resumed.returncode == 0, log.read_text()[-3000:]
    assert f"Resuming from step {saved[0]}" in log.read_text()
    assert _logged_steps(model_dir) == list(range(1, saved[0] + 3))
