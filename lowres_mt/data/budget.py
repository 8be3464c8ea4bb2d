"""Token budgets: content tokens counted with the base model's tokenizer, and items drawn in a
seeded random order with their costs (the builder and the book tasks fill budgets with them)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

from lowres_mt.records import Example, Pair

if TYPE_CHECKING:
    from lowres_mt.data.pools import CorpusStats

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
                           rng: random.Random, batch: int = 256,
                           weights: Sequence[float] | None = None) -> Iterator[tuple[T, int]]:
    """Yield (item, content tokens) in a seeded random order, counting tokens a batch at a time.
    With `weights` (one per item), item i comes early in proportion to weights[i]: weighted
    sampling without replacement (Efraimidis & Spirakis: sort by u ** (1 / w), u uniform)."""
    order = list(range(len(pool)))
    if weights is None:
        rng.shuffle(order)
    else:
        keys = [rng.random() ** (1.0 / w) for w in weights]
        order.sort(key=keys.__getitem__, reverse=True)
    for start in range(0, len(order), batch):
        items = [pool[i] for i in order[start:start + batch]]
        yield from zip(items, count_tokens([text_of(item) for item in items]))


def fill_budget(pool: Sequence[T], text_of: Callable[[T], str], count_tokens: TokenCounter,
                rng: random.Random, budget: int, max_tokens: int, stats: dict[str, CorpusStats],
                make: Callable[[T], Example]) -> tuple[list[tuple[Example, int]], int]:
    """Examples made from `pool` items in a seeded random order until `budget` content tokens
    (items over `max_tokens` skipped and counted); returns them and the tokens they hold."""
    out: list[tuple[Example, int]] = []
    total = 0
    for item, cost in costed_in_random_order(pool, text_of, count_tokens, rng):
        if total >= budget:
            break
        if cost > max_tokens:
            stats[item.corpus].too_long_or_short += 1
            continue
        out.append((make(item), cost))
        stats[item.corpus].used += 1
        total += cost
    return out, total


def sample_to_budget(pool: list[Pair], budget: int, count_tokens: TokenCounter, rng: random.Random,
                     weights: Mapping[str, float] | None = None) -> tuple[list[Pair], list[int]]:
    """Seeded sample of pairs whose content tokens, used in every direction, fill `budget`;
    `weights` maps a corpus ref to the sampling weight of its pairs (others weigh 1)."""
    chosen: list[Pair] = []
    costs: list[int] = []
    total = 0
    item_weights = [weights.get(p.corpus, 1.0) for p in pool] if weights else None
    for pair, cost in costed_in_random_order(pool, lambda p: p.src + "\n" + p.tgt, count_tokens, rng,
                                             weights=item_weights):
        if total >= budget:
            break
        chosen.append(pair)
        costs.append(cost)
        total += cost
    return chosen, costs
