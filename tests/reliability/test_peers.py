"""A lost peer ends the survivor of a two-process run within the heartbeat timeout, in one line naming the
lost process and the steps; a peer that never starts ends the other at the registration deadline."""

import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from it_jax import errors
from it_jax.train import distributed, peers

WORKER = pathlib.Path(__file__).with_name("peer_worker.py")
REPO = pathlib.Path(__file__).resolve().parents[2]
LOST = re.compile(
    r"^error: process (\d) lost at step (\d+); rerun the same command on every host to resume from step (\d+)$"
)
NO_TRACE = ("Check failure", "SIGABRT", "Fatal Python error", "Traceback", "*** ")
RUN = distributed.Settings("10.0.0.1:1234", 3, 0, initialization_timeout=60, heartbeat_timeout=30, shutdown_timeout=300)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(model_dir: pathlib.Path, process_id: int, port: int, *flags: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": str(REPO),
    }
    for names in distributed.ENV_VARS.values():
        for name in names:
            env.pop(name, None)
    args = [sys.executable, str(WORKER), f"--model_dir={model_dir}", f"--coordinator_address=127.0.0.1:{port}"]
    args += ["--num_processes=2", f"--process_id={process_id}", *flags]
    with open(model_dir / f"out{process_id}", "w") as out, open(model_dir / f"err{process_id}", "w") as err:
        return subprocess.Popen(args, env=env, stdout=out, stderr=err)


def _wait(process: subprocess.Popen, timeout: float) -> float:
    """Seconds until `process` exits."""
    started = time.monotonic()
    process.wait(timeout=timeout)
    return time.monotonic() - started


@pytest.mark.parametrize("victim", [1, 0], ids=["worker_killed", "coordinator_host_killed"])
def test_survivor_of_a_killed_peer_exits_within_the_heartbeat_timeout_in_one_line(tmp_path, victim):
    """kill -9 of process 1's training process (the survivor waits out the 5 s heartbeat timeout), or of
    process 0's supervisor (its training process and the coordination service die with it)."""
    port = _free_port()
    processes = [_launch(tmp_path, i, port, "--heartbeat_timeout=5") for i in range(2)]
    deadline = time.monotonic() + 120
    while not (tmp_path / "checkpoints" / "4").is_dir():  # step 4 committed: at least 4 steps trained
        assert all(p.poll() is None for p in processes), (tmp_path / "err0").read_text()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.2)
    if victim == 1:
        os.kill(int((tmp_path / "pid1").read_text()), signal.SIGKILL)
    else:
        processes[0].kill()
    survivor = processes[1 - victim]
    seconds = _wait(survivor, timeout=60)
    print(f"process {victim} killed -> survivor exited after {seconds:.1f} s")
    processes[victim].wait(timeout=30)
    out, err = (tmp_path / f"out{1 - victim}").read_text(), (tmp_path / f"err{1 - victim}").read_text()
    assert survivor.returncode == peers.PEER_LOST_EXIT, out[-2000:] + err[-3000:]
    assert seconds < 60
    assert not [marker for marker in NO_TRACE if marker in out + err], err[-3000:]
    lines = [line for line in err.splitlines() if "lost" in line]
    assert len(lines) == 1 and err.strip().splitlines()[-1] == lines[0], err[-3000:]
    lost, step, saved = map(int, LOST.match(lines[0]).groups())
    committed = {int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()}
    assert lost == victim and step >= 4 and saved in committed and saved <= step
    assert max(int(n) for n in re.findall(r"^step (\d+) ", out, re.MULTILINE)) in (step - 1, step)


@pytest.mark.parametrize("present", [0, 1], ids=["coordinator_alone", "worker_alone"])
def test_a_peer_that_never_starts_fails_registration_at_the_deadline(tmp_path, present):
    port = _free_port()
    process = _launch(tmp_path, present, port, "--initialization_timeout=5")
    seconds = _wait(process, timeout=60)
    print(f"process {1 - present} never started -> process {present} exited after {seconds:.1f} s")
    err = (tmp_path / f"err{present}").read_text()
    assert process.returncode == 1, err[-3000:]
    assert 5 <= seconds < 5 + 25  # registration gives up after 5 s (+5 s on a worker), plus start-up
    assert not [marker for marker in NO_TRACE if marker in err], err[-3000:]
    line = err.strip().splitlines()[-1]
    assert f"127.0.0.1:{port} within 5 s" in line and "--initialization_timeout" in line
    if present == 0:
        assert (
            line.startswith("error: 1 of 2 processes never reached the coordinator") and "(missing: process 1)" in line
        )
    else:
        assert line.startswith("error: could not register with the coordinator")


