"""Run configurations in gin/runs/ parse, and say what their comments say (held-out clusters, recipes)."""

import pytest
import seqio

import gin
import mixtures.flan2021 as flan
from it_jax import launch
from it_jax.cli import train as train_cli  # noqa: F401  (registers `main`, which run files bind)
from it_jax.data import mixing, sources, tasks
from it_jax.data.context import TaskContext
from it_jax.models import t5

FLAN_SPECS = {f"flan2021_{spec.name}": spec for spec in flan.SPECS}


@pytest.fixture(autouse=True)
def clean_gin():
    gin.clear_config()
    flan.register(TaskContext())
    yield
    gin.clear_config()


def _mirrors_run() -> tuple[list[str], list[str]]:
    launch.parse_config(["runs/flan2021_mirrors.gin"])
    return gin.query_parameter("train_run.mixture"), gin.query_parameter("eval_run.tasks_to_eval")


def test_flan2021_mirrors_is_a_true_nli_held_out_run():
    train, evaluated = _mirrors_run()
    assert gin.query_parameter("run_config.task_modules") == ["mixtures.flan2021"]
    excluded = mixing.heldout_clusters("nli", flan.OVERLAPS)
    assert set(excluded) == {"nli", "paraphrase"}
    heldout_mixture = seqio.get_mixture_or_task("flan2021_heldout_nli")
    assert set(train) <= {task.name for task in heldout_mixture.tasks}
    train_clusters = {tasks.task_info(name).cluster for name in train}
    assert train and not train_clusters & {"nli", "paraphrase"}, train_clusters
    assert evaluated and {tasks.task_info(name).cluster for name in evaluated} == {"nli"}
    assert set(evaluated) == {"flan2021_rte", "flan2021_wnli", "flan2021_snli"}


def test_flan2021_mirrors_tasks_are_mirrored(shared_data):
    train, evaluated = _mirrors_run()
    mirrors = shared_data / "tfds_jsonl"
    for name, split in [(n, "train") for n in train] + [(n, "validation") for n in evaluated]:
        mirror = mirrors / sources.mirror_dir_name(FLAN_SPECS[name].tfds_name)
        assert (mirror / f"{split}.jsonl").is_file(), (name, split)


def test_flan2021_heldout_recipe_parses_with_t5_base():
    launch.parse_config(["runs/flan2021_heldout.gin"])
    config = t5.T5Config(**gin.get_bindings("T5Config"))
    assert (config.vocab_size, config.d_model, config.num_encoder_layers, config.dropout_rate) == (32128, 768, 12, 0.05)
    assert gin.query_parameter("make_optimizer.name") == "adafactor"
    assert gin.query_parameter("make_schedule.decay") == "constant"
    assert gin.query_parameter("make_schedule.base_learning_rate") == 1e-3
    train = gin.get_bindings("train_run")  # evaluates the schedule, optimizer and mesh references
    assert (train["batch_size"], train["pack"], train["num_steps"]) == (128, True, 30000)
    assert gin.query_parameter("run_config.cap") == 3000
    assert train["init_from"] and gin.query_parameter("run_config.task_modules") == ["mixtures.flan2021"]


def test_flan2021_heldout_recipe_makes_its_run_config(shared_data):
    spiece = shared_data / "tokenizers" / "t5" / "spiece.model"
    launch.parse_config(["runs/flan2021_heldout.gin"], [f"make_vocabulary.sentencepiece_model = '{spiece}'"])
    run = launch.make_run_config()
    assert run.task_modules == ("mixtures.flan2021",)
    assert dict(run.task_feature_lengths) == {"inputs": 1024, "targets": 256}
    assert run.vocabulary.vocab_size == 32100  # 32,000 pieces + 100 extra ids, within the model's 32,128


