"""Orbax's failures reported in one line: the operating-system error behind a failed write, and quieter logs.

A failed background save makes Orbax log every pending write's traceback (hundreds of lines for one full
disk) and TensorStore report each write abandoned on a closed event loop. `CheckpointSaveError` already
reports the failure, so `summarize_orbax_errors` keeps one line per logged error and drops the after-effects.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from it_jax.errors import one_line


def os_error(error: BaseException) -> str | None:
    """The operating-system error behind `error` (an `OSError`, or TensorStore's `os_error_code`), if any."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno:
            where = f" ({seen.filename})" if seen.filename else ""
            return f"[{errno.errorcode.get(seen.errno, seen.errno)}] {seen.strerror or os.strerror(seen.errno)}{where}"
        code = re.search(r"os_error_code='?(\d+)", str(seen))
        if code:
            number = int(code.group(1))
            return f"[{errno.errorcode.get(number, number)}] {os.strerror(number)} ({one_line(seen)})"
        seen = seen.__cause__ or seen.__context__
    return None


def raised_in_orbax(error: BaseException) -> bool:
    frame = error.__traceback__
    while frame is not None:
        if f"{os.sep}orbax{os.sep}" in frame.tb_frame.f_code.co_filename:
            return True
        frame = frame.tb_next
    return False


class _OneLineOrbaxErrors(logging.Filter):
    """Orbax (and asyncio, for Orbax's abandoned writes) log every failed background write with its traceback:
    hundreds of lines for one full disk. `CheckpointSaveError` reports the failure, so a record of an error raised
    in Orbax keeps its message and the error's first line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and (f"{os.sep}orbax{os.sep}" in record.pathname or raised_in_orbax(error)):
            message, first_line = record.getMessage(), (str(error).strip().splitlines() or [""])[0]
            record.msg = message if first_line and first_line in message else f"{message}: {one_line(error)}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


_ORBAX_ERRORS_FILTER = _OneLineOrbaxErrors()


def _drop_secondary_reports(previous: Callable[[Any], None]) -> Callable[[Any], None]:
    """An unraisable-exception hook that drops the after-effects of a failed write or read, which that failure's
    own report covers: TensorStore's reports of a closed asyncio loop (one per array write still pending when a
    save failed) and the errors of Orbax's reads abandoned when another read of the step failed."""

    def hook(unraisable: Any) -> None:
        error = unraisable.exc_value
        closed_loop = isinstance(error, RuntimeError) and str(error) == "Event loop is closed"
        if not (closed_loop or (error is not None and raised_in_orbax(error))):
            previous(unraisable)

    hook.drops_secondary_reports = True
    return hook


def summarize_orbax_errors() -> None:
    """Keeps a failed save's report to `CheckpointSaveError` and one line per error Orbax logs."""
    for logger in (logging.getLogger("absl"), logging.getLogger("asyncio")):
        if _ORBAX_ERRORS_FILTER not in logger.filters:
            logger.addFilter(_ORBAX_ERRORS_FILTER)
    if not getattr(sys.unraisablehook, "drops_secondary_reports", False):
        sys.unraisablehook = _drop_secondary_reports(sys.unraisablehook)
