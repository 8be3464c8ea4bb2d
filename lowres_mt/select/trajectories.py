"""Loss trajectories: each candidate example's mean response-token loss at every proxy checkpoint.

The trajectory matrix is N × T (examples × checkpoints sorted by step). Each entry is the mean
token cross-entropy over the example's assistant tokens only (the prompt is masked exactly as in
training); an example with no response token left after truncation gets `nan`, stored as 0. No
normalization is applied. The matrix is cached under a key of the pool's content, the proxy and
every setting that changes the losses, so a new budget or cluster count reuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from lowres_mt.errors import UserError
from lowres_mt.io import atomic_path, write_json
from lowres_mt.progress import bar as progress_bar
from lowres_mt.records import Instruction
from lowres_mt.train.batching import collate, group_rows, pack_rows
from lowres_mt.train.loss import causal_lm_parts
from lowres_mt.train.tokenize import IGNORE, TokenizedExample, remap_examples, tokenize_example

TRAJECTORY_FORMAT = 1  # bump when the way losses are computed changes (invalidates caches)
SCORE_CHUNK = 512  # labelled positions per output-layer chunk while scoring


@dataclass(frozen=True)
class ProxySettings:
    """How the proxy is fine-tuned on the pool; every field is part of the cache key."""

    proxy: str = "smollm2-135m"  # registry name, local folder or hub id
    epochs: float = 3.0
    checkpoints: int = 12  # checkpoints kept at fixed step intervals = trajectory length T
    max_length: int = 256  # tokens per example (longer ones are truncated)
    lr: float = 2e-4
    batch_tokens: int = 4096
    grad_accum: int = 1
    seed: int = 0
    trim_vocab: bool = True  # train and score over the pool's vocabulary only (much faster)
    dtype: str = "float32"
    lora: dict = field(default_factory=dict)  # peft.LoraConfig fields

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Trajectories:
    losses: np.ndarray  # (N, T) float32, nan → 0
    steps: list[int]  # proxy step of each column, ascending
    key: str  # cache key
    cache_hit: bool
    missing: int = 0  # examples with no response token to score (rows of zeros)
    seconds: dict = field(default_factory=dict)  # time spent when it was computed: proxy training, scoring

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.losses.shape)


def pool_fingerprint(pool: Sequence[Instruction]) -> str:
    """sha256 over every example's corpus, id and messages, in pool order."""
    digest = hashlib.sha256()
    for ins in pool:
        row = [ins.corpus, ins.id, [[m.role, m.content] for m in ins.messages]]
        digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def cache_key(pool: Sequence[Instruction], settings: ProxySettings) -> str:
    blob = json.dumps({"format": TRAJECTORY_FORMAT, "pool": pool_fingerprint(pool),
                       "settings": settings.to_json()}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def tokenize_pool(tokenizer, pool: Sequence[Instruction], max_length: int) -> list[TokenizedExample | None]:
    """Chat-template tokens with labels on the assistant turns; None where nothing is left to score."""
    return [tokenize_example(tokenizer, ins.as_dicts(), max_length)[0] for ins in pool]


def token_losses(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                 softcap: float | None, chunk: int = SCORE_CHUNK) -> torch.Tensor:
    """Cross-entropy of every row of `hidden @ weight.T` against `targets`, a chunk at a time."""
    out = []
    for start in range(0, hidden.shape[0], chunk):
        z = (hidden[start:start + chunk] @ weight.T).float()
        if softcap:
            z = torch.tanh(z / softcap) * softcap
        t = targets[start:start + chunk]
        out.append(torch.logsumexp(z, dim=-1) - z[torch.arange(t.shape[0]), t])
    return torch.cat(out) if out else hidden.new_zeros(0, dtype=torch.float32)


@torch.inference_mode()
def mean_response_losses(model, examples: Sequence[TokenizedExample | None], *, pad_id: int,
                         batch_tokens: int = 4096, pack: bool = False, progress=None) -> np.ndarray:
    """Mean cross-entropy over each example's labelled (response) tokens; nan for None entries.

    Examples are batched by length (packed several to a row when `pack`, which needs a model whose
    attention keeps packed examples apart); the output layer runs only on labelled positions.
    """
    model.eval()
    body, head, softcap = causal_lm_parts(model)
    device = next(body.parameters()).device
    present = [i for i, ex in enumerate(examples) if ex is not None]
    scored = [examples[i] for i in present]
    sums = np.zeros(len(scored), dtype=np.float64)
    counts = np.zeros(len(scored), dtype=np.int64)
    lengths = [len(ex) for ex in scored]
    order = sorted(range(len(scored)), key=lambda i: -lengths[i])
    width = max(lengths, default=1)
    rows = pack_rows(lengths, order, width) if pack else [[i] for i in order]
    for batch_rows in group_rows(rows, lengths, max(batch_tokens, width)):
        batch = collate(scored, batch_rows, pad_id).to(device)
        owner = _owners(batch_rows, lengths, batch.labels.shape).to(device)
        hidden = body(input_ids=batch.input_ids, position_ids=batch.position_ids,
                      use_cache=False).last_hidden_state
        keep = batch.labels[:, 1:] != IGNORE
        losses = token_losses(hidden[:, :-1][keep], head.weight, batch.labels[:, 1:][keep], softcap)
        who = owner[:, 1:][keep].cpu().numpy()
        np.add.at(sums, who, losses.double().cpu().numpy())
        np.add.at(counts, who, 1)
        if progress is not None:
            progress(sum(len(r) for r in batch_rows))
    out = np.full(len(examples), np.nan, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[present] = sums / counts
    return out


def _owners(rows: list[list[int]], lengths: Sequence[int], shape: torch.Size) -> torch.Tensor:
    """Which example each position of a collated batch belongs to (0 on padding, never labelled)."""
    owner = torch.zeros(shape, dtype=torch.long)
    for r, row in enumerate(rows):
        at = 0
        for i in row:
            owner[r, at:at + lengths[i]] = i
            at += lengths[i]
    return owner


def trajectory_matrix(per_step: dict[int, np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """Stack per-checkpoint losses as columns in step order; nan → 0 (no normalization)."""
    if not per_step:
        raise ValueError("no checkpoint losses to stack")
    steps = sorted(per_step)
    matrix = np.stack([np.asarray(per_step[s], dtype=np.float64) for s in steps], axis=1)
    return np.nan_to_num(matrix, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32), steps


def save_trajectories(cache: Path, traj: Trajectories, ids: Sequence[tuple[str, str]],
                      settings: ProxySettings) -> None:
    """Write the matrix (npz) and a JSON description into the cache folder, atomically."""
    cache.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache / "trajectories.npz") as tmp:
        with tmp.open("wb") as f:
            np.savez(f, losses=traj.losses, steps=np.asarray(traj.steps, dtype=np.int64))
    write_json(cache / "trajectories.json", {
        "key": traj.key, "format": TRAJECTORY_FORMAT, "shape": list(traj.shape), "steps": traj.steps,
        "missing": traj.missing, "seconds": {k: round(v, 2) for k, v in traj.seconds.items()},
        "settings": settings.to_json(),
        "examples": [{"corpus": c, "id": i} for c, i in ids],
    })


def load_trajectories(cache: Path, key: str, n_examples: int) -> Trajectories | None:
    """The cached matrix for `key`, or None when absent or not matching the pool."""
    path, meta_path = cache / "trajectories.npz", cache / "trajectories.json"
    if not (path.is_file() and meta_path.is_file()):
        return None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    with np.load(path) as data:
        losses, steps = data["losses"], data["steps"].tolist()
    if meta.get("key") != key or losses.shape[0] != n_examples:
        return None
    return Trajectories(losses, steps, key, cache_hit=True, missing=int(meta.get("missing", 0)),
                        seconds=dict(meta.get("seconds", {})))


def record_trajectories(cfg, pool: Sequence[Instruction], settings: ProxySettings, cache_root: Path, *,
                        progress: bool = True) -> Trajectories:
    """The N × T trajectory matrix of `pool`: from the cache, or by training and scoring the proxy.

    Cache layout under `cache_root/<key>/`: proxy/ (the proxy run), losses/step-<N>.npy (one
    column per checkpoint, so an interrupted scoring resumes), trajectories.npz + .json.
    """
    key = cache_key(pool, settings)
    cache = Path(cache_root) / key
    cached = load_trajectories(cache, key, len(pool))
    if cached is not None:
        return cached
    from lowres_mt.models import attach_lora, keep_ids_for, load_base, trim_vocab
    from lowres_mt.select.proxy import planned_steps, proxy_recipe, run_proxy
    from lowres_mt.train.loss import packing_isolated

    torch.set_num_threads(cfg.train.threads or max(1, os.cpu_count() or 1))
    model, tokenizer = load_base(settings.proxy, dtype=settings.dtype)
    examples = tokenize_pool(tokenizer, pool, settings.max_length)
    kept = [ex for ex in examples if ex is not None]
    if not kept:
        raise UserError(f"no pool example keeps a response within {settings.max_length} tokens; "
                        "raise train.max_length")
    if settings.trim_vocab:
        vmap = trim_vocab(model, keep_ids_for(tokenizer, [ex.input_ids for ex in kept]))
        remapped = iter(remap_examples(kept, vmap.old_to_new.tolist()))
        examples = [None if ex is None else next(remapped) for ex in examples]
    pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    pack = packing_isolated(model)
    total = planned_steps(examples, epochs=settings.epochs, batch_tokens=settings.batch_tokens,
                          max_length=settings.max_length, grad_accum=settings.grad_accum,
                          seed=settings.seed, pack=pack)
    began = time.perf_counter()
    adapters = run_proxy(proxy_recipe(cfg, settings, total), cache / "proxy", pool, progress=progress)
    trained = time.perf_counter()
    model = attach_lora(model, dict(settings.lora)).to("cuda" if torch.cuda.is_available() else "cpu")
    per_step = _score_checkpoints(model, examples, adapters, cache / "losses", pad_id=pad_id,
                                  batch_tokens=settings.batch_tokens, pack=pack, progress=progress)
    losses, steps = trajectory_matrix(per_step)
    seconds = {"proxy_training": trained - began, "scoring": time.perf_counter() - trained}
    traj = Trajectories(losses, steps, key, cache_hit=False, missing=len(examples) - len(kept), seconds=seconds)
    save_trajectories(cache, traj, [(ins.corpus, ins.id) for ins in pool], settings)
    shutil.rmtree(cache / "proxy" / "checkpoints", ignore_errors=True)  # optimizer states: hundreds of MB
    return traj


def _score_checkpoints(model, examples, adapters: list[tuple[int, Path]], folder: Path, *, pad_id: int,
                       batch_tokens: int, pack: bool, progress: bool) -> dict[int, np.ndarray]:
    """Per-step mean response losses, each column saved as soon as it is computed."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    per_step = {int(p.stem.split("-")[1]): np.load(p) for p in sorted(folder.glob("step-*.npy"))}
    todo = [(step, path) for step, path in adapters if step not in per_step]
    n = sum(ex is not None for ex in examples)
    with progress_bar(enabled=progress) as bar:
        task = bar.add_task("scoring the pool at proxy checkpoints", total=n * len(todo))
        for step, weights in todo:
            set_peft_model_state_dict(model, load_file(weights))
            column = mean_response_losses(model, examples, pad_id=pad_id, batch_tokens=batch_tokens,
                                          pack=pack, progress=lambda k: bar.advance(task, k))
            folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(folder / f"step-{step}.npy") as tmp, tmp.open("wb") as f:
                np.save(f, column)
            per_step[step] = column
    return per_step
