import numpy as np
import pytest

from it_jax.convert import tree
from it_jax.models import t5

CONFIG = t5.T5Config(vocab_size=16, d_model=4, d_ff=6, d_kv=2, num_heads=2, num_encoder_layers=3, num_decoder_layers=2)


def test_flatten_unflatten_and_names():
    params = {"a": {0: {"k": np.zeros(2)}, 1: {"k": np.ones(3)}}, "b": np.ones(1)}
    flat = tree.flatten(params)
    assert list(flat) == [("a", 0, "k"), ("a", 1, "k"), ("b",)]
    assert tree.path_name(("a", 1, "k")) == "a.1.k"
    assert tree.unflatten(flat).keys() == params.keys() and tree.num_params(params) == 6


def test_scan_layers_stacks_every_layers_subtree_and_back(random_params):
    params = random_params(CONFIG)
    scanned_config, scanned = tree.set_scan_layers(CONFIG, params, scan=True)
    assert scanned_config.scan_layers
    assert scanned["encoder"]["layers"]["mlp"]["wo"]["kernel"].shape == (3, 6, 4)
    assert scanned["decoder"]["layers"]["cross_attention"]["out"]["kernel"].shape == (2, 2, 2, 4)
    tree.check_params(scanned_config, scanned, source="scanned")
    config_back, params_back = tree.set_scan_layers(scanned_config, scanned, scan=False)
    assert config_back == CONFIG
    flat, flat_back = tree.flatten(params), tree.flatten(params_back)
    assert flat.keys() == flat_back.keys() and all(np.array_equal(flat[p], flat_back[p]) for p in flat)


def test_check_params_names_what_is_wrong(random_params):
    params = random_params(CONFIG)
    del params["decoder"]["logits_dense"]
    params["encoder"]["final_norm"]["scale"] = np.ones(5, np.float32)
    params["token_embedder"]["embedding"] = params["token_embedder"]["embedding"].astype(np.float16)
    params["extra"] = np.ones(1)
    with pytest.raises(ValueError, match="my source: .*missing parameters decoder.logits_dense.kernel; unexpected "
                                         r"parameters extra; encoder.final_norm.scale has shape \(5,\), the config "
                                         r"needs \(4,\); token_embedder.embedding has dtype float16"):
        tree.check_params(CONFIG, params, source="my source")
