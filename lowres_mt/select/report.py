"""What a selection chose: cluster sizes, per-source counts, and a PNG of the cluster sizes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lowres_mt.io import atomic_path


@dataclass
class SelectionReport:
    out_dir: Path
    budget: int  # examples selected
    pool: int  # candidate examples (after the optional pool cap)
    proxy: str
    clusters: int  # non-empty k-means clusters
    checkpoints: list[int]  # proxy steps whose losses form the trajectory columns
    cluster_sizes: dict[int, int]  # cluster → members in the pool
    cluster_selected: dict[int, int]  # cluster → members selected
    sources: dict[str, dict[str, int]]  # corpus → {"pool": n, "selected": n}
    cache_hit: bool  # trajectories came from the cache
    selected_tokens: int = 0  # content tokens of the selection (base-model tokenizer, as the data builder counts)
    seconds: dict[str, float] = field(default_factory=dict)  # stage → wall time
    files: dict[str, str] = field(default_factory=dict)  # what was written, by role

    @property
    def covered(self) -> int:
        """Clusters with at least one selected example."""
        return sum(1 for n in self.cluster_selected.values() if n)

    def to_json(self) -> dict:
        sizes = sorted(self.cluster_sizes.values())
        return {
            "budget": self.budget,
            "pool": self.pool,
            "proxy": self.proxy,
            "clusters": self.clusters,
            "clusters_covered": self.covered,
            "cluster_size_min": sizes[0] if sizes else 0,
            "cluster_size_median": float(np.median(sizes)) if sizes else 0.0,
            "cluster_size_max": sizes[-1] if sizes else 0,
            "checkpoints": self.checkpoints,
            "selected_content_tokens": self.selected_tokens,
            "cache_hit": self.cache_hit,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
            "sources": self.sources,
            "cluster_sizes": {str(c): n for c, n in sorted(self.cluster_sizes.items())},
            "cluster_selected": {str(c): n for c, n in sorted(self.cluster_selected.items())},
            "files": self.files,
        }


def count_by_cluster(labels: np.ndarray, chosen: np.ndarray) -> tuple[dict[int, int], dict[int, int]]:
    """(pool members, selected members) per cluster id."""
    sizes = Counter(int(x) for x in labels)
    picked = Counter(int(labels[i]) for i in chosen)
    return dict(sorted(sizes.items())), {c: picked.get(c, 0) for c in sorted(sizes)}


def count_by_source(sources: Sequence[str], chosen: np.ndarray) -> dict[str, dict[str, int]]:
    pool = Counter(sources)
    picked = Counter(sources[i] for i in chosen)
    return {s: {"pool": pool[s], "selected": picked.get(s, 0)} for s in sorted(pool)}


def plot_cluster_sizes(cluster_sizes: dict[int, int], cluster_selected: dict[int, int], path: Path,
                       *, title: str = "") -> None:
    """Bar chart: clusters ordered by size, pool members and selected members of each (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = sorted(cluster_sizes, key=lambda c: (cluster_sizes[c], c))
    x = np.arange(len(order))
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=110)
    ax.bar(x, [cluster_sizes[c] for c in order], width=1.0, color="#c7d7ea", label="pool")
    ax.bar(x, [cluster_selected.get(c, 0) for c in order], width=0.6, color="#2b6cb0", label="selected")
    ax.set_yscale("log")
    ax.set_xlabel(f"cluster (ordered by size, {len(order)} clusters)")
    ax.set_ylabel("examples")
    ax.set_title(title or "S2L clusters of loss trajectories")
    ax.legend(loc="upper left", frameon=False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
