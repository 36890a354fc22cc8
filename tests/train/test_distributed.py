import json
import os
import pathlib
import socket
import subprocess
import sys

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


def test_two_processes_train_like_one_with_the_same_global_batch(tmp_path, spec, optimizer, schedule, make_batch):
    steps, port = 3, _free_port()
    processes = [_launch(tmp_path, 2, i, port, steps) for i in range(2)]
    # Meanwhile, the reference: one process with the same mesh shape over 4 devices and the whole batches.
    mesh = sharding.create_mesh(data=2, fsdp=2, devices=jax.devices()[:4])
    trainer = trainer_lib.Trainer(spec=spec, optimizer=optimizer, schedule=schedule, mesh=mesh)
    state, single = trainer.init(seed=0), []
    for i in range(steps):
        state, stats = trainer.step(state, trainer.to_global(make_batch(i)))
        single.append(float(stats["nll_sum"] / stats["tokens"]))
    for process in processes:
        out, _ = process.communicate(timeout=300)
        assert process.returncode == 0, out[-3000:]
    multi = [json.loads(line)["loss"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(multi) == steps
    assert multi == pytest.approx(single, abs=1e-5)
    assert (tmp_path / "checkpoints" / str(steps)).is_dir()


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
