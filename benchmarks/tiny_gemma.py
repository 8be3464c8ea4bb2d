"""The benchmarks' smoke-mode model: a random 2-layer Gemma-3 with the test tokenizer."""

from __future__ import annotations

from pathlib import Path

TINY_TOKENIZER = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "tiny_tokenizer"


def tiny_gemma():
    """(model, tokenizer): seeded, so every benchmark run starts from the same weights."""
    import torch
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    tokenizer = AutoTokenizer.from_pretrained(TINY_TOKENIZER)
    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                              num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
                              head_dim=16, max_position_embeddings=1024, sliding_window=512,
                              pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                              eos_token_id=tokenizer.eos_token_id)
    return Gemma3ForCausalLM(config).eval(), tokenizer
