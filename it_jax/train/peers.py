"""Peers of a multi-process run: when one is lost (or never starts), the others say so in one line and exit.

How a lost peer shows up (jax 0.10.2): the coordination service (in process 0) declares a process dead
once it has sent no heartbeat for `heartbeat_timeout` seconds, and tells every other process, whose
coordination client then aborts it from a C++ thread: a "Check failure" stack trace and SIGABRT. When
process 0 itself dies, the others' clients lose the service and abort within a second. A run whose
processes do not all register ends the same way. None of this can be caught in Python: the abort comes
from the very thread that learns of the death (`get_live_nodes` changes in the same millisecond), and
the client's Python `missed_heartbeat_callback` crashes on its argument (`std::bad_cast`). A collective
whose peer vanished may also raise first in Python (a gloo "Connection closed by peer").

So each process of a multi-process run is supervised: `supervise` runs the same command again as a child
and relays its output. When the child dies of the coordination service's abort, the supervisor prints
one line in place of the C++ trace, naming the lost process, the last step and the last saved step, and
exits `PEER_LOST_EXIT`; a registration failure names the coordinator and the missing processes. The
train loop tells the supervisor its progress with `report_progress`. The child dies with its supervisor.

This module does not import JAX: the supervisor stays a small process.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import BinaryIO

from it_jax.train import distributed, preemption

PROGRESS_FD_VAR = "IT_JAX_PROGRESS_FD"  # "FD:SUPERVISOR_PID" in a supervised child: where `report_progress` writes
PEER_LOST_EXIT = 75  # EX_TEMPFAIL: rerunning the command is expected to work
FATAL_MARKER = b"Terminating process because the JAX distributed service detected fatal errors"
# A collective failing for these reasons may mean a lost peer (then the coordination service ends this process).
LOST_CONNECTION = re.compile(r"gloo|nccl|connection (?:closed|reset|refused)|socket closed|by peer", re.IGNORECASE)
VERDICT_GRACE = 10  # seconds, past the heartbeat timeout, that a failed collective waits for the verdict
_PR_SET_PDEATHSIG = 1
_TASK = re.compile(r"^\s*(?:/job:\S*?task:)?(\d+)\s*$")


@dataclasses.dataclass
class Progress:
    """The last progress a supervised child reported (None: nothing yet)."""

    step: int | None = None
    saved_step: int | None = None


def _progress_fd() -> int | None:
    """The pipe to this process's supervisor (None when not supervised; the variable is inherited by the
    child's own children, which have another parent)."""
    fd, _, supervisor = os.environ.get(PROGRESS_FD_VAR, "").partition(":")
    return int(fd) if fd.isdigit() and supervisor == str(os.getppid()) else None


def supervised() -> bool:
    """Whether this process is the child of a `supervise` call."""
    return _progress_fd() is not None


def report_progress(*, step: int, saved_step: int | None) -> None:
    """Tells this host's supervisor that `step` is done and `saved_step` is the last committed checkpoint
    (None: none yet), for its message should a peer be lost. A no-op when not supervised (one process)."""
    fd = _progress_fd()
    if fd is None:
        return
    try:
        os.write(fd, f"{step} {'-' if saved_step is None else saved_step}\n".encode())
    except OSError:  # the supervisor is gone; this process is about to be killed with it
        pass


def await_verdict(error: BaseException, run: distributed.Settings | None) -> None:
    """In a supervised child of multi-process run `run`, when `error` (or an error it chains) is a
    collective that lost its connection, waits for the coordination service to end this process, so that
    the supervisor reports the lost peer instead of this traceback; returns (to let `error` be reported)
    if nothing ends it within the heartbeat timeout. A no-op in other processes."""
    if run is None or not supervised():
        return
    seen: list[BaseException] = []
    while error is not None and not any(error is e for e in seen):
        seen.append(error)
        error = error.__cause__ or error.__context__
    if any(LOST_CONNECTION.search(str(e)) for e in seen):
        time.sleep(run.heartbeat_timeout + VERDICT_GRACE)


def _tasks_after(lines: list[str], heading: str) -> list[int]:
    """The process ids listed one per line after the line containing `heading`."""
    for i, line in enumerate(lines):
        if heading in line:
            ids = []
            for task in lines[i + 1 :]:
                match = _TASK.match(task)
                if not match:
                    break
                ids.append(int(match.group(1)))
            return ids
    return []


def _lost_message(lost: list[int], progress: Progress) -> str:
    who = f"process {lost[0]}" if len(lost) == 1 else "processes " + ", ".join(map(str, lost))
    if progress.step is None:
        return f"{who} lost before the first step; rerun the same command on every host to resume"
    if progress.saved_step is None:
        return (
            f"{who} lost at step {progress.step}; rerun the same command on every host to start again "
            "(no checkpoint was saved yet)"
        )
    return (
        f"{who} lost at step {progress.step}; rerun the same command on every host to resume from step "
        f"{progress.saved_step}"
    )


