"""Fixtures for the trainer tests, built from `tiny` (a one-layer T5, a toy LM with stacked kernels)."""

import pytest
import tiny

from it_jax.models import t5
from it_jax.models.spec import ModelSpec
from it_jax.train import optimizers


@pytest.fixture
def make_batch():
    return tiny.make_batch


@pytest.fixture
def spec() -> ModelSpec:
    return ModelSpec.create(lambda rngs: t5.T5(tiny.TINY, rngs=rngs))


@pytest.fixture
def schedule():
    return optimizers.make_schedule(base_learning_rate=1e-2, warmup_steps=2, decay="constant")


@pytest.fixture
def optimizer(schedule):
    return optimizers.make_optimizer(schedule, name="adamw")


@pytest.fixture
def stacked_spec() -> ModelSpec:
    return ModelSpec.create(lambda rngs: tiny.StackedMlpLM(rngs=rngs))


@pytest.fixture
def make_lm_batch():
    return tiny.lm_batch


@pytest.fixture
def stacked_lm() -> type[tiny.StackedMlpLM]:
    return tiny.StackedMlpLM


@pytest.fixture
def tiny_config() -> t5.T5Config:
    return tiny.TINY
