import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorstore
import torch
import transformers
from flax import serialization

from it_jax.convert import hf, t5x, tree
from it_jax.models import registry, t5

FIXTURE = ("checkpoints", "t5x_test_t5_tiny", "checkpoint_0")


def fixture_path(shared_data):
    return shared_data.joinpath(*FIXTURE)


def t5x_target(config, params):
    """The T5X tree of it_jax T5 parameters (the inverse of the import, written independently here)."""

    def attention(p):
        flat = {n: p[n]["kernel"].reshape(config.d_model, -1) for n in ("query", "key", "value")}
        flat["out"] = p["out"]["kernel"].reshape(-1, config.d_model)
        return {n: {"kernel": k} for n, k in flat.items()}

    def stack(name, attentions, norms):
        node = {
            "relpos_bias": {"rel_embedding": params[name]["relative_bias"]["embedding"].T.copy()},
            f"{name}_norm": {"scale": params[name]["final_norm"]["scale"]},
        }
        for i, layer in params[name]["layers"].items():
            entry = {"mlp": layer["mlp"]}
            entry.update({t: attention(layer[ours]) for t, ours in attentions.items()})
            entry.update({t: layer[ours] for t, ours in norms.items()})
            node[f"layers_{i}"] = entry
        return node

    encoder = stack("encoder", {"attention": "attention"}, {
        "pre_attention_layer_norm": "pre_attention_norm", "pre_mlp_layer_norm": "pre_mlp_norm"})
    decoder = stack(
        "decoder",
        {"self_attention": "self_attention", "encoder_decoder_attention": "cross_attention"},
        {"pre_self_attention_layer_norm": "pre_self_attention_norm",
         "pre_cross_attention_layer_norm": "pre_cross_attention_norm", "pre_mlp_layer_norm": "pre_mlp_norm"},
    )
    if not config.logits_via_embedding:
        decoder["logits_dense"] = params["decoder"]["logits_dense"]
    return {"token_embedder": params["token_embedder"], "encoder": encoder, "decoder": decoder}


def write_checkpoint(directory, target):
    directory.mkdir(parents=True, exist_ok=True)
    state = {"version": 3, "optimizer": {"target": target, "state": {"step": np.zeros((), np.int32)}}}
    (directory / "checkpoint").write_bytes(serialization.msgpack_serialize(state))
    return directory


def test_fixture_imports_with_the_right_config_and_values(shared_data):
    path = fixture_path(shared_data)
    config, params = t5x.from_t5x(path)
    assert (config.vocab_size, config.d_model, config.num_heads, config.d_kv, config.d_ff) == (32128, 8, 4, 3, 16)
    assert (config.num_encoder_layers, config.num_decoder_layers) == (2, 2)
    assert config.mlp_activations == ("gelu", "linear") and not config.logits_via_embedding
    assert tree.num_params(params) == 518_240
    tree.check_params(config, params, source="fixture")

    raw = t5x.read_target(path)
    layer = params["decoder"]["layers"][1]
    assert layer["cross_attention"]["query"]["kernel"].shape == (8, 4, 3)
    np.testing.assert_array_equal(
        layer["cross_attention"]["query"]["kernel"][:, 2, :],
        raw["decoder"]["layers_1"]["encoder_decoder_attention"]["query"]["kernel"][:, 6:9],
    )
    np.testing.assert_array_equal(
        layer["self_attention"]["out"]["kernel"][3], raw["decoder"]["layers_1"]["self_attention"]["out"]["kernel"][9:]
    )
    np.testing.assert_array_equal(
        params["encoder"]["relative_bias"]["embedding"][5, 2], raw["encoder"]["relpos_bias"]["rel_embedding"][2, 5]
    )
    np.testing.assert_array_equal(params["decoder"]["logits_dense"]["kernel"], raw["decoder"]["logits_dense"]["kernel"])


