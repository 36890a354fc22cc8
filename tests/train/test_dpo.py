"""The DPO losses against hand-computed values and an independent PyTorch implementation of TRL's formulas.

TRL (1.16) computes its loss inside `DPOTrainer._compute_loss`, which needs a model and a trainer, and its
"sigmoid" no longer takes label smoothing; so the comparison is with the formulas as TRL's `dpo_loss` wrote
them (sigmoid with label smoothing, IPO over the given log-ratios), reimplemented here in PyTorch.
"""

import math

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from it_jax.train import dpo

LOG3 = math.log(3.0)
BETA = 0.5
# Margins h chosen so that beta * h is 0, log 3 and -log 3: sigmoid(beta h) is 1/2, 3/4 and 1/4.
MARGINS = np.array([0.0, 2 * LOG3, -2 * LOG3])
REF_CHOSEN = np.array([-1.0, -2.0, -3.0])
REF_REJECTED = np.array([-1.5, -2.5, -0.5])
POLICY_REJECTED = np.array([-4.0, -4.0, -4.0])
POLICY_CHOSEN = REF_CHOSEN + (POLICY_REJECTED - REF_REJECTED) + MARGINS


def _loss(**kwargs):
    args = [jnp.asarray(a, jnp.float32) for a in (POLICY_CHOSEN, POLICY_REJECTED, REF_CHOSEN, REF_REJECTED)]
    return [np.asarray(x) for x in dpo.dpo_loss(*args, **kwargs)]


def test_sigmoid_equals_hand_computed_values():
    losses, chosen, rejected = _loss(beta=BETA)
    np.testing.assert_allclose(losses, [math.log(2), math.log(4 / 3), math.log(4)], rtol=1e-6)
    np.testing.assert_allclose(chosen, BETA * (POLICY_CHOSEN - REF_CHOSEN), rtol=1e-6)
    np.testing.assert_allclose(rejected, BETA * np.array([-2.5, -1.5, -3.5]), rtol=1e-6)
    np.testing.assert_allclose(chosen - rejected, BETA * MARGINS, atol=1e-6)


def test_conservative_dpo_equals_hand_computed_values():
    losses, _, _ = _loss(beta=BETA, label_smoothing=0.1)
    expected = [math.log(2), 0.9 * math.log(4 / 3) + 0.1 * math.log(4), 0.9 * math.log(4) + 0.1 * math.log(4 / 3)]
    np.testing.assert_allclose(losses, expected, rtol=1e-6)


def test_ipo_equals_hand_computed_values():
    losses, _, _ = _loss(beta=BETA, loss_type="ipo")  # target margin 1 / (2 beta) = 1
    np.testing.assert_allclose(losses, [1.0, (2 * LOG3 - 1) ** 2, (2 * LOG3 + 1) ** 2], rtol=1e-6)


def _torch_dpo(pc, pr, rc, rr, beta, loss_type, label_smoothing):
    """The formulas of TRL's DPOTrainer.dpo_loss (0.x), written independently in PyTorch."""
    pc, pr, rc, rr = (torch.tensor(x, dtype=torch.float64) for x in (pc, pr, rc, rr))
    logits = (pc - pr) - (rc - rr)
    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * logits) * (1 - label_smoothing) - F.logsigmoid(-beta * logits) * label_smoothing
    else:
        losses = (logits - 1 / (2 * beta)) ** 2
    return losses.numpy(), (beta * (pc - rc)).numpy(), (beta * (pr - rr)).numpy()


@pytest.mark.parametrize("loss_type,beta,label_smoothing", [
    ("sigmoid", 0.1, 0.0), ("sigmoid", 0.5, 0.2), ("ipo", 0.1, 0.0), ("ipo", 2.0, 0.0),
])
def test_matches_torch_implementation(loss_type, beta, label_smoothing):
    rng = np.random.default_rng(0)
    logps = [rng.uniform(-60, -5, 16) for _ in range(4)]
    ours = dpo.dpo_loss(*(jnp.asarray(x, jnp.float32) for x in logps), beta=beta, loss_type=loss_type,
                        label_smoothing=label_smoothing)
    theirs = _torch_dpo(*logps, beta, loss_type, label_smoothing)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(np.asarray(a), b, rtol=2e-5, atol=2e-5)
    wrong = _torch_dpo(*logps, beta * 1.5, loss_type, label_smoothing)[0]
    assert not np.allclose(np.asarray(ours[0]), wrong, rtol=1e-3)


