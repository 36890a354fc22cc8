"""Preference pairs as a run's input: the held-out split, the files' paths, the cached reference (the same as a
live one on real rows; recomputed identically, as on resumption; the base with adapters disabled under LoRA)."""

import json
import pathlib

import chat_runs
import jax
import numpy as np
import optax
import pytest
import seqio

from it_jax import errors
from it_jax import sharding
from it_jax.data import layout as layout_lib
from it_jax import preference_run
from it_jax.data import preference
from it_jax.evaluation import loading
from it_jax.models import lora
from it_jax.run_context import RunContext
from it_jax.run_dir import RunDirectory
from it_jax.train import objectives
from it_jax.train import trainer as trainer_lib

VOCABULARY = seqio.ByteVocabulary()
HH = pathlib.Path(__file__).resolve().parents[2] / "shared/data/tfds_jsonl/hh_rlhf__helpful_base_messages/test.jsonl"


def _record(i: int) -> dict:
    return {"prompt": [{"role": "user", "content": f"Question {i}?"}],
            "chosen": [{"role": "assistant", "content": f"A good answer {i}."}],
            "rejected": [{"role": "assistant", "content": "No."}]}


def _context(data_dir: pathlib.Path, model_dir: pathlib.Path) -> RunContext:
    return RunContext(directory=RunDirectory(model_dir), model_config=chat_runs.CONFIG, vocabulary=VOCABULARY,
                      layout=layout_lib.default_layout("decoder_only", VOCABULARY),
                      task_feature_lengths={"inputs": 32, "targets": 32}, data_dir=str(data_dir), chat_format="chatml")


def test_every_nth_pair_is_held_out_and_files_resolve_under_the_data_dir(tmp_path):
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(_record(i)) + "\n" for i in range(45)))
    config = preference_run.PreferenceInput(files=("pairs.jsonl",), max_length=128, held_out_every=20)
    splits = preference_run.build_input(config, _context(tmp_path, tmp_path / "run"))
    assert (len(splits.train), len(splits.held_out)) == (42, 3)  # pairs 0, 20, 40 held out
    held_prompts = [VOCABULARY.decode(row[row > 0].tolist())
                    for row in splits.held_out.features["chosen_decoder_input_tokens"]]
    assert ["Question 0?" in p for p in held_prompts] == [True, False, False] and "Question 40?" in held_prompts[2]
    assert len(preference_run.PreferenceInput(files="pairs.jsonl", max_pairs=10).files) == 1
    with pytest.raises(errors.ConfigError, match="missing.jsonl does not exist"):
        preference_run.PreferenceInput(files=("missing.jsonl",)).paths(str(tmp_path))


def test_eval_batches_cover_every_pair_once_with_empty_padding_rows():
    data = preference.PreferenceData({"chosen_decoder_loss_weights": np.ones((5, 3), np.float32)})
    batches = preference_run.eval_batches(data, batch_size=2)
    weights = np.concatenate([b["chosen_decoder_loss_weights"] for b in batches])
    assert len(batches) == 3 and weights.sum(axis=1).tolist() == [3, 3, 3, 3, 3, 0]


def _trainer(spec, objective) -> trainer_lib.Trainer:
    return trainer_lib.Trainer(spec=spec, optimizer=optax.sgd(0.1), schedule=optax.constant_schedule(0.1),
                               mesh=sharding.create_mesh(data=-1), objective=objective)


@pytest.fixture(scope="module")
def real_rows():
    if not HH.is_file():
        pytest.skip(f"shared data not found at {HH}")
    pairs = preference.read_pairs(HH)[0][:8]
    return preference.encode_pairs(pairs, VOCABULARY, chat_format="chatml",
                                   layout=layout_lib.default_layout("decoder_only", VOCABULARY), max_length=96)


