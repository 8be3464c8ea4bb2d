"""CLDF dictionary tables (Dictionaria, IDS) → wordlist entries and example sentence pairs.

- Dictionaria: `entries.csv` (headwords) joined with `senses.csv` (one English description per
  sense) gives `Lexeme`s; `examples.csv` gives sentence pairs. Its `Translated_Text` column is
  English for almost every row, but a few rows hold the Indonesian (Papuan Malay) translation
  there and the English one in `alt_translation1`; `english_side` picks the English one.
- IDS: `forms.csv` joined with `parameters.csv` (the concept's English name) gives `Lexeme`s.
"""

from __future__ import annotations

import csv
import io
import re

from lowres_mt.corpora.book.records import GlossedExample, Lexeme
from lowres_mt.records import Pair

_EN = frozenset("the a an is are was were he she they i you to of in and it that this with for on at "
                "his her their we not there be have has had don't my your what who from will".split())
_ID = frozenset("dia di yang itu ini dan pu dong mereka saya sa kau ko tidak ada sama dengan ke pigi "
                "su sudah mau kita kami orang apa satu tapi saja jadi bikin deng tra trus".split())
_WORD = re.compile(r"[\w']+")
_CELLS = re.compile(r"\\t|\t")  # the CLDF export writes the separator as a literal "\t"


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def english_score(text: str) -> int:
    """English function words minus Indonesian/Papuan Malay ones (positive = looks English)."""
    words = [w.lower() for w in _WORD.findall(text)]
    return sum(w in _EN for w in words) - sum(w in _ID for w in words)


def english_side(translated: str, alternative: str) -> str:
    """The English one of a row's two translations (the first unless the second looks more English)."""
    if alternative.strip() and english_score(alternative) > english_score(translated):
        return alternative.strip()
    return translated.strip()


def dictionaria_lexemes(entries_csv: str, senses_csv: str, lang: str, corpus: str = "") -> list[Lexeme]:
    """One Lexeme per sense: the entry's headword and part of speech, the sense's description."""
    entries = {row["ID"]: row for row in csv_rows(entries_csv)}
    out = []
    for sense in csv_rows(senses_csv):
        entry = entries.get(sense.get("Entry_ID", ""))
        gloss = (sense.get("Description") or "").strip()
        if entry is None or not gloss or not entry.get("Headword", "").strip():
            continue
        out.append(Lexeme(entry["Headword"].strip(), gloss, lang, "en", entry.get("Part_Of_Speech", ""),
                          corpus, sense["ID"]))
    return out


def dictionaria_pairs(examples_csv: str, lang: str, corpus: str = "") -> list[Pair]:
    """Example sentences as (object language → English) pairs; id = the example's ID."""
    pairs = []
    for row in csv_rows(examples_csv):
        src = (row.get("Primary_Text") or "").strip()
        tgt = english_side(row.get("Translated_Text") or "", row.get("alt_translation1") or "")
        if src and tgt:
            pairs.append(Pair(src, tgt, lang, "en", corpus, row["ID"]))
    return pairs


def dictionaria_glossed(examples_csv: str, lang: str, corpus: str = "") -> list[GlossedExample]:
    """The examples that carry a morpheme analysis: `\\t`-separated morphemes and their glosses,
    where a morpheme written with a leading `=`/`-` (or after a trailing one) joins the word before."""
    out = []
    for row in csv_rows(examples_csv):
        morphs = _CELLS.split(row.get("Analyzed_Word") or "")
        glosses = _CELLS.split(row.get("Gloss") or "")
        words: list[list[str]] = []
        for morph, gloss in zip(morphs, glosses + [""] * len(morphs)):
            morph, gloss = morph.strip(), "/".join(g.strip() for g in gloss.split(";") if g.strip()) or "?"
            if not morph or morph in ".,?!":
                continue
            if words and (morph[0] in "-=" or words[-1][0].endswith(("-", "="))):
                words[-1][0] += morph
                words[-1][1] += gloss
            else:
                words.append([morph, gloss])
        translation = english_side(row.get("Translated_Text") or "", row.get("alt_translation1") or "")
        if words and translation:
            out.append(GlossedExample(" ".join(w for w, _ in words), " ".join(g for _, g in words),
                                      translation, lang, "en", surface=(row.get("Primary_Text") or "").strip(),
                                      corpus=corpus, id=row["ID"]))
    return out


def ids_lexemes(forms_csv: str, parameters_csv: str, lang: str, corpus: str = "") -> list[Lexeme]:
    """IDS word forms with their concept's English name as the gloss."""
    concepts = {row["ID"]: row.get("Name", "").strip() for row in csv_rows(parameters_csv)}
    out = []
    for row in csv_rows(forms_csv):
        form = (row.get("Form") or row.get("Value") or "").strip()
        gloss = concepts.get(row.get("Parameter_ID", ""), "")
        if form and gloss:
            out.append(Lexeme(form, gloss, lang, "en", "", corpus, row["ID"]))
    return out
