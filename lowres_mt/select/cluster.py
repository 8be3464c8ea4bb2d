"""Cluster loss trajectories with k-means (scikit-learn).

S2L groups examples whose loss moved alike while a small proxy model learned them. The rows of the
N × T trajectory matrix are clustered as they are (no normalization), with the reference settings:
k = 100 clusters and 20 Lloyd iterations from a single seeded initialisation.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

DEFAULT_CLUSTERS = 100
KMEANS_ITERATIONS = 20
KMEANS_INITS = 1


@dataclass(frozen=True)
class Clustering:
    labels: np.ndarray  # (N,) int cluster id per example, ids 0..k-1 ordered by first appearance
    centers: np.ndarray  # (k, T)
    inertia: float
    iterations: int

    @property
    def k(self) -> int:
        return int(self.centers.shape[0])

    def sizes(self) -> dict[int, int]:
        ids, counts = np.unique(self.labels, return_counts=True)
        return {int(i): int(c) for i, c in zip(ids, counts)}


def cluster_trajectories(trajectories: np.ndarray, k: int = DEFAULT_CLUSTERS, *, seed: int = 0,
                         threads: int = 1) -> Clustering:
    """k-means on the rows of `trajectories`; k is clamped to the number of rows.

    Deterministic for a given matrix and seed. Labels are renumbered by first appearance in the
    pool so the same grouping always gets the same ids, and empty clusters are dropped.
    """
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    data = np.asarray(trajectories, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] == 0:
        raise ValueError(f"trajectories must be a non-empty N × T matrix, got shape {data.shape}")
    if k < 1:
        raise ValueError(f"the number of clusters must be at least 1, got {k}")
    k = min(k, data.shape[0])
    model = KMeans(n_clusters=k, n_init=KMEANS_INITS, max_iter=KMEANS_ITERATIONS, random_state=seed)
    with threadpool_limits(limits=max(1, threads)), warnings.catch_warnings():
        # fewer distinct rows than k (e.g. many all-zero trajectories) is fine: some clusters stay empty
        warnings.simplefilter("ignore", ConvergenceWarning)
        raw = model.fit_predict(data)
    order = list(dict.fromkeys(int(x) for x in raw))
    remap = {old: new for new, old in enumerate(order)}
    labels = np.array([remap[int(x)] for x in raw], dtype=np.int64)
    centers = model.cluster_centers_[order]
    return Clustering(labels, centers, float(model.inertia_), int(model.n_iter_))
