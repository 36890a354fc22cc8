"""Unusable data fails with a one-line `DataError` naming the task, the split, the file and the line (or the
record), read through the real tf.data pipeline: training batches, the periodic evaluation and an evaluation."""

import json
import types

import pytest
import seqio
import tiny

import gin
from it_jax import errors, launch
from it_jax.data import layout, mixing, pipeline, tasks
from it_jax.evaluation import evaluate, evaluator, periodic

LENGTHS = {"inputs": 32, "targets": 8}
ROWS = [{"question": f"q{i}", "answer": f"a{i}", "choices": [f"a{i}"]} for i in range(6)]
TEMPLATES = [("{question}", "{answer}")]


def _jsonl(directory, name, splits):
    """Writes `<directory>/<name>/<split>.jsonl` (each a list of lines) and returns the `{split}` pattern."""
    (directory / name).mkdir()
    for split, lines in splits.items():
        (directory / name / f"{split}.jsonl").write_text("".join(line + "\n" for line in lines))
    return str(directory / name / "{split}.jsonl")


def _lines(rows):
    return [json.dumps(row) for row in rows]


def _read_batches(task, split="train"):
    batches = pipeline.host_batches(
        task,
        task_feature_lengths=LENGTHS,
        layout=layout.ENCODER_DECODER,
        batch_size=2,
        split=split,
        repeat=split == "train",
    )
    for _ in range(4):
        next(batches)


def _second_choice_of_record_2(example):
    """A preprocessor with a bug that shows on one record only."""
    return {**example, "answer": example["choices"][1 if example["question"] == "q2" else 0]}


def _check_one_line(message):
    assert "\n" not in message and "Traceback" not in message and "{{function_node" not in message, message


def test_preprocessor_exception_names_task_split_file_line_and_the_exception(tmp_path):
    lines = _lines(ROWS)
    path = _jsonl(tmp_path, "pre", {"train": [lines[0], "", *lines[1:]]})  # a blank line: record 2 is line 4
    tasks.register_task(
        "de_pre", source=path, templates=TEMPLATES, cluster="de", preprocessor=_second_choice_of_record_2
    )
    with pytest.raises(errors.DataError) as raised:
        _read_batches("de_pre")
    message = str(raised.value)
    assert message == (
        "task 'de_pre', example 2: the preprocessor raised IndexError: list index out of range "
        f"(split 'train', {path.format(split='train')}:4)"
    )
    _check_one_line(message)


def test_missing_template_field_names_the_field_task_and_record(tmp_path):
    rows = [ROWS[0], {"prompt": "no question here", "answer": "x"}, *ROWS[1:]]
    path = _jsonl(tmp_path, "field", {"train": _lines(rows)})
    tasks.register_task("de_field", source=path, templates=TEMPLATES, cluster="de")
    with pytest.raises(errors.DataError) as raised:
        _read_batches("de_field")
    message = str(raised.value)
    assert message.startswith("task 'de_field', example 1: template 'de_field:0' needs field 'question'")
    assert message.endswith(f"(split 'train', {path.format(split='train')}:2)")
    _check_one_line(message)


def test_malformed_jsonl_line_names_task_split_file_and_line(tmp_path):
    lines = _lines(ROWS)
    path = _jsonl(tmp_path, "malformed", {"train": [*lines[:3], '{"question": "q3", ', *lines[3:]]})
    tasks.register_task("de_malformed", source=path, templates=TEMPLATES, cluster="de")
    with pytest.raises(errors.DataError) as raised:
        _read_batches("de_malformed")
    message = str(raised.value)
    assert message.startswith(f"task 'de_malformed', split 'train': {path.format(split='train')}:4: not valid JSON")
    _check_one_line(message)


def test_empty_split_names_task_split_and_file(tmp_path):
    path = _jsonl(tmp_path, "empty", {"train": _lines(ROWS), "validation": []})
    tasks.register_task("de_empty", source=path, templates=TEMPLATES, cluster="de")
    with pytest.raises(errors.DataError) as raised:
        _read_batches("de_empty", split="validation")
    message = str(raised.value)
    assert message == f"task 'de_empty' split 'validation' has no examples (file {path.format(split='validation')})"
    _check_one_line(message)


def test_empty_train_split_is_not_silently_left_out_of_a_mixture(tmp_path):
    """seqio would give the task a mixing rate of 0 and train on the others."""
    full = _jsonl(tmp_path, "full", {"train": _lines(ROWS)})
    empty = _jsonl(tmp_path, "empty_train", {"train": ["", "  "]})
    tasks.register_task("de_mix_full", source=full, templates=TEMPLATES, cluster="de")
    tasks.register_task("de_mix_empty", source=empty, templates=TEMPLATES, cluster="de")
    mixing.register_mixture("de_mix", ["de_mix_full", "de_mix_empty"], rate=mixing.capped_rate())
    with pytest.raises(
        errors.DataError, match=r"task 'de_mix_empty' split 'train' has no examples \(file .*empty_train"
    ):
        _read_batches("de_mix")


