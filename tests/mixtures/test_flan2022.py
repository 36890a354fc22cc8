import collections

import pytest
import seqio

from it_jax import errors
from it_jax.data import fewshot, layout, packed_input, tasks
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


def _data_dir(shared_data, tmp_path):
    """A data directory with the NIv2 miniature and the Taskmaster mirror (the submixes that need local data)."""
    (tmp_path / "natural_instructions").symlink_to(shared_data / "natural_instructions")
    (tmp_path / "taskmaster__tm4_2024").symlink_to(shared_data / "tfds_jsonl" / "taskmaster__tm4_2024")
    return str(tmp_path)


def test_flan2022_registers_all_five_submixes_in_their_variants(shared_data, tmp_path):
    mixture = flan2022.register(TaskContext(data_dir=_data_dir(shared_data, tmp_path)))
    names = {t.name for t in mixture.tasks}
    assert {"flan2021_rte_fs_noopt", "t0_dream_zs_noopt", "cot_gsm8k_fs_opt", "dialog_taskmaster_inverted"} <= names
    assert any(name.startswith("niv2_") and name.endswith("_fs_opt") for name in names)
    assert "cot_gsm8k_zs_noopt" not in names and not any(n.startswith("dialog_") and "noopt" in n for n in names)
    assert flan2022.PUBLISHED_WEIGHTS == {"flan2021": 0.4, "t0": 0.32, "niv2": 0.2, "cot": 0.05, "dialog": 0.03}


def test_an_unavailable_submix_is_an_error_naming_it_unless_dropped():
    with pytest.raises(errors.ConfigError, match=r"the niv2 submix is unavailable: .*drop=\('niv2',\)"):
        flan2022.register(TaskContext(), name="test_f22_all")
    flan2022.register(TaskContext(), name="test_f22_kept", drop=("niv2",))
    parts = {name for name in seqio.MixtureRegistry.names() if name.startswith("test_f22_kept_")}
    assert parts and not any(name.startswith("test_f22_kept_niv2") for name in parts)
    with pytest.raises(errors.ConfigError, match="cannot drop"):
        flan2022.register(TaskContext(), drop=("niv3",))


def _stand_ins(sub, sizes, inverted=False):
    """Test-sized tasks for submix `sub` in every prompt variant (sizes: examples per task)."""
    return [_register(f"test_f22_{sub}_{k}{'_inverted' if inverted else ''}", n) for k, n in enumerate(sizes)]


@pytest.mark.parametrize("dropped", [(), ("niv2",)])
def test_sampled_shares_follow_the_published_weights(dropped):
    context = TaskContext()
    sizes = {"flan2021": [60, 30], "t0": [40, 20], "niv2": [30], "cot": [25], "dialog": [20]}
    submixtures = [
        flan2022.Submixture(
            sub, _stand_ins(sub, sizes[sub]), weight, flan2022.PER_TASK_CAPS[sub], flan2022.PUBLISHED_SHARES[sub]
        )
        for sub, weight in flan2022.PUBLISHED_WEIGHTS.items()
        if sub not in dropped
    ]
    name = f"test_f22_sampled{len(dropped)}"
    flan2022.compose(name, submixtures, context)
    kept = {sub: w for sub, w in flan2022.PUBLISHED_WEIGHTS.items() if sub not in dropped}
    expected = {sub: w / sum(kept.values()) for sub, w in kept.items()}
    shares = {row.name: row for row in flan2022.submix_shares(name)}
    for sub in flan2022.PUBLISHED_WEIGHTS:
        assert shares[sub].dropped == (sub in dropped)
        assert shares[sub].share == pytest.approx(expected.get(sub, 0.0))
    source = packed_input.PackedInput(
        name, task_feature_lengths={"inputs": 16, "targets": 4}, layout=layout.ENCODER_DECODER,
        vocabulary=seqio.ByteVocabulary(), pack=False, seed=1,
    )
    drawn = collections.Counter()
    for batch in range(200):  # 20,000 examples, one per row
        for (example,) in source.rows(batch, range(100)):
            drawn[source.example(int(example))[0].split("_")[2]] += 1
    assert sum(drawn.values()) == 20_000
    for sub, share in expected.items():
        assert drawn[sub] / 20_000 == pytest.approx(share, abs=0.02), (sub, drawn)
