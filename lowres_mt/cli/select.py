"""`lowres-mt select RECIPE --budget N`: choose the general-data pool with SmallToLarge (S2L).

Writes runs/<recipe>-s2l/selection.jsonl (rows: corpus, id, cluster), report.json and clusters.png;
`lowres-mt data|train RECIPE general.select=s2l` then draws general data from the selection only.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from lowres_mt.cli.common import console


def _positive(value: float | None) -> float | None:
    if value is not None and value <= 0:
        raise typer.BadParameter(f"must be greater than 0, got {value}")
    return value


def select_cmd(
    recipe: str = typer.Argument(..., help="recipe name (see `lowres-mt recipes list`) or YAML path"),
    overrides: list[str] = typer.Argument(None, help="KEY=VALUE recipe overrides, e.g. train.threads=2"),
    budget: int = typer.Option(None, "--budget", "-b", min=1, show_default="general.s2l.budget",
                               help="number of general examples to select (examples, not tokens)"),
    proxy: str = typer.Option(None, "--proxy", show_default="general.s2l.proxy",
                              help="proxy model: registry name, local folder or hub id"),
    clusters: int = typer.Option(None, "--clusters", "-k", min=1, show_default="general.s2l.clusters",
                                 help="k-means clusters of loss trajectories (clamped to the pool size)"),
    pool: int = typer.Option(None, "--pool", min=0, show_default="general.s2l.pool",
                             help="score a seeded random subset of this many candidates (0: all of general.corpora)"),
    epochs: float = typer.Option(None, "--epochs", show_default="general.s2l.epochs", callback=_positive,
                                 help="proxy fine-tuning epochs over the pool (> 0)"),
    checkpoints: int = typer.Option(None, "--checkpoints", min=1, show_default="general.s2l.checkpoints",
                                    help="proxy checkpoints = points per loss trajectory"),
    stratify: bool = typer.Option(None, "--stratify/--no-stratify", show_default="general.s2l.stratify",
                                  help="split the budget across source corpora first, then across clusters"),
    out: Path = typer.Option(None, "--out", show_default="runs/<recipe>-s2l", help="output folder"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show progress bars"),
) -> None:
    """Select BUDGET general examples by clustering a small proxy model's loss trajectories.

    Trajectories are cached: a second selection with another --budget, --clusters or --stratify
    takes seconds.
    """
    from lowres_mt.config import load_recipe
    from lowres_mt.errors import UserError
    from lowres_mt.select import select_general

    cfg = load_recipe(recipe, list(overrides or []))
    s2l = cfg.general.s2l
    budget = s2l.budget if budget is None else budget
    if not budget:
        raise UserError("give the number of general examples to select with --budget N (or general.s2l.budget)")
    report = select_general(
        cfg, budget, proxy or s2l.proxy, s2l.clusters if clusters is None else clusters, out,
        pool_size=s2l.pool if pool is None else pool, epochs=s2l.epochs if epochs is None else epochs,
        checkpoints=s2l.checkpoints if checkpoints is None else checkpoints,
        stratify=s2l.stratify if stratify is None else stratify, progress=progress,
    )
    render(report)


def render(report) -> None:
    summary = Table(title=f"S2L selection ({report.proxy})", show_header=False)
    sizes = sorted(report.cluster_sizes.values())
    rows = (
        ("selected", f"{report.budget:,} of {report.pool:,} examples"),
        ("content tokens", f"{report.selected_tokens:,}"),
        ("trajectories", f"{report.pool:,} × {len(report.checkpoints)} (steps {report.checkpoints[0]}…"
                         f"{report.checkpoints[-1]}){' from cache' if report.cache_hit else ''}"),
        ("clusters", f"{report.clusters} (sizes {sizes[0]}…{sizes[-1]}), {report.covered} with a selected example"),
        ("time", ", ".join(f"{k} {v:.1f}s" for k, v in report.seconds.items())),
    )
    for key, value in rows:
        summary.add_row(key, value)
    console.print(summary)
    sources = Table(title="per source")
    for col in ("corpus", "pool", "selected"):
        sources.add_column(col, justify="left" if col == "corpus" else "right")
    for corpus, counts in report.sources.items():
        sources.add_row(corpus, f"{counts['pool']:,}", f"{counts['selected']:,}")
    console.print(sources)
    console.print(f"wrote {report.files['selection']}, report.json and clusters.png")


def register(app: typer.Typer) -> None:
    app.command("select")(select_cmd)