def test_generator_source_errors_name_the_generator_and_record():
    def numbers(split):
        return ({"question": str(i), "answer": str(i), "choices": []} for i in range(4))

    tasks.register_task(
        "de_generated", source=numbers, templates=TEMPLATES, cluster="de", preprocessor=_second_choice_of_record_2
    )
    with pytest.raises(errors.DataError) as raised:
        _read_batches("de_generated")
    assert str(raised.value).startswith("task 'de_generated', example 0: the preprocessor raised IndexError")
    assert str(raised.value).endswith("(split 'train', generator 'numbers')")


@pytest.fixture
def eval_tasks(tmp_path):
    """A task whose validation split's record 1 lacks a template field, and one with an empty validation split."""
    bad = _jsonl(tmp_path, "eval_bad", {"train": _lines(ROWS), "validation": _lines([ROWS[0], {"answer": "x"}])})
    empty = _jsonl(tmp_path, "eval_empty", {"train": _lines(ROWS), "validation": []})
    tasks.register_task("de_eval_bad", source=bad, templates=TEMPLATES, cluster="de_eval")
    tasks.register_task("de_eval_empty", source=empty, templates=TEMPLATES, cluster="de_eval")
    return {"bad": bad.format(split="validation"), "empty": empty.format(split="validation")}


def _evaluate(task, output_dir):
    evaluate.evaluate_model(
        spec=None,  # never called: reading the examples fails first
        params=None,
        vocabulary=seqio.ByteVocabulary(),
        layout=layout.ENCODER_DECODER,
        task_names=[task],
        task_feature_lengths=LENGTHS,
        output_dir=output_dir,
        title="t",
    )


def test_periodic_task_metrics_name_a_bad_eval_record(eval_tasks):
    predictor = types.SimpleNamespace(params=None)  # never called: reading the examples fails first
    task_metrics = periodic.TaskMetrics(
        evaluator.Evaluator(predictor, seqio.ByteVocabulary(), LENGTHS), evaluator.jobs_for(["de_eval_bad"])
    )
    with pytest.raises(errors.DataError) as raised:
        task_metrics(params=None)
    message = str(raised.value)
    assert message.startswith("task 'de_eval_bad', example 1: template 'de_eval_bad:0' needs field 'question'")
    assert message.endswith(f"(split 'validation', {eval_tasks['bad']}:2)")
    _check_one_line(message)


def test_evaluation_names_a_bad_eval_record(tmp_path, eval_tasks):
    with pytest.raises(errors.DataError) as raised:
        _evaluate("de_eval_bad", tmp_path / "eval")
    assert str(raised.value).endswith(f"(split 'validation', {eval_tasks['bad']}:2)")
    _check_one_line(str(raised.value))


def test_evaluation_reports_an_empty_eval_split(tmp_path, eval_tasks):
    with pytest.raises(errors.DataError) as raised:
        _evaluate("de_eval_empty", tmp_path / "eval")
    assert str(raised.value) == f"task 'de_eval_empty' split 'validation' has no examples (file {eval_tasks['empty']})"


def test_train_run_stops_on_a_bad_record_with_its_location(tmp_path):
    """End to end: the trainer reads the first batch and gets the DataError, not TensorFlow's wrapped one."""
    path = _jsonl(tmp_path, "run_data", {"train": _lines(ROWS)})
    tasks.register_task(
        "de_run", source=path, templates=TEMPLATES, cluster="de", preprocessor=_second_choice_of_record_2
    )
    gin.clear_config()
    model = tiny.TINY
    bindings = [
        f"MODEL_DIR = '{tmp_path / 'run'}'",
        "train_run.mixture = 'de_run'",
        "train_run.batch_size = 8",
        "train_run.pack = False",
        "train_run.num_steps = 1",
        "train_run.tensorboard = False",
        f"T5Config.d_model = {model.d_model}",
        f"T5Config.d_ff = {model.d_ff}",
        f"T5Config.d_kv = {model.d_kv}",
        "T5Config.num_encoder_layers = 1",
        "T5Config.num_decoder_layers = 1",
    ]
    try:
        launch.parse_config(["runs/demo.gin"], bindings)
        with pytest.raises(errors.DataError) as raised:
            launch.train_run(launch.make_run_config())
    finally:
        gin.clear_config()
    assert str(raised.value).startswith("task 'de_run', example 2: the preprocessor raised IndexError")
    assert f"(split 'train', {path.format(split='train')}:3)" in str(raised.value)
