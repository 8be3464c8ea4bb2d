"""`lowres-mt init PAIR`: write a recipe for your own files and print the next commands."""

from __future__ import annotations

from pathlib import Path

import typer

from lowres_mt.cli.common import console


def register(app: typer.Typer) -> None:
    app.command("init")(init_cmd)


def init_cmd(
    pair: str = typer.Argument(..., help="language pair as two ISO 639 codes, e.g. en-fo"),
    train: Path = typer.Option(..., "--train", help="training pairs: TSV/CSV (src<TAB>tgt; a first "
                               "line `en<TAB>fo` names the columns), JSONL {src, tgt}, or a prefix "
                               "of aligned files (data/train for data/train.en + data/train.fo)"),
    dev: Path = typer.Option(None, "--dev", help="dev pairs (same formats): picks the best checkpoint"),
    test: Path = typer.Option(None, "--test", help="test pairs (same formats): what `eval` scores"),
    mono: Path = typer.Option(None, "--mono", help="monolingual text, one sentence a line "
                              "(its language from the name, e.g. mono.fo.txt)"),
    wordlist: Path = typer.Option(None, "--wordlist", help="wordlist TSV/CSV: word<TAB>gloss "
                                  "(several glosses split by ';')"),
    grammar: Path = typer.Option(None, "--grammar", help="a grammar as Markdown or plain text"),
    names: str = typer.Option(None, "--names", help="language names the ISO 639 data lacks, "
                              "e.g. xq=Xquish,en=English"),
    out: Path = typer.Option(Path("."), "--out", help="folder to write PAIR.yaml into"),
    force: bool = typer.Option(False, "--force", help="replace an existing PAIR.yaml"),
) -> None:
    """Write PAIR.yaml: a recipe over your own files that extends the shipped defaults."""
    from lowres_mt.languages import parse_names
    from lowres_mt.scaffold import OwnFiles, write_scaffold

    files = OwnFiles(train, dev, test, mono, wordlist, grammar)
    made = write_scaffold(pair, files, out_dir=out, names=parse_names(names) if names else None,
                          force=force)
    counts = ", ".join(f"{option} {n}" for option, n in made.counts.items())
    console.print(f"wrote {made.path} ({counts})", highlight=False, soft_wrap=True)
    console.print("next:", highlight=False)
    for command in made.commands:
        console.print(f"  {command}", highlight=False, soft_wrap=True)
