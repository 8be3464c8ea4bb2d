"""A trained run folder, opened and checked once: `Run.open(path)`.

Every path that uses a trained run — evaluation, `translate`, `serve`, the benchmarks — reads it
through this one view, so a folder that is not a run, has no adapter yet, or holds a damaged or
pickle-only adapter gets the same one-line message wherever it is used, before any model loads.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from lowres_mt.config import RecipeConfig, load_recipe
from lowres_mt.errors import UserError
from lowres_mt.io import sha256_file

TRAIN_VOCABULARY = "train_vocabulary.json"  # in the adapter folder: ids the output head was trained over
# A run trained without LoRA (`lora: null`) keeps all its trained weights in the adapter folder
# instead: FULL_WEIGHTS over the base model's parameter names, described by FULL_CONFIG.
FULL_CONFIG = "full_model.json"
FULL_WEIGHTS = "model.safetensors"
LORA_CONFIG = "adapter_config.json"
LORA_WEIGHTS = "adapter_model.safetensors"


@dataclass(frozen=True)
class Run:
    path: Path
    info: dict  # run.json

    @classmethod
    def open(cls, path: Path | str) -> Run:
        """The run at `path`; a UserError unless it has run.json, config.yaml and a sound adapter."""
        path = Path(path)
        if not (path / "run.json").is_file() or not (path / "config.yaml").is_file():
            raise UserError(f"'{path}' is not a run folder (needs run.json and config.yaml); train one with "
                            "`lowres-mt train RECIPE`")
        run = cls(path, _json_object(path / "run.json", path.name))
        if not run.adapter_config.is_file():
            raise UserError(f"run '{path.name}' has no adapter yet (status: {run.info.get('status', '?')}); "
                            "finish training it, or pass another run")
        _check_adapter_files(run, path.name)
        return run

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def adapter(self) -> Path:
        return self.path / "adapter"

    @property
    def full(self) -> bool:
        """Whether the run fine-tuned every weight (`lora: null`) rather than a LoRA adapter."""
        return (self.adapter / FULL_CONFIG).is_file()

    @property
    def adapter_config(self) -> Path:
        return self.adapter / (FULL_CONFIG if self.full else LORA_CONFIG)

    @property
    def adapter_weights(self) -> Path:
        return self.adapter / (FULL_WEIGHTS if self.full else LORA_WEIGHTS)

    @cached_property
    def cfg(self) -> RecipeConfig:
        return load_recipe(str(self.path / "config.yaml"))

    @property
    def method(self) -> str:
        return self.info.get("method") or self.cfg.train.method

    @property
    def base_model(self) -> str:
        return str(self.info.get("base_model") or self.cfg.base_model)

    @property
    def directions(self) -> tuple[str, ...]:
        return tuple(self.info.get("directions") or self.cfg.directions)

    @property
    def task_tokens(self) -> int:
        tokens = self.info.get("task_tokens")
        return int(tokens) if tokens is not None else self.cfg.task.tokens

    @property
    def vocabulary(self) -> list[int] | None:
        """The token ids the adapter was trained over, or None (full vocabulary, or an older run).

        A trimmed run's output head only ever learned to rank these ids; decoding over all 262k
        ids lets tokens the training never pushed down (scripts, markup) outrank the answer's end."""
        path = self.adapter / TRAIN_VOCABULARY
        if not path.is_file():
            return None
        return [int(i) for i in json.loads(path.read_text(encoding="utf-8"))["token_ids"]]

    @property
    def digest(self) -> str:
        """sha256 over the adapter's weights, config and vocabulary and the run's config.yaml: it
        changes whenever the run's outputs could."""
        files = sorted(self.adapter.glob("*.safetensors")) + [self.adapter_config]
        files += sorted(self.adapter.glob(TRAIN_VOCABULARY)) + [self.path / "config.yaml"]
        return hashlib.sha256("".join(sha256_file(p) for p in files).encode()).hexdigest()


def _check_adapter_files(run: Run, name: str) -> None:
    """A damaged or pickle-only adapter is refused, before any model is loaded."""
    from safetensors import SafetensorError, safe_open

    _json_object(run.adapter_config, name)
    weights = run.adapter_weights
    if not weights.is_file():
        found = ", ".join(sorted(p.name for p in run.adapter.glob(f"{weights.stem}*"))) or "no weights at all"
        raise UserError(f"run '{name}': {run.adapter} has no {weights.name} ({found}); lowres-mt "
                        "loads safetensors only (never pickles): save the adapter with safetensors")
    try:
        with safe_open(weights, framework="pt") as f:
            f.keys()
    except SafetensorError as err:
        raise UserError(f"run '{name}': {weights} is damaged ({err}); restore it or train the run "
                        "again") from None


def _json_object(path: Path, run: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise UserError(f"run '{run}': {path} is not a JSON object; the run folder is damaged: restore that "
                        "file or train the run again")
    return data

