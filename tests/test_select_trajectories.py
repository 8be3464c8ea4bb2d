"""Loss trajectories on a tiny random model: exact per-example losses, the N × T matrix from a real
proxy run, and the cache."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from lowres_mt.config import RecipeConfig, TrainConfig
from lowres_mt.records import Instruction, Message
from lowres_mt.select import proxy_settings
from lowres_mt.select.trajectories import (
    cache_key,
    mean_response_losses,
    record_trajectories,
    tokenize_pool,
    trajectory_matrix,
)
from lowres_mt.train.tokenize import IGNORE

WORDS = "the cat dog house sun moon red blue big small old new river stone".split()
LORA = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}


def toy_pool(n: int = 30, seed: int = 0) -> list[Instruction]:
    """Three kinds of instruction (copy, reverse, count) from two corpora, plus one example whose
    answer lies beyond max_length (nothing to score)."""
    rng = random.Random(seed)
    pool = []
    for i in range(n):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6)))
        kind = i % 3
        answer = [text, text[::-1], str(len(text.split()))][kind]
        messages = (Message("user", f"{['Copy', 'Reverse', 'Count'][kind]}: {text}"), Message("assistant", answer))
        pool.append(Instruction(messages, "toy:a" if i % 2 else "toy:b", str(i)))
    long_prompt = " ".join(WORDS * 12)
    pool.append(Instruction((Message("user", long_prompt), Message("assistant", "ok")), "toy:b", "long"))
    return pool


def toy_recipe(base) -> RecipeConfig:
    train = TrainConfig(batch_tokens=160, max_length=64, lr=5e-3, threads=1, warmup_ratio=0.0)
    return RecipeConfig(name="toy", languages=("en", "is"), base_model=str(base), seed=1, train=train, lora=LORA)


def reference_losses(model, tokenizer, pool, max_length):
    """Per-example mean CE from the model's full logits, one example at a time."""
    out = []
    for ex in tokenize_pool(tokenizer, pool, max_length):
        if ex is None:
            out.append(np.nan)
            continue
        ids = torch.tensor([ex.input_ids])
        labels = torch.tensor([ex.labels])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, :-1]
        target = labels[0, 1:]
        out.append(torch.nn.functional.cross_entropy(logits, target, ignore_index=IGNORE).item())
    return np.array(out)


@pytest.mark.parametrize("pack", [False, True])
def test_mean_response_losses_equal_full_logit_losses(tiny_model, tiny_tokenizer, pack):
    pool = toy_pool(12)
    examples = tokenize_pool(tiny_tokenizer, pool, 64)
    assert examples[-1] is None  # the long example has no answer token within 64 tokens
    got = mean_response_losses(tiny_model, examples, pad_id=tiny_tokenizer.pad_token_id, batch_tokens=100, pack=pack)
    want = reference_losses(tiny_model, tiny_tokenizer, pool, 64)
    assert np.isnan(got[-1]) and np.isnan(want[-1])
    np.testing.assert_allclose(got[:-1], want[:-1], rtol=1e-4, atol=1e-4)


def test_trajectory_matrix_sorts_steps_and_zeroes_nan():
    matrix, steps = trajectory_matrix({30: np.array([3.0, np.nan]), 10: np.array([1.0, np.nan]),
                                       20: np.array([2.0, np.inf])})
    assert steps == [10, 20, 30]
    assert matrix.tolist() == [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]


def test_cache_key_follows_pool_content_proxy_and_settings(tmp_path):
    cfg = toy_recipe(tmp_path)
    pool = toy_pool(6)
    base = proxy_settings(cfg, "tiny", epochs=2, checkpoints=3)
    assert cache_key(pool, base) == cache_key(list(pool), proxy_settings(cfg, "tiny", epochs=2, checkpoints=3))
    assert cache_key(pool, base) != cache_key(pool, proxy_settings(cfg, "other", epochs=2, checkpoints=3))
    assert cache_key(pool, base) != cache_key(pool, proxy_settings(cfg, "tiny", epochs=3, checkpoints=3))
    edited = pool[:-1] + [Instruction((Message("user", "x"), Message("assistant", "y")), "toy:b", "long")]
    assert cache_key(pool, base) != cache_key(edited, base)


def test_proxy_run_gives_n_by_t_trajectories_and_a_cache_hit(tmp_path, tiny_model_dir, monkeypatch):
    cfg = toy_recipe(tiny_model_dir)
    pool = toy_pool(30)
    settings = proxy_settings(cfg, str(tiny_model_dir), epochs=2, checkpoints=4)
    traj = record_trajectories(cfg, pool, settings, tmp_path / "cache", progress=False)

    assert not traj.cache_hit
    assert traj.losses.shape == (len(pool), len(traj.steps))
    assert 3 <= len(traj.steps) <= 5 and traj.steps == sorted(traj.steps)
    assert traj.missing == 1 and traj.losses[-1].tolist() == [0.0] * len(traj.steps)  # nan → 0
    assert np.isfinite(traj.losses).all() and (traj.losses[:-1] > 0).all()
    # the proxy learns: mean loss falls from the first checkpoint to the last
    assert traj.losses[:-1, -1].mean() < traj.losses[:-1, 0].mean()
    cache = tmp_path / "cache" / traj.key
    assert (cache / "trajectories.npz").is_file() and not (cache / "proxy" / "checkpoints").exists()

    from lowres_mt import models

    def no_model(*args, **kwargs):
        raise AssertionError("a cache hit must not load the proxy")

    monkeypatch.setattr(models, "load_base", no_model)
    again = record_trajectories(cfg, pool, settings, tmp_path / "cache", progress=False)
    assert again.cache_hit and again.steps == traj.steps
    np.testing.assert_array_equal(again.losses, traj.losses)
