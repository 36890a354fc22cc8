"""JAX's persistent compilation cache as the entry points configure it (`it_jax.compilation_cache`)."""

import os
import pathlib
import subprocess
import sys

from it_jax import compilation_cache

REPO = pathlib.Path(__file__).resolve().parents[1]

CHILD = """
import sys
import jax, jax.numpy as jnp
from it_jax import compilation_cache
used = compilation_cache.configure(sys.argv[1])
print(used, jax.config.jax_enable_compilation_cache)
if used is not None:
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # cache even this tiny program
    jax.jit(lambda x: jnp.sin(x) * 2)(jnp.arange(3.0)).block_until_ready()
"""


def _child(directory: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, directory], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_default_dir_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compilation_cache.default_dir() == tmp_path / "it_jax" / "jax_cache"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert compilation_cache.default_dir() == pathlib.Path.home() / ".cache" / "it_jax" / "jax_cache"


def test_compiled_programs_land_in_the_given_directory_and_none_turns_it_off(tmp_path):
    cache = tmp_path / "cache"
    assert _child(str(cache)) == f"{cache} True"
    assert any(cache.iterdir())
    assert _child("none") == "None False"
