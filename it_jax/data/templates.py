"""Instruction templates: (input pattern, target pattern) pairs rendered from an example's fields.

Patterns use `{field}` placeholders. The special placeholder `{options_}` renders the example's answer
options FLAN-style, as a block:

    OPTIONS:
    - yes
    - no

taken from the example's `options` field. Rendering without options leaves `{options_}` empty.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Mapping, Sequence
from typing import Any

OPTIONS_PLACEHOLDER = "options_"
OPTIONS_FIELD = "options"
ANSWER_FIELD = "answer"  # the field a task's answer templates render as their target
REFERENCES_FIELD = "answers"  # optional: every acceptable answer (the first is usually `answer`)


class TemplateError(ValueError):
    """A template cannot be rendered: a field is missing or the pattern is malformed."""


def format_options(options: Sequence[str]) -> str:
    """The FLAN options block: `OPTIONS:` then one `- option` line each."""
    return "OPTIONS:\n" + "\n".join(f"- {option}" for option in options)


def _field_names(pattern: str, template_name: str) -> tuple[str, ...]:
    try:
        parsed = list(string.Formatter().parse(pattern))
    except ValueError as e:
        raise TemplateError(f"template {template_name!r}: malformed pattern {pattern!r}: {e}") from None
    names = []
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise TemplateError(
                f"template {template_name!r}: placeholder {{{field}}} must be a plain field name "
                f"(letters, digits, underscores), in {pattern!r}"
            )
        names.append(field)
    return tuple(names)


@dataclasses.dataclass(frozen=True)
class Template:
    """One natural-language rendering of a task.

    Attributes:
      inputs: pattern of the model input, e.g. "Premise: {premise}\\nDoes it follow that {hypothesis}?\\n{options_}".
      targets: pattern of the target, usually "{answer}".
      name: identifier used in error messages and reports (set by the task that owns the template).
    """

    inputs: str
    targets: str
    name: str = "template"

    def __post_init__(self):
        _field_names(self.inputs, self.name)
        _field_names(self.targets, self.name)

    @property
    def fields(self) -> frozenset[str]:
        """The example fields the template reads (`{options_}` reads `options`)."""
        names = set(_field_names(self.inputs, self.name) + _field_names(self.targets, self.name))
        if OPTIONS_PLACEHOLDER in names:
            names.discard(OPTIONS_PLACEHOLDER)
            names.add(OPTIONS_FIELD)
        return frozenset(names)

    @property
    def uses_options(self) -> bool:
        return OPTIONS_PLACEHOLDER in _field_names(self.inputs, self.name)

    def render(self, fields: Mapping[str, Any], *, with_options: bool = True) -> dict[str, str]:
        """Renders `{"inputs": ..., "targets": ...}` from an example's fields.

        Raises:
          TemplateError: naming the template, the missing field and the fields that are available.
        """
        values = dict(fields)
        if self.uses_options:
            options = values.get(OPTIONS_FIELD) if with_options else ()
            if options is None:
                raise TemplateError(
                    f"template {self.name!r} renders {{{OPTIONS_PLACEHOLDER}}} but the example has no "
                    f"{OPTIONS_FIELD!r} field; available fields: {sorted(fields)}"
                )
            values[OPTIONS_PLACEHOLDER] = format_options(options) if options else ""
        return {
            "inputs": self._fill(self.inputs, values, fields).strip(),
            "targets": self._fill(self.targets, values, fields).strip(),
        }

    def _fill(self, pattern: str, values: Mapping[str, Any], fields: Mapping[str, Any]) -> str:
        try:
            return pattern.format_map(values)
        except KeyError as e:
            field = e.args[0]
            raise TemplateError(
                f"template {self.name!r} needs field {field!r}, which the example lacks; "
                f"available fields: {sorted(fields)}"
            ) from None


def as_templates(templates: Sequence[Template | tuple[str, str]], task_name: str) -> tuple[Template, ...]:
    """Normalizes `(inputs, targets)` pairs and Templates into Templates named `<task>:<index>`."""
    if not templates:
        raise TemplateError(f"task {task_name!r} has no templates")
    result = []
    for i, template in enumerate(templates):
        if isinstance(template, Template):
            pair = (template.inputs, template.targets)
        elif isinstance(template, tuple) and len(template) == 2:
            pair = template
        else:
            raise TemplateError(
                f"task {task_name!r}, template {i}: expected Template or (inputs, targets) pair, got {template!r}"
            )
        result.append(Template(*pair, name=f"{task_name}:{i}"))
    return tuple(result)
