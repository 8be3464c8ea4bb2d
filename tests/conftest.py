"""Shared fixtures: offline mode, a tiny tokenizer and tiny random Gemma-3 models."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before any Hugging Face import
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
TINY_TOKENIZER = FIXTURES / "tiny_tokenizer"


@pytest.fixture(autouse=True)
def bf16_not_faster(monkeypatch):
    """`auto` trains and decodes in float32 whatever this CPU measures (`precision.native_bf16`'s
    probe), so answers, losses and cache keys do not depend on the machine; tests of the bfloat16
    choice patch the probe themselves."""
    from lowres_mt import precision

    monkeypatch.setattr(precision, "bf16_matmul_speedup", lambda threads: 1.0)


@pytest.fixture
def one_thread():
    """Tiny models are overhead-bound: one thread is faster and steady on a shared CPU."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TINY_TOKENIZER)


def make_tiny_model(tokenizer, seed: int = 0):
    """A 2-layer, 64-dim random Gemma-3 text model sized to `tokenizer`."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(seed)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=512,
        sliding_window=64,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return Gemma3ForCausalLM(config).eval()


@pytest.fixture
def tiny_model(tiny_tokenizer):
    return make_tiny_model(tiny_tokenizer)


@pytest.fixture
def tiny_model_dir(tmp_path, tiny_tokenizer):
    """A tiny base model saved as a normal Hugging Face folder (safetensors + tokenizer)."""
    path = tmp_path / "tiny-base"
    make_tiny_model(tiny_tokenizer).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


def cli(monkeypatch, capsys, *args):
    """(exit code, stdout, stderr) of `lowres-mt ARGS` in this process: an uncaught exception
    (a traceback for a user) fails the test."""
    import sys

    from lowres_mt.cli import main

    monkeypatch.setattr(sys, "argv", ["lowres-mt", *map(str, args)])
    with pytest.raises(SystemExit) as done:
        main()
    out = capsys.readouterr()
    return done.value.code or 0, out.out, out.err
