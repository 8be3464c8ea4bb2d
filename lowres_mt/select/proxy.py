"""The proxy run: the small model LoRA-fine-tuned on the candidate pool with lowres-mt's own
training loop, saving a checkpoint every `total_steps / checkpoints` steps.

The pool is written as an ordinary run folder (data/train.jsonl with `general` rows, empty dev
set) and trained by `lowres_mt.train.train` with a recipe derived from the user's: proxy base
model, proxy epochs and checkpoint interval, no dev evaluation. An interrupted proxy run resumes
from its newest checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from lowres_mt.config import RecipeConfig, TrainConfig
from lowres_mt.io import write_jsonl
from lowres_mt.records import Example, Instruction
from lowres_mt.run import LORA_WEIGHTS
from lowres_mt.train.batching import plan_epoch
from lowres_mt.train.checkpoint import list_checkpoints
from lowres_mt.train.tokenize import TokenizedExample

PROXY_METHOD = "sft"  # the pool holds no translation prompts; the method only names the run


def planned_steps(examples: Sequence[TokenizedExample | None], *, epochs: float, batch_tokens: int,
                  max_length: int, grad_accum: int, seed: int, pack: bool) -> int:
    """Optimizer steps the training loop takes for `epochs` passes over these examples (1 process)."""
    lengths = [len(ex) for ex in examples if ex is not None]
    if not lengths:
        return 0
    micro = len(plan_epoch(lengths, seed=seed, epoch=0, batch_tokens=batch_tokens,
                           row_tokens=max_length, pack=pack))
    return max(1, math.ceil(epochs * micro / max(1, grad_accum)))


def save_interval(total_steps: int, checkpoints: int) -> int:
    """Steps between checkpoints so that about `checkpoints` of them (the last = the end) exist."""
    return max(1, math.ceil(total_steps / max(1, checkpoints)))


def proxy_recipe(cfg: RecipeConfig, settings, total_steps: int) -> RecipeConfig:
    """The proxy run's recipe: built from the settings alone (other training options at their
    defaults), so editing unrelated parts of the user's recipe never invalidates a proxy run."""
    train = TrainConfig(
        method=PROXY_METHOD, epochs=settings.epochs, max_steps=total_steps,
        batch_tokens=settings.batch_tokens, grad_accum=settings.grad_accum, lr=settings.lr,
        max_length=settings.max_length, eval_every=0, dev_chrf_size=0,
        save_every=save_interval(total_steps, settings.checkpoints),
        keep_checkpoints=settings.checkpoints + 1, trim_vocab=settings.trim_vocab,
        threads=cfg.train.threads, dtype=settings.dtype,
    )
    return RecipeConfig(name=f"{cfg.name}-s2l-proxy", languages=cfg.languages, seed=settings.seed,
                        description=f"S2L proxy for {cfg.name}", base_model=settings.proxy,
                        lora=dict(settings.lora), train=train)


def write_pool_data(pool: Sequence[Instruction], run_dir: Path) -> None:
    """The pool as the proxy run's training data (and an empty dev set)."""
    data = run_dir / "data"
    rows = (Example(ins.messages, "general", None, ins.corpus, f"{ins.corpus}#{ins.id}").to_json()
            for ins in pool)
    write_jsonl(data / "train.jsonl", rows)
    write_jsonl(data / "dev.jsonl", [])


def run_proxy(cfg: RecipeConfig, run_dir: Path, pool: Sequence[Instruction], *,
              progress: bool = True) -> list[tuple[int, Path]]:
    """Train the proxy (or resume / reuse a finished run) and list its adapters by step."""
    from lowres_mt.train import train
    from lowres_mt.train.rundir import read_run_info

    info = read_run_info(run_dir)
    if info.get("status") != "done":
        if not (run_dir / "data" / "train.jsonl").is_file():
            write_pool_data(pool, run_dir)
        resume = bool(list_checkpoints(run_dir / "checkpoints"))
        train(cfg, run_dir=run_dir, resume=resume, progress=progress)
    return proxy_adapters(run_dir, cfg.train.max_steps)


def proxy_adapters(run_dir: Path, total_steps: int) -> list[tuple[int, Path]]:
    """(step, adapter weights file) of every saved checkpoint and of the final adapter, by step."""
    found = [(step, path / "adapter" / LORA_WEIGHTS) for step, path in list_checkpoints(run_dir / "checkpoints")]
    final = run_dir / "adapter" / LORA_WEIGHTS
    if final.is_file() and all(step != total_steps for step, _ in found):
        found.append((total_steps, final))
    return sorted(found)
