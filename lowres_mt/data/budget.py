"""Token budgets: content tokens counted with the base model's tokenizer, and items drawn in a
seeded random order with their costs (the builder and the book tasks fill budgets with them)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

TokenCounter = Callable[[Sequence[str]], list[int]]
T = TypeVar("T")


def token_counter(tokenizer) -> TokenCounter:
    """Count tokens of many texts at once with a Hugging Face tokenizer (no special tokens)."""

    def count(texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(x) for x in ids]

    return count


def costed_in_random_order(pool: Sequence[T], text_of: Callable[[T], str], count_tokens: TokenCounter,
                           rng: random.Random, batch: int = 256) -> Iterator[tuple[T, int]]:
    """Yield (item, content tokens) in a seeded random order, counting tokens a batch at a time."""
    order = list(range(len(pool)))
    rng.shuffle(order)
    for start in range(0, len(order), batch):
        items = [pool[i] for i in order[start:start + batch]]
        yield from zip(items, count_tokens([text_of(item) for item in items]))
