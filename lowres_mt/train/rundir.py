"""The run folder runs/<name>/: which run it holds, its data, run.json.

A folder belongs to one resolved recipe. Training into a folder that holds a different run, or
restarting one that has checkpoints without `--resume`, is refused with one line and touches
nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import yaml

from lowres_mt.config import RecipeConfig, dump_recipe
from lowres_mt.errors import UserError
from lowres_mt.io import read_jsonl, write_json, write_text
from lowres_mt.train.checkpoint import checkpoint_problem, latest_checkpoint, list_checkpoints

DATA_SECTIONS_IGNORED = ("train", "lora", "eval")  # recipe parts that do not change data/


def default_run_name(recipe: str, method: str) -> str:
    return f"{Path(recipe).stem}-{method}"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def first_difference(old, new, prefix: str = "") -> str | None:
    """Dotted key of the first place two plain-data configs differ (None when equal).

    Keys only one side has are skipped: a config written by an older or newer lowres-mt lacks
    the fields that version did not know."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [k for k in old if k in new]:
            where = first_difference(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else key)
            if where:
                return where
        return None
    return None if old == new else (prefix or "top level")


def _describe(old: dict, new: dict, key: str) -> str:
    def get(data, dotted):
        for part in dotted.split("."):
            data = data.get(part) if isinstance(data, dict) else None
        return data

    return f"{key}: {get(old, key)!r} there, {get(new, key)!r} now"


def check_run_dir(cfg: RecipeConfig, run_dir: Path, *, resume: bool) -> Path | None:
    """Refuse a folder holding another run; returns the checkpoint to resume from (or None)."""
    saved = run_dir / "config.yaml"
    checkpoint = latest_checkpoint(run_dir / "checkpoints")
    if not saved.is_file():
        if resume:
            raise UserError(f"{run_dir} holds no run to resume; start it without --resume")
        return None
    check_same_run(cfg, run_dir)
    if is_done(run_dir):
        raise UserError(f"{run_dir} is already trained (adapter/ is there); choose another --name "
                        "or delete that folder to train again")
    if checkpoint is not None and not resume:
        raise UserError(f"{run_dir} has a checkpoint ({checkpoint.name}); pass --resume to continue it, "
                        "or choose another --name")
    if resume and checkpoint is None:
        raise UserError(f"{run_dir} has no checkpoint to resume from (it stopped before the first one, "
                        f"every train.save_every={cfg.train.save_every} steps); run the same command "
                        "without --resume to train it from the start")
    if resume and (problem := checkpoint_problem(checkpoint)):
        earlier = [p.name for _, p in list_checkpoints(run_dir / "checkpoints")][:-1]
        then = f"from {earlier[-1]}" if earlier else "from the start (without --resume)"
        raise UserError(f"checkpoint {checkpoint} is incomplete or damaged ({problem}); delete that "
                        f"folder to resume {then}")
    return checkpoint if resume else None


def check_same_run(cfg: RecipeConfig, run_dir: Path) -> None:
    """A folder whose saved config.yaml resolves differently from `cfg` holds another run: refuse it."""
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        return
    old = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
    new = yaml.safe_load(dump_recipe(cfg))
    key = first_difference(old, new)
    if key:
        raise UserError(f"{run_dir} already holds a different run ({_describe(old, new, key)}); "
                        "choose another --name or delete that folder")


def is_done(run_dir: Path) -> bool:
    return read_run_info(run_dir).get("status") == "done"


def check_data(cfg: RecipeConfig, data_dir: Path) -> None:
    """The data folder must have been built from this recipe and method."""
    saved = data_dir / "config.yaml"
    if saved.is_file():
        old = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
        new = yaml.safe_load(dump_recipe(cfg))
        for section in DATA_SECTIONS_IGNORED:
            old.pop(section, None)
            new.pop(section, None)
        key = first_difference(old, new)
        if key:
            raise UserError(f"{data_dir} was built from a different recipe ({_describe(old, new, key)}); "
                            "delete that folder to rebuild it, or choose another --name")
    manifest = data_dir / "manifest.json"
    if manifest.is_file():
        method = json.loads(manifest.read_text(encoding="utf-8")).get("method")
        if method and method != cfg.train.method:
            raise UserError(f"{data_dir} holds '{method}' data but this run trains '{cfg.train.method}'; "
                            "choose another --name")


def ensure_data(cfg: RecipeConfig, run_dir: Path, tokenizer=None) -> None:
    """Build runs/<name>/data/ with the data builder unless it is already there."""
    data_dir = run_dir / "data"
    if (data_dir / "train.jsonl").is_file():
        check_data(cfg, data_dir)
        return
    from lowres_mt.dataset import build_dataset

    build_dataset(cfg, method=cfg.train.method, out_dir=data_dir, tokenizer=tokenizer)


def read_rows(path: Path, *, required: bool) -> list[dict]:
    if not path.is_file():
        if required:
            raise UserError(f"{path} is missing; run `lowres-mt data` or delete {path.parent} to rebuild it")
        return []
    try:
        return read_jsonl(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON lines ({err}); delete {path.parent} to rebuild it") from None


def write_config(cfg: RecipeConfig, run_dir: Path) -> None:
    write_text(run_dir / "config.yaml", dump_recipe(cfg))


def read_run_info(run_dir: Path) -> dict:
    path = run_dir / "run.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def update_run_info(run_dir: Path, **fields) -> dict:
    info = read_run_info(run_dir)
    info.update(fields)
    write_json(run_dir / "run.json", info)
    return info
