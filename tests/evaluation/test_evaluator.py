"""The evaluator with a stub predictor: option choice, accuracy, multi-reference exact match, mean and best
over templates, exclusions, example limits, prompt variants and jobs; and the report it writes."""

import json
import re

import numpy as np
import pytest
import seqio

from it_jax import errors
from it_jax.data.context import TaskContext
from it_jax.data import fewshot, tasks
from it_jax.evaluation import metrics, report
from it_jax.evaluation.evaluator import EvalJob, Evaluator, jobs_for
from it_jax.evaluation.results import EvalResults, TaskResult, TemplateResult

VOCAB = seqio.ByteVocabulary()
LENGTHS = {"inputs": 1024, "targets": 32}
NUM_EXAMPLES = 5
CLS_TEMPLATES = [
    ("T0: item {n}\n{options_}", "{answer}"),
    ("T1: which colour is item {n}?\n{options_}", "{answer}"),
    ("T2: item {n}, pick one.\n{options_}", "{answer}"),
]
# How many leading examples the stub answers correctly under each template.
CORRECT_UP_TO = {0: 3, 1: 1, 2: 4}
GEN_TEMPLATES = [("G0: say {n}", "{answer}"), ("G1: respond to {n}", "A: {answer}")]


def _options(n):
    """Per-example options: 2 or 3 of them."""
    colours = ["red", "green", "blue"][: 2 + n % 2]
    return [f"{c}{n}" for c in colours]


def _answer_index(n):
    return (n + 1) % len(_options(n))


def _cls_source(split):
    offset = 0 if split == "validation" else 100  # training examples (few-shot exemplars) are 100, 101, ...
    count = NUM_EXAMPLES if split == "validation" else 8
    for n in range(offset, offset + count):
        yield {"n": n, "options": _options(n), "answer": _options(n)[_answer_index(n)]}


def _gen_source(split):
    offset = 0 if split == "validation" else 100
    for n in range(offset, offset + NUM_EXAMPLES):
        yield {"n": n, "answer": f"main{n}", "answers": [f"main{n}", f"alt{n}", f"other{n}"]}


def _register(name, **kwargs):
    return tasks.register_task(
        name,
        source=_cls_source,
        templates=CLS_TEMPLATES,
        cluster="test_ev_colours",
        options=(),  # per-example options from the source
        metrics=[metrics.accuracy],
        context=TaskContext(VOCAB),
        **kwargs,
    )


def _register_gen(name):
    return tasks.register_task(
        name,
        source=_gen_source,
        templates=GEN_TEMPLATES,
        inverted_templates=[("Write a request answered by {answer}", "say {n}")],
        cluster="test_ev_echo",
        metrics=[metrics.exact_match],
        context=TaskContext(VOCAB),
    )


def _query(text):
    """(template, example number) of a prompt: the last `Tk: ... n` in it (few-shot prompts end with the query)."""
    template, n = re.findall(r"([TG]\d): \D*(\d+)", text)[-1]
    return int(template[1]), int(n)


class StubPredictor:
    """Scores options by a known rule and 'generates' a known text; records what it was asked."""

    def __init__(self):
        self.calls = []

    def score_options(self, inputs, options, *, normalize=False):
        self.calls.append(("score", [VOCAB.decode(i) for i in inputs], normalize))
        scores = []
        for ids, opts in zip(inputs, options):
            template, n = _query(VOCAB.decode(ids))
            texts = [VOCAB.decode(o) for o in opts]
            assert texts == _options(n), "options arrive tokenized, EOS included, in the example's order"
            answer = _answer_index(n)
            right = n < CORRECT_UP_TO[template]
            # Right: the answer scores highest. Wrong: the answer scores LOWEST (so argmin would be right) and
            # the highest is another option.
            row = np.asarray([-1.0 - k for k in range(len(opts))])
            if right:
                row[answer] = 0.5
            else:
                row[answer] = -10.0
            scores.append(row)
        return scores

    def generate(self, inputs):
        outputs = []
        for ids in inputs:
            template, n = _query(VOCAB.decode(ids))
            prefix = "A: " if template == 1 else ""
            # Even examples: the first reference; odd ones: the second; example 4: wrong.
            text = f"{prefix}{'main' if n % 2 == 0 else 'alt'}{n}" if n != 4 else f"{prefix}nonsense"
            outputs.append(VOCAB.encode(text))
        self.calls.append(("generate", [VOCAB.decode(i) for i in inputs]))
        return outputs


