"""SIGTERM outside the train loop (start-up, the evaluation after training) exits 0 at once, saying that
nothing needed saving; inside the loop the watcher takes over (finish the step, save, stop) and hands back."""

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest
import tiny

from it_jax.train import distributed, preemption

REPO = pathlib.Path(__file__).resolve().parents[2]
TINY = [*tiny.T5_GIN_BINDINGS, "TRAIN_STEPS = 4"]


def _env() -> dict[str, str]:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO)}
    for names in distributed.ENV_VARS.values():
        for name in names:
            env.pop(name, None)
    return env


def _catches_sigterm(pid: int) -> bool:
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
    return bool(caught & (1 << (signal.SIGTERM - 1)))


def _has_loaded(pid: int, library: str) -> bool:
    return library in pathlib.Path(f"/proc/{pid}/maps").read_text()


def _stop(process: subprocess.Popen) -> tuple[float, str, str]:
    """SIGTERM to `process`: (seconds until it exited, stdout, stderr)."""
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    return time.monotonic() - sent, out, err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("moment", ["handler_installed", "jax_loaded", "train_started"])
def test_sigterm_during_startup_of_train_py_exits_0_at_once(tmp_path, moment):
    """As soon as the entry point installed its handler (importing TensorFlow next); once JAX is loaded
    (importing the library, reading gin, building the run); once `trainer.train` made the model directory
    (looking for a checkpoint to restore, initializing, building the input pipeline: seconds before the loop)."""
    model_dir = tmp_path / "run"
    args = [sys.executable, str(REPO / "scripts" / "train.py"), f"--model_dir={model_dir}"]
    args += [f"--gin_bindings={binding}" for binding in TINY]
    process = subprocess.Popen(args, env=_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = {
        "handler_installed": _catches_sigterm,
        "jax_loaded": lambda pid: _has_loaded(pid, "jaxlib"),
        "train_started": lambda pid: model_dir.exists(),
    }[moment]
    deadline = time.monotonic() + 60
    while not ready(process.pid):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    seconds, out, err = _stop(process)
    print(f"SIGTERM at start-up ({moment}) -> exit after {seconds:.2f} s")
    assert process.returncode == 0, out[-2000:] + err[-2000:]
    assert preemption.STOPPED_BEFORE_TRAINING in out and "Traceback" not in err
    assert seconds < 15
    assert not (model_dir / "checkpoints").exists() or not any((model_dir / "checkpoints").iterdir())


def test_the_train_loop_takes_sigterm_over_and_hands_it_back():
    original = signal.getsignal(signal.SIGTERM)
    try:
        preemption.stop_outside_training()
        outside = signal.getsignal(signal.SIGTERM)
        with preemption.PreemptionWatcher() as watcher:
            assert signal.getsignal(signal.SIGTERM) == watcher._on_sigterm
            assert not watcher.should_stop(1)
            os.kill(os.getpid(), signal.SIGTERM)  # the watcher's flag, not an exit
            assert watcher.should_stop(2)
        assert signal.getsignal(signal.SIGTERM) is outside
    finally:
        signal.signal(signal.SIGTERM, original)


@pytest.mark.parametrize("trained", [False, True], ids=["before_training", "after_training"])
def test_sigterm_outside_the_loop_says_what_was_saved(trained):
    code = (
        "import os, signal, time\n"
        "from it_jax.train import preemption\n"
        "preemption.stop_outside_training()\n"
        f"if {trained}:\n"
        "    with preemption.PreemptionWatcher():\n"
        "        pass\n"
        "print('working', flush=True)\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and time.monotonic() - started < 30, result.stderr[-2000:]
    expected = preemption.STOPPED_AFTER_TRAINING if trained else preemption.STOPPED_BEFORE_TRAINING
    assert result.stdout.splitlines() == ["working", "", expected]


def test_sigterm_to_a_supervised_process_waiting_for_its_peers_exits_0_at_once(tmp_path):
    """A multi-process run's supervisor passes SIGTERM on; its copy, waiting for the other process to
    register (which would take up to the 60 s initialization timeout), stops at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    worker = pathlib.Path(__file__).with_name("peer_worker.py")
    args = [sys.executable, str(worker), f"--model_dir={tmp_path}", f"--coordinator_address=127.0.0.1:{port}"]
    args += ["--num_processes=2", "--process_id=0", "--initialization_timeout=60"]
    env = {**_env(), "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:  # the coordinator listens: the copy is inside jax.distributed.initialize, waiting for process 1
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    seconds, out, err = _stop(process)
    print(f"SIGTERM while waiting for a peer to register -> exit after {seconds:.2f} s")
    assert process.returncode == 0, out[-2000:] + err[-2000:]
    assert preemption.STOPPED_BEFORE_TRAINING in out
    assert seconds < 10
