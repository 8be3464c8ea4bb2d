"""S2L budget allocation, balanced sampling and trajectory clustering."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from lowres_mt.select.cluster import cluster_trajectories
from lowres_mt.select.sampler import allocate, select_balanced


@pytest.mark.parametrize(
    "sizes, budget, expected",
    [
        # smallest first: 10 // 3 = 3 each, the last cluster takes what remains
        ({0: 5, 1: 5, 2: 5}, 10, {0: 3, 1: 3, 2: 4}),
        # a cluster smaller than its share is taken whole; the others split the rest
        ({0: 100, 1: 2, 2: 50}, 30, {1: 2, 2: 14, 0: 14}),
        ({0: 4, 1: 4}, 8, {0: 4, 1: 4}),
        ({0: 7}, 3, {0: 3}),
        ({"b": 3, "a": 3}, 5, {"a": 2, "b": 3}),  # equal sizes: key order breaks the tie
        ({0: 3, 1: 9}, 0, {0: 0, 1: 0}),
    ],
)
def test_allocate_smallest_first_equal_shares(sizes, budget, expected):
    assert allocate(sizes, budget) == expected


def test_allocate_order_is_smallest_first():
    shares = allocate({0: 1000, 1: 1, 2: 3, 3: 1000}, 100)
    assert shares == {1: 1, 2: 3, 0: 48, 3: 48}


def planted_labels(sizes):
    return np.concatenate([np.full(n, c) for c, n in enumerate(sizes)])


@pytest.mark.parametrize("budget", [0, 1, 7, 40, 123, 250, 299, 300])
def test_budget_is_met_exactly_without_repeats(budget):
    labels = planted_labels([1, 2, 2, 3, 5, 17, 40, 80, 150])
    chosen = select_balanced(labels, budget, seed=3)
    assert len(chosen) == budget
    assert len(set(chosen.tolist())) == budget
    assert chosen.min(initial=0) >= 0 and chosen.max(initial=0) < len(labels)


def test_every_cluster_above_two_members_is_covered():
    sizes = [1, 2, 2, 3, 5, 17, 40, 80, 150]
    labels = planted_labels(sizes)
    chosen = select_balanced(labels, 9, seed=0)
    picked = np.bincount(labels[chosen], minlength=len(sizes))
    assert all(picked[c] >= 1 for c, n in enumerate(sizes) if n > 2)
    assert picked[3:].tolist() == [1, 1, 1, 2, 2, 2]  # 9 // 6, smallest first
    assert picked[:3].sum() == 0  # no leftover: outliers (≤ 2 members) get nothing


def test_selection_is_balanced_not_proportional():
    labels = planted_labels([10, 10, 1000])
    chosen = select_balanced(labels, 30, seed=1)
    assert np.bincount(labels[chosen]).tolist() == [10, 10, 10]


def test_outlier_clusters_only_fill_the_leftover():
    labels = planted_labels([3, 3, 1, 2])  # 6 members in real clusters, 3 outliers
    chosen = select_balanced(labels, 8, seed=0)
    picked = np.bincount(labels[chosen], minlength=4)
    assert picked[:2].tolist() == [3, 3]
    assert picked[2:].sum() == 2


def test_deterministic_for_a_seed_and_varies_across_seeds():
    labels = np.random.default_rng(0).integers(0, 12, size=500)
    a = select_balanced(labels, 97, seed=5)
    b = select_balanced(labels, 97, seed=5)
    c = select_balanced(labels, 97, seed=6)
    assert a.tolist() == b.tolist()
    assert a.tolist() != c.tolist()


def test_stratified_by_source_first():
    labels = planted_labels([20, 20, 20, 20])
    sources = ["small"] * 10 + ["big"] * 70
    chosen = select_balanced(labels, 30, seed=2, sources=sources)
    assert len(chosen) == 30
    per_source = {s: sum(1 for i in chosen if sources[i] == s) for s in ("small", "big")}
    assert per_source == {"small": 10, "big": 20}  # the smaller source is taken whole first
    assert select_balanced(labels, 30, seed=2, sources=sources).tolist() == chosen.tolist()


def test_budget_larger_than_pool_is_refused():
    with pytest.raises(ValueError, match="exceeds"):
        select_balanced(planted_labels([3, 3]), 7)


def planted_trajectories(groups=5, per_group=(12, 30, 7, 50, 21), steps=8, seed=0):
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for g in range(groups):
        center = rng.uniform(0, 10, size=steps)
        rows.append(center + rng.normal(0, 0.05, size=(per_group[g], steps)))
        truth += [g] * per_group[g]
    order = rng.permutation(len(truth))
    return np.vstack(rows)[order], np.asarray(truth)[order]


def test_planted_groups_are_recovered():
    data, truth = planted_trajectories()
    clustering = cluster_trajectories(data, k=5, seed=0)
    assert adjusted_rand_score(truth, clustering.labels) == 1.0
    assert clustering.k == 5 and clustering.centers.shape == (5, data.shape[1])


def test_clustering_is_deterministic_and_labels_canonical():
    data, _ = planted_trajectories(seed=1)
    a = cluster_trajectories(data, k=5, seed=3)
    b = cluster_trajectories(data, k=5, seed=3)
    assert a.labels.tolist() == b.labels.tolist()
    assert a.labels[0] == 0  # ids in order of first appearance
    assert sorted(set(a.labels.tolist())) == list(range(a.k))


def test_k_is_clamped_to_the_pool_and_degenerate_rows_are_fine():
    data = np.zeros((6, 4))
    data[:3] = 1.0
    clustering = cluster_trajectories(data, k=100, seed=0)
    assert len(clustering.labels) == 6
    assert adjusted_rand_score([0, 0, 0, 1, 1, 1], clustering.labels) == 1.0
