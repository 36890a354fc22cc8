"""Bad settings fail before anything is spent: each gin binding below raises a `ConfigError` naming the
binding and the bad value, before a dataset is built, a trainer is made or a model directory is written.

Cases run through the real entry points after gin parsing (`run_config`, `train_run`, and `check_settings`,
which scripts/train.py calls before training); a few run scripts/train.py itself.
"""

import os
import pathlib
import subprocess
import sys

import pytest
import tiny

import gin
from it_jax import errors, launch

REPO = pathlib.Path(__file__).resolve().parents[2]
TINY = [*tiny.T5_GIN_BINDINGS, "train_run.eval_mixture = None", "train_run.eval_every = 0"]  # no periodic eval
LOSS_EVAL = ["train_run.eval_mixture = 'synthetic_heldout_entailment'", "train_run.eval_every = 2"]
TASK_EVAL = ["train_run.eval_tasks = ['synthetic_syllogism']", "train_run.eval_every = 2"]


def _case(entry, bindings, *fragments, id):
    return pytest.param(entry, bindings, fragments, id=id)


CASES = [
    # train_run: types
    _case(
        "train",
        ["train_run.batch_size = 'abc'"],
        "train_run.batch_size must be an int, got 'abc' (str)",
        id="batch-str",
    ),
    _case(
        "train",
        ["train_run.num_steps = 1e3"],
        "train_run.num_steps must be an int, got 1000.0 (float)",
        id="steps-float",
    ),
    _case("train", ["train_run.pack = 1"], "train_run.pack must be a bool, got 1 (int)", id="pack-int"),
    _case(
        "run_config",
        ["run_config.temperature = 'hot'"],
        "run_config.temperature must be a number, got 'hot'",
        id="temp-str",
    ),
    _case("run_config", ["run_config.cap = 2.5"], "run_config.cap must be an int or None, got 2.5", id="cap-float"),
    _case(
        "train",
        ["train_run.eval_tasks = 'synthetic_syllogism'"],
        "train_run.eval_tasks must be a list of string",
        id="tasks-str",
    ),
    # train_run: counts, intervals, rates, choices
    _case("train", ["train_run.save_every = 0"], "train_run.save_every must be ≥ 1, got 0", id="save-every-0"),
    _case("train", ["train_run.log_every = 0"], "train_run.log_every must be ≥ 1, got 0", id="log-every-0"),
    _case("train", ["train_run.num_steps = 0"], "train_run.num_steps must be ≥ 1, got 0", id="steps-0"),
    _case("train", ["train_run.batch_size = 0"], "train_run.batch_size must be ≥ 1, got 0", id="batch-0"),
    _case("train", ["train_run.microbatches = 0"], "train_run.microbatches must be ≥ 1, got 0", id="micro-0"),
    _case("train", ["train_run.eval_every = -1"], "train_run.eval_every must be ≥ 0, got -1", id="eval-every-neg"),
    _case(
        "train",
        [*LOSS_EVAL, "train_run.eval_batches = 0"],
        "train_run.eval_batches must be ≥ 1, got 0",
        id="eval-batches-0",
    ),
    _case(
        "train",
        [*TASK_EVAL, "train_run.eval_examples = 0"],
        "train_run.eval_examples must be ≥ 1, got 0",
        id="eval-examples-0",
    ),
    _case("train", ["train_run.keep_checkpoints = 0"], "train_run.keep_checkpoints must be ≥ 1, got 0", id="keep-0"),
    _case("train", ["train_run.keep_best = -1"], "train_run.keep_best must be ≥ 0, got -1", id="keep-best-neg"),
    _case("run_config", ["run_config.cap = 0"], "run_config.cap must be ≥ 1, got 0", id="cap-0"),
    _case("run_config", ["run_config.temperature = 0.0"], "run_config.temperature must be > 0, got 0.0", id="temp-0"),
    _case(
        "train",
        ["train_run.label_smoothing = 1.0"],
        "train_run.label_smoothing must be in [0, 1), got 1.0",
        id="smoothing-1",
    ),
    _case("train", ["train_run.z_loss = -0.1"], "train_run.z_loss must be ≥ 0, got -0.1", id="zloss-neg"),
    _case(
        "train", ["train_run.peak_flops_per_device = 0.0"], "train_run.peak_flops_per_device must be > 0", id="flops-0"
    ),
    _case(
        "train",
        ["train_run.loss_normalization = 'tokens'"],
        "train_run.loss_normalization must be one of",
        "got 'tokens'",
        id="norm",
    ),
    _case(
        "train",
        ["train_run.best_mode = 'maxi'"],
        "train_run.best_mode must be one of ('min', 'max'), got 'maxi'",
        "did you mean 'max'",
        id="best-mode",
    ),
    _case(
        "train",
        ["train_run.on_nonfinite = 'ignore'"],
        "train_run.on_nonfinite must be one of",
        "got 'ignore'",
        id="nonfinite",
    ),
    # train_run: the batch against the 8 test devices
    _case(
        "train",
        ["train_run.batch_size = 12"],
        "train_run.batch_size = 12 is not divisible by the 8 devices",
        id="batch-devices",
    ),
    _case(
        "train",
        ["train_run.microbatches = 3"],
        "train_run.batch_size = 8 is not divisible by train_run.microbatches",
        "3 × 8 = 24",
        id="batch-micro",
    ),
    _case(
        "train",
        ["train_run.axis_rules = [('activation_batch', 'replicas')]"],
        "train_run.axis_rules",
        "['replicas']",
        id="axis-rules",
    ),
    # train_run: names
    _case(
        "train",
        ["train_run.mixture = 'synthetic_heldout_entailmnt'"],
        "train_run.mixture: 'synthetic_heldout_entailmnt' is not a registered",
        "did you mean 'synthetic_heldout_entailment'",
        id="mixture",
    ),
    _case(
        "train",
        ["train_run.mixture = ['synthetic_addition', 'synthetic_adition']"],
        "train_run.mixture: 'synthetic_adition'",
        "did you mean 'synthetic_addition'",
        id="mixture-list",
    ),
    _case("train", ["train_run.mixture = []"], "train_run.mixture is an empty list", id="mixture-empty"),
    _case(
        "train",
        ["train_run.eval_mixture = 'synthetic_al'", "train_run.eval_every = 2"],
        "train_run.eval_mixture: 'synthetic_al'",
        "did you mean 'synthetic_all'",
        id="eval-mixture",
    ),
    _case(
        "train",
        ["train_run.eval_tasks = ['synthetic_sylogism']", "train_run.eval_every = 2"],
        "train_run.eval_tasks: 'synthetic_sylogism'",
        "did you mean 'synthetic_syllogism'",
        id="eval-tasks",
    ),
    _case(
        "train",
        [*LOSS_EVAL, "train_run.eval_split = 'validaton'"],
        "train_run.eval_split",
        "has no split 'validaton'",
        "did you mean 'validation'",
        id="eval-split",
    ),
    _case(
        "train", ["train_run.eval_every = 5"], "train_run.eval_every = 5 but nothing is evaluated", id="eval-nothing"
    ),
    _case(
        "train",
        ["train_run.keep_best = 2"],
        "train_run.keep_best = 2 needs periodic evaluation",
        id="keep-best-no-eval",
    ),
    _case(
        "train",
        [*LOSS_EVAL, "train_run.keep_best = 1", "train_run.best_metric = 'eval/los'"],
        "train_run.best_metric = 'eval/los'",
        "did you mean 'eval/loss'",
        id="best-metric",
    ),
    _case(
        "train",
        [*TASK_EVAL, "train_run.keep_best = 1"],
        "train_run.best_metric = 'eval/loss' is not logged",
        "eval/synthetic_syllogism/zs_opt/accuracy",
        id="best-metric-mode",
    ),
    _case(
        "train",
        ["train_run.init_from = '/nonexistent/run'"],
        "train_run.init_from = '/nonexistent/run' does not exist",
        id="init-from",
    ),
    # several problems at once, all listed
    _case(
        "train",
        ["train_run.save_every = 0", "train_run.log_every = 0"],
        "2 settings are invalid",
        "train_run.save_every must be ≥ 1, got 0",
        "train_run.log_every must be ≥ 1, got 0",
        id="two-problems",
    ),
    # run_config
    _case(
        "run_config",
        ["run_config.task_feature_lengths = {'inputs': 128}"],
        "run_config.task_feature_lengths needs 'targets'",
        id="lengths-missing",
    ),
    _case(
        "run_config",
        ["run_config.task_feature_lengths = {'inputs': 0, 'targets': 32}"],
        "run_config.task_feature_lengths['inputs'] must be ≥ 1, got 0",
        id="lengths-0",
    ),
    _case(
        "run_config",
        ["run_config.task_feature_lengths = {'inputs': '128', 'targets': 32}"],
        "run_config.task_feature_lengths must be a dict of string to int",
        id="lengths-str",
    ),
    _case(
        "run_config",
        ["run_config.task_modules = ['mixtures.synthetc']"],
        "task module 'mixtures.synthetc' not found on the Python path",
        id="module",
    ),
    _case(
        "run_config",
        ["run_config.task_modules = ['it_jax.data.vocab']"],
        "task module 'it_jax.data.vocab' defines no register(context) function",
        id="module-without-register",
    ),
    _case(
        "run_config",
        ["run_config.extra_task_modules = ['/nonexistent/my_tasks.py']"],
        "task module '/nonexistent/my_tasks.py': no such file",
        id="module-path",
    ),
    _case(
        "run_config",
        ["run_config.data_dir = '/nonexistent/mirrors'"],
        "run_config.data_dir = '/nonexistent/mirrors' is not a directory",
        id="data-dir",
    ),
    _case(
        "run_config",
        ["VOCAB_SIZE = 128"],
        "run_config.model_config.vocab_size = 128 is less than the vocabulary's 259 ids",
        id="vocab",
    ),
    # eval_run, checked before training as scripts/train.py does
    _case(
        "check",
        ["eval_run.cluster = 'entailmnet'"],
        "eval_run.cluster: 'entailmnet' is not a task cluster",
        "did you mean 'entailment'",
        id="cluster",
    ),
    _case(
        "check",
        ["eval_run.tasks_to_eval = ['synthetic_sylogism']"],
        "eval_run.tasks_to_eval: 'synthetic_sylogism'",
        id="eval-run-tasks",
    ),
    _case(
        "check",
        ["eval_run.mixture = 'synthetic_al'"],
        "eval_run.mixture: 'synthetic_al' is not a registered",
        id="eval-run-mixture",
    ),
    _case("check", ["eval_run.cluster = None"], "nothing to evaluate: set eval_run.cluster", id="eval-run-nothing"),
    _case("check", ["eval_run.variants = ['zs']"], "eval_run.variants: 'zs' is not a prompt variant", id="variants"),
    _case("check", ["eval_run.split = 'tset'"], "eval_run.split", "has no split 'tset'", id="eval-run-split"),
    _case("check", ["eval_run.batch_size = 0"], "eval_run.batch_size must be ≥ 1, got 0", id="eval-run-batch"),
    _case("check", ["eval_run.max_examples = 0"], "eval_run.max_examples must be ≥ 1, got 0", id="eval-run-max"),
    _case(
        "check",
        ["train_run.save_every = 0", "eval_run.cluster = 'entailmnet'"],
        "2 settings are invalid",
        "train_run.save_every",
        "eval_run.cluster",
        id="train-and-eval",
    ),
]


