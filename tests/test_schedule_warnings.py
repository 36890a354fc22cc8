"""Schedule settings that are allowed but probably mistakes are warned about once, not raised
(`settings_checks.schedule_warnings`, `gin_schedule_warnings`, `warn`)."""

import pytest

import gin
from it_jax import launch, settings_checks

COSINE = {"warmup_steps": 50, "total_steps": 600, "decay": "cosine"}


@pytest.fixture(autouse=True)
def clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


def test_a_matching_schedule_has_no_warnings():
    assert settings_checks.schedule_warnings(600, COSINE) == []
    assert settings_checks.schedule_warnings(1000, {**COSINE, "total_steps": 5, "decay": "constant"}) == []


def test_warmup_as_long_as_the_run():
    (warning,) = settings_checks.schedule_warnings(50, {**COSINE, "total_steps": 50})
    assert warning.startswith("make_schedule.warmup_steps = 50 ≥ train_run.num_steps = 50")


@pytest.mark.parametrize("decay", ["cosine", "linear"])
def test_decay_ending_early_or_late(decay):
    (early,) = settings_checks.schedule_warnings(1000, {**COSINE, "decay": decay})
    assert "total_steps = 600 but train_run.num_steps = 1000" in early and "last 400 steps" in early
    (late,) = settings_checks.schedule_warnings(300, {**COSINE, "decay": decay})
    assert "total_steps = 600 but train_run.num_steps = 300" in late and "before its end" in late
    # rsqrt and constant decays do not read total_steps
    assert settings_checks.schedule_warnings(300, {**COSINE, "decay": "rsqrt"}) == []


def test_gin_schedule_warnings_read_the_bindings_and_the_defaults():
    bindings = ["TRAIN_STEPS = 600", "make_schedule.warmup_steps = 50"]
    launch.parse_config(["runs/demo.gin"], [*bindings, "train_run.num_steps = 2"])
    warnings = settings_checks.gin_schedule_warnings(gin.query_parameter("train_run.num_steps"))
    assert len(warnings) == 2 and "warmup_steps = 50" in warnings[0] and "total_steps = 600" in warnings[1]
    gin.clear_config()
    launch.parse_config(["runs/demo.gin"], bindings)  # TRAIN_STEPS: both the run's and the decay's length
    assert settings_checks.gin_schedule_warnings(600) == []
    gin.clear_config()
    launch.parse_config(["runs/demo.gin"], [*bindings, "make_schedule.total_steps = 1000"])
    assert len(settings_checks.gin_schedule_warnings(600)) == 1


def test_each_warning_is_printed_once(capsys):
    settings_checks.warn(["unusual setting A (test)", "unusual setting A (test)"])
    settings_checks.warn(["unusual setting A (test)", "unusual setting B (test)"])
    err = capsys.readouterr().err
    assert err.count("warning: unusual setting A (test)") == 1 and err.count("warning: unusual setting B (test)") == 1
