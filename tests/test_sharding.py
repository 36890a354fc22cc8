import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec

from it_jax import sharding


def test_logical_to_spec_uses_the_rules_table():
    assert sharding.logical_to_spec(("embed", "mlp")) == PartitionSpec("fsdp", "tensor")
    assert sharding.logical_to_spec(("vocab", "embed")) == PartitionSpec("tensor", "fsdp")
    assert sharding.logical_to_spec(("activation_batch", "activation_length", "activation_embed")) == PartitionSpec(
        ("data", "fsdp"), None, None
    )


def test_a_mesh_axis_is_used_once_per_spec():
    rules = (("a", "tensor"), ("b", "tensor"))
    assert sharding.logical_to_spec(("a", "b"), rules) == PartitionSpec("tensor", None)


def test_unknown_logical_axis_is_an_error_naming_it():
    with pytest.raises(KeyError, match="'nonsense'"):
        sharding.logical_to_spec(("nonsense",))


def test_axis_rules_context_overrides_and_restores():
    with sharding.axis_rules((("embed", "tensor"),)):
        assert sharding.logical_to_spec(("embed",)) == PartitionSpec("tensor")
    assert sharding.logical_to_spec(("embed",)) == PartitionSpec("fsdp")


def test_create_mesh_fills_the_minus_one_axis():
    mesh = sharding.create_mesh(data=-1, fsdp=2, tensor=2)
    assert dict(mesh.shape) == {"data": 2, "fsdp": 2, "tensor": 2}
    assert len(jax.devices()) == 8


def test_create_mesh_rejects_a_wrong_device_count():
    with pytest.raises(ValueError, match="needs 16 devices but 8"):
        sharding.create_mesh(data=4, fsdp=4)


def test_constrain_is_a_noop_without_mesh():
    x = np.ones((2, 3), np.float32)
    assert sharding.constrain(x, ("activation_batch", "activation_embed")) is x