@pytest.fixture
def nothing_runs(monkeypatch):
    """Fails the test if a trainer is made, a dataset is built or an evaluation runs."""

    def reached(what):
        def fail(*args, **kwargs):
            raise AssertionError(f"{what} was reached: the settings were not checked first")

        return fail

    monkeypatch.setattr(launch.trainer_lib, "Trainer", reached("Trainer"))
    monkeypatch.setattr(launch.pipeline, "host_batches", reached("the input pipeline"))
    monkeypatch.setattr(launch.evaluate, "evaluate_model", reached("the evaluation"))
    gin.clear_config()
    yield
    gin.clear_config()


@pytest.mark.parametrize("entry, bindings, fragments", CASES)
def test_bad_setting_fails_before_anything_runs(tmp_path, nothing_runs, entry, bindings, fragments):
    model_dir = tmp_path / "run"
    launch.parse_config(["runs/demo.gin"], [f"MODEL_DIR = '{model_dir}'", *TINY, *bindings])
    with pytest.raises(errors.ConfigError) as raised:
        run = launch.make_run_config()
        if entry == "train":
            launch.train_run(run)
        elif entry == "check":
            launch.check_settings(run, evaluate=True)
    message = str(raised.value)
    for fragment in fragments:
        assert fragment in message, message
    assert not model_dir.exists()