def test_rejects_bad_settings():
    args = [jnp.zeros(2)] * 4
    with pytest.raises(ValueError, match="unknown DPO loss_type 'hinge'"):
        dpo.dpo_loss(*args, beta=0.1, loss_type="hinge")
    with pytest.raises(ValueError, match="sigmoid .conservative DPO. loss only"):
        dpo.dpo_loss(*args, beta=0.1, loss_type="ipo", label_smoothing=0.1)
    with pytest.raises(ValueError, match="beta must be positive"):
        dpo.dpo_loss(*args, beta=0.0)


def test_sequence_logps_hand_computed_and_torch():
    logits = jnp.zeros((2, 3, 4), jnp.bfloat16)  # uniform over 4 tokens: each log-prob is -log 4
    targets = jnp.array([[1, 2, 3], [0, 0, 0]])
    weights = jnp.array([[1, 1, 0], [0, 1, 0]])
    np.testing.assert_allclose(dpo.sequence_logps(logits, targets, weights), [-2 * math.log(4), -math.log(4)],
                               rtol=1e-6)

    rng = np.random.default_rng(1)
    logits = rng.normal(size=(3, 5, 7)).astype(np.float32) * 3
    targets = rng.integers(0, 7, (3, 5))
    weights = (rng.random((3, 5)) > 0.4).astype(np.float32)
    token = -F.cross_entropy(torch.tensor(logits).reshape(-1, 7), torch.tensor(targets).reshape(-1),
                             reduction="none").reshape(3, 5)
    expected = (token * torch.tensor(weights)).sum(-1).numpy()
    np.testing.assert_allclose(dpo.sequence_logps(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(weights)),
                               expected, rtol=1e-5)
    with pytest.raises(ValueError, match="logits \\[batch, length, vocab\\]"):
        dpo.sequence_logps(jnp.asarray(logits[0]), jnp.asarray(targets), jnp.asarray(weights))



def test_lora_dpo_cached_reference_equals_live_and_training_grows_the_margin():
    """The pieces together: preference rows -> a tiny LoRA decoder -> sequence log-probs -> DPO, the reference
    being the same model with its adapters disabled (no second copy), cached before training or live."""
    import jax
    import optax
    import seqio

    from it_jax.convert import tree
    from it_jax.data import layout, preference
    from it_jax.models import lora
    from it_jax.models.decoder import Decoder, DecoderConfig
    from it_jax.models.spec import ModelSpec

    config = DecoderConfig(vocab_size=260, d_model=32, d_ff=64, num_layers=1, num_heads=2, num_kv_heads=2,
                           head_dim=16)
    lora_config = lora.LoraConfig(rank=4, alpha=8.0, targets=("q", "v", "mlp"))
    spec = ModelSpec.create(lora.with_lora(lambda r: Decoder(config, rngs=r), lora_config))
    pairs = [preference.PreferencePair(({"role": "user", "content": f"Count to {i}."},), "1 2 3", f"No {i}.")
             for i in range(4)]
    data = preference.encode_pairs(pairs, seqio.ByteVocabulary(), chat_format="chatml", max_length=64,
                                   layout=layout.causal_lm(0))
    params = spec.init_params(0)

    def logps(params, batch):
        model = spec.bind(params)
        return tuple(dpo.sequence_logps(
            model.logits_from_features({"decoder_input_tokens": batch[f"{side}_decoder_input_tokens"]}),
            batch[f"{side}_decoder_target_tokens"], batch[f"{side}_decoder_loss_weights"])
            for side in preference.SIDES)

    def loss_fn(adapters, batch, live):
        full = tree.unflatten({**tree.flatten(params), **tree.flatten(adapters)})
        reference = logps(jax.lax.stop_gradient(lora.without_adapters(full)), batch) if live else (
            batch["reference_chosen_logps"], batch["reference_rejected_logps"])
        losses, chosen, rejected = dpo.dpo_loss(*logps(full, batch), *reference, beta=0.5)
        return losses.mean(), chosen - rejected

    base = lora.without_adapters(params)
    cached = preference.add_reference_logps(data, jax.jit(lambda b: logps(base, b)), batch_size=4)
    batch = {k: jnp.asarray(v) for k, v in next(preference.preference_batches(cached, batch_size=4)).items()}
    adapters = lora.adapter_params(params)
    adapters["layers"][0]["attention"]["value"]["lora_b"] += 0.05  # a policy away from the reference
    live, cached_loss = (jax.jit(loss_fn, static_argnums=2)(adapters, batch, flag)[0] for flag in (True, False))
    np.testing.assert_allclose(live, cached_loss, rtol=1e-6)

    optimizer = optax.adam(1e-2)
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    @jax.jit
    def step(adapters, state):
        (loss, margins), grads = grad_fn(adapters, batch, False)
        updates, state = optimizer.update(grads, state, adapters)
        return optax.apply_updates(adapters, updates), state, loss, margins

    adapters = lora.adapter_params(params)
    state = optimizer.init(adapters)
    adapters, state, loss, margins = step(adapters, state)
    assert abs(float(loss) - math.log(2)) < 1e-6 and np.allclose(margins, 0.0)  # B = 0: policy == reference
    for _ in range(15):
        adapters, state, loss, margins = step(adapters, state)
    assert float(loss) < 0.5 and (np.asarray(margins) > 0).all()


