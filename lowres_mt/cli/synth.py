"""`lowres-mt synth`: translate a monolingual corpus with a trained run into synthetic pairs."""

from __future__ import annotations

from pathlib import Path

import typer

from lowres_mt.cli.common import err_console


def register(app: typer.Typer) -> None:
    app.command("synth")(synth_cmd)


def synth_cmd(
    run: Path = typer.Option(..., "--run", help="trained run folder, e.g. runs/en-is-tell"),
    mono: str = typer.Option(..., "--mono", metavar="SET",
                             help="monolingual set (CORPUS:SET, e.g. icepahc:modern) or a text file, one "
                                  "sentence a line, in --from (or the language its name says: news.is.txt)"),
    src: str = typer.Option(..., "--from", help="the monolingual text's language, e.g. is"),
    tgt: str = typer.Option(..., "--to", help="the language to translate it into, e.g. en"),
    limit: int = typer.Option(None, "--limit", help="translate only the first N sentences"),
    out: Path = typer.Option(None, "--out", "-o",
                             help="JSONL file to write \\[default: RUN/synth/<corpus>-<set>.<from>-<to>.jsonl]"),
    resume: bool = typer.Option(False, "--resume",
                                help="continue an interrupted file: same run, corpus and decoding; "
                                     "sentences already in it are skipped, lines without a source_gain "
                                     "are scored"),
    batch_size: int = typer.Option(32, "--batch-size", min=1,
                                   help="sentences decoded together; the file grows a batch at a time"),
    num_beams: int = typer.Option(1, "--num-beams", min=1, help="1 = greedy"),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", min=1,
                                       help="longest translation, in tokens \\[default: the recipe's eval]"),
) -> None:
    """Translate monolingual text with a trained run into synthetic pairs: back-translation's
    first step.

    Each JSONL line holds "source": the run's translation (synthetic, in --to), "target": the
    corpus sentence (real, in --from), "direction": --to-(--from), the direction the pair trains,
    and its provenance: run, adapter_digest, decoding, mono, line; and "source_gain": how much the
    synthetic source raises the real target's probability under the same run (nats per token; the
    score `synthetic.keep` ranks by). --resume also scores lines written without one. Decoding is
    the recipe's eval settings, greedy unless --num-beams; sampling is not offered. Train on the
    file by naming it in the recipe's `synthetic.corpora` with a `synthetic.ratio` (docs/data.md,
    "Synthetic data").
    """
    from lowres_mt.synth import synthesize

    report = synthesize(run, mono, src, tgt, out, limit=limit, resume=resume, batch_size=batch_size,
                        num_beams=num_beams, max_new_tokens=max_new_tokens)
    scored = f"; {report.scored} of them scored now" if report.scored else ""
    if report.written == 0 and report.already:
        err_console.print(f"nothing left to translate: {report.out} holds {report.already} pairs{scored}",
                          highlight=False, soft_wrap=True)
        return
    notes = [f"{report.already} already there{scored}"] if report.already else []
    if report.too_long:
        notes.append(f"{report.too_long} too long to translate, left out")
    if report.empty:
        notes.append(f"{report.empty} empty translations kept")
    extra = f" ({'; '.join(notes)})" if notes else ""
    err_console.print(f"{report.written} pairs written → {report.out}{extra}, {report.seconds:.1f} s, "
                      f"{report.rate:.2f} sentences/s", highlight=False, soft_wrap=True)
