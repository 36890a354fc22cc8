"""Test-wide setup: eight simulated CPU devices (so sharding tests need no accelerator) and shared paths."""

import os
import pathlib

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402

SHARED_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> pathlib.Path:
    """The offline data directory beside the checkout; tests that need it skip cleanly when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="module")
def synthetic_tasks():
    """Registers the synthetic collection as the demo does (byte vocabulary, cap 3,000); returns its tasks."""
    import mixtures.synthetic as synthetic
    from it_jax.data.context import TaskContext

    return synthetic.register(TaskContext())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Runs the end-to-end script tests (subprocesses, the longest) first, so that with `-n 2` the workers
    are not left waiting on one long test at the end."""
    scripts = pathlib.Path(__file__).parent / "scripts"
    items.sort(key=lambda item: scripts not in pathlib.Path(str(item.path)).parents)
