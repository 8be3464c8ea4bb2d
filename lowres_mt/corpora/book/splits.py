"""Contamination-safe splits of a dictionary's example sentences, and guards for long book text.

`split_dictionary_examples` makes the dictionaria dev/test/train sets:
1. Sentences that occur in the `exclude` sets (the grammar book's examples, MTOB train and
   test) are taken out of every split: normalised match (`lowres_mt.data.guard.normalize`) on
   either side, or a near-duplicate object-language side (character similarity ≥ 0.85 with
   spaces and morpheme boundaries ignored, which catches the book's segmented spellings).
2. Held-out candidates are the remaining examples of at least `min_words` words whose two sides
   occur nowhere else in the dictionary (so no training example repeats one).
3. Candidates are ordered by the sha256 of their normalised object-language side — a fixed
   order independent of file order — the first `dev_size` form dev, the next `test_size` test.
4. Train is every other remaining example.

`SpanGuard` flags long text (grammar passages) that contains a protected sentence anywhere
inside it, which an exact-match guard cannot see.
"""

from __future__ import annotations

import difflib
import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable

from lowres_mt.corpora.book.records import join_morphemes
from lowres_mt.records import Pair
from lowres_mt.text import normalize

SPLITS = ("train", "dev", "test")
NEAR_DUPLICATE = 0.85
_GRAM = 5


def squash(text: str) -> str:
    """Comparison form ignoring spaces, punctuation and morpheme boundaries."""
    return normalize(join_morphemes(text)).replace(" ", "")


class NearDuplicates:
    """Finds texts similar to any indexed text (character 5-gram candidates, difflib ratio)."""

    def __init__(self, texts: Iterable[str], threshold: float = NEAR_DUPLICATE):
        self.threshold = threshold
        self._texts = sorted({s for s in map(squash, texts) if len(s) >= _GRAM})
        self._index: dict[str, set[int]] = defaultdict(set)
        for i, text in enumerate(self._texts):
            for k in range(len(text) - _GRAM + 1):
                self._index[text[k:k + _GRAM]].add(i)

    def __contains__(self, text: str) -> bool:
        key = squash(text)
        if len(key) < _GRAM:
            return False
        votes = Counter(i for k in range(len(key) - _GRAM + 1) for i in self._index.get(key[k:k + _GRAM], ()))
        matcher = difflib.SequenceMatcher(None, autojunk=False)
        matcher.set_seq2(key)  # difflib caches what it learns about seq2
        for i, _ in votes.most_common(5):
            matcher.set_seq1(self._texts[i])
            if (matcher.real_quick_ratio() >= self.threshold and matcher.quick_ratio() >= self.threshold
                    and matcher.ratio() >= self.threshold):
                return True
        return False


def split_dictionary_examples(pairs: list[Pair], exclude: Iterable[str], *, dev_size: int,
                              test_size: int, min_words: int = 3) -> dict[str, list[Pair]]:
    """Pairs (object language → English) divided into train/dev/test as the module describes."""
    exclude = list(exclude)
    exact = {n for n in map(normalize, exclude) if n}
    near = NearDuplicates(exclude)
    kept = [p for p in pairs if normalize(p.src) not in exact and normalize(p.tgt) not in exact
            and p.src not in near]
    src_count = Counter(normalize(p.src) for p in pairs)
    tgt_count = Counter(normalize(p.tgt) for p in pairs)
    candidates = [p for p in kept if src_count[normalize(p.src)] == 1 and tgt_count[normalize(p.tgt)] == 1
                  and len(p.src.split()) >= min_words]
    candidates.sort(key=lambda p: hashlib.sha256(normalize(p.src).encode()).hexdigest())
    dev = candidates[:dev_size]
    test = candidates[dev_size:dev_size + test_size]
    held = {id(p) for p in dev + test}
    return {"train": [p for p in kept if id(p) not in held], "dev": dev, "test": test}


class SpanGuard:
    """Protected sentences found *inside* longer texts (normalised, on word boundaries).

    Sentences shorter than `min_words` words are left to the exact-match guard: a two-word
    sentence inside a paragraph is not evidence of leakage.
    """

    def __init__(self, texts: Iterable[str], min_words: int = 4):
        self._first: dict[tuple[str, ...], list[tuple[str, ...]]] = defaultdict(list)
        self.min_words = min_words
        for text in texts:
            tokens = tuple(normalize(text).split())
            if len(tokens) >= min_words:
                self._first[tokens[:min_words]].append(tokens)

    def __len__(self) -> int:
        return sum(len(v) for v in self._first.values())

    def hits(self, text: str) -> bool:
        tokens = normalize(text).split()
        n = self.min_words
        for i in range(len(tokens) - n + 1):
            for sentence in self._first.get(tuple(tokens[i:i + n]), ()):
                if tuple(tokens[i:i + len(sentence)]) == sentence:
                    return True
        return False
