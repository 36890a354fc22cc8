import itertools

import seqio

from it_jax.data import fewshot, tasks


def _numbers(split):
    for i in range(40 if split == "train" else 5):
        yield {"n": str(i), "answer": "even" if i % 2 == 0 else "odd"}


def _register(name, **kwargs):
    return tasks.register_task(
        name,
        source=_numbers,
        templates=[("Is {n} even or odd?\n{options_}", "{answer}"), ("{n}: parity?\n{options_}", "{answer}")],
        cluster="test_fewshot",
        options=["even", "odd"],
        **kwargs,
    )


def test_choose_exemplars_is_deterministic_distinct_and_excludes_the_query():
    first = fewshot.choose_exemplars("k", 3, pool_size=10, num_shots=3, exclude=3)
    assert first == fewshot.choose_exemplars("k", 3, pool_size=10, num_shots=3, exclude=3)
    assert len(set(first)) == 3 and 3 not in first
    assert fewshot.choose_exemplars("k", 0, pool_size=2, num_shots=3, exclude=0) == [1]


def test_join_exemplars_drops_exemplars_to_fit_the_budget():
    exemplars = [("question one", "a"), ("question two", "b")]
    assert fewshot.join_exemplars(exemplars, "query", max_chars=1000) == "question one\na\n\nquestion two\nb\n\nquery"
    assert fewshot.join_exemplars(exemplars, "query", max_chars=25) == "question one\na\n\nquery"
    assert fewshot.join_exemplars(exemplars, "query", max_chars=3) == "query"


def test_variants_are_registered_and_render_as_named():
    info = _register("test_fewshot_parity", variants=fewshot.VARIANTS)
    for suffix in ("_zs_noopt", "_fs_opt", "_fs_noopt"):
        assert seqio.TaskRegistry.get(f"test_fewshot_parity{suffix}")

    no_options = next(info.render("validation", 0, fewshot.VARIANTS[1]))
    assert no_options["inputs"] == "Is 0 even or odd?" and no_options["targets"] == "even"

    few = list(info.render("validation", 0, fewshot.VARIANTS[2]))
    for example in few:
        blocks = example["inputs"].split("\n\n")
        assert len(blocks) == 4
        for block in blocks[:-1]:
            question, target = block.rsplit("\n", 1)
            n = int(question.split()[1])
            assert question.startswith("Is ") and "OPTIONS:" in question
            assert target == ("even" if n % 2 == 0 else "odd")
    assert few == list(info.render("validation", 0, fewshot.VARIANTS[2]))


def test_few_shot_inputs_respect_the_length_budget():
    budget = fewshot.Variant("_tight", num_shots=3, max_input_chars=60)
    info = _register("test_fewshot_budget")
    for example in itertools.islice(info.render("train", None, budget), 20):
        assert len(example["inputs"]) <= 60 or "\n\n" not in example["inputs"]


def test_train_exemplars_never_include_the_query_itself():
    info = _register("test_fewshot_self")
    variant = fewshot.Variant("_one", with_options=False, num_shots=5, max_input_chars=10_000)
    for j, example in enumerate(itertools.islice(info.render("train", 0, variant), 30)):
        shots = example["inputs"].split("\n\n")[:-1]
        assert f"Is {j} even or odd?\n" not in [s[: len(f"Is {j} even or odd?\n")] for s in shots]
