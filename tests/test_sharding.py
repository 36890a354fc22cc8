import dataclasses

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec

from it_jax import sharding


def test_logical_to_spec_uses_the_rules_table():
    assert sharding.logical_to_spec(("embed", "mlp")) == PartitionSpec("fsdp", "tensor")
    assert sharding.logical_to_spec(("vocab", "embed")) == PartitionSpec("tensor", "fsdp")
    assert sharding.logical_to_spec(("activation_batch", "activation_length", "activation_embed")) == PartitionSpec(
        ("replica", "data", "fsdp"), None, None
    )


def test_the_rules_cover_the_parameter_and_activation_axes():
    names = {name for name, _ in sharding.DEFAULT_RULES}
    assert {"batch", "embed", "mlp", "heads", "kv", "vocab", "length", "layers"} <= names
    assert {f"activation_{n}" for n in ("batch", "length", "embed", "mlp", "heads", "kv", "vocab")} <= names
    # Scanned stacks keep whole layers per device; sequence length is not split by default.
    assert sharding.logical_to_spec(("layers", "embed", "mlp")) == PartitionSpec(None, "fsdp", "tensor")
    assert sharding.logical_to_spec(("batch", "length")) == PartitionSpec(("replica", "data", "fsdp"), None)


def test_overrides_take_precedence_over_the_default_rules():
    rules = sharding.with_overrides([("embed", None), ["mlp", ["fsdp", "tensor"]]])
    assert sharding.logical_to_spec(("embed", "mlp"), rules) == PartitionSpec(None, ("fsdp", "tensor"))
    assert sharding.logical_to_spec(("vocab",), rules) == PartitionSpec("tensor")


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
    assert dict(mesh.shape) == {"replica": 1, "data": 2, "fsdp": 2, "tensor": 2}
    assert len(jax.devices()) == 8


def test_replica_axis_without_slices_is_a_plain_reshape():
    devices = jax.devices()
    mesh = sharding.create_mesh(replica=2, fsdp=-1, devices=devices)
    assert dict(mesh.shape) == {"replica": 2, "data": 1, "fsdp": 4, "tensor": 1}
    assert list(mesh.devices.flat) == devices
    # The batch splits over every device; parameters only over fsdp (replicated across replicas).
    x = jax.device_put(np.zeros((16, 4), np.float32), sharding.data_sharding(mesh))
    assert {s.data.shape for s in x.addressable_shards} == {(2, 4)}


def test_at_most_one_axis_may_be_inferred():
    with pytest.raises(ValueError, match="at most one"):
        sharding.create_mesh(data=-1, fsdp=-1)


def test_create_mesh_rejects_a_wrong_device_count():
    with pytest.raises(ValueError, match="needs 16 devices but 8"):
        sharding.create_mesh(data=4, fsdp=4)


def test_constrain_is_a_noop_without_mesh():
    x = np.ones((2, 3), np.float32)
    assert sharding.constrain(x, ("activation_batch", "activation_embed")) is x


@dataclasses.dataclass(frozen=True)
class _FakeDevice:
    id: int
    slice_index: int
    process_index: int
    platform: str = "cpu"
    device_kind: str = "cpu"


@pytest.mark.parametrize("granule", ["slice_index", "process_index"])
def test_replica_axis_runs_across_slices_or_hosts(granule):
    # Devices listed with slices (or hosts) interleaved; each replica must hold exactly one of them.
    devices = [
        _FakeDevice(i, slice_index=i % 2 if granule == "slice_index" else 0, process_index=i % 2) for i in range(8)
    ]
    mesh = sharding.create_mesh(replica=2, fsdp=2, tensor=2, devices=devices)
    assert dict(mesh.shape) == {"replica": 2, "data": 1, "fsdp": 2, "tensor": 2}
    for replica in range(2):
        assert {getattr(d, granule) for d in mesh.devices[replica].flat} == {replica}
