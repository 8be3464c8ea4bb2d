"""Greedy decoding with logits for the allowed ids only gives the tokens the full output layer gives."""

import random

import pytest
import torch
from conftest import TINY_TOKENIZER, make_tiny_model
from transformers import AutoTokenizer

from lowres_mt.translate import DecodeSettings, StopTables, greedy_decode
from lowres_mt.translate.greedy import OutputHead

SOURCES = ["The cat sat on the mat near the door.", "Hi", "We now have mice that are no longer sick.",
           "Where is the station?", "He added that it was early.", "Rain"]


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(TINY_TOKENIZER)


@pytest.fixture(scope="module")
def model(tokenizer):
    return make_tiny_model(tokenizer, seed=5)


def rows_of(tokenizer):
    return [tokenizer(f"Translate: {s}\nAnswer:", add_special_tokens=False)["input_ids"] for s in SOURCES]


def allowed_ids(tokenizer, share: float, seed: int = 0) -> torch.Tensor:
    rng = random.Random(seed)
    keep = sorted({i for i in range(len(tokenizer)) if rng.random() < share} | {tokenizer.eos_token_id})
    return torch.tensor(keep, dtype=torch.long)


@pytest.mark.parametrize("settings", [
    DecodeSettings(no_repeat_ngram=0, repetition_penalty=1.0, stop_repeats=0),
    DecodeSettings(no_repeat_ngram=3, repetition_penalty=1.3, stop_repeats=3),  # processors in sliced space
])
@pytest.mark.parametrize("share", [0.3, 0.9])
def test_sliced_head_gives_the_full_heads_tokens(model, tokenizer, settings, share):
    allowed = allowed_ids(tokenizer, share)
    assert OutputHead(model, allowed).sliced
    common = dict(pad_id=0, max_new_tokens=16, stop_ids=[tokenizer.eos_token_id], tables=StopTables(tokenizer),
                  stop_repeats=settings.stop_repeats, allowed=allowed, processors=settings.processors())
    full = greedy_decode(model, rows_of(tokenizer), slice_head=False, **common)
    sliced = greedy_decode(model, rows_of(tokenizer), slice_head=True, **common)
    assert sliced == full
    assert all(t in set(allowed.tolist()) for out in sliced for t in out)


def test_softcapped_logits_are_sliced_alike(tokenizer):
    model = make_tiny_model(tokenizer, seed=6)
    model.config.final_logit_softcapping = 2.0
    allowed = allowed_ids(tokenizer, 0.5)
    ids = torch.tensor([rows_of(tokenizer)[0]])
    full = model(input_ids=ids).logits[:, -1, :]
    head = OutputHead(model, allowed)
    assert head.sliced
    torch.testing.assert_close(head(input_ids=ids), full[:, allowed])


def test_no_allowed_ids_or_an_unsliceable_model_uses_the_full_layer(model):
    assert not OutputHead(model, None).sliced
    assert not OutputHead(model, torch.tensor([1, 2]), sliced=False).sliced


def test_token_texts_are_decoded_once_and_then_read_back(tokenizer, tmp_path, monkeypatch):
    from lowres_mt.translate import greedy

    monkeypatch.setenv("LOWRES_MT_CACHE", str(tmp_path))
    monkeypatch.setattr(greedy, "_texts", {})
    expected = tokenizer.batch_decode([[i] for i in range(len(tokenizer))], skip_special_tokens=True)
    assert greedy.token_texts(tokenizer) == expected
    assert len(list((tmp_path / "token-texts").glob("*.json"))) == 1
    monkeypatch.setattr(greedy, "_texts", {})  # a new process: only the file is left
    monkeypatch.setattr(greedy, "_decode_each", lambda tok: pytest.fail("decoded again"))
    assert greedy.token_texts(tokenizer) == expected
