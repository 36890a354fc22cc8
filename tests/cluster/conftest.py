"""The `slow` marker: tests that start training processes (deselect with `-m "not slow"`)."""


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "slow: starts training processes (tens of seconds)")
