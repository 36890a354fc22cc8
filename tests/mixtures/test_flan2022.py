import pytest
import seqio

from it_jax.data import fewshot, tasks
from it_jax.data.context import TaskContext
from mixtures import flan2022


def _register(name, n):
    return tasks.register_task(
        name,
        source=lambda split: iter([{"x": str(i), "answer": "yes" if i % 2 else "no"} for i in range(n)]),
        templates=[("{x}?\n{options_}", "{answer}")],
        cluster="test_compose",
        options=["yes", "no"],
        variants=fewshot.VARIANTS,
    )


def test_compose_weights_submixtures_and_variant_shares():
    a = [_register("test_compose_a1", 40), _register("test_compose_a2", 10)]
    b = [_register("test_compose_b1", 30)]
    mixture = flan2022.compose(
        "test_composed",
        [
            flan2022.Submixture("big", a, weight=0.4, cap=20, variant_shares=flan2022.FOUR_WAY),
            flan2022.Submixture("small", b, weight=0.1, cap=100, variant_shares=flan2022.ZERO_AND_FEW_SHOT),
        ],
        TaskContext(),
    )
    rates = {t.name: mixture.get_rate(t) for t in mixture.tasks}
    total = sum(rates.values())
    shares = {name: rate / total for name, rate in rates.items()}
    # "big" gets 0.8 of the mixture, a quarter per variant; inside, a1 is capped at 20 against a2's 10.
    assert shares["test_compose_a1"] == pytest.approx(0.8 * 0.25 * 20 / 30)
    assert shares["test_compose_a2_fs_noopt"] == pytest.approx(0.8 * 0.25 * 10 / 30)
    assert shares["test_compose_b1"] == pytest.approx(0.2 * 0.5)
    assert shares["test_compose_b1_fs_opt"] == pytest.approx(0.2 * 0.5)
    assert "test_compose_b1_zs_noopt" not in shares
    assert seqio.MixtureRegistry.get("test_composed_big_zs_opt")


def test_compose_rejects_bad_shares():
    b = [_register("test_compose_c1", 5)]
    with pytest.raises(ValueError, match="must sum to 1"):
        flan2022.compose("test_bad", [flan2022.Submixture("s", b, 1.0, 10, {"": 0.5})], TaskContext())
    with pytest.raises(ValueError, match="unknown variant suffix"):
        flan2022.compose("test_bad", [flan2022.Submixture("s", b, 1.0, 10, {"_fs": 1.0})], TaskContext())


def test_flan2022_registers_the_published_recipe_over_available_submixtures():
    mixture = flan2022.register(TaskContext())
    names = {t.name for t in mixture.tasks}
    assert "flan2021_rte_fs_noopt" in names and "cot_gsm8k_fs_opt" in names
    assert "cot_gsm8k_zs_noopt" not in names
    assert flan2022.PUBLISHED_WEIGHTS == {"flan2021": 0.4, "t0": 0.32, "niv2": 0.2, "cot": 0.05, "dialog": 0.03}
