"""Length-grouped packing: several examples share one row, none attends to another.

Each epoch the examples are shuffled (seeded by seed and epoch) and packed first-fit into rows of at
most `row_tokens` tokens; rows are sorted by length and grouped into micro-batches of at most
`batch_tokens` tokens (rows × longest row), so padding is rare; the order of micro-batches is
shuffled. Position ids restart at 0 for every example in a row: transformers' attention-mask
builder reads restarts as sequence boundaries and makes the mask block-diagonal causal (see
`loss.packing_isolated`). When a model cannot do that, rows hold one example each (plain
length-grouped batches), which is always correct.

The micro-batches of all epochs form one stream; optimizer step `s` uses stream items
`s*G … s*G+G-1` with `G = processes × grad_accum`, process `r` taking items `r, r+processes, …`.
So the data position is the step number alone, and 1 process with grad_accum=2 sees exactly the
batches that 2 processes with grad_accum=1 see together.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lowres_mt.train.tokenize import IGNORE, TokenizedExample

Plan = list[list[list[int]]]  # micro-batches → rows → example indices


@dataclass
class Batch:
    input_ids: torch.Tensor  # [rows, length]
    position_ids: torch.Tensor  # [rows, length], restarting at 0 for every example
    labels: torch.Tensor  # [rows, length], IGNORE on prompts and padding
    n_tokens: int  # real (non-padding) tokens
    n_labels: int  # positions that carry a label

    def to(self, device) -> Batch:
        return Batch(self.input_ids.to(device), self.position_ids.to(device), self.labels.to(device),
                     self.n_tokens, self.n_labels)


def pack_rows(lengths: Sequence[int], order: Sequence[int], row_tokens: int) -> list[list[int]]:
    """First-fit packing of the examples in `order` into rows of at most `row_tokens` tokens."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in order:
        size = lengths[i]
        slot = next((r for r, free in enumerate(room) if free >= size), None)
        if slot is None:
            rows.append([i])
            room.append(row_tokens - size)
        else:
            rows[slot].append(i)
            room[slot] -= size
    return rows


def group_rows(rows: list[list[int]], lengths: Sequence[int], batch_tokens: int) -> list[list[list[int]]]:
    """Rows sorted by length, cut into micro-batches whose padded size stays within `batch_tokens`."""
    sized = sorted(rows, key=lambda row: -sum(lengths[i] for i in row))
    batches: list[list[list[int]]] = []
    for row in sized:
        width = sum(lengths[i] for i in row)
        if batches and (len(batches[-1]) + 1) * batches[-1][0][1] <= batch_tokens:
            batches[-1].append((row, width))
        else:
            batches.append([(row, width)])
    return [[row for row, _ in batch] for batch in batches]


def plan_epoch(lengths: Sequence[int], *, seed: int, epoch: int, batch_tokens: int,
               row_tokens: int, pack: bool = True) -> Plan:
    """The micro-batches of one epoch (deterministic in seed and epoch)."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    rows = pack_rows(lengths, order, max(row_tokens, max(lengths, default=1))) if pack else [[i] for i in order]
    batches = group_rows(rows, lengths, batch_tokens)
    rng.shuffle(batches)
    return batches


def collate(examples: Sequence[TokenizedExample], rows: list[list[int]], pad_id: int) -> Batch:
    """Tensors for one micro-batch: rows right-padded to the longest row."""
    width = max(sum(len(examples[i]) for i in row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    n_tokens = 0
    for r, row in enumerate(rows):
        at = 0
        for i in row:
            ex = examples[i]
            n = len(ex)
            ids[r, at:at + n] = torch.tensor(ex.input_ids)
            labels[r, at:at + n] = torch.tensor(ex.labels)
            positions[r, at:at + n] = torch.arange(n)
            at += n
        positions[r, at:] = torch.arange(width - at)  # padding forms its own (ignored) sequence
        n_tokens += at
    return Batch(ids, positions, labels, n_tokens, int((labels[:, 1:] != IGNORE).sum()))


class BatchStream:
    """The endless, deterministic stream of micro-batches over epochs (see module doc)."""

    def __init__(self, examples: Sequence[TokenizedExample], *, seed: int, batch_tokens: int,
                 row_tokens: int, pad_id: int, pack: bool = True):
        if not examples:
            raise ValueError("no examples to batch")
        self.examples = examples
        self.lengths = [len(e) for e in examples]
        self.pad_id = pad_id
        self._plan_args = dict(seed=seed, batch_tokens=batch_tokens, row_tokens=row_tokens, pack=pack)
        self._plans: dict[int, Plan] = {}
        self._starts = [0]  # stream index where each planned epoch begins

    def plan(self, epoch: int) -> Plan:
        if epoch not in self._plans:
            self._plans[epoch] = plan_epoch(self.lengths, epoch=epoch, **self._plan_args)
        return self._plans[epoch]

    def locate(self, index: int) -> tuple[int, int]:
        """(epoch, position in that epoch) of stream item `index`."""
        while self._starts[-1] <= index:
            epoch = len(self._starts) - 1
            self._starts.append(self._starts[-1] + len(self.plan(epoch)))
        epoch = max(e for e, start in enumerate(self._starts) if start <= index)
        return epoch, index - self._starts[epoch]

    def rows(self, index: int) -> list[list[int]]:
        epoch, pos = self.locate(index)
        return self.plan(epoch)[pos]

    def batch(self, index: int) -> Batch:
        return collate(self.examples, self.rows(index), self.pad_id)

    def step_indices(self, step: int, group: int, rank: int, processes: int) -> list[int]:
        """Stream items process `rank` trains on in optimizer step `step` (`group` items per step)."""
        return list(range(step * group + rank, (step + 1) * group, processes))

    def step_labels(self, step: int, group: int) -> int:
        """Labelled positions in the whole step (all processes): the loss normaliser."""
        total = 0
        for index in range(step * group, (step + 1) * group):
            rows = self.rows(index)
            total += sum(self.examples[i].n_labels for row in rows for i in row)
        return total
