"""A user's own files as corpus sets: a file path wherever a recipe takes a set ref.

A recipe names a set either as `CORPUS:SET` (a shipped manifest) or as a path, relative to the
recipe file (`data/train.tsv`). No manifest or checksum is written by hand: `load_recipe` resolves
each path, and `declare`s what the recipe field it sits in expects (pairs, monolingual text,
wordlist entries, grammar sections) in the recipe's languages; reading it computes its sha256, which
the run's data manifest records, so an edited file shows as a changed digest rather than being
refused. Formats follow the file name:

| kind | file | read as |
|---|---|---|
| pairs | `x.tsv` / `x.csv` | `src<TAB>tgt` (or two CSV columns) in the recipe's language order; a first line of two language codes or names (`en<TAB>fo`) says which column is which |
| pairs | `x.jsonl` | one `{"src": …, "tgt": …}` object a line (keys may also be the two language codes) |
| pairs | `data/train` (no file of that name) | aligned `data/train.en` + `data/train.fo`, one sentence a line |
| text | any | one sentence a line, in the language of a `.xx.` part of the name (`mono.fo.txt`), else the recipe's second language |
| lexemes | `x.tsv` / `x.csv` | `word<TAB>gloss`, several glosses split by `;` or in further columns; the words are in the recipe's second language unless a header of codes says otherwise |
| sections | `x.md` / `x.txt` | a grammar: Markdown headings start sections; plain text without headings is one section a paragraph |
| synthetic | `x.jsonl` | `lowres-mt synth` lines: "source" (synthetic) → "target" (real) in their "direction" |
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

from lowres_mt.corpora.book.records import BookSection, Lexeme
from lowres_mt.corpora.manifest import FileEntry
from lowres_mt.errors import UserError
from lowres_mt.io import iter_lines, read_text, sha256_file
from lowres_mt.records import Pair, Text

KINDS = ("pairs", "text", "lexemes", "sections", "synthetic")
# recipe keys whose entries are set refs, and the kind of records each expects (None: shipped sets only)
REF_KEYS: dict[tuple[str, str], str | None] = {
    ("task", "train"): "pairs", ("task", "dev"): "pairs", ("task", "guard"): "pairs",
    ("eval", "testsets"): "pairs", ("mono", "corpora"): "text", ("book", "sentences"): "pairs",
    ("book", "wordlists"): "lexemes", ("book", "grammar"): "sections", ("book", "glossed"): None,
    ("general", "corpora"): None, ("synthetic", "corpora"): "synthetic",
}
_ROLES = {"pairs": "train", "text": "monolingual", "lexemes": "book", "sections": "book", "synthetic": "train"}
_SUFFIXES = {".tsv", ".csv", ".jsonl", ".txt", ".md", ".markdown", ".text"}
_CODE = re.compile(r"[a-z]{2,3}")
_HEADING = re.compile(r"(#{1,6})\s+(.+?)\s*#*\s*")
_HEADER_WORDS = {"word", "words", "headword", "lemma", "gloss", "glosses", "translation", "meaning",
                 "source", "target", "src", "tgt"}


@dataclass(frozen=True)
class LocalSpec:
    kind: str  # one of KINDS
    languages: tuple[str, str]  # the recipe's pair
    names: tuple[tuple[str, str], ...] = ()  # (code, name) of the recipe's language names


_declared: dict[str, LocalSpec] = {}
_digests: dict[Path, tuple[int, int, str]] = {}  # path -> (size, mtime_ns, sha256)


def is_path_ref(ref: str) -> bool:
    """Whether a set ref names a file (`data/train.tsv`, `/abs/x`, `train.tsv`) rather than a
    shipped set (`flores200:devtest`): manifest names never hold a slash or a file suffix."""
    return "/" in ref or "\\" in ref or Path(ref).suffix.lower() in _SUFFIXES


def shown(ref: str) -> str:
    """A set ref as tables and logs show it: a file relative to the current folder, if below it."""
    if not is_path_ref(ref) or not os.path.isabs(ref):
        return ref
    relative = os.path.relpath(ref)
    return ref if relative.startswith("..") else relative


def declare(ref: str, kind: str, languages: tuple[str, str], names: dict[str, str] | None = None) -> None:
    """Say what a recipe expects of the file `ref` (an absolute path), for set_info/read_set."""
    _declared[ref] = LocalSpec(kind, tuple(languages), tuple(sorted((names or {}).items())))


def spec(ref: str) -> LocalSpec:
    if ref not in _declared:
        raise UserError(f"'{ref}' is a file path no recipe names; put it in a recipe key such as "
                        "task.train or eval.testsets (or use `lowres-mt eval RECIPE --test FILE`)")
    return _declared[ref]


def files_of(ref: str) -> tuple[Path, ...]:
    """The file(s) a path ref reads: the file itself, or the aligned `prefix.<lang>` pair."""
    path, local = Path(ref), spec(ref)
    if path.is_file():
        return (path,)
    if local.kind == "pairs" and not path.suffix:
        aligned = tuple(path.with_name(f"{path.name}.{lang}") for lang in local.languages)
        if all(p.is_file() for p in aligned):
            return aligned
        names = " and ".join(p.name for p in aligned)
        raise UserError(f"{ref}: no such file, nor the aligned pair {names} beside it")
    raise UserError(f"{ref}: no such file")


def file_entries(ref: str) -> tuple[FileEntry, ...]:
    """Each file as a FileEntry with its sha256 and size (hashed once while unchanged)."""
    return tuple(FileEntry(str(p), _sha256(p), p.stat().st_size, derived_from="local file")
                 for p in files_of(ref))


def format_of(ref: str) -> str:
    local, path = spec(ref), Path(ref)
    if local.kind == "pairs":
        return {".jsonl": "jsonl-pairs", ".csv": "csv-pairs", "": "aligned"}.get(path.suffix.lower(), "tsv-pairs")
    if local.kind == "lexemes":
        return "csv-wordlist" if path.suffix.lower() == ".csv" else "tsv-wordlist"
    return {"text": "text-lines", "sections": "markdown-sections", "synthetic": "synth-jsonl"}[local.kind]


def role_of(ref: str) -> str:
    return _ROLES[spec(ref).kind]


def languages_of(ref: str) -> tuple[str, ...]:
    """The set's languages, in the order its records hold them."""
    local = spec(ref)
    files_of(ref)  # a missing file is named before anything reads it
    if local.kind == "text":
        return (_text_language(Path(ref), local.languages),)
    if local.kind == "sections":
        return (local.languages[0],)
    if local.kind == "synthetic":
        return local.languages
    order = _header_order(ref, local) if Path(ref).suffix.lower() in (".tsv", ".csv") else None
    if order:
        return order
    return tuple(reversed(local.languages)) if local.kind == "lexemes" else local.languages


