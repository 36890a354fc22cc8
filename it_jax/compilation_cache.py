"""JAX's persistent compilation cache: compiled programs kept on disk, so a rerun of the same shapes skips
most of its compilation (the train step, evaluation, decoding).

The entry points turn it on by default in a per-user directory, `$XDG_CACHE_HOME/it_jax/jax_cache` (else
`~/.cache/it_jax/jax_cache`); `--compilation_cache_dir DIR` moves it and `--compilation_cache_dir none` turns
it off. Library code and tests leave JAX's own setting (off) alone unless they call `configure`.
"""

from __future__ import annotations

import os
import pathlib

import jax

OFF = "none"
# Programs that compile faster than this are not worth a disk write and read.
MIN_COMPILE_TIME_S = 0.5


def default_dir() -> pathlib.Path:
    """`$XDG_CACHE_HOME/it_jax/jax_cache`, else `~/.cache/it_jax/jax_cache`."""
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "it_jax" / "jax_cache"


def configure(directory: str | os.PathLike | None = None) -> pathlib.Path | None:
    """Turns the persistent compilation cache on in `directory` (None: `default_dir()`), or off for "none";
    returns the directory in use (None when off). Call it before the first compilation."""
    if directory is not None and str(directory).strip().lower() == OFF:
        jax.config.update("jax_enable_compilation_cache", False)
        return None
    path = pathlib.Path(directory).expanduser().resolve() if directory is not None else default_dir()
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_TIME_S)
    return path