def _evaluator(**kwargs):
    return Evaluator(StubPredictor(), VOCAB, LENGTHS, **kwargs)


def test_rank_classification_picks_the_highest_scoring_option():
    info = _register("test_ev_rank")
    evaluator = _evaluator()
    job = EvalJob(info, fewshot.ZERO_SHOT)
    for template in range(3):
        result, predictions = evaluator.evaluate_template(job, template)
        assert [p.idx for p in predictions] == list(range(NUM_EXAMPLES))
        for p in predictions:
            n = p.idx
            assert p.options == _options(n)
            assert p.targets == [_options(n)[_answer_index(n)]]
            assert len(p.option_scores) == len(p.options)
            assert p.prediction == p.options[int(np.argmax(p.option_scores))]
            if n < CORRECT_UP_TO[template]:
                assert p.prediction == p.targets[0]
            else:
                assert p.prediction != p.targets[0]
                assert p.prediction != p.options[int(np.argmin(p.option_scores))]
            assert p.inputs.startswith(f"T{template}: ") and "OPTIONS:" in p.inputs
        correct = sum(p.prediction == p.targets[0] for p in predictions)
        assert correct == CORRECT_UP_TO[template]
        assert result.template == template and result.num_examples == NUM_EXAMPLES
        assert result.metrics == {"accuracy": 100.0 * correct / NUM_EXAMPLES}
        # Options per example: 2, 3, 2, 3, 2; the answer is the second option except in example 1 (the third).
        assert result.chance == pytest.approx(100.0 * (3 / 2 + 2 / 3) / 5)
        assert result.majority == pytest.approx(80.0)


def test_mean_and_best_over_templates():
    info = _register("test_ev_mean_best")
    results = _evaluator().evaluate(jobs_for([info.name]))
    (task,) = results.tasks
    assert (task.task, task.cluster, task.variant, task.scoring) == (info.name, "test_ev_colours", "zs_opt", "rank")
    accuracies = [100.0 * CORRECT_UP_TO[k] / NUM_EXAMPLES for k in range(3)]  # 60, 20, 80
    assert [t.metrics["accuracy"] for t in task.templates] == pytest.approx(accuracies)
    assert task.mean["accuracy"] == pytest.approx(sum(accuracies) / 3)
    assert task.best["accuracy"] == pytest.approx(80.0)
    assert task.primary_metric == "accuracy"
    assert results.split == "validation" and results.excluded == {}


def test_length_normalization_reaches_the_predictor():
    info = _register("test_ev_normalize")
    evaluator = _evaluator(length_normalize=True)
    evaluator.evaluate_template(EvalJob(info, fewshot.ZERO_SHOT), 0)
    assert [call[2] for call in evaluator.predictor.calls] == [True]
    assert evaluator.evaluate([EvalJob(info, fewshot.ZERO_SHOT)]).length_normalized


def test_generation_exact_match_credits_any_reference():
    info = _register_gen("test_ev_generate")
    evaluator = _evaluator()
    results = evaluator.evaluate(jobs_for([info.name]))
    (task,) = results.tasks
    assert task.scoring == "generate"
    # Only the answer templates are evaluated, not the inverted one.
    assert [t.template for t in task.templates] == [0, 1]
    # Examples 0-3 match their first or second reference, example 4 nothing: 4 / 5.
    assert [t.metrics["exact_match"] for t in task.templates] == pytest.approx([80.0, 80.0])

    _, predictions = evaluator.evaluate_template(EvalJob(info, fewshot.ZERO_SHOT), 1)
    for p in predictions:
        n = p.idx
        assert p.targets == [f"A: main{n}", f"A: alt{n}", f"A: other{n}"]
        assert p.options == [] and p.option_scores == []
    assert predictions[1].prediction == "A: alt1" and predictions[4].prediction == "A: nonsense"


