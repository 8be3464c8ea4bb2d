"""Length-grouped packing and the deterministic batch stream."""

import random

import torch

from lowres_mt.train.batching import BatchStream, collate, pack_rows, plan_epoch
from lowres_mt.train.tokenize import IGNORE, TokenizedExample


def fake_examples(n: int, seed: int = 0) -> list[TokenizedExample]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.randint(5, 60)
        prompt = rng.randint(2, length - 1)
        ids = tuple(rng.randint(10, 99) for _ in range(length))
        out.append(TokenizedExample(ids, (IGNORE,) * prompt + ids[prompt:]))
    return out


def test_pack_rows_fits_capacity_and_places_every_example_once():
    lengths = [random.Random(i).randint(1, 100) for i in range(200)]
    rows = pack_rows(lengths, list(range(200)), row_tokens=128)
    assert sorted(i for row in rows for i in row) == list(range(200))
    assert all(sum(lengths[i] for i in row) <= 128 for row in rows)
    assert len(rows) <= 1.2 * sum(lengths) / 128 + 1  # first-fit wastes little


def test_plan_is_seeded_by_seed_and_epoch_and_covers_the_data():
    lengths = [len(e) for e in fake_examples(100)]
    plan = plan_epoch(lengths, seed=1, epoch=0, batch_tokens=256, row_tokens=128)
    assert plan == plan_epoch(lengths, seed=1, epoch=0, batch_tokens=256, row_tokens=128)
    assert plan != plan_epoch(lengths, seed=1, epoch=1, batch_tokens=256, row_tokens=128)
    assert sorted(i for batch in plan for row in batch for i in row) == list(range(100))
    padded = sum(len(batch) * max(sum(lengths[i] for i in row) for row in batch) for batch in plan)
    assert sum(lengths) / padded > 0.85  # rows are full and grouped by length
    for batch in plan:
        assert len(batch) * max(sum(lengths[i] for i in row) for row in batch) <= 256


def test_unpacked_plan_has_one_example_per_row():
    lengths = [len(e) for e in fake_examples(50)]
    plan = plan_epoch(lengths, seed=0, epoch=0, batch_tokens=256, row_tokens=128, pack=False)
    assert all(len(row) == 1 for batch in plan for row in batch)


def test_collate_restarts_positions_and_pads_with_ignored_labels():
    examples = fake_examples(3)
    batch = collate(examples, [[0, 1], [2]], pad_id=0)
    n0, n1, n2 = (len(e) for e in examples)
    assert batch.input_ids.shape == (2, max(n0 + n1, n2))
    assert batch.position_ids[0, : n0 + n1].tolist() == list(range(n0)) + list(range(n1))
    assert batch.input_ids[0, n0: n0 + n1].tolist() == list(examples[1].input_ids)
    assert (batch.labels[1, n2:] == IGNORE).all() and (batch.input_ids[1, n2:] == 0).all()
    assert batch.n_tokens == n0 + n1 + n2
    assert batch.n_labels == sum(e.n_labels for e in examples)


def test_step_split_does_not_depend_on_process_count():
    stream = BatchStream(fake_examples(80), seed=0, batch_tokens=200, row_tokens=100, pad_id=0)
    one = stream.step_indices(3, group=4, rank=0, processes=1)
    two = [stream.step_indices(3, group=4, rank=r, processes=2) for r in range(2)]
    assert sorted(two[0] + two[1]) == one == [12, 13, 14, 15]
    assert stream.step_labels(3, 4) == sum(stream.batch(i).n_labels for i in one)


def test_stream_runs_over_epoch_boundaries():
    stream = BatchStream(fake_examples(30), seed=0, batch_tokens=200, row_tokens=100, pad_id=0)
    per_epoch = len(stream.plan(0))
    assert stream.locate(per_epoch - 1) == (0, per_epoch - 1)
    assert stream.locate(per_epoch) == (1, 0)
    assert stream.rows(per_epoch) == stream.plan(1)[0]
    assert isinstance(stream.batch(per_epoch + 1).input_ids, torch.Tensor)
