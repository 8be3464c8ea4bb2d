"""Corpus readers for the grammar-book track, registered in `lowres_mt.corpora.readers.READERS`.

Each takes a `Source` (the set ref, its verified files, languages and options) and returns
records: `Pair`, `Lexeme`, `GlossedExample` or `BookSection`. Archive formats (`mtob-*`) read one
member of an encrypted zip through the decrypted cache (`lowres_mt.corpora.book.archive`).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import TYPE_CHECKING

from lowres_mt.corpora.book import cldf, latex, mtob
from lowres_mt.corpora.book.archive import read_member_text
from lowres_mt.corpora.book.records import BookSection, GlossedExample, Lexeme
from lowres_mt.corpora.book.splits import SPLITS, split_dictionary_examples
from lowres_mt.io import read_text
from lowres_mt.records import Pair

if TYPE_CHECKING:
    from lowres_mt.corpora.readers import Source

ARCHIVE_OPTIONS = ("member", "password")


def _member(source: Source) -> str:
    return read_member_text(source.paths[0], source.options["member"], source.options.get("password"))


def read_mtob_pairs(source: Source) -> list[Pair]:
    """`Label: text` blocks; `options.labels` gives the label of each language, in order."""
    return mtob.parse_labelled_pairs(_member(source), source.options["labels"], source.languages, source.ref)


def read_mtob_table(source: Source) -> list[Pair]:
    """A headed TSV; `options.columns` names each language's column, in order; id = `sid`."""
    return mtob.parse_test_table(_member(source), source.options["columns"], source.languages, source.ref)


def read_mtob_wordlist(source: Source) -> list[Lexeme]:
    """`options.layout`: `gloss-colon` (`english: kgv; kgv`) or `tab` (`head<TAB>[pos<TAB>]gloss`)."""
    text, (lang, gloss_lang) = _member(source), source.languages
    if source.options.get("layout", "tab") == "gloss-colon":
        return mtob.parse_colon_wordlist(text, lang, gloss_lang, source.ref)
    return mtob.parse_tab_wordlist(text, lang, gloss_lang, source.ref)


def read_mtob_grammar(source: Source) -> list[BookSection]:
    return mtob.split_plain_grammar(_member(source), source.ref, source.languages[0])


def check_archive_options(required: str):
    def check(files: tuple[str, ...], options: dict) -> str | None:
        for key in ("member", required):
            if key and not options.get(key):
                return f"needs 'options.{key}'"
        if required in ("labels", "columns") and (not isinstance(options[required], list)
                                                  or len(options[required]) != 2):
            return f"'options.{required}' must list two names, one per language"
        if options.get("layout", "tab") not in ("tab", "gloss-colon"):
            return "'options.layout' must be 'tab' or 'gloss-colon'"
        return None
    return check


# --- the LaTeX grammar ------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _parse_book(paths: tuple[Path, ...], macros_name: str, lang: str, gloss_lang: str,
                corpus: str) -> tuple[tuple[BookSection, ...], tuple[GlossedExample, ...]]:
    macro_paths = [p for p in paths if p.name == macros_name]
    macros = latex.parse_gloss_macros(read_text(macro_paths[0])) if macro_paths else {}
    sections: list[BookSection] = []
    examples: list[GlossedExample] = []
    for path in paths:
        if path.name == macros_name:
            continue
        found = latex.parse_chapter(read_text(path), chapter_id=path.stem, lang=lang,
                                    translation_lang=gloss_lang, macros=macros, corpus=corpus)
        sections += found[0]
        examples += found[1]
    return tuple(sections), tuple(examples)


def _book(source: Source) -> tuple[tuple[BookSection, ...], tuple[GlossedExample, ...]]:
    lang, gloss_lang = source.languages
    corpus = source.ref.partition(":")[0]
    return _parse_book(tuple(source.paths), source.options.get("macros", ""), lang, gloss_lang, corpus)


def read_latex_sections(source: Source) -> list[BookSection]:
    """Chapters split at their headings; `options.macros` names the file defining gloss macros."""
    return list(_book(source)[0])


def read_latex_examples(source: Source) -> list[GlossedExample]:
    return list(_book(source)[1])


