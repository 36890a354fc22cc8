import jax
import numpy as np
from jax.sharding import PartitionSpec

from it_jax import sharding
from it_jax.train import trainer as trainer_lib


def _trainer(spec, optimizer, schedule, **mesh_shape):
    devices = jax.devices()[: int(np.prod(list(mesh_shape.values())))]
    mesh = sharding.create_mesh(devices=devices, **mesh_shape)
    return trainer_lib.Trainer(spec=spec, optimizer=optimizer, schedule=schedule, mesh=mesh)


def _losses(trainer, make_batch, steps=3):
    state = trainer.init(seed=0)
    losses = []
    for i in range(steps):
        state, stats = trainer.step(state, trainer.to_global(make_batch(i)))
        losses.append(float(stats["nll_sum"] / stats["tokens"]))
    return state, losses


def test_one_device_and_eight_device_mesh_agree(spec, optimizer, schedule, make_batch):
    _, single = _losses(_trainer(spec, optimizer, schedule, data=1), make_batch)
    state, sharded = _losses(_trainer(spec, optimizer, schedule, data=2, fsdp=2, tensor=2), make_batch)
    np.testing.assert_allclose(single, sharded, rtol=0, atol=1e-5)
    assert int(state.step) == 3


def test_parameters_are_partitioned_as_the_rules_say(spec, optimizer, schedule):
    trainer = _trainer(spec, optimizer, schedule, data=2, fsdp=2, tensor=2)
    state = trainer.init(seed=0)
    wi = state.params["encoder"]["layers"][0]["mlp"]["wi_0"]["kernel"]
    assert wi.sharding.spec == PartitionSpec("fsdp", "tensor")
    d_model, d_ff = wi.shape
    assert {s.data.shape for s in wi.addressable_shards} == {(d_model // 2, d_ff // 2)}
    embedding = state.params["token_embedder"]["embedding"]
    assert embedding.sharding.spec == PartitionSpec("tensor", "fsdp")
    query = state.params["encoder"]["layers"][0]["attention"]["query"]["kernel"]
    assert query.sharding.spec == PartitionSpec("fsdp", "tensor", None)
    # Adam's moments follow their parameter's sharding (FSDP shards optimizer state too).
    mu = state.opt_state[1][0].mu["encoder"]["layers"][0]["mlp"]["wi_0"]["kernel"]
    assert mu.sharding.spec == PartitionSpec("fsdp", "tensor")


def test_every_parameter_has_a_rule(spec):
    for path, variable in jax.tree_util.tree_flatten_with_path(
        spec.abstract_state, is_leaf=lambda x: hasattr(x, "get_metadata")
    )[0]:
        axes = sharding.variable_axes(variable)
        assert axes is not None, path
        sharding.logical_to_spec(axes)


def test_training_reduces_the_loss_on_a_repeated_batch(spec, optimizer, schedule, make_batch):
    trainer = _trainer(spec, optimizer, schedule, data=1)
    state = trainer.init(seed=0)
    batch = trainer.to_global(make_batch(0))
    first = last = None
    for _ in range(15):
        state, stats = trainer.step(state, batch)
        loss = float(stats["nll_sum"] / stats["tokens"])
        first = loss if first is None else first
        last = loss
    assert last < 0.7 * first


def test_train_resumes_from_the_latest_checkpoint(tmp_path, spec, optimizer, schedule, make_batch):
    steps = 4
    seen = []

    def batches(skip):
        seen.append(skip)
        i = skip
        while True:
            yield make_batch(i)
            i += 1

    trainer = _trainer(spec, optimizer, schedule, data=1)
    trainer_lib.train(trainer=trainer, batches=batches, model_dir=tmp_path, num_steps=2, save_every=1, log_every=1)
    state = trainer_lib.train(
        trainer=trainer, batches=batches, model_dir=tmp_path, num_steps=steps, save_every=1, log_every=1
    )
    assert seen == [0, 2]
    assert int(state.step) == steps
    uninterrupted = trainer_lib.train(
        trainer=trainer, batches=batches, model_dir=tmp_path / "straight", num_steps=steps, save_every=10, log_every=1
    )
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(uninterrupted.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == steps
