"""Few-shot example retrieval for the `icl` system: BM25 (bm25s) over the source side of the
recipe's training pairs, with a contamination guard against the test sets."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

import bm25s
from bm25s.tokenization import Tokenizer

from lowres_mt.data.records import Pair

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """Comparison key for the guard: NFKC, case-folded, punctuation and spacing removed."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def orient(pairs: Iterable[Pair], direction: str) -> list[Pair]:
    """Pairs turned to `direction` (src-tgt); pairs of other languages are left out."""
    out = []
    for pair in pairs:
        if pair.direction == direction:
            out.append(pair)
        elif pair.reversed().direction == direction:
            out.append(pair.reversed())
    return out


def guard_pool(pool: Sequence[Pair], protected: Iterable[Pair]) -> tuple[list[Pair], int]:
    """Drop pool pairs whose normalised source or target occurs on either side of a protected
    (test) pair; also drop repeated sources. Returns (kept, number dropped by the guard)."""
    banned = set()
    for pair in protected:
        banned.add(normalise(pair.src))
        banned.add(normalise(pair.tgt))
    banned.discard("")
    kept, seen, dropped = [], set(), 0
    for pair in pool:
        src, tgt = normalise(pair.src), normalise(pair.tgt)
        if src in banned or tgt in banned:
            dropped += 1
        elif src and tgt and src not in seen:
            seen.add(src)
            kept.append(pair)
    return kept, dropped


class ShotRetriever:
    """The k pool pairs most similar to a source sentence (BM25 on word tokens, case-folded).

    Shots come most-similar-last, so the closest example sits right before the query.
    """

    def __init__(self, pool: Sequence[Pair], k: int):
        if k < 1:
            raise ValueError("k must be at least 1")
        if not pool:
            raise ValueError("the example pool is empty")
        self.pool = list(pool)
        self.k = min(k, len(self.pool))
        self.tokenizer = Tokenizer(lower=True, stopwords=None)
        corpus = self.tokenizer.tokenize([p.src for p in self.pool], return_as="ids", show_progress=False)
        self.index = bm25s.BM25()
        self.index.index(corpus, show_progress=False)

    def shots(self, sources: Sequence[str]) -> list[list[Pair]]:
        if not sources:
            return []
        query = self.tokenizer.tokenize(list(sources), update_vocab=False, return_as="ids",
                                        show_progress=False)
        docs, _scores = self.index.retrieve(query, k=self.k, show_progress=False)
        return [[self.pool[int(i)] for i in reversed(row)] for row in docs]
