"""`lowres-mt score HYP REF`: BLEU, chrF, chrF++ (and rates, COMET) of a user's own files."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from lowres_mt.cli.common import console


def register(app: typer.Typer) -> None:
    app.command("score")(score_cmd)


def score_cmd(
    hyp: Path = typer.Argument(..., metavar="HYP", help="hypotheses: UTF-8 text, one segment per line"),
    ref: Path = typer.Argument(..., metavar="REF", help="references: as many lines as HYP"),
    src: Path = typer.Option(None, "--src", metavar="SRC", help="sources, as many lines as HYP: adds the copy rate"),
    tgt_lang: str = typer.Option(None, "--to", metavar="LANG",
                                 help="target language code, e.g. is: adds the off-target rate "
                                      "(language ID) and picks BLEU's tokenizer, as sacrebleu -l"),
    comet_model: str = typer.Option(None, "--comet-model", metavar="MODEL",
                                    help="COMET checkpoint path or hub id; needs --src and the comet "
                                         "extra: pip install lowres-mt\\[comet]"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of the table"),
) -> None:
    """Score hypotheses against references: BLEU, chrF, chrF++ with 95% bootstrap intervals and
    sacrebleu signatures."""
    from lowres_mt.evaluate.score_files import score_files

    scores = score_files(hyp, ref, src=src, tgt_lang=tgt_lang, comet_model=comet_model)
    if as_json:
        print(json.dumps(scores.to_json(), ensure_ascii=False))
        return
    _render(scores)


def _render(scores) -> None:
    table = Table(title=f"{scores.n} segments", title_justify="left")
    table.add_column("metric")
    table.add_column("score", justify="right")
    table.add_column("95% CI", justify="right")
    named = (("BLEU", scores.bleu), ("chrF", scores.chrf), ("chrF++", scores.chrfpp))
    for name, metric in named:
        table.add_row(name, f"{metric.score:.2f}", f"{metric.ci_low:.2f} – {metric.ci_high:.2f}")
    extras = (("copy rate", scores.copy_rate), ("off-target rate", scores.off_target_rate))
    for name, rate in extras:
        if rate is not None:
            table.add_row(name, f"{100 * rate:.1f}%", "")
    if scores.comet is not None:
        table.add_row("COMET", f"{scores.comet:.4f}", "")
    console.print(table)
    for name, metric in named:
        console.print(f"{name}: {escape(metric.signature)}", highlight=False, soft_wrap=True)
    if scores.languages:
        found = ", ".join(f"{lang} {count}" for lang, count in scores.languages.items())
        console.print(f"language ID: {found}", highlight=False)
    for note in scores.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
