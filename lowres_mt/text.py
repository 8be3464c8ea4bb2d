"""The comparison key of a sentence, shared by every layer that asks "is this the same text?"
(the contamination guards, the quality filters, the copy rates, the dictionary split)."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping

from lowres_mt.records import Pair

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalize(text: str) -> str:
    """NFKC, case-folded, punctuation and spacing collapsed: "  Góðan DAGINN! " → "góðan daginn"."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


# Letters beyond a–z that a language's own words are written with. An answer into a language listed
# here may use only a–z and these (`eval.alphabet: true`): a small model that half-knows Icelandic
# otherwise borrows Danish/Norwegian/Swedish spellings (å, ø, ä), which Icelandic never uses.
EXTRA_LETTERS = {"is": "áðéíóúýþæö"}
# `eval.alphabet: auto` learns a letter from the training pairs once this many distinct words use
# it, so one stray loanword ("smörgåsbord") does not open the alphabet
MIN_LETTER_WORDS = 3
_LETTER_RUN = re.compile(r"[^\W\d_]+")


def alphabet_letters(lang: str | None, table: Mapping[str, str] | bool = True) -> str | None:
    """The letters beyond a–z that answers into `lang` may use, or None where nothing is limited.
    `table` maps languages to their letters (`learn_alphabets`); True stands for EXTRA_LETTERS,
    False for no limit."""
    if isinstance(table, bool):
        table = EXTRA_LETTERS if table else {}
    return table.get(lang or "")


def learn_letters(texts: Iterable[str], min_words: int = MIN_LETTER_WORDS) -> str:
    """The lower-case letters beyond a–z that at least `min_words` distinct words of `texts` use,
    in code-point order: "Góðan daginn" × 3 words of each letter → "ðó"."""
    words = {w for text in texts for w in _LETTER_RUN.findall(unicodedata.normalize("NFC", text).lower())}
    uses = Counter(c for word in words for c in set(word) if c.isalpha() and not "a" <= c <= "z")
    return "".join(sorted(c for c, n in uses.items() if n >= min_words))


def learn_alphabets(pairs: Iterable[Pair], languages: Iterable[str],
                    min_words: int = MIN_LETTER_WORDS) -> dict[str, str]:
    """For each of `languages` that some side of `pairs` is written in, the letters beyond a–z
    answers into it may use: those either language's sides use (`learn_letters`), since names
    cross over ("Jón" stays "Jón" in English). The table `alphabet_letters` reads for
    `eval.alphabet: auto`: it keeps out the letters of the languages a small model drifts into
    (å, ä, ø where the pair has none), not the pair's own."""
    texts: dict[str, list[str]] = {lang: [] for lang in languages}
    for pair in pairs:
        for text, lang in ((pair.src, pair.src_lang), (pair.tgt, pair.tgt_lang)):
            if lang in texts:
                texts[lang].append(text)
    learned = {lang: set(learn_letters(found, min_words)) for lang, found in texts.items() if found}
    shared = "".join(sorted(set().union(*learned.values())))
    return {lang: shared for lang in learned}


def repeated_tail(text: str, times: int, longest: int = 24) -> int | None:
    """Where the repeats begin when `text` ends in one unit written `times` times or more in a row,
    compared case-folded with spaces ignored: "your clock clock clockClock" gives 10, the end of
    the first "clock"; None otherwise. A unit has 2 to `longest` characters, at least one a letter
    (so "1000000" never counts). A model kept from repeating a token or an n-gram can still loop
    through a word's spellings, each a different token ("clock", " clock", "Clock", …)."""
    if times <= 1:
        return None
    folded = "".join(text.split()).casefold()
    for size in range(2, longest + 1):
        if size * times > len(folded):
            return None
        unit = folded[-size:]
        if folded.endswith(unit * times) and any(c.isalpha() for c in unit):
            copies = times
            while folded.endswith(unit * (copies + 1)):
                copies += 1
            return _index_after(text, len(folded) - (copies - 1) * size)
    return None


def _index_after(text: str, compared: int) -> int:
    """The index in `text` just after its first `compared` case-folded non-space characters."""
    seen = 0
    for i, c in enumerate(text):
        if not c.isspace():
            seen += len(c.casefold())
            if seen >= compared:
                return i + 1
    return len(text)


def drop_repeated_tail(text: str, times: int) -> str:
    """`text` with a spelling loop at its end cut back to the first copy (`repeated_tail`)."""
    cut = repeated_tail(text, times)
    return text if cut is None else text[:cut].rstrip()


def fits_alphabet(text: str, extra: str) -> bool:
    """Whether every letter of `text` is a–z or one of `extra` (either case); other characters pass."""
    return all(not c.isalpha() or ("a" <= c.lower() <= "z") or c.lower() in extra for c in text)
