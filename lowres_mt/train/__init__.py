"""LoRA fine-tuning: tokenize (chat template, labels on answers) → batching (length-grouped packing)
→ loss (target-only, chunked) → loop (accelerate) → checkpoints, metrics, adapter.

`from lowres_mt.train import train` is the entry point (imported lazily: torch is heavy)."""

from __future__ import annotations


def __getattr__(name: str):
    if name in ("train", "TrainResult"):
        from lowres_mt.train import loop

        return getattr(loop, name)
    raise AttributeError(name)
