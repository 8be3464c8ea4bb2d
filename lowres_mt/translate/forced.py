"""Teacher-forced scores of given answers: how likely a model finds a target, with and without
its source.

`source_gain` is the filter score of a synthetic pair (back-translation): the run's mean log
probability per answer token of the *real* target given the *synthetic* source, minus the same
with the source left empty. A source that says what the target says raises the target's
probability (a gain well above 0); an invented or unrelated source explains nothing (about 0 or
below), whatever the target's own difficulty — the empty-source pass takes that out. Both passes
use the training prompt (`data.prompts.example_messages`, `train.tokenize.tokenize_example`), so
the answer tokens scored are the ones training learns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import torch

from lowres_mt.config import AnchorConfig
from lowres_mt.records import Pair

BATCH_ROWS = 16


@torch.inference_mode()
def answer_logprobs(model, tokenizer, conversations: Sequence[Sequence[dict]], *,
                    batch_rows: int = BATCH_ROWS) -> list[tuple[float, int]]:
    """(summed log probability, token count) of the assistant turns of each conversation
    (`[{"role", "content"}, …]`), as training's loss counts them (content and end-of-turn)."""
    from lowres_mt.train.batching import collate
    from lowres_mt.train.loss import causal_lm_parts, linear_cross_entropy
    from lowres_mt.train.tokenize import IGNORE, tokenize_example

    examples = []
    for messages in conversations:
        example, _ = tokenize_example(tokenizer, messages, max_length=1 << 30)
        if example is None:
            raise ValueError("a conversation with no assistant turn has nothing to score")
        examples.append(example)
    body, head, softcap = causal_lm_parts(model)
    weight = head.weight.detach()  # no gradient work: a trainable weight would get one
    device = next(body.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out: list[tuple[float, int]] = [(0.0, 0)] * len(examples)
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i]))
    for start in range(0, len(order), batch_rows):
        chosen = order[start:start + batch_rows]
        batch = collate(examples, [[i] for i in chosen], pad).to(device)
        hidden = body(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False).last_hidden_state
        targets = batch.labels[:, 1:]
        for row, index in enumerate(chosen):
            keep = targets[row] != IGNORE
            nll = linear_cross_entropy(hidden[row, :-1][keep], weight, targets[row][keep], softcap=softcap)
            out[index] = (-float(nll), int(keep.sum()))
    return out


def source_gain(model, tokenizer, pairs: Sequence[Pair], style: str, anchor: AnchorConfig,
                names: Mapping[str, str] | None = None, *, batch_rows: int = BATCH_ROWS) -> list[float]:
    """Per pair: mean log probability per answer token of `pair.tgt` given `pair.src`, minus the
    same given an empty source (nats per token; higher = the source explains the target more)."""
    from lowres_mt.data.prompts import example_messages

    def conversation(pair: Pair) -> list[dict]:
        return [dataclasses.asdict(m) for m in example_messages(pair, style, anchor, names)]

    rows = [conversation(p) for pair in pairs for p in (pair, dataclasses.replace(pair, src=""))]
    scored = answer_logprobs(model, tokenizer, rows, batch_rows=batch_rows)
    return [(scored[2 * i][0] - scored[2 * i + 1][0]) / max(scored[2 * i][1], 1) for i in range(len(pairs))]
