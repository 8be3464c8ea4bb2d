"""Parsers for the MTOB-style benchmark files (Kalamang, and Kanuri in the same shape).

All functions take decoded text and return records; they never print it. Every file of the
benchmark starts with (or contains) a BIG-bench canary line, which is dropped here.
Formats:
- labelled blocks (`train_examples.txt`, `grammar_parallel.txt`): blank-line separated blocks of
  `English: …` / `Kalamang: …` lines; an unlabelled line continues the field above it;
- test tables (`test.tsv`, …): a header naming the columns (`sid`, `english`, `kalamang`), then
  tab-separated rows;
- the English→Kalamang wordlist (`dictionary.tsv`): `english: kgv; kgv` per line;
- the Kanuri dictionary: `headword<TAB>pos<TAB>definition`; the health glossary: `Kanuri<TAB>English`;
- grammar text: one paragraph per line, numbered headings (`3.2 Nouns`) on their own line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lowres_mt.corpora.book.records import BookSection, Lexeme
from lowres_mt.errors import UserError
from lowres_mt.records import Pair

# the canary line holds a GUID (the BIG-bench canary)
CANARY = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_HEADING = re.compile(r"(\d+(?:\.\d+)*)\.?\s+(\S.*)")


def content_lines(text: str) -> list[str]:
    """Lines of a benchmark file without the canary line(s) (line endings dropped)."""
    return [line.rstrip("\r") for line in text.split("\n") if not CANARY.search(line)]


def parse_labelled_pairs(text: str, labels: Sequence[str], langs: Sequence[str],
                         corpus: str = "") -> list[Pair]:
    """Pairs from `Label: text` blocks; `labels[i]` is the label of language `langs[i]`.

    Blocks lacking either label are skipped; ids are the 0-based block index.
    """
    pairs: list[Pair] = []
    block: dict[str, str] = {}
    last: str | None = None
    index = 0

    def flush() -> None:
        nonlocal index
        src, tgt = block.get(labels[0], "").strip(), block.get(labels[1], "").strip()
        if src and tgt:
            pairs.append(Pair(src, tgt, langs[0], langs[1], corpus, str(index)))
        index += 1 if block else 0
        block.clear()

    for line in content_lines(text):
        label, sep, value = line.partition(":")
        if not line.strip():
            flush()
            last = None
        elif sep and label.strip() in labels:
            last = label.strip()
            if last in block:  # a second pair without a blank line between
                flush()
            block[last] = value.strip()
        elif last is not None:
            block[last] += " " + line.strip()
    flush()
    return pairs


def parse_test_table(text: str, columns: Sequence[str], langs: Sequence[str],
                     corpus: str = "") -> list[Pair]:
    """Pairs from a headed TSV; `columns[i]` names the column of language `langs[i]`; id = `sid`.

    The header is the first tab-separated line (it may carry the canary as an extra column).
    """
    lines = [line.rstrip("\r") for line in text.split("\n")]
    start = next((i for i, line in enumerate(lines) if "\t" in line), None)
    if start is None:
        raise UserError(f"{corpus}: the table has no tab-separated header line")
    header = [h.strip().lower() for h in lines[start].split("\t")]
    missing = [c for c in columns if c.lower() not in header]
    if missing:
        known = ", ".join(h for h in header if not CANARY.search(h))
        raise UserError(f"{corpus}: no column '{missing[0]}' in the table (columns: {known}); fix options.columns")
    src_col, tgt_col = (header.index(c.lower()) for c in columns)
    id_col = header.index("sid") if "sid" in header else None
    pairs = []
    for i, line in enumerate(lines[start + 1:]):
        row = line.split("\t")
        if CANARY.search(line) or len(row) <= max(src_col, tgt_col):
            continue
        src, tgt = row[src_col].strip(), row[tgt_col].strip()
        if src and tgt:
            pair_id = row[id_col].strip() if id_col is not None and row[id_col].strip() else str(i)
            pairs.append(Pair(src, tgt, langs[0], langs[1], corpus, pair_id))
    return pairs


def parse_colon_wordlist(text: str, lang: str, gloss_lang: str, corpus: str = "") -> list[Lexeme]:
    """`gloss: headword; headword` lines (MTOB's English→Kalamang wordlist), one Lexeme per headword."""
    out: list[Lexeme] = []
    for i, line in enumerate(content_lines(text)):
        gloss, sep, heads = line.partition(": ")
        if not sep:
            continue
        for k, head in enumerate(h.strip() for h in heads.split(";")):
            if head and gloss.strip():
                out.append(Lexeme(head, gloss.strip(), lang, gloss_lang, corpus=corpus, id=f"{i}.{k}"))
    return out


def parse_tab_wordlist(text: str, lang: str, gloss_lang: str, corpus: str = "") -> list[Lexeme]:
    """`headword<TAB>gloss` or `headword<TAB>pos<TAB>definition` lines; a header row is skipped.

    A definition keeps its first clause: illustrative phrases after an em dash are dropped.
    """
    out: list[Lexeme] = []
    for i, line in enumerate(content_lines(text)):
        row = [c.strip() for c in line.split("\t")]
        if len(row) == 2:
            head, pos, gloss = row[0], "", row[1]
        elif len(row) == 3:
            head, pos, gloss = row
        else:
            continue
        if i == 0 and {head.lower(), gloss.lower()} & {"english", "kanuri", "kalamang", "headword"}:
            continue
        gloss = gloss.split("—")[0].strip().rstrip(".;,").strip()
        if head and gloss:
            out.append(Lexeme(head, gloss, lang, gloss_lang, pos, corpus, str(i)))
    return out


def split_plain_grammar(text: str, corpus: str = "", lang: str = "en",
                        max_words: int = 220) -> list[BookSection]:
    """A plain-text grammar as sections: numbered headings open a section; long ones are chunked."""
    sections: list[BookSection] = []
    title: tuple[str, ...] = ("Front matter",)
    buffer: list[str] = []

    def flush() -> None:
        chunk: list[str] = []
        words = 0
        for para in buffer:
            n = len(para.split())
            if chunk and words + n > max_words:
                sections.append(BookSection(title, "\n".join(chunk), lang, (), corpus, str(len(sections))))
                chunk, words = [], 0
            chunk.append(para)
            words += n
        if chunk:
            sections.append(BookSection(title, "\n".join(chunk), lang, (), corpus, str(len(sections))))
        buffer.clear()

    for line in content_lines(text):
        line = line.replace("\t", " ").strip()
        if not line:
            continue
        match = _HEADING.fullmatch(line)
        if match and len(line) <= 80 and not line.endswith("."):
            flush()
            title = (line,)
        else:
            buffer.append(line)
    flush()
    return sections
