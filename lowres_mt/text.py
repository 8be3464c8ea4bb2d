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


def fits_alphabet(text: str, extra: str) -> bool:
    """Whether every letter of `text` is a–z or one of `extra` (either case); other characters pass."""
    return all(not c.isalpha() or ("a" <= c.lower() <= "z") or c.lower() in extra for c in text)
