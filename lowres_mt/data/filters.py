"""Quality filters for training pairs, each a predicate the builder counts per corpus.

- HTML entities (`&amp;`, `&#39;`) are unescaped rather than dropped: the pairs around them are
  ordinary sentences (`R&amp;D`, `&lt; 50 copies/ml`).
- length ratio: characters of source / target outside `task.ratio_range` (misaligned pairs).
- fragments: a side whose letters are under `task.min_letters` of its letters, digits and
  symbols (punctuation and spaces not counted, so `"No."` is a sentence and `2016/EES/18/27`
  a reference), or that holds two or more table-cell separators (tab, `|`).
- near-copies: see `is_near_copy` (also used for the `copies` rate of evaluation outputs).
- wrong language: a side unlikely to be in its declared language (`lowres_mt.langid`); sides in
  languages the identifier does not know, or shorter than `task.langid_min_chars`, are not
  checked, since identification of a few characters is unreliable.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import replace
from functools import cache

from sacrebleu.metrics import CHRF

from lowres_mt.records import Pair
from lowres_mt.text import normalize

NEAR_COPY_CHRF = 80.0
# Not the most likely language is not enough: lingua often ranks German or Norwegian first for a
# short English sentence with a name in it ("Rischenheim rose to his feet."). Under 0.05 it flags
# 1 of 2,024 Tatoeba English and 1 of 2,100 Icelandic sentences (≥ 20 characters), and every
# Danish, Norwegian and Swedish sentence of a hand-written check declared Icelandic.
MIN_LANGUAGE_CONFIDENCE = 0.05
_ENTITY = re.compile(r"&(?:#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")
_CELL = re.compile(r"[\t|]")


def unescape_entities(pair: Pair) -> Pair:
    """The pair with HTML entities decoded on both sides (the same pair when it has none)."""
    if not (_ENTITY.search(pair.src) or _ENTITY.search(pair.tgt)):
        return pair
    return replace(pair, src=html.unescape(pair.src), tgt=html.unescape(pair.tgt))


def bad_ratio(pair: Pair, ratio_range: tuple[float, float]) -> bool:
    low, high = ratio_range
    return not low <= len(pair.src) / max(len(pair.tgt), 1) <= high


def letter_share(text: str) -> float:
    """Letters among the letters, digits and symbols of `text` (1.0 when it has none of them)."""
    kinds = [unicodedata.category(c)[0] for c in text]
    counted = sum(k in "LNS" for k in kinds)
    return sum(k == "L" for k in kinds) / counted if counted else 1.0


def is_fragment(text: str, min_letters: float) -> bool:
    return letter_share(text) < min_letters or len(_CELL.findall(text)) >= 2


@cache
def _chrf() -> CHRF:
    return CHRF()


def is_near_copy(text: str, source: str) -> bool:
    """`text` repeats `source`: equal after normalisation (`data.guard.normalize`: NFKC, case
    folded, punctuation and spacing removed), or sentence chrF against it ≥ NEAR_COPY_CHRF."""
    if not text.strip():
        return False
    return (normalize(text) == normalize(source)
            or _chrf().sentence_score(text, [source]).score >= NEAR_COPY_CHRF)


def near_duplicate(pair: Pair, text: str) -> bool:
    """Whether either side of `pair` repeats `text` (`is_near_copy`): a retrieved example that is
    the sentence being translated, reworded or in the other language's slot."""
    return is_near_copy(pair.src, text) or is_near_copy(pair.tgt, text)


def wrong_language(pairs: Sequence[Pair], min_chars: int) -> list[bool]:
    """For each pair, whether a checked side is unlikely to be in its declared language: lingua
    gives that language a confidence under MIN_LANGUAGE_CONFIDENCE."""
    from lowres_mt.langid import confidence, is_supported

    sides: dict[str, list[tuple[int, str]]] = {}
    for i, pair in enumerate(pairs):
        for text, lang in ((pair.src, pair.src_lang), (pair.tgt, pair.tgt_lang)):
            if is_supported(lang) and len(text.strip()) >= min_chars:
                sides.setdefault(lang, []).append((i, text))
    out = [False] * len(pairs)
    for lang, checked in sides.items():
        for (i, _), sure in zip(checked, confidence([text for _, text in checked], lang)):
            out[i] = out[i] or sure < MIN_LANGUAGE_CONFIDENCE
    return out
