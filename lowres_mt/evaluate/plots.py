"""PNG plots of evaluation results (matplotlib, Agg backend): chrF per system with 95% CI bars
for every test set and direction, and the data-efficiency curve (chrF against task tokens)
whenever runs at several task budgets have been evaluated."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lowres_mt.corpora.local import shown  # noqa: E402
from lowres_mt.io import atomic_path  # noqa: E402

if TYPE_CHECKING:
    from lowres_mt.evaluate.result import Result

COLOURS = {"adapter": "#1f77b4", "base": "#ff7f0e", "icl": "#2ca02c", "apertium": "#9467bd", "copy": "#bcbd22",
           "external": "#9e9e9e"}


def group_key(result: Result) -> str:
    """The panel a result (or anything with a test set and direction) belongs to."""
    src, tgt = result.direction.split("-")
    return f"{shown(result.testset)} {src}→{tgt}"


def save_figure(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path


def panel_grid(count: int, width: float, height: float):
    """A figure with `count` panels, two per row: (figure, list of the axes to draw on)."""
    cols = min(2, count)
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in list(axes.flat)[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat)[:count]


def finish_panel(ax, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def plot_chrf(results: list[Result], path: Path, order: list[str]) -> Path | None:
    """Horizontal chrF bars with CI whiskers, one panel per test set and direction."""
    groups: dict[str, list[Result]] = {}
    for r in results:
        groups.setdefault(group_key(r), []).append(r)
    if not groups:
        return None
    cols = min(2, len(groups))
    rows = math.ceil(len(groups) / cols)
    height = max(max(len(g) for g in groups.values()) * 0.32 + 1.2, 2.5)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, height * rows), squeeze=False)
    for ax, (title, group) in zip(axes.flat, sorted(groups.items()), strict=False):
        group = sorted(group, key=lambda r: order.index(r.system) if r.system in order else len(order))
        chrf = [r.scores["chrF"] for r in group]
        ax.barh(range(len(group)), [c["score"] for c in chrf],
                xerr=[c["ci_halfwidth"] for c in chrf], capsize=3,
                color=[COLOURS.get(r.kind, "#333333") for r in group])
        ax.set_yticks(range(len(group)), [r.system for r in group], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("chrF (95% CI)")
        ax.set_title(f"{title} (n={group[0].n})", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(groups):]:
        ax.set_visible(False)
    fig.tight_layout()
    return save_figure(fig, path)


def efficiency_points(results: list[Result]) -> dict[str, dict[str, list[tuple[int, float, float]]]]:
    """{panel: {method: [(task tokens, chrF, CI half-width), ...]}} for adapter results."""
    panels: dict[str, dict[str, dict[int, tuple[float, float]]]] = {}
    for r in results:
        if not r.task_tokens or not r.method:  # trained runs only
            continue
        chrf = r.scores["chrF"]
        panels.setdefault(group_key(r), {}).setdefault(r.method, {})[int(r.task_tokens)] = (
            chrf["score"], chrf["ci_halfwidth"])
    return {panel: {m: sorted((t, s, c) for t, (s, c) in pts.items()) for m, pts in methods.items()}
            for panel, methods in panels.items()}


def plot_data_efficiency(results: list[Result], path: Path) -> Path | None:
    """chrF against the task-token budget, one line per method; None with fewer than two budgets."""
    panels = {p: m for p, m in efficiency_points(results).items()
              if any(len(pts) >= 2 for pts in m.values())}
    if not panels:
        return None
    fig, axes = panel_grid(len(panels), 5.5, 3.6)
    for ax, (title, methods) in zip(axes, sorted(panels.items()), strict=True):
        for method, pts in sorted(methods.items()):
            tokens, scores, cis = zip(*pts, strict=True)
            ax.errorbar(tokens, scores, yerr=cis, marker="o", capsize=3, label=method)
        ax.set_xscale("log")
        finish_panel(ax, title, "task tokens", "chrF")
    fig.tight_layout()
    return save_figure(fig, path)
