"""Checkpoints under runs/<name>/checkpoints/step-<N>/, each written whole or not at all.

A checkpoint holds the adapter (peft safetensors, or every trained weight for `lora: null`), the optimizer and scheduler states, the random
states of every process (python, numpy, torch, CUDA) and `state.json` (step = data position, see
`batching`). It is assembled in a temporary folder and renamed into place, so a kill at any
moment leaves the previous checkpoints intact; older ones are removed only after a newer one exists.
Everything is read back with `torch.load(weights_only=True)` or safetensors.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import torch
from peft import set_peft_model_state_dict
from safetensors.torch import load_file

from lowres_mt.errors import UserError
from lowres_mt.io import atomic_dir, write_json
from lowres_mt.models import save_adapter
from lowres_mt.run import FULL_CONFIG, FULL_WEIGHTS, LORA_WEIGHTS

STEP_DIR = re.compile(r"^step-(\d+)$")
TORCH_FILES = ("optimizer.pt", "scheduler.pt", "rng.pt")


def rng_state() -> dict:
    """This process's random states, as plain types and tensors (safe for weights_only loading)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_as_tuple(state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(value):
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints, oldest first (a folder only gets its final name once complete)."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = STEP_DIR.match(path.name)
        if match and (path / "state.json").is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(folder: Path) -> Path | None:
    found = list_checkpoints(folder)
    return found[-1][1] if found else None


def checkpoint_problem(path: Path) -> str | None:
    """What makes a checkpoint folder unusable (a file missing, truncated or garbled), or None.

    Cheap: JSON parsed, safetensors header and torch zip directories read, no tensors loaded."""
    from safetensors import SafetensorError, safe_open

    names = ("state.json", f"adapter/{_weights_file(path)}", *TORCH_FILES)
    missing = [name for name in names if not (path / name).is_file()]
    if missing:
        return f"{missing[0]} is missing"
    try:
        json.loads((path / "state.json").read_text(encoding="utf-8"))["step"]
        with safe_open(path / "adapter" / _weights_file(path), framework="pt") as f:
            f.keys()
        for name in TORCH_FILES:
            zipfile.ZipFile(path / name).close()
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, SafetensorError) as err:
        return f"a file cannot be read: {err}"
    return None


def _weights_file(checkpoint: Path) -> str:
    return FULL_WEIGHTS if (checkpoint / "adapter" / FULL_CONFIG).is_file() else LORA_WEIGHTS


def remove_partial(folder: Path) -> None:
    """Delete what an interrupted write left behind (hidden temporary folders)."""
    if folder.is_dir():
        for path in folder.iterdir():
            if path.name.startswith("."):
                shutil.rmtree(path, ignore_errors=True)


def save_checkpoint(folder: Path, step: int, *, model, optimizer, scheduler, rng_states: list[dict],
                    state: dict, keep: int = 2) -> Path:
    """Write checkpoint `step` atomically, then prune all but the newest `keep`."""
    target = folder / f"step-{step}"
    with atomic_dir(target, marker="state.json") as tmp:
        save_adapter(model, tmp / "adapter")
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save(rng_states, tmp / "rng.pt")
        write_json(tmp / "state.json", {**state, "step": step})
    for _, old in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        doomed = old.with_name(f".{old.name}.deleting")
        os.replace(old, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    return target


def load_checkpoint(path: Path, *, model, optimizer, scheduler, rank: int) -> dict:
    """Restore a checkpoint into live objects; returns its state.json."""
    problem = checkpoint_problem(path)
    if problem:
        raise UserError(f"checkpoint {path} is incomplete or damaged ({problem}); delete that folder to "
                        "resume from the one before it")
    state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    weights = load_file(path / "adapter" / _weights_file(path))
    full = _weights_file(path) == FULL_WEIGHTS
    if full != (not hasattr(model, "peft_config")):
        raise UserError(f"{path} holds {'all trained weights' if full else 'a LoRA adapter'}; resume with the "
                        f"lora settings the run was started with ({'lora: null' if full else 'a lora block'})")
    try:
        result = model.load_state_dict(weights, strict=False) if full else set_peft_model_state_dict(model, weights)
    except RuntimeError as err:
        raise UserError(f"{path}: the saved adapter does not fit this base model ({_first_line(err)}); "
                        "resume with the base model the run was started with") from None
    missing = [k for k in getattr(result, "unexpected_keys", []) if full or "lora_" in k]
    if missing:
        raise UserError(f"{path}: adapter weights {missing[0]} have no place in this model; "
                        "resume with the base model and lora settings the run was started with")
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    rng_states = torch.load(path / "rng.pt", weights_only=True)
    if rank < len(rng_states):
        set_rng_state(rng_states[rank])
    return state


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[1].strip() if len(text) > 1 else (text[0] if text else type(err).__name__)
