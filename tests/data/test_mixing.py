"""Mixing: capped examples-proportional rates, held-out-cluster mixtures, and the proportions sampled."""

import collections

import pytest
import seqio

from it_jax.data import mixing, tasks
from it_jax.data.context import TaskContext
from it_jax.evaluation import metrics

SIZES = {"test_mixing_small": 400, "test_mixing_medium": 1000, "test_mixing_large": 4000}
CAP = 2000


def _counter_source(size):
    def generate(split):
        n = size if split == "train" else 10
        return ({"n": str(i)} for i in range(n))

    return generate


def _register(name, size, cluster="test_mixing"):
    return tasks.register_task(
        name,
        source=_counter_source(size),
        templates=[("Repeat {n}.", "{n}"), ("Say {n} again.", "{n}")],
        cluster=cluster,
        metrics=[metrics.exact_match],
    )


@pytest.fixture(scope="module")
def sized_tasks():
    return {name: _register(name, size) for name, size in SIZES.items()}


def test_capped_rate_is_min_of_examples_and_cap(sized_tasks):
    rate = mixing.capped_rate(cap=CAP)
    for name, size in SIZES.items():
        assert rate(seqio.get_mixture_or_task(name)) == min(size, CAP)
    uncapped = mixing.capped_rate(cap=None)
    assert uncapped(seqio.get_mixture_or_task("test_mixing_large")) == 4000


def test_capped_rate_temperature_flattens_rates(sized_tasks):
    rate = mixing.capped_rate(cap=CAP, temperature=2.0)
    assert rate(seqio.get_mixture_or_task("test_mixing_small")) == pytest.approx(400**0.5)
    assert rate(seqio.get_mixture_or_task("test_mixing_large")) == pytest.approx(CAP**0.5)


def test_mixture_shares_normalize_capped_rates(sized_tasks):
    mixture = mixing.register_mixture("test_mixing_shares", list(SIZES), rate=mixing.capped_rate(cap=CAP))
    shares = mixing.mixture_shares(mixture)
    total = 400 + 1000 + CAP
    assert shares == pytest.approx({"test_mixing_small": 400 / total, "test_mixing_medium": 1000 / total,
                                    "test_mixing_large": CAP / total})


def test_register_mixture_replaces_and_rejects_empty(sized_tasks):
    mixing.register_mixture("test_mixing_replaced", ["test_mixing_small"], rate=1.0)
    replaced = mixing.register_mixture("test_mixing_replaced", ["test_mixing_medium", "test_mixing_large"], rate=1.0)
    assert seqio.get_mixture_or_task("test_mixing_replaced") is replaced
    assert sorted(t.name for t in replaced.tasks) == ["test_mixing_large", "test_mixing_medium"]
    with pytest.raises(ValueError, match="no tasks"):
        mixing.register_mixture("test_mixing_empty", [], rate=1.0)


def test_heldout_clusters_without_overlaps():
    assert mixing.heldout_clusters("nli", {}) == {"nli"}


def test_heldout_clusters_follow_overlaps_both_ways():
    overlaps = {"nli": ["paraphrase"], "qa": ["reading", "nli"]}
    assert mixing.heldout_clusters("nli", overlaps) == {"nli", "paraphrase", "qa"}
    assert mixing.heldout_clusters("paraphrase", overlaps) == {"paraphrase", "nli"}
    assert mixing.heldout_clusters("reading", overlaps) == {"reading", "qa"}
    assert mixing.heldout_clusters("sentiment", overlaps) == {"sentiment"}


def test_register_heldout_mixtures_excludes_exactly_heldout_clusters():
    clusters = {f"test_cluster_{c}": c for c in "abcd"}
    infos = [
        _register(f"test_heldout_{c}_{i}", 50 + i, cluster=cluster) for cluster, c in clusters.items() for i in (0, 1)
    ]
    overlaps = {"test_cluster_a": ["test_cluster_b"]}
    names = mixing.register_heldout_mixtures("test_ho", infos, rate=1.0, overlaps=overlaps)
    assert names == {cluster: f"test_ho_heldout_{cluster}" for cluster in clusters}
    task_clusters = {info.name: info.cluster for info in infos}
    assert {t.name for t in seqio.get_mixture_or_task("test_ho_all").tasks} == set(task_clusters)
    for cluster, mixture_name in names.items():
        kept = {t.name for t in seqio.get_mixture_or_task(mixture_name).tasks}
        removed = mixing.heldout_clusters(cluster, overlaps)
        assert kept == {name for name, c in task_clusters.items() if c not in removed}
    for held_out in ("test_cluster_a", "test_cluster_b"):
        kept = {task_clusters[t.name] for t in seqio.get_mixture_or_task(names[held_out]).tasks}
        assert kept == {"test_cluster_c", "test_cluster_d"}
    kept = {task_clusters[t.name] for t in seqio.get_mixture_or_task(names["test_cluster_c"]).tasks}
    assert kept == {"test_cluster_a", "test_cluster_b", "test_cluster_d"}


def test_sampled_proportions_match_mixture_shares(sized_tasks):
    mixture = mixing.register_mixture("test_mixing_sampled", list(SIZES), rate=mixing.capped_rate(cap=CAP))
    # Shuffling within each task leaves the sampled shares unchanged; skipping it keeps the test fast.
    dataset = mixture.get_dataset(
        {"inputs": 32, "targets": 8}, split="train", shuffle=False, seed=0, passthrough_features=["task"]
    )
    draws = 10_000
    names = dataset.map(lambda ex: ex["task"]).take(draws).batch(1000)
    counts = collections.Counter(name.decode() for batch in names.as_numpy_iterator() for name in batch)
    assert sum(counts.values()) == draws
    for name, share in mixing.mixture_shares(mixture).items():
        assert counts[name] / draws == pytest.approx(share, abs=0.02)
    assert counts["test_mixing_small"] / draws > 400 / (400 + 1000 + 4000) + 0.02


def test_the_context_rate_follows_the_run_settings():
    def source(split):
        return iter([{"x": str(i), "answer": "a"} for i in range(50)])

    tasks.register_task("test_mixing_configured", source=source, templates=[("{x}", "{answer}")], cluster="test_cfg")
    task = seqio.get_mixture_or_task("test_mixing_configured")
    assert TaskContext(cap=20).rate()(task) == 20
    assert TaskContext(cap=None, temperature=2.0).rate()(task) == pytest.approx(50**0.5)
    assert TaskContext(cap=20).rate(cap=None)(task) == 50
    assert TaskContext().rate()(task) == 50