def read(ref: str) -> tuple[list, dict[str, int]]:
    """The records of a local set and how many lines each reason skipped."""
    local, paths = spec(ref), files_of(ref)
    skipped: dict[str, int] = {}
    langs = languages_of(ref)
    fmt = format_of(ref)
    if fmt == "aligned":
        records = _aligned(ref, paths, langs, skipped)
    elif fmt == "jsonl-pairs":
        records = _jsonl_pairs(ref, paths[0], langs, skipped)
    elif fmt == "synth-jsonl":
        records = _synthetic_pairs(ref, paths[0], langs, skipped)
    elif local.kind == "pairs":
        records = [Pair(a, b, langs[0], langs[1], ref, i) for i, (a, b) in _rows(ref, paths[0], 2, skipped)]
    elif local.kind == "lexemes":
        records = [Lexeme(word, gloss.strip(), langs[0], langs[1], corpus=ref, id=f"{i}.{k}")
                   for i, (word, *glosses) in _rows(ref, paths[0], 0, skipped)
                   for k, gloss in enumerate(g for cell in glosses for g in cell.split(";") if g.strip())]
    elif local.kind == "text":
        records = [Text(line.strip(), langs[0], ref, str(i))
                   for i, line in enumerate(iter_lines(paths[0])) if line.strip()]
    else:
        records = markdown_sections(read_text(paths[0]), langs[0], ref)
    return records, skipped


def markdown_sections(text: str, lang: str, corpus: str) -> list[BookSection]:
    """Sections of a grammar in Markdown or plain text: each heading opens one (its path is the
    chain of headings above it); text without any heading gives one section a paragraph."""
    chain: list[str] = []
    sections: list[BookSection] = []
    body: list[str] = []

    def flush() -> None:
        content = "\n".join(body).strip()
        if content:
            sections.append(BookSection(tuple(chain) or ("",), content, lang, corpus=corpus,
                                        id=str(len(sections))))
        body.clear()

    lines = text.splitlines()
    if not any(_HEADING.fullmatch(line) for line in lines):
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
        return [BookSection((f"paragraph {i + 1}",), p, lang, corpus=corpus, id=str(i))
                for i, p in enumerate(paragraphs)]
    for line in lines:
        heading = _HEADING.fullmatch(line)
        if heading:
            flush()
            del chain[len(heading.group(1)) - 1:]
            chain.append(heading.group(2))
        else:
            body.append(line)
    flush()
    return sections