@pytest.mark.parametrize("recipe, bos, params, row", [
    ("runs/sft_llama3_2_1b.gin", 128000, 1_235_814_400, 4096),
    ("runs/sft_qwen2_5_0_5b.gin", None, 494_032_768, 2048),
])
def test_sft_recipes_fine_tune_the_converted_checkpoint_with_its_own_tokenizer_and_template(recipe, bos, params, row):
    from it_jax.models import decoder

    launch.parse_config([recipe])
    train = gin.get_bindings("train_run")
    vocabulary = gin.get_bindings("make_vocabulary")
    assert train["init_from"] == vocabulary["tokenizer_dir"] == gin.query_parameter("%CHECKPOINT")
    assert gin.query_parameter("causal_lm.bos_id") == bos
    assert gin.query_parameter("run_config.chat_format") is None  # the checkpoint's own chat template
    assert gin.query_parameter("run_config.task_modules") == ["mixtures.chat"]
    lengths = gin.query_parameter("run_config.task_feature_lengths")
    assert lengths["inputs"] + lengths["targets"] == row
    config = decoder.DecoderConfig(**gin.get_bindings("DecoderConfig"))
    assert (config.dtype, config.remat_policy, config.scan_layers) == ("bfloat16", "minimal", True)
    assert launch.model_spec(config).num_params() == params


def test_the_tiny_sft_run_trains_a_causal_decoder_on_the_chat_collection():
    launch.parse_config(["runs/sft_tiny.gin"])
    assert gin.query_parameter("DecoderConfig.prefix_lm") is False
    assert gin.query_parameter("run_config.chat_format") == "chatml"
    assert gin.query_parameter("train_run.mixture") == "chat_sft"
    assert "chat_oasst1" in gin.query_parameter("train_run.eval_mixture")  # never trained on


def test_the_tiny_dpo_runs_train_the_sft_model_on_held_out_preference_pairs(shared_data, tmp_path):
    from it_jax import errors
    from it_jax.models import lora

    for name, adapters in (("runs/dpo_tiny.gin", None), ("runs/dpo_tiny_lora.gin", lora.LoraConfig(rank=8))):
        gin.clear_config()
        launch.parse_config([name], [f"SFT_DIR = '{tmp_path}'"])
        train = gin.get_bindings("train_run")
        assert train["mixture"] is None and train["init_from"] == str(tmp_path)
        assert train["best_metric"] == "eval/reward_accuracy" and train["eval_every"] > 0
        assert gin.query_parameter("DPO.beta") == 0.1
        assert gin.query_parameter("preference_data.files") == ["hh_rlhf__helpful_base_messages/test.jsonl"]
        assert (lora.LoraConfig(**gin.get_bindings("LoraConfig")) if adapters else None) == adapters
        run = launch.make_run_config()
        launch.check_settings(run, evaluate=False)  # the DPO metric is a valid best_metric
    with gin.unlock_config():
        gin.bind_parameter("train_run.best_metric", "eval/accuracy")
    with pytest.raises(errors.ConfigError, match="eval/reward_accuracy"):
        launch.check_settings(launch.make_run_config(), evaluate=False)


@pytest.mark.parametrize("recipe", ["runs/dpo_llama3_2_1b.gin", "runs/dpo_llama3_2_1b_lora.gin"])
def test_dpo_recipes_start_from_the_sft_run(recipe):
    from it_jax.evaluation import loading
    from it_jax.models import decoder, lora

    launch.parse_config([recipe])
    train = gin.get_bindings("train_run")
    assert train["init_from"] == gin.query_parameter("%SFT_DIR") and train["mixture"] is None
    assert gin.query_parameter("DPO.reference") == "cached" and gin.query_parameter("DPO.beta") == 0.1
    assert gin.query_parameter("preference_data.max_length") == 1024
    if recipe.endswith("_lora.gin"):
        config = decoder.DecoderConfig(**gin.get_bindings("DecoderConfig"))
        adapters = lora.LoraConfig(**gin.get_bindings("LoraConfig"))
        added = loading.model_spec(config, adapters).num_params() - launch.model_spec(config).num_params()
        # rank 16 on q, k, v, o (2048 -> 2048, 512, 512, 2048) and the MLP (2048 <-> 8192 x3), 16 layers
        assert added == 16 * 16 * ((2048 + 2048) * 2 + (2048 + 512) * 2 + 3 * (2048 + 8192))
