"""The comparison key of a sentence, shared by every layer that asks "is this the same text?"
(the contamination guards, the quality filters, the copy rates, the dictionary split)."""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalize(text: str) -> str:
    """NFKC, case-folded, punctuation and spacing collapsed: "  Góðan DAGINN! " → "góðan daginn"."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()