# --- helpers ----------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    stat = path.stat()
    known = _digests.get(path)
    if known and known[:2] == (stat.st_size, stat.st_mtime_ns):
        return known[2]
    digest = sha256_file(path)
    _digests[path] = (stat.st_size, stat.st_mtime_ns, digest)
    return digest


def _text_language(path: Path, languages: tuple[str, str]) -> str:
    for part in path.name.split(".")[1:]:
        if part in languages:
            return part
    return languages[1]


def _cells(line: str, csv_file: bool) -> list[str]:
    if csv_file:
        return next(csv.reader(io.StringIO(line)), [])
    return line.split("\t")


def _header_order(ref: str, local: LocalSpec) -> tuple[str, str] | None:
    """The column languages a first line of two codes or names gives, or None (no header)."""
    first = next(iter_lines(Path(ref)), "")
    cells = [c.strip().casefold() for c in _cells(first, ref.lower().endswith(".csv"))[:2]]
    if len(cells) != 2:
        return None
    names = {code: code for code in local.languages}
    names.update({name.casefold(): code for code, name in local.names})
    try:
        from lowres_mt.data.prompts import language_name

        names.update({language_name(code, dict(local.names)).casefold(): code for code in local.languages})
    except UserError:
        pass
    codes = [names.get(cell) for cell in cells]
    if None not in codes and codes[0] != codes[1]:
        return codes[0], codes[1]
    if all(_CODE.fullmatch(cell) for cell in cells) and local.kind == "pairs":
        raise UserError(f"{ref}: its header names the languages {cells[0]} and {cells[1]}, but the "
                        f"recipe translates {local.languages[0]}-{local.languages[1]}; fix the header "
                        "or the recipe's `languages:`")
    return None


def _rows(ref: str, path: Path, width: int, skipped: dict[str, int]):
    """(line index, cells) of a TSV/CSV file: `width` cells exactly (0: at least two); the
    header line, when it names languages, is left out."""
    csv_file = path.suffix.lower() == ".csv"
    header = _header_order(ref, spec(ref)) is not None
    for i, line in enumerate(iter_lines(path)):
        cells = [c.strip() for c in _cells(line, csv_file)]
        if not line.strip() or (i == 0 and (header or {c.casefold() for c in cells} <= _HEADER_WORDS)):
            continue
        if (width and len(cells) != width) or len(cells) < 2 or not all(cells[:2]):
            skipped["malformed"] = skipped.get("malformed", 0) + 1
            continue
        yield str(i), cells


def _aligned(ref: str, paths: tuple[Path, ...], langs: tuple[str, ...], skipped: dict[str, int]) -> list[Pair]:
    from lowres_mt.corpora.readers import Source, read_aligned

    source = Source(ref, paths, langs)
    pairs = read_aligned(source)
    skipped.update(source.skipped)
    return pairs


def _jsonl_pairs(ref: str, path: Path, langs: tuple[str, ...], skipped: dict[str, int]) -> list[Pair]:
    """`{"src", "tgt"}` objects, or objects keyed by the two language codes."""
    from lowres_mt.corpora.readers import Source, json_rows

    source = Source(ref, (path,), langs)
    pairs = []
    for i, row in json_rows(source):
        keys = ("src", "tgt") if "src" in row else langs
        if not all(str(row.get(k) or "").strip() for k in keys):
            source.skipped["malformed"] += 1
            continue
        pairs.append(Pair(str(row[keys[0]]).strip(), str(row[keys[1]]).strip(), langs[0], langs[1], ref, str(i)))
    skipped.update(source.skipped)
    return pairs


def _synthetic_pairs(ref: str, path: Path, langs: tuple[str, ...], skipped: dict[str, int]) -> list[Pair]:
    """`lowres-mt synth` lines: "source" (synthetic) → "target" (real) in "direction"; a line for
    another language pair, or with an empty side, is skipped as malformed."""
    from lowres_mt.corpora.readers import Source, json_rows

    source = Source(ref, (path,), langs)
    pairs = []
    for i, row in json_rows(source):
        src_lang, _, tgt_lang = str(row.get("direction") or "").partition("-")
        src, tgt = str(row.get("source") or "").strip(), str(row.get("target") or "").strip()
        if {src_lang, tgt_lang} != set(langs) or not src or not tgt:
            source.skipped["malformed"] += 1
            continue
        pairs.append(Pair(src, tgt, src_lang, tgt_lang, ref, str(row.get("line", i))))
    skipped.update(source.skipped)
    return pairs
