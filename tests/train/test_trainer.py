import dataclasses
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny
from flax import nnx
from jax.sharding import PartitionSpec

from it_jax import sharding
from it_jax.data import layout, packed_input, vocab
from it_jax.models.spec import ModelSpec
from it_jax.train import losses, objectives
from it_jax.train import trainer as trainer_lib
from it_jax.train.checkpoints import Checkpointer

pytestmark = pytest.mark.usefixtures("synthetic_tasks")


def _trainer(spec, optimizer, schedule, trainer_kwargs=None, **mesh_shape):
    devices = jax.devices()[: int(np.prod(list(mesh_shape.values())))]
    mesh = sharding.create_mesh(devices=devices, **mesh_shape)
    return trainer_lib.Trainer(spec=spec, optimizer=optimizer, schedule=schedule, mesh=mesh, **(trainer_kwargs or {}))


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


@pytest.mark.parametrize("normalization", ["real_tokens", "per_sequence"])
def test_gradient_accumulation_equals_the_full_batch(stacked_spec, optimizer, schedule, make_lm_batch, normalization):
    batch = make_lm_batch(0)
    # Rows with different numbers of real tokens, so per-microbatch normalization would differ.
    for row, keep in enumerate([8, 2, 5, 1, 8, 3, 6, 4]):
        for key in batch:
            batch[key][row, keep:] = 0
    config = losses.LossConfig(normalization=normalization, z_loss=1e-3, label_smoothing=0.1)
    results = []
    for microbatches in (1, 4):
        kwargs = {"microbatches": microbatches, "objective": objectives.CrossEntropy(config)}
        trainer = _trainer(stacked_spec, optimizer, schedule, trainer_kwargs=kwargs, data=2)
        state, stats = trainer.step(trainer.init(seed=0), trainer.to_global(batch))
        results.append((state, stats))
    (full, full_stats), (accumulated, accumulated_stats) = results
    for name in ("nll_sum", "tokens", "correct", "grad_norm"):
        np.testing.assert_allclose(full_stats[name], accumulated_stats[name], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(accumulated.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


def test_microbatches_must_divide_the_batch(stacked_spec, optimizer, schedule, make_lm_batch):
    trainer = _trainer(stacked_spec, optimizer, schedule, trainer_kwargs={"microbatches": 3}, data=1)
    with pytest.raises(ValueError, match="not divisible into 3 microbatches"):
        trainer.step(trainer.init(seed=0), trainer.to_global(make_lm_batch(0)))


def _counting_batches(make_batch, seen):
    def batches(position):
        seen.append(("start", position))
        i = position
        while True:
            seen.append(i)
            yield make_batch(i)
            i += 1

    return batches


def test_train_resumes_from_the_latest_checkpoint(tmp_path, spec, optimizer, schedule, make_batch):
    steps = 4
    seen = []
    batches = _counting_batches(make_batch, seen)
    trainer = _trainer(spec, optimizer, schedule, data=1)
    common = {"trainer": trainer, "batches": batches, "log_every": 1, "tensorboard": False}
    trainer_lib.train(model_dir=tmp_path, num_steps=2, save_every=1, **common)
    state = trainer_lib.train(model_dir=tmp_path, num_steps=steps, save_every=1, **common)
    # Each run reads on from the saved input position (the generator is primed one batch ahead).
    assert [x for x in seen if isinstance(x, tuple)] == [("start", 0), ("start", 2)]
    assert int(state.step) == steps
    uninterrupted = trainer_lib.train(model_dir=tmp_path / "straight", num_steps=steps, save_every=10, **common)
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(uninterrupted.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == steps


def test_resumption_uses_the_saved_input_position(tmp_path, stacked_spec, optimizer, schedule, make_lm_batch):
    trainer = _trainer(stacked_spec, optimizer, schedule, data=1)
    seen = []
    common = {"trainer": trainer, "batches": _counting_batches(make_lm_batch, seen), "tensorboard": False}
    state = trainer_lib.train(model_dir=tmp_path, num_steps=2, save_every=1, **common)
    checkpointer = Checkpointer(tmp_path / "checkpoints", save_every=1)
    assert checkpointer.data_position(2) == 2
    # A run whose batching changed (say) consumed 7 batches by step 3: resumption must follow that.
    state, _ = trainer.step(state, trainer.to_global(make_lm_batch(2)))
    checkpointer.save(3, state, {}, data_position=7)
    checkpointer.close()
    seen.clear()
    trainer_lib.train(model_dir=tmp_path, num_steps=4, save_every=1, **common)
    assert seen[:2] == [("start", 7), 7]
    assert Checkpointer(tmp_path / "checkpoints").data_position(4) == 8


def test_a_run_resumed_at_input_position_1000_reads_the_uninterrupted_runs_batch(tmp_path):
    stream = functools.partial(
        packed_input.packed_batches,
        "synthetic_all",
        task_feature_lengths={"inputs": 32, "targets": 8},
        layout=layout.ENCODER_DECODER,
        vocabulary=vocab.make_vocabulary(),
        batch_size=4,
        seed=3,
    )
    read = []

    def batches(position):
        for batch in stream(skip_batches=position):
            read.append(batch)
            yield batch

    trainer = tiny.t5_trainer(config=dataclasses.replace(tiny.TINY, vocab_size=384))
    state, _ = trainer.step(trainer.init(seed=0), trainer.to_global(next(stream())))
    checkpointer = Checkpointer(tmp_path / "checkpoints", save_every=1)
    checkpointer.save(1, state, {}, data_position=1000)
    checkpointer.close()
    trainer_lib.train(trainer=trainer, batches=batches, model_dir=tmp_path, num_steps=2, tensorboard=False)
    uninterrupted = list(itertools.islice(stream(), 1001))
    assert read[0].keys() == uninterrupted[1000].keys()
    for name, value in read[0].items():
        np.testing.assert_array_equal(value, uninterrupted[1000][name])
    assert not np.array_equal(read[0]["encoder_input_tokens"], uninterrupted[999]["encoder_input_tokens"])
    assert Checkpointer(tmp_path / "checkpoints").data_position(2) == 1001


class TinyLoRALM(nnx.Module):
    """A model holding both plain parameters and LoRA parameters (`nnx.LoRAParam`) beside them."""

    def __init__(self, *, vocab: int = 128, d: int = 16, rank: int = 4, rngs: nnx.Rngs):
        def param(kind, shape, axes):
            init = nnx.with_partitioning(nnx.initializers.normal(0.2), axes, eager_sharding=False)
            return kind(init(rngs.params(), shape, jnp.float32))

        self.embedding = param(nnx.Param, (vocab, d), ("vocab", "embed"))
        self.kernel = param(nnx.Param, (d, d), ("embed", "mlp"))
        self.lora_a = param(nnx.LoRAParam, (d, rank), ("embed", None))
        self.lora_b = param(nnx.LoRAParam, (rank, d), (None, "mlp"))

    def logits_from_features(self, features, *, rngs=None):
        x = self.embedding[...][features["decoder_input_tokens"]]
        h = jnp.tanh(x @ (self.kernel[...] + self.lora_a[...] @ self.lora_b[...]))
        return h @ self.embedding[...].T


def _opt_state_paths(state) -> set[str]:
    return {jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(state.opt_state)[0]}


@pytest.mark.parametrize("trainable, frozen", [(nnx.LoRAParam, ("embedding", "kernel")), ("lora_b", ("embedding",
                                                                                                    "kernel", "lora_a"))])
def test_frozen_parameters_stay_bitwise_and_carry_no_optimizer_state(
    optimizer, schedule, make_lm_batch, trainable, frozen
):
    spec = ModelSpec.create(lambda rngs: TinyLoRALM(rngs=rngs))
    trainer = _trainer(spec, optimizer, schedule, trainer_kwargs={"trainable": trainable}, data=2)
    state = trainer.init(seed=0)
    before = jax.tree.map(np.asarray, state.params)
    for i in range(3):
        state, stats = trainer.step(state, trainer.to_global(make_lm_batch(i)))
    after = jax.tree.map(np.asarray, state.params)
    for name in frozen:
        tiny.assert_bitwise_equal({name: after[name]}, {name: before[name]})
        assert not any(f"'{name}'" in path for path in _opt_state_paths(state)), name
    for name in set(after) - set(frozen):
        assert not np.array_equal(after[name], before[name]), name
        assert any(f"'{name}'" in path for path in _opt_state_paths(state)), name
    # Only the trainable parameters' gradients count towards the norm that clipping sees.
    assert float(stats["grad_norm"]) > 0


def test_a_filter_that_selects_nothing_is_refused(stacked_spec, optimizer, schedule):
    with pytest.raises(ValueError, match="selects no parameter"):
        _trainer(stacked_spec, optimizer, schedule, trainer_kwargs={"trainable": "no_such_param"}, data=1)


def test_a_partly_frozen_run_resumes_bitwise(tmp_path, stacked_spec, optimizer, schedule, make_lm_batch):
    trainer = _trainer(stacked_spec, optimizer, schedule, trainer_kwargs={"trainable": "w_in|head"}, data=1)
    common = {"trainer": trainer, "batches": _counting_batches(make_lm_batch, []), "tensorboard": False}
    trainer_lib.train(model_dir=tmp_path, num_steps=2, save_every=1, **common)
    resumed = trainer_lib.train(model_dir=tmp_path, num_steps=4, save_every=1, **common)
    straight = trainer_lib.train(model_dir=tmp_path / "straight", num_steps=4, save_every=10, **common)
    tiny.assert_bitwise_equal(jax.tree.map(np.asarray, resumed.params), jax.tree.map(np.asarray, straight.params))
    for a, b in zip(jax.tree.leaves(resumed.opt_state), jax.tree.leaves(straight.opt_state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not any("w_out" in path or "embedding" in path for path in _opt_state_paths(resumed))


@pytest.mark.parametrize("rate", [0.0, 0.5])
def test_lora_dropout_acts_in_training_steps_only(rate):
    import chat_runs

    from it_jax.convert import tree
    from it_jax.evaluation import loading
    from it_jax.models import lora

    spec = loading.model_spec(chat_runs.CONFIG, lora.LoraConfig(rank=2, dropout=rate, targets=("q", "v")))
    flat = {p: (np.full(v.shape, 0.5, np.float32) if p[-1] == "lora_b" else v)
            for p, v in tree.flatten(spec.init_params(0)).items()}
    tokens = jnp.asarray(np.arange(1, 17, dtype=np.int32).reshape(2, 8))
    batch = {"decoder_input_tokens": tokens, "decoder_target_tokens": tokens,
             "decoder_loss_weights": jnp.ones((2, 8), jnp.float32)}
    objective = objectives.CrossEntropy()
    loss = functools.partial(trainer_lib.loss_fn, tree.unflatten(flat), {}, batch, spec=spec, objective=objective,
                             normalizer=objective.denominator(batch))
    evaluated, trained = float(loss(None)[0]), float(loss(jax.random.key(1))[0])
    assert (evaluated != trained) == (rate > 0), (evaluated, trained)
    assert float(loss(None)[0]) == evaluated  # no key: deterministic


def test_a_lora_models_live_reference_is_its_base_without_a_second_copy():
    import chat_runs
    import seqio

    from it_jax.data import preference
    from it_jax.evaluation import loading
    from it_jax.models import lora
    from it_jax.train import optimizers

    spec = loading.model_spec(chat_runs.CONFIG, lora.LoraConfig(rank=2, targets=("q", "v")))
    pairs = [preference.PreferencePair(({"role": "user", "content": f"Hi {i}?"},), "Hello there!", f"No {i}.")
             for i in range(8)]
    data = preference.encode_pairs(pairs, seqio.ByteVocabulary(), chat_format="chatml", max_length=40,
                                   layout=layout.causal_lm(0))
    schedule = optimizers.make_schedule(base_learning_rate=1e-2, warmup_steps=0, decay="constant")
    margins = {}
    for mode in ("live", "cached"):
        trainer = trainer_lib.Trainer(spec=spec, optimizer=optimizers.make_optimizer(schedule, name="adamw"),
                                      schedule=schedule, mesh=sharding.create_mesh(devices=jax.devices()[:1]),
                                      trainable=nnx.LoRAParam, objective=objectives.DPO(reference=mode))
        state = trainer.init(seed=0)
        assert state.reference is None and trainer.abstract_state().reference is None
        rows = data
        if mode == "cached":
            base = lora.without_adapters(state.params)
            logps = jax.jit(lambda b: tuple(objectives.sequence_logps(spec.bind(base), objectives.side(b, s), rngs=None)
                                            for s in preference.SIDES))
            rows = preference.add_reference_logps(data, logps, batch_size=8)
        batch = trainer.to_global(dict(rows.features))
        margins[mode] = []
        for _ in range(3):
            state, stats = trainer.step(state, batch)
            margins[mode].append(float(stats["reward_margin_sum"]))
        margins[mode].append(float(trainer.eval(state.params, batch)["reward_margin_sum"]))
    np.testing.assert_allclose(margins["live"], margins["cached"], rtol=1e-4, atol=1e-6)
    assert margins["live"][-1] > 0.1
