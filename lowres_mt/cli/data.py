"""`lowres-mt data RECIPE`: build the TELL or SFT training set and print its summary."""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer
from rich.table import Table

from lowres_mt.cli.common import console
from lowres_mt.config import load_recipe, runs_dir
from lowres_mt.corpora import local


def data(
    recipe: str = typer.Argument(..., help="recipe name (see `lowres-mt recipes list`) or YAML path"),
    overrides: list[str] = typer.Argument(None, help="KEY=VALUE overrides, e.g. task.tokens=20000"),
    method: str = typer.Option("tell", "--method", "-m", help="tell (anchor + general data), sft (task only), tell+book, tell+context or sft+context"),
    out: Path = typer.Option(None, "--out", help="output folder: new, empty, or an earlier output of this "
                             "command [default: runs/<recipe>-<method>/data]"),
) -> None:
    """Build train.jsonl/dev.jsonl (+ manifest) from the recipe's corpora."""
    from lowres_mt.dataset import build_dataset

    cfg = load_recipe(recipe, [*(overrides or []), f"train.method={method}"])
    out_dir = out or runs_dir() / f"{cfg.name}-{method}" / "data"
    start = time.perf_counter()
    with console.status(f"building {method} data for {cfg.name}…"):
        report = build_dataset(cfg, method=method, out_dir=out_dir)
    render_report(report)
    console.print(f"wrote {out_dir} in {time.perf_counter() - start:.1f}s")


def render_report(report) -> None:
    corpora = Table(title=f"corpora ({report.guard_size} protected dev/test sentences)")
    for col in ("corpus", "read", "length-filtered", "duplicates", "contaminated", "bad ratio",
                "fragments", "near-copies", "wrong language", "used"):
        corpora.add_column(col, justify="left" if col == "corpus" else "right")
    for ref, s in report.corpora.items():
        shown = os.path.relpath(ref) if local.is_path_ref(ref) else ref  # a user's file as they name it
        corpora.add_row(shown, *(str(v) for v in (s.read, s.too_long_or_short, s.duplicates, s.contaminated,
                                                s.bad_ratio, s.fragments, s.near_copies, s.wrong_language,
                                                s.used)))
    console.print(corpora)
    mix = Table(title=f"{report.method} training mix (content tokens)")
    for col in ("part", "examples", "tokens", "share"):
        mix.add_column(col, justify="left" if col == "part" else "right")
    total = sum(report.tokens.values()) or 1
    for key, tokens in report.tokens.items():
        mix.add_row(key, str(report.examples[key]), f"{tokens:,}", f"{tokens / total:.1%}")
    console.print(mix)
    unique = report.task_unique
    if unique.get("epochs", 1) > 1:
        console.print(f"task pairs: {unique['pairs']} distinct ({unique['tokens']:,} tokens), "
                      f"each shown {unique['epochs']} times")
    console.print(f"dev examples: {report.dev_examples}")
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
