"""`lowres-mt init PAIR`: a commented recipe for a user's own files, sized for their data.

The recipe extends the shipped defaults (`_base`) by name and names the files by paths relative to
itself; nothing is hashed or declared by hand. Each file is read once here, through the same
readers training uses, so a wrong format, an empty file or a header naming other languages fails
now, in one line, rather than at training time.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from lowres_mt.corpora import local
from lowres_mt.errors import UserError
from lowres_mt.io import write_text

_PAIR = re.compile(r"([a-z]{2,3})-([a-z]{2,3})")
TOKENS_PER_CHAR = 2  # an upper bound (a byte-level token per UTF-8 byte): task.tokens only caps the
# budget, so every pair fits, and TELL's general data follows the tokens actually sampled
MONO_RATIO = 0.25  # monolingual tokens per task token, as the en-is recipe uses (0.25 to 1.5 scored level there)
MONO_SAFETY = 0.8  # init keeps the ratio below what the file holds (estimated from characters)


@dataclass(frozen=True)
class OwnFiles:
    train: Path
    dev: Path | None = None
    test: Path | None = None
    mono: Path | None = None
    wordlist: Path | None = None
    grammar: Path | None = None


@dataclass(frozen=True)
class Scaffold:
    path: Path  # the recipe written
    counts: dict[str, int]  # records read from each given file, by option name
    commands: tuple[str, ...]  # what to run next


def parse_pair(pair: str) -> tuple[str, str]:
    match = _PAIR.fullmatch(pair)
    if not match or match.group(1) == match.group(2):
        raise UserError(f"'{pair}' is not a language pair; write two ISO 639 codes, e.g. en-fo")
    return match.group(1), match.group(2)


def write_scaffold(pair: str, files: OwnFiles, *, out_dir: Path, names: dict[str, str] | None = None,
                   force: bool = False) -> Scaffold:
    """Check the files, then write `<out_dir>/<pair>.yaml` (never over a file unless `force`)."""
    from lowres_mt.data.prompts import language_name

    languages = parse_pair(pair)
    names = dict(names or {})
    for code in languages:
        language_name(code, names)  # an unknown code without --names is a one-line error
    out_dir = out_dir.absolute()
    path = out_dir / f"{pair}.yaml"
    if path.exists() and not force:
        raise UserError(f"{path} exists; pass --force to replace it, or --out another folder")
    kinds = {"train": "pairs", "dev": "pairs", "test": "pairs", "mono": "text", "wordlist": "lexemes",
             "grammar": "sections"}
    records: dict[str, list] = {}
    for option, kind in kinds.items():
        given = getattr(files, option)
        if given is not None:
            records[option] = _read_checked(Path(given), option, kind, languages, names)
    text = recipe_text(pair, languages, names, files, records, out_dir)
    write_text(path, text)
    shown = os.path.relpath(path)
    run = f"runs/{pair}-tell"
    commands = [f"lowres-mt data {shown}", f"lowres-mt train {shown}"]
    if files.test is not None:
        commands.append(f"lowres-mt eval {shown} --test {os.path.relpath(files.test)}")
    commands.append(f"lowres-mt translate --run {run} --from {languages[0]} --to {languages[1]} "
                    "--input FILE --output OUT")
    return Scaffold(path, {k: len(v) for k, v in records.items()}, tuple(commands))


def _read_checked(path: Path, option: str, kind: str, languages: tuple[str, str],
                  names: dict[str, str]) -> list:
    ref = os.path.normpath(path.absolute())
    local.declare(ref, kind, languages, names)
    found, _ = local.read(ref)
    if not found:
        what = {"pairs": "sentence pairs", "text": "sentences", "lexemes": "wordlist entries",
                "sections": "text"}[kind]
        raise UserError(f"--{option} {path}: holds no {what}; check the file and its format "
                        "(`lowres-mt init --help`)")
    return found


def recipe_text(pair: str, languages: tuple[str, str], names: dict[str, str], files: OwnFiles,
                records: dict[str, list], out_dir: Path) -> str:
    """The recipe's YAML, one line of advice a key."""
    from lowres_mt.data.prompts import language_name

    a, b = languages
    rel = {k: os.path.relpath(Path(getattr(files, k)).absolute(), out_dir) for k in records}
    train = records["train"]
    chars = sum(len(p.src) + len(p.tgt) for p in train)
    tokens = max(1, chars * TOKENS_PER_CHAR)
    title = f"{language_name(a, names)} ↔ {language_name(b, names)}"
    lines = [
        f"# {pair}: {title}, from your own files (written by `lowres-mt init`; edit freely).",
        "# Paths are relative to this file. Keys not set here come from the shipped defaults:",
        f"# `lowres-mt recipes show {pair}.yaml` prints the whole resolved recipe.",
        "extends: _base",
        f"name: {pair}",
        f"description: {title} from {rel['train']}",
        f"languages: [{a}, {b}]",
    ]
    if names:
        lines.append("language_names: {" + ", ".join(f"{k}: {v}" for k, v in names.items()) + "}")
    guard = [rel[k] for k in ("dev", "test") if k in records]
    lines += [
        "task:",
        f"  train: [{rel['train']}]  # {len(train)} pairs",
        f"  tokens: {tokens}  # content tokens to sample (both sides): this covers every pair",
    ]
    if "dev" in records:
        dev = len(records["dev"])
        lines += [f"  dev: {rel['dev']}  # picks the best checkpoint by dev chrF",
                  f"  dev_size: {min(dev, 64)}  # dev pairs a direction ({dev} in the file)"]
    if guard:
        lines.append(f"  guard: [{', '.join(guard)}]  # never trained on, even when a pair repeats")
    if "mono" in records:
        mono_chars = sum(len(t.text) for t in records["mono"])
        ratio = min(MONO_RATIO, math.floor(100 * MONO_SAFETY * mono_chars / max(chars, 1)) / 100)
        lines += ["mono:  # target-language text the model learns to write",
                  f"  corpora: [{rel['mono']}]  # {len(records['mono'])} sentences",
                  f"  ratio: {ratio}  # monolingual tokens per task token"]
    if "wordlist" in records or "grammar" in records:
        lines.append("book:  # used by --method sft+context / tell+context (evidence in every prompt)")
        if "wordlist" in records:
            lines.append(f"  wordlists: [{rel['wordlist']}]  # {len(records['wordlist'])} glosses")
        if "grammar" in records:
            lines.append(f"  grammar: [{rel['grammar']}]  # {len(records['grammar'])} sections")
    dev_chrf = min(32, len(records.get("dev", [])))
    lines += ["train:",
              f"  dev_chrf_size: {dev_chrf}  # dev sentences a direction translated at each evaluation"]
    systems = ["tell", "sft", "icl", "zero-shot", "copy"]
    lines += [
        "eval:",
        f"  testsets: [{rel['test']}]" if "test" in records else "  testsets: []  # add a test file",
        "  sample: 0  # every test sentence",
        f"  systems: [{', '.join(systems)}]",
        "  alphabet: auto  # answers use only letters seen in the training data's target side",
    ]
    return "\n".join(lines) + "\n"