def test_excluded_examples_and_max_examples():
    info = _register("test_ev_excluded")
    evaluator = _evaluator(excluded={info.name: {1, 3, 99}, "test_ev_not_evaluated": {0}})  # 99: not in the split
    result, predictions = evaluator.evaluate_template(EvalJob(info, fewshot.ZERO_SHOT), 0)
    assert [p.idx for p in predictions] == [0, 2, 4]
    assert result.num_examples == 3
    # Template 0 answers examples 0-2 right: of those kept, 0 and 2.
    assert result.metrics["accuracy"] == pytest.approx(100.0 * 2 / 3)
    results = evaluator.evaluate(jobs_for([info.name]))
    assert results.excluded == {info.name: 2}

    limited = _evaluator(max_examples=2, excluded={info.name: {0}})
    result, predictions = limited.evaluate_template(EvalJob(info, fewshot.ZERO_SHOT), 2)
    assert [p.idx for p in predictions] == [1, 2] and result.num_examples == 2
    assert len(_evaluator(max_examples=4).examples(EvalJob(info, fewshot.ZERO_SHOT), 0)) == 4


def test_few_shot_inputs_hold_training_exemplars_then_the_query():
    info = _register("test_ev_fewshot", variants=fewshot.VARIANTS)
    (job,) = jobs_for([info.name], ["fs_opt"])
    assert job.info is info and job.variant.name == "fs_opt" and job.variant.num_shots == 3
    evaluator = _evaluator()
    zero_shot = evaluator.examples(EvalJob(info, fewshot.ZERO_SHOT), 1)
    few_shot = evaluator.examples(job, 1)
    assert len(few_shot) == NUM_EXAMPLES
    # Exemplars are rendered with the query's template (T1), with their answers, from the training split.
    exemplars = set()
    for n in range(100, 108):
        opts = _options(n)
        options_block = "OPTIONS:\n" + "\n".join(f"- {o}" for o in opts)
        exemplars.add(f"T1: which colour is item {n}?\n{options_block}\n{opts[_answer_index(n)]}")
    for zs, fs in zip(zero_shot, few_shot):
        text, query = fs["inputs_pretokenized"].decode(), zs["inputs_pretokenized"].decode()
        parts = text.split(fewshot.EXEMPLAR_SEPARATOR)
        assert parts[-1] == query
        assert len(parts) == 4
        assert set(parts[:-1]) <= exemplars, parts[:-1]
        assert len(set(parts[:-1])) == 3
        # The few-shot prompt is what the evaluator tokenizes and the predictor reads.
        assert fs["inputs"].tolist() == VOCAB.encode(text) + [VOCAB.eos_id]
        assert fs["targets_pretokenized"] == zs["targets_pretokenized"]

    result, predictions = evaluator.evaluate_template(job, 1)
    assert predictions[0].inputs.count("T1: which colour") == 4
    assert result.metrics["accuracy"] == pytest.approx(100.0 * CORRECT_UP_TO[1] / NUM_EXAMPLES)


def test_zero_shot_without_options_drops_the_options_block():
    info = _register("test_ev_noopt", variants=fewshot.VARIANTS)
    (job,) = jobs_for([info.name], ["zs_noopt"])
    examples = _evaluator().examples(job, 0)
    assert examples and all(b"OPTIONS" not in ex["inputs_pretokenized"] for ex in examples)
    # Rank classification still scores each example's options.
    assert [o.decode() for o in examples[1]["options"]] == _options(1)
    with_options = _evaluator().examples(jobs_for([info.name], ["zs_opt"])[0], 0)
    assert all(b"OPTIONS:" in ex["inputs_pretokenized"] for ex in with_options)