def test_good_settings_pass_the_checks(nothing_runs):
    """The checks accept the demo run with evaluation and best-checkpoint bookkeeping (no false alarms)."""
    launch.parse_config(
        ["runs/demo.gin"],
        [*TINY, *LOSS_EVAL, *TASK_EVAL[:1], "train_run.keep_best = 1", "train_run.microbatches = 1"],
    )
    launch.check_settings(launch.make_run_config(), evaluate=True)
    with pytest.raises(AssertionError, match="Trainer was reached"):
        launch.train_run(launch.make_run_config())


@pytest.mark.parametrize(
    "binding, expected",
    [
        ("train_run.batch_size = 'abc'", "error: train_run.batch_size must be an int, got 'abc' (str)"),
        ("eval_run.cluster = 'entailmnet'", "error: eval_run.cluster: 'entailmnet' is not a task cluster"),
    ],
    ids=["batch-str", "eval-cluster"],
)
def test_train_script_exits_1_with_the_message_before_training(tmp_path, binding, expected):
    model_dir = tmp_path / "run"
    args = [sys.executable, str(REPO / "scripts" / "train.py"), f"--model_dir={model_dir}"]
    args += [f"--gin_bindings={b}" for b in (*TINY, binding)]
    env = {**os.environ, "XLA_FLAGS": "", "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(args, env=env, cwd=REPO, text=True, capture_output=True, timeout=300)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not model_dir.exists()
