"""A sweep's curves: chrF of the selected runs against one axis (task tokens on a log scale), one
line per method and value of the other axes, the 95% CI as a band, baselines as dashed lines;
one panel per test set and direction."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lowres_mt.evaluate.plots import finish_panel, panel_grid, save_figure

if TYPE_CHECKING:
    from lowres_mt.sweep.summary import Point


def numeric(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def curves(points: list[Point], axis: str, panel: str,
           ignore: tuple[str, ...] = ()) -> dict[str, list[tuple[float, float, float]]]:
    """{line label: [(x, chrF, CI half-width), …]} for the selected points scored on `panel`; the
    `ignore` axes (the selection axis) do not split lines."""
    lines: dict[str, list[tuple[float, float, float]]] = {}
    for p in points:
        x = numeric(p.values.get(axis, ""))
        if not p.selected or panel not in p.results or x is None:
            continue
        rest = ", ".join(f"{k}={v}" for k, v in p.values.items()
                         if k != axis and k not in ignore and _varies(points, k))
        scores = p.results[panel]
        lines.setdefault(f"{p.method} ({rest})" if rest else p.method, []).append(
            (x, scores["chrF"], scores["chrF_ci"]))
    return {label: sorted(pts) for label, pts in lines.items() if pts}


def _varies(points: list[Point], key: str) -> bool:
    return len({p.values.get(key) for p in points if p.selected}) > 1


def plot_axis(points: list[Point], baselines: dict[str, dict], axis: str, path: Path,
              ignore: tuple[str, ...] = ()) -> Path | None:
    """chrF against `axis`; None when no line has two numeric points."""
    panels = sorted({key for p in points for key in p.results})
    drawn = {panel: lines for panel in panels
             if (lines := curves(points, axis, panel, ignore)) and any(len(v) > 1 for v in lines.values())}
    if not drawn:
        return None
    fig, axes = panel_grid(len(drawn), 5.5, 3.8)
    for ax, (panel, lines) in zip(axes, drawn.items(), strict=True):
        xs = [x for pts in lines.values() for x, _, _ in pts]
        for label, pts in sorted(lines.items()):
            x, y, ci = zip(*pts, strict=True)
            ax.plot(x, y, marker="o", label=label)
            ax.fill_between(x, [a - b for a, b in zip(y, ci, strict=True)],
                            [a + b for a, b in zip(y, ci, strict=True)], alpha=0.2)
        for name, scores in sorted(baselines.items()):
            system, _, where = name.partition(" ")
            if where == panel:
                ax.axhline(scores["chrF"], linestyle="--", color="#888888", linewidth=1, label=system)
        if min(xs) > 0 and max(xs) / min(xs) >= 10:
            ax.set_xscale("log")
        elif min(xs) == 0 and max(xs) >= 10:
            ax.set_xscale("symlog", linthresh=1)
        ticks = sorted(set(xs))
        ax.set_xticks(ticks, [f"{x:,g}" for x in ticks])
        ax.minorticks_off()
        finish_panel(ax, panel, axis, "chrF (95% CI band)")
    fig.tight_layout()
    return save_figure(fig, path)