def test_fixture_runs_and_matches_transformers_after_export(shared_data, tmp_path):
    config, params = t5x.from_t5x(fixture_path(shared_data))
    inputs = np.array([[37, 423, 215, 1, 0, 0], [8, 9, 10, 11, 12, 1]])
    targets = np.array([[0, 71, 21, 1], [0, 5, 6, 7]])
    spec = registry.model_spec(config)
    ours = np.asarray(jax.jit(lambda p, x, y: spec.bind(p)(x, y))(params, jnp.asarray(inputs), jnp.asarray(targets)))
    assert ours.shape == (2, 4, 32128) and np.isfinite(ours).all()

    hf.to_hf(config, params, tmp_path)
    model = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        reference = model(
            input_ids=torch.tensor(inputs),
            attention_mask=torch.tensor(inputs != 0),
            decoder_input_ids=torch.tensor(targets),
        ).logits.numpy()
    diff = float(np.abs(ours - reference).max())
    print(f"t5x fixture: max |logit diff| vs transformers after export = {diff:.3g}")
    assert diff <= 1e-4


@pytest.mark.parametrize("tied", [False, True])
def test_synthetic_checkpoint_round_trips_including_tensorstore_arrays(tied, tmp_path, random_params):
    config = t5.T5Config(
        vocab_size=40, d_model=12, d_ff=20, d_kv=5, num_heads=3, num_encoder_layers=1, num_decoder_layers=2,
        mlp_activations=("relu",) if tied else ("gelu", "linear"), logits_via_embedding=tied,
    )
    params = random_params(config, 1)
    target = t5x_target(config, params)
    embedding = params["token_embedder"]["embedding"]
    spec = {
        "driver": "zarr",
        "kvstore": {"driver": "file", "path": "target.token_embedder.embedding"},
        "metadata": {"chunks": [20, 12], "compressor": {"id": "gzip", "level": 1}, "shape": list(embedding.shape),
                     "dtype": "<f4"},
    }
    directory = tmp_path / "checkpoint_7"
    directory.mkdir()
    stored = spec | {"kvstore": spec["kvstore"] | {"path": str(directory / spec["kvstore"]["path"])}}
    tensorstore.open(stored, create=True).result().write(embedding).result()
    target["token_embedder"] = {"embedding": spec}
    write_checkpoint(directory, target)

    config_back, params_back = t5x.from_t5x(directory, scan_layers=True)
    assert config_back == dataclasses.replace(config, scan_layers=True)
    _, unscanned = tree.set_scan_layers(config_back, params_back, scan=False)
    flat, flat_back = tree.flatten(params), tree.flatten(unscanned)
    assert flat.keys() == flat_back.keys()
    assert all(np.array_equal(flat[p], flat_back[p]) for p in flat)


def test_overrides_set_what_shapes_cannot_tell(shared_data):
    config, params = t5x.from_t5x(
        fixture_path(shared_data), overrides={"relative_attention_max_distance": 64, "param_dtype": "bfloat16"}
    )
    assert config.relative_attention_max_distance == 64
    assert params["token_embedder"]["embedding"].dtype == jnp.bfloat16


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected a T5X checkpoint directory or its msgpack file"):
        t5x.from_t5x(tmp_path / "nowhere")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "checkpoint").write_bytes(b"\xc1 not msgpack")
    with pytest.raises(ValueError, match="is not a T5X msgpack checkpoint"):
        t5x.from_t5x(tmp_path / "junk")
    remote = {"driver": "zarr", "kvstore": {"driver": "gcs", "bucket": "b", "path": "target.x"}}
    write_checkpoint(tmp_path / "remote", {"token_embedder": {"embedding": remote}})
    with pytest.raises(ValueError, match="'gcs' TensorStore; copy the checkpoint directory to local disk"):
        t5x.from_t5x(tmp_path / "remote")
    foreign = {"encoder": {}, "decoder": {}, "token_embedder": {}, "extra": {"w": np.ones(2)}}
    write_checkpoint(tmp_path / "other", foreign)
    with pytest.raises(ValueError, match="expected token_embedder, encoder and decoder at the top level"):
        t5x.from_t5x(tmp_path / "other")
