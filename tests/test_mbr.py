"""MBR decoding: the consensus candidate wins; sampled candidates are seeded and stay in the
allowed vocabulary; MBR changes the cache key."""

import pytest
import torch
from conftest import TINY_TOKENIZER, make_tiny_model
from transformers import AutoTokenizer

from lowres_mt.config import RecipeConfig
from lowres_mt.evaluate import cache, systems
from lowres_mt.records import Pair
from lowres_mt.translate import DecodeSettings, Engine
from lowres_mt.translate.backends import choose
from lowres_mt.translate.greedy import Sampling
from lowres_mt.translate.mbr import mbr_select


@pytest.mark.parametrize(("candidates", "expected"), [
    (["the cat sat on the mat", "a dog ran far away", "the cat sat on a mat", "the cat sat on the mat"], 0),
    (["xyz abc", "the house is red", "the house is red", "a house was red"], 1),  # agreed twice; ties: the first
    (["only one"], 0),
    (["same", "same"], 0),  # ties: the first
])
def test_mbr_picks_the_consensus(candidates, expected):
    assert mbr_select(candidates) == expected


def test_epsilon_sampling_keeps_likely_tokens_only():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.19, 0.01]]))
    draws = {int(Sampling(0.05, seed).draw(logits)) for seed in range(60)}
    assert draws == {0, 1, 2}  # 0.01 < epsilon is never drawn
    assert int(Sampling(0.9, 0).draw(logits)) == 0  # the most probable always stays


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(TINY_TOKENIZER)


def test_mbr_decoding_is_seeded_and_differs_from_greedy(tokenizer):
    model = make_tiny_model(tokenizer, seed=2)
    sources = ["The cat sat on the mat.", "Where is the station?", "Hi"]

    def run(**kw):
        settings = DecodeSettings(batch_size=8, max_new_tokens=8, mbr_samples=4, epsilon=0.0005, **kw)
        return Engine(model, tokenizer, settings, progress=False).translate(sources, "en", "is")

    first, again, other = run(), run(), run(seed=1)
    assert first == again and len(first) == 3
    greedy = Engine(model, tokenizer, DecodeSettings(batch_size=8, max_new_tokens=8), progress=False)
    assert first != greedy.translate(sources, "en", "is") or other != first  # sampling happened


def test_mbr_is_in_the_cache_key_and_stays_on_torch():
    cfg = RecipeConfig(name="toy", languages=("en", "is"))
    system = systems.builtin_system(cfg, "zero-shot")
    pairs = [Pair("Hello.", "Halló.", "en", "is", "toy", "0")]
    keys = {cache.generation_key(system.signature(cfg, DecodeSettings(**kw), "is"), "toy:test", "en-is", pairs)
            for kw in ({}, {"mbr_samples": 8}, {"mbr_samples": 16}, {"mbr_samples": 8, "epsilon": 0.1})}
    assert len(keys) == 4
    assert choose(DecodeSettings(backend="ctranslate2", mbr_samples=8)).reason.startswith("MBR")