def test_jobs_for_variant_suffixed_names_and_lists():
    info = _register("test_ev_jobs", variants=fewshot.VARIANTS)
    assert jobs_for([info.name]) == [EvalJob(info, fewshot.ZERO_SHOT)]
    (job,) = jobs_for([f"{info.name}_fs_opt"])
    assert job.info is info and job.variant == fewshot.variant_named("fs_opt")
    (job,) = jobs_for([f"{info.name}_zs_noopt"])
    assert job.variant.name == "zs_noopt"
    jobs = jobs_for([info.name, f"{info.name}_fs_noopt"], ["zs_opt", "fs_noopt"])
    assert [j.variant.name for j in jobs] == ["zs_opt", "fs_noopt"]  # the same pairs are not repeated
    with pytest.raises(ValueError, match="unknown prompt variant"):
        jobs_for([info.name], ["three_shot"])
    with pytest.raises(KeyError):
        jobs_for(["test_ev_never_registered"])


def test_evaluating_several_variants_reports_each():
    info = _register("test_ev_variants", variants=fewshot.VARIANTS)
    results = _evaluator(max_examples=3).evaluate(jobs_for([info.name], ["zs_opt", "fs_opt", "zs_noopt"]))
    assert [(t.task, t.variant) for t in results.tasks] == [
        (info.name, "zs_opt"),
        (info.name, "fs_opt"),
        (info.name, "zs_noopt"),
    ]
    assert all(len(t.templates) == 3 and t.templates[0].num_examples == 3 for t in results.tasks)


def _full_results(tmp_path):
    cls = _register("test_ev_report_cls", variants=fewshot.VARIANTS)
    gen = _register_gen("test_ev_report_gen")
    evaluator = _evaluator(excluded={cls.name: {4}})
    writer = report.predictions_writer(tmp_path)
    jobs = jobs_for([cls.name], ["zs_opt", "fs_opt"]) + jobs_for([gen.name])
    return evaluator.evaluate(jobs, on_template=writer, checkpoint="runs/x", step=7), cls, gen


def test_report_tables_json_round_trip_and_predictions(tmp_path):
    results, cls, gen = _full_results(tmp_path)
    assert EvalResults.from_json(results.to_json()) == results
    assert EvalResults.from_json(json.loads(json.dumps(results.to_json()))) == results
    assert results.excluded == {cls.name: 1} and results.step == 7

    markdown = report.write_report(results, tmp_path, title="Stub evaluation")
    assert report.read_results(tmp_path) == results
    assert "[results.json](results.json)" in markdown
    assert "## By cluster" in markdown and "## By prompt variant" in markdown
    header = "| task | variant | cluster | trained | metric | t0 | t1 | t2 | mean | best | chance | majority |"
    assert header in markdown
    # Template 0 answers 3 of the 4 kept examples, template 1 one and template 2 all 4 (example 4 left out);
    # always the second option is right in 3 of them; no reference is shared by two generation examples (1 in 5).
    row = "| accuracy | 75.0 | 25.0 | 100.0 | 66.7 | 100.0 | 41.7 | 75.0 |"
    assert f"| {cls.name} | zs_opt | test_ev_colours |  {row}" in markdown
    gen_row = "| exact_match | 80.0 | 80.0 |  | 80.0 | 80.0 | n/a | 20.0 |"
    assert f"| {gen.name} | zs_opt | test_ev_echo |  {gen_row}" in markdown
    assert "**Verdict:** mean " in markdown
    assert "| test_ev_colours | 2 | 66.7 | 100.0 |" in markdown
    assert "| fs_opt | 1 | 66.7 | 100.0 |" in markdown
    assert "| zs_opt | 2 | 73.3 | 90.0 |" in markdown

    folder = tmp_path / report.PREDICTIONS_DIR
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(
        [f"{cls.name}__{v}__t{k}.jsonl" for v in ("zs_opt", "fs_opt") for k in range(3)]
        + [f"{gen.name}__zs_opt__t{k}.jsonl" for k in range(2)]
    )
    rank_lines = [json.loads(line) for line in (folder / f"{cls.name}__fs_opt__t2.jsonl").read_text().splitlines()]
    assert [r["idx"] for r in rank_lines] == [0, 1, 2, 3]
    for record in rank_lines:
        assert {"inputs", "targets", "prediction", "options", "option_scores"} <= set(record)
        assert record["options"] == _options(record["idx"]) and len(record["option_scores"]) == len(record["options"])
        assert record["prediction"] == record["options"][int(np.argmax(record["option_scores"]))]
        assert record["inputs"].endswith("pick one.\nOPTIONS:\n" + "\n".join(f"- {o}" for o in record["options"]))
    gen_lines = [json.loads(line) for line in (folder / f"{gen.name}__zs_opt__t1.jsonl").read_text().splitlines()]
    assert len(gen_lines) == NUM_EXAMPLES
    assert gen_lines[1]["targets"] == ["A: main1", "A: alt1", "A: other1"] and gen_lines[1]["prediction"] == "A: alt1"
    assert all("options" not in r and "option_scores" not in r for r in gen_lines)


