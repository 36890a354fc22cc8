"""LoRA adapters: exact base logits at init, merging, the disabled view, save/load, target matching, sharding."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny
from flax import nnx

from it_jax import sharding
from it_jax.convert import tree
from it_jax.models import lora, t5
from it_jax.models.decoder import Decoder, DecoderConfig
from it_jax.models.spec import ModelSpec

DECODER = DecoderConfig(vocab_size=64, d_model=32, d_ff=64, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=8)
CONFIG = lora.LoraConfig(rank=4, alpha=8.0)
MODELS = {
    "t5": (lambda r: t5.T5(tiny.TINY, rngs=r), tiny.make_batch(0)),
    "decoder": (lambda r: Decoder(DECODER, rngs=r), tiny.lm_batch(0, length=6)),
    "decoder_scan": (lambda r: Decoder(dataclasses.replace(DECODER, scan_layers=True), rngs=r),
                     tiny.lm_batch(0, length=6)),
}
for _, batch in MODELS.values():
    batch["decoder_input_tokens"] %= 64
    batch["decoder_target_tokens"] %= 64


def _logits(spec: ModelSpec, params, batch) -> np.ndarray:
    forward = jax.jit(lambda p, b: spec.bind(p).logits_from_features(b))
    return np.asarray(forward(params, {k: jnp.asarray(v) for k, v in batch.items()}))


@functools.lru_cache(maxsize=None)
def _specs(name, config=CONFIG):
    build, batch = MODELS[name]
    return ModelSpec.create(build), ModelSpec.create(lora.with_lora(build, config)), batch


_PARAMS: dict[int, dict] = {}


def _init(spec: ModelSpec):
    """`spec.init_params(0)`, computed once per (cached) spec; callers must not modify it."""
    if id(spec) not in _PARAMS:
        _PARAMS[id(spec)] = spec.init_params(0)
    return _PARAMS[id(spec)]


def _random_b(params, seed=1):
    flat = tree.flatten(params)
    keys = iter(jax.random.split(jax.random.key(seed), len(flat)))
    return tree.unflatten({p: 0.1 * jax.random.normal(next(keys), v.shape) if p[-1] == "lora_b" else v
                           for p, v in flat.items()})


@pytest.mark.parametrize("name", sorted(MODELS))
def test_zero_b_gives_exactly_the_base_logits(name):
    base_spec, spec, batch = _specs(name)
    base, params = _init(base_spec), _init(spec)
    assert tree.flatten(lora.merge(params, CONFIG)).keys() == tree.flatten(base).keys()
    tiny.assert_bitwise_equal(lora.merge(params, CONFIG), base)  # same base draws; A @ 0 adds nothing
    np.testing.assert_array_equal(_logits(spec, params, batch), _logits(base_spec, base, batch))


@pytest.mark.parametrize("name", ["t5", "decoder_scan"])
def test_merged_equals_unmerged_and_disabled_view_is_the_base(name):
    base_spec, spec, batch = _specs(name)
    params = _random_b(_init(spec))
    adapted = _logits(spec, params, batch)
    base = _logits(base_spec, _init(base_spec), batch)
    assert np.abs(adapted - base).max() > 1e-2  # the adapters do change the model
    np.testing.assert_allclose(_logits(base_spec, lora.merge(params, CONFIG), batch), adapted, atol=1e-5)
    np.testing.assert_array_equal(_logits(spec, lora.without_adapters(params), batch), base)


def test_only_adapters_are_lora_params_with_their_shapes():
    _, spec, _ = _specs("decoder_scan")
    lora_state = nnx.state(spec.bind(_init(spec)), nnx.LoRAParam).to_pure_dict()
    flat = tree.flatten(lora_state)
    assert {p[-1] for p in flat} == {"lora_a", "lora_b"}
    query = lora_state["layers"]["attention"]["query"]
    assert query["lora_a"].shape == (2, 32, 4) and query["lora_b"].shape == (2, 4, 4, 8)
    assert lora_state["layers"]["attention"]["out"]["lora_a"].shape == (2, 4, 8, 4)
    assert tree.flatten(lora.adapter_params(_init(spec))).keys() == flat.keys()


def test_matched_paths_for_attention_and_mlp_targets():
    t5_model = nnx.eval_shape(lambda: MODELS["t5"][0](nnx.Rngs(0)))
    paths = lora.matched_paths(t5_model, ("q", "k", "v", "o"))
    assert len(paths) == 12  # encoder self, decoder self and cross attention
    assert "decoder.layers.0.cross_attention.out" in paths and "decoder.logits_dense" not in paths
    assert sorted(lora.matched_paths(t5_model, ("self_attention",))) == sorted(
        f"decoder.layers.0.self_attention.{n}" for n in ("query", "key", "value", "out"))
    decoder = nnx.eval_shape(lambda: MODELS["decoder_scan"][0](nnx.Rngs(0)))
    assert sorted(lora.matched_paths(decoder, ("q", "k", "v", "o"))) == sorted(
        f"layers.attention.{n}" for n in ("query", "key", "value", "out"))
    assert sorted(lora.matched_paths(decoder, ("mlp",))) == [f"layers.mlp.{n}" for n in ("wi_0", "wi_1", "wo")]
    with pytest.raises(ValueError, match="'qproj' matches no projection.*layers.attention.query"):
        lora.matched_paths(decoder, ("q", "qproj"))


def test_save_load_round_trip(tmp_path):
    _, spec, batch = _specs("t5")
    trained = _random_b(_init(spec))
    path = tmp_path / "adapters.safetensors"
    lora.save_adapters(path, trained, CONFIG)
    assert lora.load_config(path) == CONFIG
    loaded = lora.load_adapters(path, _init(spec))
    tiny.assert_bitwise_equal(loaded, trained)
    np.testing.assert_array_equal(_logits(spec, loaded, batch), _logits(spec, trained, batch))
    other = ModelSpec.create(lora.with_lora(MODELS["t5"][0], dataclasses.replace(CONFIG, rank=2)))
    with pytest.raises(ValueError, match="has shape .* lora.load_config"):
        lora.load_adapters(path, other.init_params(0))


def test_adapter_axes_shard_like_the_kernel():
    _, spec, _ = _specs("decoder_scan")
    mesh = sharding.create_mesh(fsdp=2, tensor=4)
    specs = spec.param_shardings(mesh)["layers"]["attention"]
    P = jax.sharding.PartitionSpec
    assert specs["query"]["kernel"].spec == P(None, "fsdp", "tensor", None)
    assert specs["query"]["lora_a"].spec == P(None, "fsdp", None)
    assert specs["query"]["lora_b"].spec == P(None, None, "tensor", None)
    assert specs["out"]["lora_a"].spec == P(None, "tensor", None, None)
    assert specs["out"]["lora_b"].spec == P(None, None, "fsdp")


def test_sharded_forward_equals_unsharded():
    _, spec, batch = _specs("decoder_scan")
    params = _random_b(_init(spec))
    mesh = sharding.create_mesh(fsdp=4, tensor=2)
    placed = jax.device_put(params, spec.param_shardings(mesh))
    assert placed["layers"]["attention"]["query"]["lora_b"].sharding.spec[2] == "tensor"
    with jax.set_mesh(mesh):
        sharded = _logits(spec, placed, batch)
    np.testing.assert_allclose(sharded, _logits(spec, params, batch), atol=1e-5)


def test_with_base_and_merged_params_fit_the_base_config():
    base_spec, spec, _ = _specs("decoder")
    pretrained = base_spec.init_params(5)
    params = lora.with_base(_init(spec), pretrained)
    tiny.assert_bitwise_equal(lora.merge(params, CONFIG), pretrained)
    tree.check_params(DECODER, lora.merge(_random_b(params), CONFIG), source="merged")
    del pretrained["layers"][0]["mlp"]["wo"]
    with pytest.raises(ValueError, match="missing .*layers.0.mlp.wo.kernel"):
        lora.with_base(params, pretrained)


def test_base_dtype_and_dropout():
    base_spec, spec, batch = _specs("decoder", dataclasses.replace(CONFIG, base_dtype="bfloat16", dropout=0.5))
    params = _random_b(_init(spec))
    dtypes = {p[-1]: v.dtype for p, v in tree.flatten(params).items()}
    assert dtypes["kernel"] == jnp.bfloat16 and dtypes["lora_a"] == jnp.float32
    model = spec.bind(params)
    features = {k: jnp.asarray(v) for k, v in batch.items()}
    eval_logits = model.logits_from_features(features)
    np.testing.assert_array_equal(model.logits_from_features(features), eval_logits)
    with lora.train_dropout(jax.random.key(0)):
        dropped = model.logits_from_features(features)
    assert not np.allclose(dropped, eval_logits)
    with pytest.raises(ValueError, match="rank must be >= 1"):
        lora.LoraConfig(rank=0)