def read_latex_example_pairs(source: Source) -> list[Pair]:
    """The book's attested examples as sentence pairs (sentence → translation); starred ones skipped."""
    lang, gloss_lang = source.languages
    pairs = []
    for example in _book(source)[1]:
        if example.judgement:
            source.skipped["ungrammatical"] += 1
            continue
        pairs.append(Pair(example.sentence, example.translation, lang, gloss_lang, source.ref, example.id))
    return pairs


def read_latex_wordlist(source: Source) -> list[Lexeme]:
    lang, gloss_lang = source.languages
    return latex.parse_wordlist(read_text(source.paths[0]), lang=lang,
                                gloss_lang=gloss_lang, corpus=source.ref)


# --- CLDF dictionaries ------------------------------------------------------------------------

def read_cldf_lexemes(source: Source) -> list[Lexeme]:
    """Dictionaria entries.csv + senses.csv: one Lexeme per sense."""
    return cldf.dictionaria_lexemes(read_text(source.paths[0]), read_text(source.paths[1]),
                                    source.languages[0], source.ref)


def read_cldf_example_pairs(source: Source) -> list[Pair]:
    return cldf.dictionaria_pairs(read_text(source.paths[0]), source.languages[0], source.ref)


def read_cldf_glossed(source: Source) -> list[GlossedExample]:
    return cldf.dictionaria_glossed(read_text(source.paths[0]), source.languages[0], source.ref)


def read_cldf_split(source: Source) -> list[Pair]:
    """One split of the example sentences (see `lowres_mt.corpora.book.splits`); `options.exclude` names the
    sets whose sentences leave every split (their text is read from those sets)."""
    path, options = source.paths[0], source.options
    stat = path.stat()
    splits = _splits(str(path), stat.st_size, stat.st_mtime_ns, source.languages[0],
                     tuple(options.get("exclude", [])), options["dev_size"], options["test_size"],
                     options.get("min_words", 3))
    return [dataclasses.replace(p, corpus=source.ref) for p in splits[options["split"]]]


@functools.lru_cache(maxsize=4)
def _splits(path: str, size: int, mtime_ns: int, lang: str, exclude: tuple[str, ...], dev_size: int,
            test_size: int, min_words: int) -> dict[str, list[Pair]]:
    """All three splits at once, computed once per file version and options in a process."""
    from lowres_mt.corpora import load_set

    texts = [t for ref in exclude for record in load_set(ref) for t in record_texts(record)]
    pairs = cldf.dictionaria_pairs(read_text(Path(path)), lang)
    return split_dictionary_examples(pairs, texts, dev_size=dev_size, test_size=test_size, min_words=min_words)


def record_texts(record) -> list[str]:
    """Every sentence-like text of a record (both sides of a pair, all lines of an example)."""
    if isinstance(record, Pair):
        return [record.src, record.tgt]
    if isinstance(record, GlossedExample):
        return [record.sentence, record.text, record.translation]
    if isinstance(record, Lexeme):
        return [record.headword, record.gloss]
    return [getattr(record, "text", "")]


def check_split_options(files: tuple[str, ...], options: dict) -> str | None:
    if options.get("split") not in SPLITS:
        return f"needs 'options.split', one of {', '.join(SPLITS)}"
    for key in ("dev_size", "test_size"):
        if not isinstance(options.get(key), int) or options[key] < 0:
            return f"needs 'options.{key}', a number of sentences >= 0"
    exclude = options.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(r, str) and ":" in r for r in exclude):
        return "'options.exclude' must list set refs (corpus:set)"
    return None


def read_ids_lexemes(source: Source) -> list[Lexeme]:
    """IDS forms.csv + parameters.csv: word forms glossed with their concept's English name."""
    return cldf.ids_lexemes(read_text(source.paths[0]), read_text(source.paths[1]), source.languages[0], source.ref)


def require_macros_file(files: tuple[str, ...], options: dict) -> str | None:
    name = options.get("macros")
    if name and not any(Path(f).name == name for f in files):
        return f"'options.macros' names {name}, which is not among the set's files"
    return None