def test_cached_reference_gives_the_live_reference_loss_on_real_pairs(real_rows):
    spec = loading.model_spec(chat_runs.CONFIG)
    trainer = _trainer(spec, objectives.DPO(reference="cached"))
    reference, policy = spec.init_params(0), chat_runs.random_params(chat_runs.CONFIG, seed=3)
    cached = preference_run.with_reference_logps(real_rows, trainer, reference, batch_size=8).features
    losses = {}
    for mode in ("cached", "live"):
        objective = objectives.DPO(beta=0.1, reference=mode)
        batch = {k: v for k, v in cached.items() if mode == "cached" or not k.startswith("reference_")}
        losses[mode] = objective(spec.bind(policy), batch, rngs=None, normalizer=objective.denominator(batch),
                                 **({"reference": spec.bind(reference)} if mode == "live" else {}))
    np.testing.assert_allclose(losses["cached"][0], losses["live"][0], rtol=1e-5)
    np.testing.assert_allclose(losses["cached"][1]["reward_margin_sum"], losses["live"][1]["reward_margin_sum"],
                               rtol=1e-4, atol=1e-5)
    assert abs(float(losses["live"][1]["reward_margin_sum"])) > 1e-3  # policy and reference differ


def test_a_lora_runs_cached_reference_is_the_warm_started_base_and_is_recomputed_identically(real_rows, tmp_path):
    base = chat_runs.make_run(tmp_path / "sft", VOCABULARY, chat_format="chatml")
    config = lora.LoraConfig(rank=4)
    trainer = _trainer(loading.model_spec(chat_runs.CONFIG, config), objectives.DPO())
    first, again = (preference_run.with_reference_logps(
        real_rows, trainer, preference_run.reference_params(trainer, seed=0, init_from=str(tmp_path / "sft"),
                                                              lora=config), batch_size=8).features
        for _ in range(2))  # a resumed run recomputes it the same way
    base_trainer = _trainer(loading.model_spec(chat_runs.CONFIG), objectives.DPO())
    expected = preference_run.with_reference_logps(real_rows, base_trainer, jax.device_put(base), batch_size=8)
    for name in ("reference_chosen_logps", "reference_rejected_logps"):
        np.testing.assert_array_equal(first[name], again[name])
        np.testing.assert_allclose(first[name], expected.features[name], rtol=1e-5)
        assert np.all(first[name] < 0)


def test_training_batches_resume_at_a_position_without_replay():
    data = preference.PreferenceData({"chosen_decoder_loss_weights": np.arange(21, dtype=np.float32)[:, None]})
    stream = preference_run.train_batches(data, 0, batch_size=8, seed=3)
    first_six = [next(stream)["chosen_decoder_loss_weights"] for _ in range(6)]
    resumed = preference_run.train_batches(data, 4, batch_size=8, seed=3)
    for expected in first_six[4:]:
        np.testing.assert_array_equal(next(resumed)["chosen_decoder_loss_weights"], expected)
    epoch = np.concatenate(first_six[:3])[:21, 0]
    assert sorted(epoch.tolist()) == list(range(21))  # every pair once per epoch


def test_settings_problems_name_the_binding_to_fix():
    pairs = preference_run.PreferenceInput(files=("pairs.jsonl",))
    base = {"mixture": None, "preference": pairs, "objective": objectives.DPO(), "eval_mixture": None,
            "eval_tasks": (), "eval_every": 10, "keep_best": 1, "best_metric": "eval/reward_accuracy"}
    assert preference_run.settings_problems(base) == preference_run.evaluation_problems(base) == []
    assert "exactly one of train_run.mixture" in preference_run.settings_problems({**base, "mixture": "chat_sft"})[0]
    assert "@DPO()" in preference_run.settings_problems({**base, "objective": None})[0]
    (problem,) = preference_run.evaluation_problems({**base, "best_metric": "eval/accuracy"})
    assert "eval/reward_accuracy" in problem and "eval/reward_margin" in problem
    no_held_out = {**base, "preference": preference_run.PreferenceInput(files=("p.jsonl",), held_out_every=0)}
    assert "held_out_every" in preference_run.evaluation_problems(no_held_out)[0]
