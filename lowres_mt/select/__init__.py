"""Data selection with SmallToLarge (S2L): choose the general-data pool from a small proxy model's
loss trajectories.

    pool (general.corpora) ─▶ proxy LoRA fine-tuning, checkpoints ─▶ N × T loss trajectories (cached)
    ─▶ k-means (k = 100, 20 iterations) ─▶ balanced sampling, smallest cluster first ─▶ selection.jsonl

`select_general` writes runs/<recipe>-s2l/{selection.jsonl, report.json, clusters.png}; the data
builder reads selection.jsonl when a recipe says `general.select: s2l`. The budget is a number of
examples.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from pathlib import Path

from lowres_mt.config import RecipeConfig, runs_dir
from lowres_mt.errors import UserError
from lowres_mt.io import check_replaceable, portable_path, write_json, write_jsonl
from lowres_mt.records import Instruction
from lowres_mt.select.cluster import DEFAULT_CLUSTERS, cluster_trajectories
from lowres_mt.select.report import (
    SelectionReport,
    count_by_cluster,
    count_by_source,
    plot_cluster_sizes,
)
from lowres_mt.select.sampler import select_balanced

__all__ = ["DEFAULT_CLUSTERS", "DEFAULT_PROXY", "SelectionReport", "load_pool", "proxy_settings",
           "select_general", "selection_dir"]

DEFAULT_PROXY = "smollm2-135m"
PROXY_LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0}  # _base.yaml's block, for recipes with lora: null


def selection_dir(cfg: RecipeConfig) -> Path:
    """Where `lowres-mt select` writes, and where the data builder looks by default."""
    return runs_dir() / f"{cfg.name}-s2l"


def proxy_settings(cfg: RecipeConfig, proxy: str | None = None, *, epochs: float = 3.0,
                   checkpoints: int = 12):
    """Proxy training settings: the recipe's LoRA block (PROXY_LORA when the recipe trains every
    weight: the proxy's trajectories are always LoRA checkpoints), learning rate and length limits."""
    from lowres_mt.precision import dtype_name
    from lowres_mt.select.trajectories import ProxySettings

    if epochs <= 0 or checkpoints < 1:
        raise UserError("the proxy needs epochs > 0 and at least one checkpoint")
    return ProxySettings(proxy=proxy or DEFAULT_PROXY, epochs=epochs, checkpoints=checkpoints,
                         max_length=cfg.train.max_length, lr=cfg.train.lr, batch_tokens=cfg.train.batch_tokens,
                         grad_accum=cfg.train.grad_accum, seed=cfg.seed, trim_vocab=cfg.train.trim_vocab,
                         dtype=dtype_name(cfg.train.dtype, "cpu"), lora=dict(cfg.lora or PROXY_LORA))


def load_pool(cfg: RecipeConfig, limit: int = 0, tokenizer=None,
              cache_dir: Path | None = None) -> tuple[list[Instruction], list[int]]:
    """The candidate pool: every instruction example of general.corpora that the data builder would
    accept (content tokens ≤ general.max_tokens with the base model's tokenizer), optionally a
    seeded random subset of `limit` examples (kept in corpus order). Returns (pool, content tokens).

    With `cache_dir`, the token counts are kept there (keyed by base model and corpus content).
    """
    from lowres_mt.corpora import load_set

    if not cfg.general.corpora:
        raise UserError("the recipe names no general corpora (general.corpora is empty); S2L selects from them")
    records: list[Instruction] = []
    for ref in cfg.general.corpora:
        found = load_set(ref)
        if found and not isinstance(found[0], Instruction):
            raise UserError(f"general.corpora set '{ref}' holds no instruction examples")
        records.extend(found)
    counts = _content_tokens(cfg, records, tokenizer, cache_dir)
    kept = [i for i, n in enumerate(counts) if n <= cfg.general.max_tokens]
    if limit and limit < len(kept):
        kept = sorted(random.Random(cfg.seed).sample(kept, limit))
    return [records[i] for i in kept], [counts[i] for i in kept]


