"""The comparison key of a sentence, shared by every layer that asks "is this the same text?"
(the contamination guards, the quality filters, the copy rates, the dictionary split)."""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalize(text: str) -> str:
    """NFKC, case-folded, punctuation and spacing collapsed: "  Góðan DAGINN! " → "góðan daginn"."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


# Letters beyond a–z that a language's own words are written with. An answer into a language listed
# here may use only a–z and these (`eval.alphabet`): a small model that half-knows Icelandic
# otherwise borrows Danish/Norwegian/Swedish spellings (å, ø, ä), which Icelandic never uses.
EXTRA_LETTERS = {"is": "áðéíóúýþæö"}


def alphabet_letters(lang: str | None, enabled: bool = True) -> str | None:
    """The letters beyond a–z that answers into `lang` may use, or None where nothing is limited."""
    return EXTRA_LETTERS.get(lang or "") if enabled else None


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