def test_trainer_dpo_with_lora_trains_only_the_adapters():
    """The Trainer with the DPO objective (cached reference) and `trainable=nnx.LoRAParam` on preference
    batches: the base stays bitwise, AdamW state exists for the adapters only, and the reward margin grows."""
    import jax
    import seqio
    from flax import nnx

    from it_jax import sharding
    from it_jax.convert import tree
    from it_jax.data import layout, preference
    from it_jax.models import lora
    from it_jax.models.decoder import Decoder, DecoderConfig
    from it_jax.models.spec import ModelSpec
    from it_jax.train import objectives, optimizers
    from it_jax.train.trainer import Trainer

    config = DecoderConfig(vocab_size=260, d_model=32, d_ff=64, num_layers=1, num_heads=2, num_kv_heads=2,
                           head_dim=16)
    spec = ModelSpec.create(lora.with_lora(lambda r: Decoder(config, rngs=r), lora.LoraConfig(rank=4, alpha=8.0)))
    pairs = [preference.PreferencePair(({"role": "user", "content": f"Say yes {i}."},), "Yes!", f"Never {i}.")
             for i in range(4)]
    data = preference.encode_pairs(pairs, seqio.ByteVocabulary(), chat_format="chatml", max_length=48,
                                   layout=layout.causal_lm(0))
    schedule = optimizers.make_schedule(base_learning_rate=1e-2, warmup_steps=0, decay="constant")
    trainer = Trainer(spec=spec, optimizer=optimizers.make_optimizer(schedule, name="adamw"), schedule=schedule,
                      mesh=sharding.create_mesh(devices=jax.devices()[:1]), trainable=nnx.LoRAParam,
                      objective=objectives.DPO(beta=0.5, reference="cached"))
    state = trainer.init(seed=0)
    initial = jax.tree.map(np.asarray, state.params)
    base = lora.without_adapters(initial)
    forward = jax.jit(lambda p, b: tuple(dpo.sequence_logps(
        spec.bind(p).logits_from_features({"decoder_input_tokens": b[f"{s}_decoder_input_tokens"]}),
        b[f"{s}_decoder_target_tokens"], b[f"{s}_decoder_loss_weights"]) for s in preference.SIDES))
    data = preference.add_reference_logps(data, lambda b: forward(base, b), batch_size=4)
    margins = []
    for batch in zip(range(12), preference.preference_batches(data, batch_size=4, seed=0)):
        state, stats = trainer.step(state, trainer.to_global(batch[1]))
        margins.append(float(stats["reward_margin_sum"]) / float(stats["pairs"]))
    assert abs(margins[0]) < 1e-6 and margins[-1] > 1.0  # B = 0 at first: the policy is the reference
    final = tree.flatten(jax.tree.map(np.asarray, state.params))
    for path, value in tree.flatten(initial).items():
        if path[-1] not in lora.ADAPTER_NAMES:
            np.testing.assert_array_equal(final[path], value, err_msg=tree.path_name(path))
        elif path[-1] == "lora_b":
            assert not np.array_equal(final[path], value), tree.path_name(path)
    adapter_size = sum(v.size for v in tree.flatten(lora.adapter_params(initial)).values())
    moments = sum(x.size for x in jax.tree.leaves(state.opt_state) if np.ndim(x) > 0)
    assert moments == 2 * adapter_size  # AdamW's mu and nu, for the adapters only
