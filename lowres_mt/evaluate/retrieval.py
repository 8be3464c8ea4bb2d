"""Few-shot example retrieval for the `icl` system: BM25 (bm25s) over the source side of the
recipe's training pairs, with a contamination guard against the test sets and no shot that
nearly repeats the sentence being translated."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import bm25s
from bm25s.tokenization import Tokenizer

from lowres_mt.data.filters import near_duplicate
from lowres_mt.records import Pair
from lowres_mt.text import normalize

RETRIEVAL_VERSION = 2  # part of the cache key of systems with retrieved shots; bump when shots change
NEAR_DUPLICATE_SLACK = 8  # candidates retrieved beyond k, so near-duplicates can be skipped


def orient(pairs: Iterable[Pair], direction: str) -> list[Pair]:
    """Pairs turned to `direction` (src-tgt); pairs of other languages are left out."""
    return [o for o in (p.towards(direction) for p in pairs) if o is not None]


def guard_pool(pool: Sequence[Pair], protected: Iterable[Pair]) -> tuple[list[Pair], int]:
    """Drop pool pairs whose normalised source or target occurs on either side of a protected
    (test) pair; also drop repeated sources. Returns (kept, number dropped by the guard)."""
    banned = set()
    for pair in protected:
        banned.add(normalize(pair.src))
        banned.add(normalize(pair.tgt))
    banned.discard("")
    kept, seen, dropped = [], set(), 0
    for pair in pool:
        src, tgt = normalize(pair.src), normalize(pair.tgt)
        if src in banned or tgt in banned:
            dropped += 1
        elif src and tgt and src not in seen:
            seen.add(src)
            kept.append(pair)
    return kept, dropped


class ShotRetriever:
    """The k pool pairs most similar to a source sentence (BM25 on word tokens, case-folded).

    Shots come most-similar-last, so the closest example sits right before the query. A pool
    pair that is a near-duplicate of the query (`near_duplicate`) is never a shot.
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
        depth = min(len(self.pool), self.k + NEAR_DUPLICATE_SLACK)
        docs, _scores = self.index.retrieve(query, k=depth, show_progress=False)
        out = []
        for source, row in zip(sources, docs, strict=True):
            candidates = (self.pool[int(i)] for i in row)
            picked = [p for p in candidates if not near_duplicate(p, source)][:self.k]
            out.append(picked[::-1])
        return out
