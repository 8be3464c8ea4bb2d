"""Readers: one function per file format, turning verified corpus files into typed records.

`READERS` maps a manifest's `format:` to a `Reader`. Adding a format is one function taking a
`Source` and returning records, plus one entry here. Readers drop records whose text is empty and
count what they skip in `source.skipped` (reason -> count); ids are stable (line index or the
corpus's own id), so a skipped line never renumbers the rest.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lowres_mt.corpora.book import readers as book
from lowres_mt.errors import UserError
from lowres_mt.io import iter_lines, read_text
from lowres_mt.records import Instruction, Message, Pair, SystemOutput, Text


@dataclass
class Source:
    """What a reader gets: the set ref, its verified local files, languages and options."""

    ref: str
    paths: tuple[Path, ...]
    languages: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class Reader:
    read: Callable[[Source], list]
    files: int | None = None  # exact number of files a set must name; None = one or more
    languages: int = 1  # how many languages a set must declare
    options: tuple[str, ...] = ()  # option keys the reader understands
    check: Callable[[tuple[str, ...], dict], str | None] | None = None

    def check_set(self, files: tuple[str, ...], languages: tuple[str, ...], options: dict) -> str | None:
        """A problem with a set declared for this reader (phrased to follow the set's key), or None."""
        if self.files is not None and len(files) != self.files:
            return f"needs exactly {self.files} file(s) in 'files', got {len(files)}"
        if not files:
            return "needs at least one file in 'files'"
        if len(languages) != self.languages:
            return f"needs exactly {self.languages} language(s) in 'languages', got {len(languages)}"
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            return f"has unknown option '{unknown[0]}' (allowed: {', '.join(self.options) or 'none'})"
        return self.check(files, options) if self.check else None


def _line_id(file_index: int, line_index: int, n_files: int) -> str:
    return str(line_index) if n_files == 1 else f"{file_index}:{line_index}"


# --- sentence pairs -------------------------------------------------------------------------

def read_tsv_pairs(source: Source) -> list[Pair]:
    """One pair per line, `src<TAB>tgt` in the set's language order; other lines are skipped."""
    src_lang, tgt_lang = source.languages
    pairs = []
    for i, line in enumerate(iter_lines(source.paths[0])):
        parts = line.split("\t")
        if len(parts) != 2:
            source.skipped["malformed"] += 1
            continue
        _add_pair(pairs, source, parts[0], parts[1], str(i))
    return pairs


def read_aligned(source: Source) -> list[Pair]:
    """Two line-aligned files, one sentence per line: source language first, then target."""
    src_lines, tgt_lines = (list(iter_lines(p)) for p in source.paths)
    if len(src_lines) != len(tgt_lines):
        names = " and ".join(p.name for p in source.paths)
        raise UserError(f"{source.ref}: {names} have {len(src_lines)} and {len(tgt_lines)} lines; "
                        "aligned files must have equally many (fix the manifest or the files)")
    pairs: list[Pair] = []
    for i, (src, tgt) in enumerate(zip(src_lines, tgt_lines, strict=True)):
        _add_pair(pairs, source, src, tgt, str(i))
    return pairs


def _add_pair(pairs: list[Pair], source: Source, src: str, tgt: str, pair_id: str) -> None:
    src, tgt = src.strip(), tgt.strip()
    if not src or not tgt:
        source.skipped["empty"] += 1
        return
    pairs.append(Pair(src, tgt, source.languages[0], source.languages[1], source.ref, pair_id))


def read_system_outputs(source: Source) -> list[SystemOutput]:
    """One file per system, line-aligned with the test set; `options.systems` names them in order.

    Empty lines are kept: an empty translation is still that system's output for the segment.
    """
    src_lang, tgt_lang = source.languages
    outputs: list[SystemOutput] = []
    expected = None
    for system, path in zip(source.options["systems"], source.paths, strict=True):
        lines = list(iter_lines(path))
        if expected is not None and len(lines) != expected:
            raise UserError(f"{source.ref}: {path.name} has {len(lines)} lines, the other systems {expected}")
        expected = len(lines)
        outputs += [SystemOutput(system, hyp.strip(), src_lang, tgt_lang, source.ref, str(i))
                    for i, hyp in enumerate(lines)]
    return outputs


def _check_systems(files: tuple[str, ...], options: dict) -> str | None:
    systems = options.get("systems")
    if not isinstance(systems, list) or not all(isinstance(s, str) and s for s in systems):
        return "needs 'options.systems': a list of system names, one per file"
    if len(systems) != len(files) or len(set(systems)) != len(systems):
        return f"'options.systems' must name each of the {len(files)} files once, got {len(systems)} names"
    return None


# --- monolingual text -----------------------------------------------------------------------

def read_text_lines(source: Source) -> list[Text]:
    """One text per line."""
    texts: list[Text] = []
    for k, path in enumerate(source.paths):
        for i, line in enumerate(iter_lines(path)):
            _add_text(texts, source, line, _line_id(k, i, len(source.paths)))
    return texts


_CONLLU_TEXT = re.compile(r"#\s*text\s*=\s?(.*)")
_CONLLU_SENT_ID = re.compile(r"#\s*sent_id\s*=\s?(.*)")


def read_conllu(source: Source) -> list[Text]:
    """The `# text =` comment of every CoNLL-U sentence; id = its `# sent_id` when present."""
    texts: list[Text] = []
    for k, path in enumerate(source.paths):
        sent_id, n = None, 0
        for line in iter_lines(path):
            if not line.strip():
                sent_id = None
            elif m := _CONLLU_SENT_ID.fullmatch(line):
                sent_id = m.group(1).strip()
            elif m := _CONLLU_TEXT.fullmatch(line):
                _add_text(texts, source, m.group(1), sent_id or _line_id(k, n, len(source.paths)))
                n += 1
    return texts


def read_icepahc_tsv(source: Source) -> list[Text]:
    """IcePaHC sentence table (header: sent_id, year, genre, ud_split, text); `options.min_year` filters."""
    min_year = source.options.get("min_year")
    lines = iter_lines(source.paths[0])
    header = next(lines, "").split("\t")
    needed = ("sent_id", "text") + (("year",) if min_year is not None else ())
    if not set(needed) <= set(header):
        raise UserError(f"{source.ref}: {source.paths[0].name} lacks a header with columns {', '.join(needed)}")
    col = {name: i for i, name in enumerate(header)}
    texts: list[Text] = []
    for line in lines:
        row = line.split("\t")
        if len(row) != len(header) or (min_year is not None and not row[col["year"]].isdigit()):
            source.skipped["malformed"] += 1
        elif min_year is None or int(row[col["year"]]) >= min_year:
            _add_text(texts, source, row[col["text"]], row[col["sent_id"]])
    return texts


def _check_min_year(files: tuple[str, ...], options: dict) -> str | None:
    year = options.get("min_year")
    if year is not None and (isinstance(year, bool) or not isinstance(year, int)):
        return f"'options.min_year' must be a year (integer), got {year!r}"
    return None


def _add_text(texts: list[Text], source: Source, text: str, text_id: str) -> None:
    text = text.strip()
    if not text:
        source.skipped["empty"] += 1
        return
    texts.append(Text(text, source.languages[0], source.ref, text_id))


# --- instruction data -----------------------------------------------------------------------

def json_rows(source: Source) -> Iterator[tuple[int, dict]]:
    """(index, object) for every JSON-object line of every file; other lines count as malformed."""
    for path in source.paths:
        for i, line in enumerate(iter_lines(path)):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if isinstance(row, dict):
                yield i, row
            else:
                source.skipped["malformed"] += 1


def _join(instruction: Any, extra: Any) -> str:
    instruction, extra = str(instruction or "").strip(), str(extra or "").strip()
    return f"{instruction}\n\n{extra}" if instruction and extra else instruction


def _add_chat(records: list[Instruction], source: Source, turns: list[tuple[str, Any]], rec_id: str) -> None:
    messages = tuple(Message(role, str(text or "").strip()) for role, text in turns)
    if not messages or any(not m.content for m in messages):
        source.skipped["empty"] += 1
        return
    records.append(Instruction(messages, source.ref, rec_id))


def read_dolly_jsonl(source: Source) -> list[Instruction]:
    """Dolly: user = instruction (+ blank line + context when there is one); assistant = response."""
    out: list[Instruction] = []
    for i, row in json_rows(source):
        user = _join(row.get("instruction"), row.get("context"))
        _add_chat(out, source, [("user", user), ("assistant", row.get("response"))], str(row.get("id", i)))
    return out


_CALCULATOR = re.compile(r"<<[^<>]*>>")


def read_gsm8k_jsonl(source: Source) -> list[Instruction]:
    """GSM8K: question -> worked answer without `<<calc>>` annotations, ending on `#### N`."""
    out: list[Instruction] = []
    for i, row in json_rows(source):
        answer = _CALCULATOR.sub("", str(row.get("answer") or ""))
        _add_chat(out, source, [("user", row.get("question")), ("assistant", answer)], str(i))
    return out


_NO_INPUT = re.compile(r"\W*(?:no\s*input|n/?a)?\W*", re.IGNORECASE)


def read_alpaca_json(source: Source) -> list[Instruction]:
    """Alpaca-style JSON list: user = instruction (+ blank line + input); assistant = output.

    Placeholder inputs such as `<noinput>` or `N/A` count as no input.
    """
    try:
        rows = json.loads(read_text(source.paths[0]))
    except json.JSONDecodeError as err:
        raise UserError(f"{source.ref}: {source.paths[0].name} is not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(rows, list):
        raise UserError(f"{source.ref}: {source.paths[0].name} must hold a JSON list of objects")
    out: list[Instruction] = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            source.skipped["malformed"] += 1
            continue
        extra = row.get("input") or ""
        user = _join(row.get("instruction"), "" if _NO_INPUT.fullmatch(str(extra)) else extra)
        _add_chat(out, source, [("user", user), ("assistant", row.get("output"))], str(i))
    return out


_OASST_ROLES = {"user": "user", "prompter": "user", "assistant": "assistant"}


def read_oasst_threads(source: Source) -> list[Instruction]:
    """OASST threads: `messages` [{role, text}] alternating user/assistant, trimmed to end on assistant."""
    out: list[Instruction] = []
    for i, row in json_rows(source):
        turns = [(_OASST_ROLES.get(m.get("role")), m.get("text")) for m in row.get("messages") or []
                 if isinstance(m, dict)]
        while turns and turns[-1][0] != "assistant":
            turns.pop()
        if any(role is None for role, _ in turns):
            source.skipped["malformed"] += 1
            continue
        _add_chat(out, source, turns, str(row.get("message_tree_id", i)))
    return out


def read_selfinstruct_jsonl(source: Source) -> list[Instruction]:
    """Self-Instruct seed tasks: instruction (+ first instance's input) -> first instance's output."""
    out: list[Instruction] = []
    for i, row in json_rows(source):
        first = (row.get("instances") or [{}])[0]
        user = _join(row.get("instruction"), first.get("input"))
        _add_chat(out, source, [("user", user), ("assistant", first.get("output"))], str(row.get("id", i)))
    return out


READERS: dict[str, Reader] = {
    "tsv-pairs": Reader(read_tsv_pairs, files=1, languages=2),
    "aligned": Reader(read_aligned, files=2, languages=2),
    "system-outputs": Reader(read_system_outputs, languages=2, options=("systems",), check=_check_systems),
    "text-lines": Reader(read_text_lines),
    "conllu": Reader(read_conllu),
    "icepahc-tsv": Reader(read_icepahc_tsv, files=1, options=("min_year",), check=_check_min_year),
    "dolly-jsonl": Reader(read_dolly_jsonl),
    "gsm8k-jsonl": Reader(read_gsm8k_jsonl),
    "alpaca-json": Reader(read_alpaca_json, files=1),
    "oasst-threads": Reader(read_oasst_threads),
    "selfinstruct-jsonl": Reader(read_selfinstruct_jsonl),
}


# --- grammar-book track (lowres_mt.corpora.book.readers) ---
READERS.update({
    "mtob-pairs": Reader(book.read_mtob_pairs, files=1, languages=2, options=("member", "password", "labels"),
                         check=book.check_archive_options("labels")),
    "mtob-table": Reader(book.read_mtob_table, files=1, languages=2, options=("member", "password", "columns"),
                         check=book.check_archive_options("columns")),
    "mtob-wordlist": Reader(book.read_mtob_wordlist, files=1, languages=2, options=("member", "password", "layout"),
                            check=book.check_archive_options("")),
    "mtob-grammar": Reader(book.read_mtob_grammar, files=1, options=("member", "password"),
                           check=book.check_archive_options("")),
    "latex-sections": Reader(book.read_latex_sections, languages=2, options=("macros",), check=book.require_macros_file),
    "latex-examples": Reader(book.read_latex_examples, languages=2, options=("macros",), check=book.require_macros_file),
    "latex-example-pairs": Reader(book.read_latex_example_pairs, languages=2, options=("macros",),
                                  check=book.require_macros_file),
    "latex-wordlist": Reader(book.read_latex_wordlist, files=1, languages=2),
    "cldf-lexemes": Reader(book.read_cldf_lexemes, files=2, languages=2),
    "cldf-example-pairs": Reader(book.read_cldf_example_pairs, files=1, languages=2),
    "cldf-glossed": Reader(book.read_cldf_glossed, files=1, languages=2),
    "cldf-split": Reader(book.read_cldf_split, files=1, languages=2,
                         options=("split", "dev_size", "test_size", "exclude", "min_words"), check=book.check_split_options),
    "ids-lexemes": Reader(book.read_ids_lexemes, files=2, languages=2),
})