def test_verdict_names_the_lost_process_and_the_steps():
    status = (
        "F1129 09:27:59.242575 27561 client.h:80] Terminating process because the JAX distributed service detected "
        "fatal errors. ... absl::Status: UNAVAILABLE: The following tasks are unhealthy (stopped sending heartbeats):\n"
        "2\n/job:jax_worker/replica:0/task:5\nThe tasks have crashed. Check the task logs for an earlier error.\n"
    )
    message, code = peers.verdict(status, peers.Progress(step=12, saved_step=10), RUN)
    assert code == peers.PEER_LOST_EXIT
    assert message == "processes 2, 5 lost at step 12; rerun the same command on every host to resume from step 10"
    leader = "absl::Status: UNAVAILABLE: Failed to send RPC to coordination service. Either the leader task was ..."
    message, _ = peers.verdict(leader, peers.Progress(step=3, saved_step=None), RUN)
    assert message.startswith("process 0 lost at step 3; rerun the same command on every host to start again")
    message, _ = peers.verdict(leader, peers.Progress(), RUN)
    assert message.startswith("process 0 lost before the first step")


def test_verdict_of_a_failed_registration_names_the_coordinator_and_the_missing_processes():
    status = (
        "absl::Status: DEADLINE_EXCEEDED: Barrier timed out. Id: [Init]Wait_for_all_tasks_to_register::0.\n"
        "# of tasks that reached the barrier: 1/3.\nThe first task at the barrier: 0. Some timed out task names:\n"
        "1\n2\n\n\nRPC: /xla.coordination.CoordinationService/RegisterTask\n"
    )
    message, code = peers.verdict(status, peers.Progress(), RUN)
    assert code == 1
    assert message.startswith(
        "2 of 3 processes never reached the coordinator at 10.0.0.1:1234 within 60 s (missing: process 1, 2)"
    )
    vague = (
        "absl::Status: DEADLINE_EXCEEDED: Deadline Exceeded\n\nRPC: /xla.coordination.CoordinationService/RegisterTask"
    )
    message, _ = peers.verdict(vague, peers.Progress(), RUN)
    assert message.startswith("could not register with the coordinator at 10.0.0.1:1234 within 60 s")
    message, code = peers.verdict("absl::Status: INTERNAL: something else\nmore", peers.Progress(), RUN)
    assert (message, code) == ("the JAX distributed service stopped this process: INTERNAL: something else", 1)


def test_progress_goes_to_the_supervisor_pipe_only_when_supervised(monkeypatch):
    monkeypatch.delenv(peers.PROGRESS_FD_VAR, raising=False)
    peers.report_progress(step=1, saved_step=None)  # not supervised: nothing to write to, no error
    read_fd, write_fd = os.pipe()
    monkeypatch.setenv(peers.PROGRESS_FD_VAR, f"{write_fd}:{os.getppid() + 1}")  # another process's supervisor
    assert not peers.supervised()
    peers.report_progress(step=6, saved_step=4)
    monkeypatch.setenv(peers.PROGRESS_FD_VAR, f"{write_fd}:{os.getppid()}")
    assert peers.supervised()
    peers.report_progress(step=7, saved_step=None)
    peers.report_progress(step=8, saved_step=6)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        written = pipe.read()
    assert written == b"7 -\n8 6\n"
    read_fd, write_fd = os.pipe()
    os.write(write_fd, written + b"garbled\n")
    os.close(write_fd)
    reader = peers._ProgressReader(read_fd)
    reader.run()
    assert reader.progress == peers.Progress(step=8, saved_step=6)


def test_timeouts_come_from_flags_then_environment_then_defaults(monkeypatch):
    for names in distributed.ENV_VARS.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
    assert distributed.settings(initialization_timeout=5) is None  # no coordinator: a single process
    monkeypatch.setenv("IT_JAX_HEARTBEAT_TIMEOUT", "12")
    run = distributed.settings(coordinator_address="h:1", num_processes=2, process_id=1, initialization_timeout=5)
    assert (run.initialization_timeout, run.heartbeat_timeout) == (5, 12)
    assert run.shutdown_timeout == distributed.DEFAULT_TIMEOUTS["shutdown_timeout"]
    assert max(distributed.DEFAULT_TIMEOUTS["initialization_timeout"], run.heartbeat_timeout) <= 60
    monkeypatch.setenv("IT_JAX_HEARTBEAT_TIMEOUT", "soon")
    with pytest.raises(errors.ConfigError, match="heartbeat_timeout .* got 'soon'"):
        distributed.settings(coordinator_address="h:1", num_processes=2, process_id=1)
