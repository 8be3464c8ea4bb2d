"""Balanced sampling across trajectory clusters (the S2L budget allocation).

Clusters are visited smallest first; each gets `remaining_budget // clusters_left` examples, or all
of its members when it has fewer, and those are drawn at random inside the cluster. Small clusters
taken whole leave more for the larger ones, so the budget is spent exactly whenever the clusters
can hold it. Clusters of at most `MIN_CLUSTER_SIZE - 1` (= 2) members are outliers: they take no
share of their own and only fill what is left over. With stratification the budget is first split
across data sources by the same rule, and each source's share across that source's clusters.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np

MIN_CLUSTER_SIZE = 3  # clusters with fewer members only fill the leftover budget


def allocate(sizes: Mapping[Hashable, int], budget: int) -> dict[Hashable, int]:
    """How many to take from each group: smallest first, an equal share of what remains.

    Ties in size are broken by the group key, so the result depends only on the inputs.
    """
    order = sorted(sizes, key=lambda g: (sizes[g], g))
    remaining = budget
    taken: dict[Hashable, int] = {}
    for position, group in enumerate(order):
        share = remaining // (len(order) - position)
        taken[group] = min(sizes[group], share)
        remaining -= taken[group]
    return taken


def sample_clusters(labels: np.ndarray, budget: int, rng: np.random.Generator,
                    members: np.ndarray | None = None) -> np.ndarray:
    """Indices (into `labels`) of `budget` examples spread evenly over the clusters.

    `members` restricts the draw to those indices (one data source); default: every example.
    """
    members = np.arange(len(labels)) if members is None else np.asarray(members)
    if budget > len(members):
        raise ValueError(f"budget {budget} exceeds the {len(members)} examples to choose from")
    groups = _group(labels[members], members)
    large = {c: len(ix) for c, ix in groups.items() if len(ix) >= MIN_CLUSTER_SIZE}
    shares = allocate(large, budget)
    chosen = [rng.choice(groups[c], size=n, replace=False) for c, n in sorted(shares.items()) if n]
    leftover = budget - sum(shares.values())
    if leftover:
        outliers = [groups[c] for c in sorted(groups) if c not in large]
        pool = np.concatenate(outliers) if outliers else np.empty(0, dtype=np.int64)
        chosen.append(rng.choice(pool, size=leftover, replace=False))
    picked = np.concatenate(chosen) if chosen else np.empty(0, dtype=np.int64)
    return np.sort(picked.astype(np.int64))


def select_balanced(labels: Sequence[int] | np.ndarray, budget: int, *, seed: int = 0,
                    sources: Sequence[str] | None = None) -> np.ndarray:
    """The S2L selection: sorted indices of exactly `budget` examples.

    With `sources` (one per example) the budget is first allocated across sources, smallest
    first, then within each source across its clusters. Deterministic for a given seed.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if budget < 0:
        raise ValueError(f"budget must be ≥ 0, got {budget}")
    if budget > len(labels):
        raise ValueError(f"budget {budget} exceeds the pool of {len(labels)} examples")
    rng = np.random.default_rng(seed)
    if sources is None:
        return sample_clusters(labels, budget, rng)
    if len(sources) != len(labels):
        raise ValueError(f"{len(sources)} sources given for {len(labels)} examples")
    by_source = _group(np.asarray(sources, dtype=object), np.arange(len(labels)))
    shares = allocate({s: len(ix) for s, ix in by_source.items()}, budget)
    parts = [sample_clusters(labels, n, rng, members=by_source[s]) for s, n in sorted(shares.items())]
    return np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)


def _group(keys: np.ndarray, indices: np.ndarray) -> dict:
    groups: dict = {}
    for key, index in zip(keys.tolist(), indices.tolist()):
        groups.setdefault(key, []).append(index)
    return {k: np.asarray(v, dtype=np.int64) for k, v in groups.items()}