def _content_tokens(cfg: RecipeConfig, records: list[Instruction], tokenizer, cache_dir: Path | None) -> list[int]:
    """Content tokens of every record (all turns joined, as the data builder counts them)."""
    from lowres_mt.select.trajectories import pool_fingerprint

    key = hashlib.sha256(f"{cfg.base_model}\n{pool_fingerprint(records)}".encode()).hexdigest()[:16]
    path = cache_dir / f"tokens-{key}.json" if cache_dir else None
    if path is not None and path.is_file():
        counts = json.loads(path.read_text(encoding="utf-8"))
        if len(counts) == len(records):
            return counts
    from lowres_mt.data.budget import token_counter

    if tokenizer is None:
        from lowres_mt.models import load_tokenizer

        tokenizer = load_tokenizer(cfg.base_model)
    count = token_counter(tokenizer)
    counts = []
    for start in range(0, len(records), 512):
        counts += count(["\n".join(m.content for m in ins.messages) for ins in records[start:start + 512]])
    if path is not None:
        write_json(path, counts)
    return counts


def select_general(cfg: RecipeConfig, budget: int, proxy: str | None = None,
                   clusters: int = DEFAULT_CLUSTERS, out_dir: Path | None = None, *, pool_size: int = 0,
                   epochs: float = 3.0, checkpoints: int = 12, stratify: bool = False,
                   progress: bool = True) -> SelectionReport:
    """Select `budget` general examples with S2L and write selection.jsonl, report.json, clusters.png.

    Trajectories are cached in `out_dir/cache/<key>` (key: pool content, proxy and its settings), so
    a new budget, cluster count or stratification reuses them and takes seconds.
    """
    from lowres_mt.select.trajectories import record_trajectories

    if clusters < 1:
        raise UserError(f"--clusters must be at least 1, got {clusters}")
    out_dir = Path(out_dir) if out_dir else selection_dir(cfg)
    check_replaceable(out_dir, "cache")  # its first write; never write into a folder of other files
    seconds: dict[str, float] = {}
    began = time.perf_counter()
    pool, tokens = load_pool(cfg, pool_size, cache_dir=out_dir / "cache")
    if not 0 < budget <= len(pool):
        raise UserError(f"--budget must be between 1 and the pool size ({len(pool)} examples), got {budget}")
    seconds["pool"] = time.perf_counter() - began

    began = time.perf_counter()
    settings = proxy_settings(cfg, proxy, epochs=epochs, checkpoints=checkpoints)
    traj = record_trajectories(cfg, pool, settings, out_dir / "cache", progress=progress)
    seconds["trajectories"] = time.perf_counter() - began

    began = time.perf_counter()
    clustering = cluster_trajectories(traj.losses, clusters, seed=cfg.seed, threads=cfg.train.threads or 2)
    sources = [ins.corpus for ins in pool]
    chosen = select_balanced(clustering.labels, budget, seed=cfg.seed, sources=sources if stratify else None)
    seconds["cluster+sample"] = time.perf_counter() - began

    sizes, selected = count_by_cluster(clustering.labels, chosen)
    report = SelectionReport(
        out_dir=out_dir, budget=budget, pool=len(pool), proxy=settings.proxy, clusters=clustering.k,
        checkpoints=traj.steps, cluster_sizes=sizes, cluster_selected=selected,
        sources=count_by_source(sources, chosen), cache_hit=traj.cache_hit,
        selected_tokens=sum(tokens[i] for i in chosen), seconds=seconds,
        files={"selection": portable_path(out_dir / "selection.jsonl"),
               "report": portable_path(out_dir / "report.json"), "plot": portable_path(out_dir / "clusters.png"),
               "trajectories": portable_path(out_dir / "cache" / traj.key)},
    )
    extra = {"recipe": cfg.name, "seed": cfg.seed, "stratified": stratify, "pool_limit": pool_size,
             "trajectory_shape": list(traj.shape), "unscored_examples": traj.missing,
             "trajectory_seconds": {k: round(v, 1) for k, v in traj.seconds.items()},
             "kmeans": {"k_asked": clusters, "iterations": clustering.iterations, "inertia": clustering.inertia},
             "proxy_settings": settings.to_json()}
    write_jsonl(out_dir / "selection.jsonl",
                ({"corpus": pool[i].corpus, "id": pool[i].id, "cluster": int(clustering.labels[i])} for i in chosen))
    write_json(out_dir / "report.json", {**report.to_json(), **extra})
    plot_cluster_sizes(sizes, selected, out_dir / "clusters.png",
                       title=f"{cfg.name}: S2L, {budget} of {len(pool)} examples, {clustering.k} clusters")
    return report
