"""Templates: field rendering, the FLAN options block, and errors that say what went wrong."""

import pytest

from it_jax.data.templates import Template, TemplateError, as_templates, format_options


def test_renders_fields_into_inputs_and_targets():
    template = Template("Question: {question}\nContext: {context}", "{answer}")
    rendered = template.render({"question": "Who?", "context": "Anna ran.", "answer": "Anna", "unused": 3})
    assert rendered == {"inputs": "Question: Who?\nContext: Anna ran.", "targets": "Anna"}


def test_renders_non_string_fields_and_literal_braces():
    rendered = Template("{{{a}}} + {b}", "{total}").render({"a": 1, "b": 2, "total": 3})
    assert rendered == {"inputs": "{1} + 2", "targets": "3"}


def test_options_block_is_flan_format():
    assert format_options(["a", "b"]) == "OPTIONS:\n- a\n- b"
    template = Template("Is it?\n{options_}", "{answer}")
    rendered = template.render({"answer": "a", "options": ["a", "b"]})
    assert rendered["inputs"] == "Is it?\nOPTIONS:\n- a\n- b"
    assert rendered["targets"] == "a"


def test_rendering_without_options_leaves_no_block():
    template = Template("Is it?\n{options_}", "{answer}")
    assert template.render({"answer": "a", "options": ["a", "b"]}, with_options=False)["inputs"] == "Is it?"
    assert template.render({"answer": "a", "options": []})["inputs"] == "Is it?"


def test_template_fields_map_options_placeholder_to_options_field():
    template = Template("{premise}\n{options_}", "{answer}")
    assert template.fields == frozenset({"premise", "answer", "options"})
    assert template.uses_options
    assert not Template("{premise}", "{answer}").uses_options


def test_missing_field_error_names_template_field_and_available_fields():
    template = Template("Premise: {premise}\nHypothesis: {hypothesis}", "{answer}", name="rte:3")
    with pytest.raises(TemplateError) as error:
        template.render({"premise": "p", "answer": "yes"})
    message = str(error.value)
    assert "'rte:3'" in message
    assert "'hypothesis'" in message
    assert "['answer', 'premise']" in message


def test_missing_field_in_targets_is_reported():
    with pytest.raises(TemplateError, match="'label_text'"):
        Template("{x}", "{label_text}", name="t").render({"x": "1"})


def test_options_placeholder_without_options_field_is_reported():
    with pytest.raises(TemplateError, match="no 'options' field") as error:
        Template("{q}\n{options_}", "{a}", name="cls:0").render({"q": "?", "a": "yes"})
    assert "'cls:0'" in str(error.value)
    assert "['a', 'q']" in str(error.value)


@pytest.mark.parametrize("pattern", ["{a.b}", "{a!r}", "{a:>5}", "{a[0]}", "{}", "{0}", "unclosed {a", "stray }"])
def test_malformed_placeholders_are_rejected_at_construction(pattern):
    with pytest.raises(TemplateError):
        Template(pattern, "{answer}")
    with pytest.raises(TemplateError):
        Template("{question}", pattern)


def test_malformed_placeholder_error_names_template():
    with pytest.raises(TemplateError, match="'nli:1'.*plain field name"):
        Template("{premise.text}", "{answer}", name="nli:1")


def test_as_templates_names_templates_by_task_and_index():
    templates = as_templates([("{a}", "{b}"), Template("{c}", "{d}", name="ignored")], "my_task")
    assert [t.name for t in templates] == ["my_task:0", "my_task:1"]
    assert (templates[1].inputs, templates[1].targets) == ("{c}", "{d}")


def test_as_templates_rejects_empty_and_malformed_entries():
    with pytest.raises(TemplateError, match="no templates"):
        as_templates([], "empty_task")
    with pytest.raises(TemplateError, match="template 1"):
        as_templates([("{a}", "{b}"), ("only inputs",)], "bad_task")
    with pytest.raises(TemplateError, match="'bad_task:0'"):
        as_templates([("{a!s}", "{b}")], "bad_task")
