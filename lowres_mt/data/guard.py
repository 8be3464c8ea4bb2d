"""Contamination guard: no sentence of any dev/test set may reach a training file.

Texts are compared after normalisation (Unicode NFKC, case folding, punctuation and spacing
removed), so trivial variants of a test sentence are caught too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from lowres_mt.records import Pair
from lowres_mt.text import normalize

if TYPE_CHECKING:
    from lowres_mt.config import RecipeConfig


class ContaminationGuard:
    """Holds the normalised sentences of protected sets and filters training records against them."""

    def __init__(self, protected: Iterable[str] = ()) -> None:
        self._seen: set[str] = set()
        self.add(protected)

    def add(self, texts: Iterable[str]) -> None:
        self._seen.update(n for n in map(normalize, texts) if n)

    def __len__(self) -> int:
        return len(self._seen)

    def contains(self, text: str) -> bool:
        return normalize(text) in self._seen

    def is_clean(self, pair: Pair) -> bool:
        return not (self.contains(pair.src) or self.contains(pair.tgt))

    def filter(self, pairs: Iterable[Pair]) -> tuple[list[Pair], int]:
        """Pairs with neither side in a protected set, and how many were dropped."""
        pairs = list(pairs)
        kept = [p for p in pairs if self.is_clean(p)]
        return kept, len(pairs) - len(kept)


def protected_sets(cfg: RecipeConfig) -> list[str]:
    """Every set no training sentence may come from: the guard list, the dev set and the test sets."""
    refs = list(cfg.task.guard) + list(cfg.eval.testsets) + ([cfg.task.dev] if cfg.task.dev else [])
    return list(dict.fromkeys(refs))


def guard_from_sets(refs: Iterable[str]) -> ContaminationGuard:
    """A guard over both sides of every pair in the given corpus sets."""
    from lowres_mt.corpora import load_set

    guard = ContaminationGuard()
    for ref in refs:
        for record in load_set(ref):
            guard.add([record.src, record.tgt] if isinstance(record, Pair) else [getattr(record, "text", "")])
    return guard
