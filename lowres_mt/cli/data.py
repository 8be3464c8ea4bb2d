"""`lowres-mt data RECIPE`: build the TELL or SFT training set and print its summary."""

from __future__ import annotations

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
    corpora = Table(title=f"corpora ({report.guard_size} protected dev/test sentences)",
                    caption="filters that dropped nothing are not shown; manifest.json has every count")
    columns = {"read": "read", "length-filtered": "too_long_or_short", "duplicates": "duplicates",
               "contaminated": "contaminated", "bad ratio": "bad_ratio", "fragments": "fragments",
               "near-copies": "near_copies", "wrong language": "wrong_language", "low source gain": "low_gain",
               "used": "used"}
    stats = report.corpora.values()
    shown = {title: key for title, key in columns.items()  # filters that dropped nothing are left out
             if title in ("read", "used") or any(getattr(s, key) for s in stats)}
    corpora.add_column("corpus", justify="left", no_wrap=True)
    for title in shown:
        corpora.add_column(title, justify="right")
    for ref, s in report.corpora.items():
        corpora.add_row(local.shown(ref), *(str(getattr(s, key)) for key in shown.values()))
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
