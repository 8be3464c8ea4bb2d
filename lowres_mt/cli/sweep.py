"""`lowres-mt sweep RECIPE KEY=V1,V2 … --methods tell,sft`: a grid of runs, trained, selected on
dev chrF, evaluated and summarised (sweep.json, sweep.md, plots)."""

from __future__ import annotations

from pathlib import Path

import typer

from lowres_mt.cli.common import console, err_console
from lowres_mt.config import METHODS


def sweep_cmd(
    recipe: str = typer.Argument(..., help="recipe name or YAML path"),
    axes: list[str] = typer.Argument(None, help="KEY=V1,V2,… axes (a single value is a fixed override), "
                                                "e.g. task.tokens=2500,10000 task.epochs=1,2"),
    methods: str = typer.Option("tell,sft", "--methods", help="comma-separated methods: " + ", ".join(METHODS)),
    name: str = typer.Option(None, "--name", help="sweep folder under runs/sweeps/ (default: recipe and axes)"),
    select: str = typer.Option(None, "--select", help="axis whose best value on dev chrF is kept per method and "
                                                      "other values (default: task.epochs when it is an axis)"),
    testsets: str = typer.Option(None, "--testsets", help="comma-separated test sets (default: eval.testsets)"),
    sample: int = typer.Option(None, "--sample", "-n", min=0, help="sentences per test set and direction"),
    baselines: str = typer.Option("copy", "--baselines", help="comma-separated built-in systems to score "
                                                              "beside the runs ('' for none)"),
    evaluate: bool = typer.Option(True, "--eval/--no-eval", help="evaluate after training"),
    evaluate_all: bool = typer.Option(False, "--eval-all", help="also evaluate the runs the selection dropped"),
    out: Path = typer.Option(None, "--out", help="folder for sweep.json, sweep.md, plots and results "
                                                 "(default: the sweep folder)"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show training progress bars"),
) -> None:
    """Train every grid point (finished runs are skipped, interrupted ones resume), then evaluate."""
    from lowres_mt.sweep.grid import default_sweep_name, parse_axes, parse_methods
    from lowres_mt.sweep.runner import SweepPlan, run_sweep, sweep_folder
    from lowres_mt.sweep.summary import headline, matches

    grid = parse_axes(list(axes or []))
    folder = sweep_folder(name or default_sweep_name(recipe, grid))
    if select is None and any(a.key == "task.epochs" and len(a.values) > 1 for a in grid):
        select = "task.epochs"
    plan = SweepPlan(recipe, grid, parse_methods(methods), folder, out or folder, select=select,
                     testsets=_split(testsets) or None, sample=sample, baselines=_split(baselines),
                     evaluate=evaluate, evaluate_all=evaluate_all)
    points = run_sweep(plan, progress=progress, console=err_console)
    if not points:
        return
    for match in matches(points, plan.select):
        console.print(headline(match), highlight=False)
    console.print(f"{len(points)} runs in {folder} → {plan.out / 'sweep.md'}", highlight=False)


def _split(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep_cmd)
