"""`lowres-mt eval RECIPE`: systems × test sets, scored, cached, reported."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import typer

from lowres_mt.cli.common import BACKEND_HELP, console, err_console


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)


def eval_cmd(
    recipe: str = typer.Argument(..., help="recipe name or path to a YAML file"),
    overrides: list[str] = typer.Argument(None, help="KEY=VALUE overrides, e.g. eval.icl_k=8"),
    systems: list[str] = typer.Option(
        None, "--systems", "-s",
        help="systems to run (repeat or comma-separate): tell, sft, tell+book, tell+context, "
             "sft+context (trained runs), icl, icl-book, zero-shot, copy, apertium, external, "
             "openai:<name>, or a run folder name under runs/; default: the recipe's eval.systems"),
    tests: list[Path] = typer.Option(
        None, "--test", "-t",
        help="score these test files instead of eval.testsets (repeatable): TSV/CSV/JSONL pairs or an "
             "aligned prefix, as in a recipe; both directions"),
    sample: int = typer.Option(None, "--sample", "-n", min=0,
                               help="sentences per test set and direction (0 = all); default eval.sample"),
    comet_model: str = typer.Option(None, "--comet-model",
                                    help="COMET checkpoint path or hub id (needs the comet extra: pip install lowres-mt\\[comet])"),
    all_runs: bool = typer.Option(False, "--all-runs",
                                  help="also evaluate every other run of this recipe (data-efficiency curve)"),
    results: Path = typer.Option(None, "--results", help="results folder (default $LOWRES_MT_RESULTS or ./results)"),
    backend: str = typer.Option(None, "--backend", help=BACKEND_HELP + "; default eval.backend"),
) -> None:
    """Evaluate systems on the recipe's test sets; writes JSON, hypotheses, REPORT.md and plots."""
    from lowres_mt.config import load_recipe
    from lowres_mt.evaluate.report import rich_table
    from lowres_mt.evaluate.runner import run_eval

    extra = list(overrides or [])
    if tests:
        extra.append("eval.testsets=" + json.dumps([str(path) for path in tests]))
    if backend:
        extra.append(f"eval.backend={backend}")
    cfg = load_recipe(recipe, extra)
    names = [n.strip() for item in (systems or []) for n in item.split(",") if n.strip()]
    outcome = run_eval(cfg, systems=names or None, sample=sample, comet_model=comet_model,
                       all_runs=all_runs, results_root=results, progress=True,
                       console=err_console, command="lowres-mt " + shlex.join(sys.argv[1:]))
    console.print(rich_table(outcome.results, title=f"{cfg.name}: chrF (± 95% CI)"))
    for note in outcome.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"{len(outcome.results)} results ({outcome.generated} generated, "
                  f"{outcome.reused} reused from cache) in {outcome.seconds:.1f}s → {outcome.report}",
                  highlight=False)
