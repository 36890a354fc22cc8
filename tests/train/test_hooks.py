"""Hooks: when `every` makes them run, what they pass along, and the built-in ones with stand-ins."""

import dataclasses

import pytest

from it_jax.train import hooks


@dataclasses.dataclass
class Recording:
    every: int
    returns: dict | None = None
    on_stop: bool = False

    def __post_init__(self):
        self.calls = []

    def __call__(self, step, state, context):
        self.calls.append((step, dict(context.metrics)))
        return self.returns


class FakeLogger:
    def __init__(self):
        self.updates, self.evals = [], []

    def update(self, step, stats):
        self.updates.append((step, stats))

    def log_eval(self, step, metrics, *, seconds=0.0):
        self.evals.append((step, metrics, seconds))


def _run(hook_list, num_steps, stop_at=None, logger=None):
    for step in range(1, num_steps + 1):
        context = hooks.Context(
            num_steps=num_steps, position=step, stats={"x": step}, logger=logger or FakeLogger(),
            stopping=step == stop_at,
        )
        hooks.run_hooks(hook_list, step, f"state{step}", context)
        if step == stop_at:
            return


def test_every_n_fires_at_multiples_and_at_the_final_step():
    every_3, every_1, every_10 = Recording(3), Recording(1), Recording(10)
    _run([every_3, every_1, every_10], num_steps=8)
    assert [step for step, _ in every_3.calls] == [3, 6, 8]
    assert [step for step, _ in every_1.calls] == list(range(1, 9))
    assert [step for step, _ in every_10.calls] == [8]


def test_a_stop_runs_only_the_hooks_that_ask_for_it():
    saver, other = Recording(5, on_stop=True), Recording(5)
    _run([saver, other], num_steps=20, stop_at=7)
    assert [step for step, _ in saver.calls] == [5, 7]
    assert [step for step, _ in other.calls] == [5]


def test_later_hooks_see_what_earlier_ones_returned_at_the_same_step():
    first, second = Recording(2, returns={"eval/loss": 1.5}), Recording(1)
    _run([first, second], num_steps=3)
    assert second.calls == [(1, {}), (2, {"eval/loss": 1.5}), (3, {"eval/loss": 1.5})]


def test_evaluate_logs_its_metrics_and_returns_them():
    seen = []

    def evaluation(params, **reference):
        seen.append((params, reference))
        return {"eval/loss": 2.0}

    @dataclasses.dataclass
    class State:
        params: str
        reference: str | None = None

    logger = FakeLogger()
    hook = hooks.Evaluate(evaluation, every=2)
    context = hooks.Context(num_steps=4, position=2, stats={}, logger=logger)
    assert hook(2, State("p2"), context) == {"eval/loss": 2.0}
    assert seen == [("p2", {})] and logger.evals[0][:2] == (2, {"eval/loss": 2.0})
    hook(4, State("p4", reference="r"), context)
    assert seen[-1] == ("p4", {"reference": "r"})
    with pytest.raises(ValueError, match="every must be an int ≥ 1"):
        hooks.Evaluate(evaluation, every=0)


def test_log_metrics_feeds_every_step_to_the_logger():
    logger = FakeLogger()
    _run([hooks.LogMetrics()], num_steps=3, logger=logger)
    assert [(step, stats["x"]) for step, stats in logger.updates] == [(1, 1), (2, 2), (3, 3)]


def test_save_checkpoint_stores_the_position_and_earlier_metrics():
    class Monitor:
        def __init__(self):
            self.events = []

        def settle(self):
            self.events.append("settle")

        def saved(self, step):
            self.events.append(("saved", step))

    class Checkpointer:
        def __init__(self):
            self.saves = []

        def save(self, step, state, metadata, *, data_position, metrics, force):
            self.saves.append((step, state, metadata, data_position, metrics, force))

    checkpointer, monitor = Checkpointer(), Monitor()
    save = hooks.SaveCheckpoint(checkpointer, monitor, {"run": 1}, every=4)
    _run([Recording(4, returns={"eval/loss": 0.5}), save], num_steps=6)
    assert [s[:5] for s in checkpointer.saves] == [
        (4, "state4", {"run": 1}, 4, {"eval/loss": 0.5}),
        (6, "state6", {"run": 1}, 6, {"eval/loss": 0.5}),
    ]
    assert monitor.events == ["settle", ("saved", 4), "settle", ("saved", 6)]
