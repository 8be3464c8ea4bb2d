"""Teacher-forced answer scores (`translate.forced`) against the model's own logits."""

import dataclasses

import pytest
import torch
from conftest import make_tiny_model

from lowres_mt.config import AnchorConfig
from lowres_mt.data.prompts import example_messages
from lowres_mt.records import Pair
from lowres_mt.train.tokenize import IGNORE, tokenize_example
from lowres_mt.translate.forced import answer_logprobs, source_gain

pytestmark = pytest.mark.usefixtures("one_thread")

PAIRS = [Pair("Good morning.", "Góðan daginn.", "en", "is"),
         Pair("Where is the station? It is far.", "Hvar er stöðin? Hún er langt í burtu.", "en", "is"),
         Pair("", "Ég heiti Jón.", "en", "is")]


def _conversation(pair):
    return [dataclasses.asdict(m) for m in example_messages(pair, "tell", AnchorConfig())]


def _by_logits(model, tokenizer, conversation):
    example, _ = tokenize_example(tokenizer, conversation, 10_000)
    ids = torch.tensor([example.input_ids])
    with torch.no_grad():
        logprobs = model(input_ids=ids).logits[0, :-1].float().log_softmax(-1)
    labels = torch.tensor(example.labels[1:])
    keep = labels != IGNORE
    return float(logprobs[keep].gather(1, labels[keep][:, None]).sum()), int(keep.sum())


def test_scores_are_the_models_log_probabilities_of_the_answer_tokens(tiny_tokenizer):
    model = make_tiny_model(tiny_tokenizer).eval()
    conversations = [_conversation(p) for p in PAIRS]
    batched = answer_logprobs(model, tiny_tokenizer, conversations, batch_rows=2)  # padding in one batch
    for conversation, (total, count) in zip(conversations, batched, strict=True):
        expected, n = _by_logits(model, tiny_tokenizer, conversation)
        assert count == n > 0
        assert total == pytest.approx(expected, abs=1e-3)


def test_source_gain_is_the_per_token_difference_the_source_makes(tiny_tokenizer):
    model = make_tiny_model(tiny_tokenizer).eval()
    gains = source_gain(model, tiny_tokenizer, PAIRS[:2], "tell", AnchorConfig())
    for pair, gain in zip(PAIRS[:2], gains, strict=True):
        with_source, n = _by_logits(model, tiny_tokenizer, _conversation(pair))
        without, _ = _by_logits(model, tiny_tokenizer, _conversation(dataclasses.replace(pair, src="")))
        assert gain == pytest.approx((with_source - without) / n, abs=1e-4)
    assert gains[0] != gains[1]
