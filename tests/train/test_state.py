import dataclasses

import jax
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec

from it_jax import sharding
from it_jax.models import t5
from it_jax.models.spec import ModelSpec
from it_jax.train import optimizers
from it_jax.train import trainer as trainer_lib
from it_jax.train.state import bytes_per_device, state_shardings


def optimizer_schedule():
    return optimizers.make_schedule(base_learning_rate=1e-2, warmup_steps=0, decay="constant")


def _adafactor(**options):
    return optimizers.make_optimizer(optimizer_schedule(), name="adafactor", adafactor_options=options)


def _factored(opt_state, *path: str) -> tuple[object, object, object]:
    """(v_row, v_col, v) of the parameter at `path`, from whichever Adafactor group (stack depth) holds it."""
    for state in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, optax.FactoredState)):
        if isinstance(state, optax.FactoredState):
            stats = (state.v_row, state.v_col, state.v)
            for key in path:
                stats = tuple(stat[key] for stat in stats)
            if not isinstance(stats[0], optax.MaskedNode):
                return stats
    raise KeyError(path)


def test_factored_adafactor_statistics_keep_their_parameters_mesh_axes(stacked_spec):
    mesh = sharding.create_mesh(fsdp=4, tensor=2)
    opt_state = state_shardings(stacked_spec, _adafactor(), mesh).opt_state
    stats = {name: _factored(opt_state, name) for name in ("w_in", "head")}
    # w_in [layers, d=128 (fsdp), f=256 (tensor)]: rows average over f, columns over d; the reduced dim's
    # mesh axis moves onto the remaining matrix dim, so the statistic is split over all 8 devices.
    assert stats["w_in"][0].spec == PartitionSpec(None, ("fsdp", "tensor"))
    assert stats["w_in"][1].spec == PartitionSpec(None, ("tensor", "fsdp"))
    # head [d=128 (fsdp), vocab=128 (tensor)]: equal dims, resolved the way optax picks them.
    assert stats["head"][0].spec == PartitionSpec(("fsdp", "tensor"))
    assert stats["head"][1].spec == PartitionSpec(("tensor", "fsdp"))
    # The unfactored placeholders are tiny and replicated.
    assert stats["w_in"][2].spec == PartitionSpec()


def test_adafactor_steps_a_scanned_t5_with_sharded_factored_statistics(tiny_config, make_batch):
    config = dataclasses.replace(tiny_config, num_encoder_layers=2, scan_layers=True)
    spec = ModelSpec.create(lambda rngs: t5.T5(config, rngs=rngs))
    # Factor every matrix of this tiny model (the default only factors dims of at least 128).
    optimizer = _adafactor(min_dim_size_to_factor=16)
    mesh = sharding.create_mesh(fsdp=4, tensor=2)
    trainer = trainer_lib.Trainer(spec=spec, optimizer=optimizer, schedule=optimizer_schedule(), mesh=mesh)
    initial = trainer.init(seed=0)
    before = np.asarray(initial.params["encoder"]["layers"]["mlp"]["wi_0"]["kernel"])
    state, stats = trainer.step(initial, trainer.to_global(make_batch(0)))
    assert np.isfinite(float(stats["nll_sum"])) and int(state.step) == 1
    # The stacked [layers, d_model=32 (fsdp), d_ff=64 (tensor)] kernel: rows keep d_model, columns d_ff,
    # each over both mesh axes.
    kernel = state.params["encoder"]["layers"]["mlp"]["wi_0"]["kernel"]
    assert kernel.shape == (2, 32, 64) and kernel.sharding.spec == PartitionSpec(None, "fsdp", "tensor")
    assert not np.allclose(np.asarray(kernel), before)
    v_row, v_col, _ = _factored(state.opt_state, "encoder", "layers", "mlp", "wi_0", "kernel")
    assert v_row.shape == (2, 32) and v_row.sharding.spec == PartitionSpec(None, ("fsdp", "tensor"))
    assert v_col.shape == (2, 64) and v_col.sharding.spec == PartitionSpec(None, ("tensor", "fsdp"))
    assert {s.data.shape for s in v_row.addressable_shards} == {(2, 4)}
    assert np.all(np.asarray(v_row) > 0)


@pytest.mark.parametrize("name", ["adamw", "adafactor"])
def test_fsdp_over_8_devices_holds_an_eighth_of_the_train_state_on_each(name):
    config = t5.T5Config(
        vocab_size=512, d_model=128, d_ff=256, d_kv=32, num_heads=4, num_encoder_layers=2, num_decoder_layers=2,
        scan_layers=True,
    )
    spec = ModelSpec.create(lambda rngs: t5.T5(config, rngs=rngs))
    optimizer = optimizers.make_optimizer(
        optimizer_schedule(), name=name, adafactor_options={"min_dim_size_to_factor": 16}
    )
    mesh = sharding.create_mesh(fsdp=8)
    state = trainer_lib.Trainer(spec=spec, optimizer=optimizer, schedule=optimizer_schedule(), mesh=mesh).init(0)
    total = sum(leaf.nbytes for leaf in jax.tree.leaves(state))
    held = bytes_per_device(state)
    assert sorted(held, key=lambda d: d.id) == sorted(mesh.devices.flat, key=lambda d: d.id)
    # Replicated, and small: relative position biases, step counters, and statistics over `vocab` (a tensor axis).
    assert max(held.values()) <= 1.05 * total / 8
    assert sum(held.values()) >= total


def test_trainable_mask_partition_and_merge(tiny_config):
    from flax import nnx

    from it_jax.train import state as state_lib

    spec = ModelSpec.create(lambda rngs: t5.T5(tiny_config, rngs=rngs))
    params = spec.init_params(0)
    mask = state_lib.trainable_mask(spec.abstract_state, r"decoder/.*attention")
    trainable, frozen = state_lib.partition(params, mask)
    names = lambda tree: {jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]}  # noqa: E731
    assert names(trainable) and all("['decoder']" in n and "attention" in n for n in names(trainable))
    assert names(trainable) | names(frozen) == names(params) and not names(trainable) & names(frozen)
    merged = state_lib.merge(trainable, frozen)
    assert jax.tree.structure(merged) == jax.tree.structure(params)
    for a, b in zip(jax.tree.leaves(merged), jax.tree.leaves(params)):
        assert a is b
    # A Variable type, a callable on (path, variable), and None (everything).
    mlp = sum("'mlp'" in name for name in names(params))
    assert mlp and sum(jax.tree.leaves(state_lib.trainable_mask(spec.abstract_state, lambda p, v: "mlp" in p))) == mlp
    with pytest.raises(ValueError, match="selects no parameter"):
        state_lib.trainable_mask(spec.abstract_state, lambda path, v: False)
    assert all(jax.tree.leaves(state_lib.trainable_mask(spec.abstract_state, nnx.Param)))
    assert state_lib.trainable_mask(spec.abstract_state, None) is None
    assert state_lib.partition(params, None) == (params, {})