def test_task_result_from_json_round_trip_and_statistics():
    task = TaskResult(
        "t", "c", "fs_opt", "generate",
        [TemplateResult(0, 4, {"bleu": 10.0, "rouge1": 50.0}), TemplateResult(1, 4, {"bleu": 30.0, "rouge1": 20.0})],
    )
    data = task.to_json()
    assert data["mean"] == {"bleu": 20.0, "rouge1": 35.0} and data["best"] == {"bleu": 30.0, "rouge1": 50.0}
    assert TaskResult.from_json(json.loads(json.dumps(data))) == task
    assert task.primary_metric == "bleu"


def test_select_tasks_by_list_cluster_or_mixture():
    from it_jax.data import mixing
    from it_jax.evaluation import evaluate

    first, second = _register("test_ev_select_a"), _register("test_ev_select_b")
    assert evaluate.select_tasks(tasks=[second.name], cluster="test_ev_colours") == [second.name]
    in_cluster = evaluate.select_tasks(cluster="test_ev_colours")
    assert first.name in in_cluster and second.name in in_cluster
    assert all(tasks.task_info(n).cluster == "test_ev_colours" for n in in_cluster)
    mixing.register_mixture("test_ev_select_mix", [first.name, second.name], rate=1.0)
    assert sorted(evaluate.select_tasks(mixture="test_ev_select_mix")) == [first.name, second.name]
    with pytest.raises(ValueError, match="has no registered tasks"):
        evaluate.select_tasks(cluster="test_ev_no_such_cluster")
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate.select_tasks()
    with pytest.raises(errors.ConfigError, match="no instruction task 'test_ev_never_registered'"):
        evaluate.select_tasks(tasks=["test_ev_never_registered"])


def test_trained_tasks_mark_results_seen_or_held_out():
    from it_jax.data import mixing
    from it_jax.evaluation import evaluate

    trained, held_out = _register("test_ev_trained", variants=fewshot.VARIANTS), _register_gen("test_ev_held_out")
    mixing.register_mixture("test_ev_trained_mix", [trained.name, f"{trained.name}_fs_opt"], rate=1.0)
    # Any prompt variant of a task counts as the task.
    assert evaluate.trained_task_names("test_ev_trained_mix") == {trained.name}
    assert evaluate.trained_task_names(["test_ev_trained_mix", held_out.name]) == {trained.name, held_out.name}
    jobs = jobs_for([trained.name, held_out.name])
    trained_names = evaluate.trained_task_names("test_ev_trained_mix")
    marked = _evaluator(max_examples=2).evaluate(jobs, trained_tasks=trained_names)
    assert [(t.task, t.seen) for t in marked.tasks] == [(trained.name, True), (held_out.name, False)]
    assert [t.seen for t in _evaluator(max_examples=2).evaluate(jobs).tasks] == [None, None]