def _registration_message(lines: list[str], run: distributed.Settings) -> str:
    where = "JAX detected" if run.coordinator_address == distributed.AUTO else f"at {run.coordinator_address}"
    within = f"within {run.initialization_timeout} s"
    advice = (
        f"check that the coordinator address is reachable from every host (host, port, firewall), or raise "
        f"--initialization_timeout (${distributed.ENV_VARS['initialization_timeout'][0]}) if hosts start slowly"
    )
    counts = re.search(r"reached the barrier: (\d+)/(\d+)", "\n".join(lines))
    if counts is None:
        return (
            f"could not register with the coordinator {where} {within}: start process 0 (the coordinator) "
            f"and every other process with the same command; {advice}"
        )
    arrived, total = map(int, counts.groups())
    missing = _tasks_after(lines, "timed out task names:")
    names = f" (missing: process {', '.join(map(str, missing))})" if missing else ""
    return (
        f"{total - arrived} of {total} processes never reached the coordinator {where} {within}{names}: start "
        f"the same command on every host, each with its own --process_id (0 to {total - 1}); {advice}"
    )


def verdict(status: str, progress: Progress, run: distributed.Settings) -> tuple[str, int]:
    """(one-line message, exit code) for a child that the coordination service aborted with `status` (the
    text of its fatal log line and what follows)."""
    lines = status.splitlines()
    lost = _tasks_after(lines, "stopped sending heartbeats")
    if lost:
        return _lost_message(lost, progress), PEER_LOST_EXIT
    if "Wait_for_all_tasks_to_register" in status or "RegisterTask" in status:
        return _registration_message(lines, run), 1
    if "leader task" in status or "Failed to send RPC to coordination service" in status:
        return _lost_message([0], progress), PEER_LOST_EXIT
    detail = status.split("absl::Status:", 1)[-1].strip().splitlines()
    return f"the JAX distributed service stopped this process: {detail[0] if detail else status.strip()}", 1


class _StderrRelay(threading.Thread):
    """Copies the child's stderr to ours until the coordination service's fatal log line, then keeps the
    rest (the status and the C++ trace) for `verdict` instead."""

    def __init__(self, stream: BinaryIO):
        super().__init__(daemon=True)
        self._stream = stream
        self.fatal: list[bytes] = []

    def run(self) -> None:
        out = getattr(sys.stderr, "buffer", None)
        for line in iter(self._stream.readline, b""):
            if self.fatal or FATAL_MARKER in line:
                self.fatal.append(line)
                continue
            try:
                out.write(line)
                out.flush()
            except (AttributeError, OSError, ValueError):  # nowhere to write: keep draining the child
                pass

    def status(self) -> str:
        text = b"".join(self.fatal).decode(errors="replace")
        return text.split("*** Check failure stack trace", 1)[0]


class _ProgressReader(threading.Thread):
    """Keeps the last line `report_progress` wrote to the pipe."""

    def __init__(self, fd: int):
        super().__init__(daemon=True)
        self._fd = fd
        self.progress = Progress()

    def run(self) -> None:
        with os.fdopen(self._fd, "rb") as pipe:
            for line in pipe:
                step, _, saved = line.strip().partition(b" ")
                if step.isdigit():
                    self.progress = Progress(int(step), int(saved) if saved.isdigit() else None)


def _die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that has the kernel kill the child when this process dies (Linux; elsewhere None)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(1)

    return arm


def supervise(run: distributed.Settings) -> int:
    """Runs this command again in a child process that does the work; returns the exit code to exit with.

    SIGTERM is passed on to the child (Ctrl-C reaches it from the terminal directly). The child's stdout is
    this process's; its stderr is relayed, except the coordination service's fatal error, which becomes one
    line (see `verdict`). A child that died of SIGTERM before installing its handler had nothing to save.
    """
    read_fd, write_fd = os.pipe()
    child = subprocess.Popen(
        [sys.executable, *sys.orig_argv[1:]],
        env={**os.environ, PROGRESS_FD_VAR: f"{write_fd}:{os.getpid()}"},
        pass_fds=(write_fd,),
        stderr=subprocess.PIPE,
        preexec_fn=_die_with_parent(),
    )
    os.close(write_fd)
    signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signum))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    relay, reader = _StderrRelay(child.stderr), _ProgressReader(read_fd)
    relay.start()
    reader.start()
    returncode = child.wait()
    # A grandchild may still hold the pipes open: do not wait for their end-of-file for long.
    relay.join(timeout=5)
    reader.join(timeout=2)
    if relay.fatal:
        message, code = verdict(relay.status(), reader.progress, run)
    elif returncode == -signal.SIGTERM:
        message, code = preemption.STOPPED_BEFORE_TRAINING, 0
    elif returncode < 0:
        message, code = f"the training process was killed by {signal.Signals(-returncode).name}", 128 - returncode
    else:
        return returncode
    print(("error: " if code else "") + message, file=sys.stderr if code else sys.stdout, flush=True)
    return code
