"""`lowres-mt translate`: text on the command line, a file or stdin (batch), or an interactive prompt."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.markup import escape

from lowres_mt.cli.common import BACKEND_HELP, QUANTIZATION_HELP, console, err_console
from lowres_mt.errors import UserError
from lowres_mt.io import decode_text, read_text, write_text


def register(app: typer.Typer) -> None:
    app.command("translate")(translate_cmd)


def translate_cmd(
    text: list[str] = typer.Argument(None, help="segments to translate (each argument is one)"),
    run: Path = typer.Option(None, "--run", help="trained run folder, e.g. runs/en-is-tell"),
    base_model: str = typer.Option(None, "--base-model", help="base model for zero-shot use (no --run)"),
    src: str = typer.Option(..., "--from", help="source language code, e.g. en"),
    tgt: str = typer.Option(..., "--to", help="target language code, e.g. is"),
    input_file: Path = typer.Option(None, "--input", "-i", help="file with one segment per line"),
    output_file: Path = typer.Option(None, "--output", "-o",
                                     help="write the translations to this file (atomically) instead of stdout"),
    batch_size: int = typer.Option(32, "--batch-size", min=1,
                                   help="sentences decoded together; output is written a batch at a time"),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1, help="longest answer, in tokens"),
    num_beams: int = typer.Option(1, "--num-beams", min=1, help="1 = greedy"),
    train_vocabulary: bool = typer.Option(False, "--train-vocabulary",
                                          help="answer only with tokens the run was trained on"),
    mbr_samples: int = typer.Option(0, "--mbr-samples", min=0,
                                    help="MBR decoding: this many sampled answers a line, the consensus kept "
                                         "(chrF against the others); about that many times slower; 0 = greedy"),
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP),
    quantization: str = typer.Option("auto", "--quantization", help=QUANTIZATION_HELP),
) -> None:
    """Translate text with a trained run (or a base model, zero-shot).

    Batch mode (text arguments, --input, or piped stdin) prints one line per input line, in
    order, a batch at a time; blank lines stay blank. Input must be UTF-8. With no text and a
    terminal, an interactive prompt starts: /swap swaps the direction, /quit leaves.
    """
    from lowres_mt.translate import DecodeSettings, open_translator, segment_pieces

    if run is not None and base_model is not None:
        raise UserError("give either --run or --base-model, not both (a run knows its base model)")
    if input_file is not None and not input_file.is_file():
        raise UserError(f"--input {input_file}: no such file")
    if output_file is not None and input_file is not None and output_file.resolve() == input_file.resolve():
        raise UserError(f"--output {output_file} is the --input file; write the translations elsewhere")
    segments = _batch_segments(text, input_file)
    if segments is not None:
        segment_pieces(segments)  # a sentence too long to translate is refused before loading anything
    settings = DecodeSettings(batch_size, max_new_tokens, num_beams, train_vocabulary=train_vocabulary,
                              backend=backend, quantization=quantization, mbr_samples=mbr_samples)
    translator = open_translator(run, base_model, settings,
                                 direction=(src, tgt), progress=False)
    if segments is None:
        _interactive(translator, src, tgt)
        return
    if output_file is not None:
        lines = list(translator.stream(segments, src, tgt, chunk=batch_size))
        write_text(output_file, "".join(line + "\n" for line in lines))
        err_console.print(f"{len(lines)} lines → {output_file}", highlight=False)
        return
    for line in translator.stream(segments, src, tgt, chunk=batch_size):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _batch_segments(text: list[str] | None, input_file: Path | None) -> list[str] | None:
    """Segments for batch mode (UTF-8 checked), or None when the interactive prompt should start."""
    if text:
        return list(text)
    if input_file is not None:
        return read_text(input_file).splitlines()
    if not sys.stdin.isatty():
        return decode_text(sys.stdin.buffer.read(), "stdin").splitlines()
    return None


def _interactive(translator, src: str, tgt: str) -> None:
    history = _start_history()
    console.print(f"[bold]{translator.label}[/] — type text to translate; /swap swaps the "
                  "direction, /quit leaves.", highlight=False)
    while True:
        try:
            line = input(f"{src}→{tgt}> ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            break
        except UnicodeDecodeError:
            err_console.print("[red]that line is not valid UTF-8; set your terminal to UTF-8[/]")
            continue
        command = line.strip()
        if command in ("/quit", "/exit", "/q"):
            break
        if command == "/swap":
            try:
                translator.check(tgt, src)
            except UserError as err:
                err_console.print(f"[red]{err}[/]", highlight=False)
                continue
            src, tgt = tgt, src
            continue
        if command.startswith("/"):
            err_console.print("commands: /swap, /quit")
            continue
        if command:
            try:
                console.print(translator.translate([line], src, tgt)[0], highlight=False, markup=False)
            except UserError as err:
                err_console.print(f"[red]{escape(str(err))}[/]", highlight=False)
    _save_history(history)


def _start_history() -> Path | None:
    try:
        import readline
    except ImportError:  # not every platform ships readline; plain input() still works
        return None
    from lowres_mt.corpora import cache_dir

    path = cache_dir() / "translate_history"
    if path.is_file():
        readline.read_history_file(path)
    readline.set_history_length(1000)
    return path


def _save_history(path: Path | None) -> None:
    if path is None:
        return
    import readline

    path.parent.mkdir(parents=True, exist_ok=True)
    readline.write_history_file(path)
