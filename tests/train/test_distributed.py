import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import jax
import pytest

from it_jax import sharding
from it_jax.train import distributed
from it_jax.train import trainer as trainer_lib

WORKER = pathlib.Path(__file__).with_name("multihost_worker.py")
REPO = pathlib.Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(model_dir, num_processes, process_id, port, steps):
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(REPO)])),
    }
    for var in ("IT_JAX_COORDINATOR_ADDRESS", "JAX_COORDINATOR_ADDRESS"):
        env.pop(var, None)
    args = [sys.executable, str(WORKER), str(model_dir), str(num_processes), str(process_id), str(port), str(steps)]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _logged_losses(model_dir) -> list[float]:
    path = pathlib.Path(model_dir) / "metrics.jsonl"
    return [json.loads(line)["loss"] for line in path.read_text().splitlines()] if path.exists() else []


def test_two_processes_train_like_one_and_stop_together_on_sigterm(tmp_path, spec, optimizer, schedule, make_batch):
    """Two processes with half the global batch each log the losses of one process with all of it; SIGTERM
    to process 1 (the preemption service relays it) stops both after the same step, which is saved."""
    port = _free_port()
    processes = [_launch(tmp_path, 2, i, port, 10**6) for i in range(2)]
    # Meanwhile, the reference: one process with the same mesh shape over 4 devices and the whole batches.
    mesh = sharding.create_mesh(data=2, fsdp=2, devices=jax.devices()[:4])
    trainer = trainer_lib.Trainer(spec=spec, optimizer=optimizer, schedule=schedule, mesh=mesh)
    state, single = trainer.init(seed=0), []
    for i in range(3):
        state, stats = trainer.step(state, trainer.to_global(make_batch(i)))
        single.append(float(stats["nll_sum"] / stats["tokens"]))
    deadline = time.monotonic() + 240
    while len(_logged_losses(tmp_path)) < 3 and time.monotonic() < deadline:
        assert all(p.poll() is None for p in processes), processes[0].communicate()[0][-3000:]
        time.sleep(0.2)
    processes[1].send_signal(signal.SIGTERM)
    outputs = [p.communicate(timeout=120)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert _logged_losses(tmp_path)[:3] == pytest.approx(single, abs=1e-5)
    stopped = [int(re.search(r"Preempted at step (\d+)", out).group(1)) for out in outputs]
    assert stopped[0] == stopped[1] >= 3
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()) == [stopped[0]]


def test_initialize_is_a_noop_for_a_single_process(monkeypatch):
    for names in distributed.ENV_VARS.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
    assert distributed.initialize() is False


def test_initialize_needs_all_three_settings(monkeypatch):
    monkeypatch.setenv("IT_JAX_COORDINATOR_ADDRESS", "127.0.0.1:1234")
    for name in ("IT_JAX_NUM_PROCESSES", "JAX_NUM_PROCESSES", "IT_JAX_PROCESS_ID", "JAX_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="num_processes=None"):
        distributed.initialize(process_id=0)
