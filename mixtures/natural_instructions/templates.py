"""NIv2 prompt patterns, FLAN 2022 style, written for it_jax. The task's Definition is the instruction.

Three families, each target `{answer}` (the instance's first output):
- `ZERO_SHOT`: the Definition and the instance's input, asking for the output.
- `INLINE`: the Definition, the task's first positive example with its explanation, then the input.
- `FEW_SHOT`: `(exemplar, inputs)` pairs. `exemplar` formats one solved instance from `{input}` and
  `{output}`; the source renders two of them, each followed by a blank line, into the field that
  `{exemplars}` names in `inputs` (`exemplars_<k>` for pattern k, see `few_shot_templates`).
"""

from __future__ import annotations

ZERO_SHOT = (
    ("{definition}\n\nInput: {input}\nOutput:", "{answer}"),
    ("Definition: {definition}\n\nNow complete the task for this input.\n{input}", "{answer}"),
    ("Instructions: {definition}\n\n{input}\n\nAnswer:", "{answer}"),
    ("Read the task description, then respond to the input.\n\nTask: {definition}\nInput: {input}", "{answer}"),
    ("{input}\n\nWhat is the output for the input above, given this task?\n{definition}", "{answer}"),
    ("You are given a task.\n{definition}\n\nQ: {input}\nA:", "{answer}"),
)

INLINE = (
    (
        (
            "{definition}\n\nHere is an example.\nInput: {example_input}\nOutput: {example_output}\n"
            "Explanation: {example_explanation}\n\nNow solve this one.\nInput: {input}\nOutput:"
        ),
        "{answer}",
    ),
    (
        (
            'Task definition: {definition}\n\nFor instance, given "{example_input}", the answer is '
            '"{example_output}". {example_explanation}\n\nYour turn: {input}'
        ),
        "{answer}",
    ),
    (
        (
            "Instructions: {definition}\n\nExample: {example_input}\nSolution: {example_output}\n"
            "Why? {example_explanation}\n\nNew input: {input}\nSolution:"
        ),
        "{answer}",
    ),
    (
        (
            "{definition}\n\nLook at how this example is solved, then do the same for the new input.\n"
            "Example input: {example_input}\nExample output: {example_output}\nReason: {example_explanation}\n\n"
            "New input: {input}\nNew output:"
        ),
        "{answer}",
    ),
)

FEW_SHOT = (
    ("Input: {input}\nOutput: {output}", "{definition}\n\n{exemplars}Input: {input}\nOutput:"),
    ("Q: {input}\nA: {output}", "Definition: {definition}\n\n{exemplars}Q: {input}\nA:"),
    (
        "Example: {input}\nAnswer: {output}",
        "Here is a task and some solved examples.\n\nTask: {definition}\n\n{exemplars}Example: {input}\nAnswer:",
    ),
    (
        "[input] {input}\n[output] {output}",
        (
            "Follow the instructions, as in the solved examples.\nInstructions: {definition}\n\n{exemplars}"
            "[input] {input}\n[output]"
        ),
    ),
    ("{input}\n=> {output}", "{definition}\n\nSolved examples:\n\n{exemplars}Now this one:\n{input}\n=>"),
)


def few_shot_templates() -> tuple[tuple[str, str], ...]:
    """The few-shot (inputs, targets) templates, pattern k reading its exemplars from `exemplars_<k>`."""
    return tuple(
        (inputs.replace("{exemplars}", f"{{exemplars_{k}}}"), "{answer}") for k, (_, inputs) in enumerate(FEW_SHOT)
    )
