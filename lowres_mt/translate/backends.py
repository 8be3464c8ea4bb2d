"""Which decoder turns prompts into answers, and the one place a loaded model becomes an engine.

`open_engine` is what `translate`, `serve` and `eval` call with a loaded model (a trained run's
weights, LoRA merged, or a base model). Backends:

- `torch`: `engine.Engine`, the reference (training's dev translations use it on the model being
  trained);
- `ctranslate2`: `ct2.Ct2Engine` over the same weights converted once into the cache
  (`<cache>/ct2/<weights digest>-<quantization>-…`, atomically, then reused), with the torch
  engine as its fallback for prompts it cannot decode exactly;
- `auto` (the recipes' default, `eval.backend`): CTranslate2 on CUDA where it is installed,
  converts the architecture and honours every decoding setting; torch on CPU, where CTranslate2
  measured 0.4× (float32) to 0.6× (int8) the torch engine's sentences/s on a 2-core AVX2 CPU
  (docs/evaluation.md, Backends).

A request CTranslate2 cannot serve (beam search, an architecture it does not convert, the
package missing) falls back to torch; asked for by name, with a one-line notice, never silently
different output. `Choice.label` names what decodes, and is part of every evaluation cache key
and result, so caches never mix backends.
"""

from __future__ import annotations

import hashlib
import importlib.util
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from rich.console import Console

from lowres_mt.errors import UserError
from lowres_mt.translate.engine import DecodeSettings, Engine

BACKENDS = ("auto", "torch", "ctranslate2")
CPU_QUANTIZATIONS = ("float32", "int8_float32", "int8")
QUANTIZATIONS = (*CPU_QUANTIZATIONS, "float16", "bfloat16", "int8_float16")


@dataclass(frozen=True)
class Choice:
    backend: str  # "torch" | "ctranslate2"
    quantization: str = ""  # CTranslate2's compute type ("" for torch)
    reason: str = ""  # why a request for CTranslate2 is decoded with torch

    @property
    def label(self) -> str:
        return self.backend if self.backend == "torch" else f"{self.backend}-{self.quantization}"


def choose(settings: DecodeSettings, model_config=None) -> Choice:
    """The backend that decodes with `settings` a model of `model_config` (None: not checked)."""
    if settings.backend not in BACKENDS:
        raise UserError(f"unknown backend '{settings.backend}'; use one of {', '.join(BACKENDS)}")
    if settings.quantization not in QUANTIZATIONS:
        raise UserError(f"unknown quantization '{settings.quantization}'; use one of {', '.join(QUANTIZATIONS)}")
    if settings.backend == "torch" or (settings.backend == "auto" and settings.device == "cpu"):
        return Choice("torch")
    problem = ct2_problem(settings, model_config)
    if problem is not None:
        return Choice("torch", reason=problem)
    return Choice("ctranslate2", settings.quantization)


def ct2_problem(settings: DecodeSettings, model_config=None) -> str | None:
    """Why CTranslate2 cannot decode this exactly as torch would, or None."""
    if importlib.util.find_spec("ctranslate2") is None:
        return "the ctranslate2 package is not installed (pip install ctranslate2)"
    from lowres_mt.translate import ct2

    if settings.device == "cpu" and settings.quantization not in CPU_QUANTIZATIONS:
        return f"quantization '{settings.quantization}' needs a GPU; on CPU use {', '.join(CPU_QUANTIZATIONS)}"
    if settings.mbr_samples:
        return "MBR's epsilon sampling runs on the torch engine only"
    if model_config is not None and (problem := ct2.unsupported_architecture(model_config)):
        return problem
    return ct2.unsupported(settings)


def open_engine(model, tokenizer, settings: DecodeSettings, *, weights: Callable[[], str],
                vocabulary=None, progress: bool = True, console: Console | None = None) -> Engine:
    """The engine that decodes `model` (loaded, LoRA merged) with `settings`. `weights()`: a
    digest of the weights (`Run.digest`, `base_digest`) naming their converted copy, computed
    only when CTranslate2 decodes."""
    console = console or Console(stderr=True)
    reference = Engine(model, tokenizer, settings, progress=progress, console=console, vocabulary=vocabulary)
    choice = choose(settings, model.config)
    if choice.backend == "torch":
        if choice.reason and settings.backend == "ctranslate2":
            console.print(f"note: decoding with torch: {choice.reason}", highlight=False)
        return reference
    from lowres_mt.translate import ct2

    digest = weights()

    def convert(head=None) -> Path:
        return converted(model, tokenizer, digest, choice.quantization, console, head)

    return ct2.Ct2Engine(convert(), tokenizer, settings, stop_ids=reference.stop_ids, tables=reference.tables,
                         device=settings.device, compute_type=choice.quantization, vocabulary=vocabulary,
                         progress=progress, console=console, fallback=reference,
                         intra_threads=torch.get_num_threads(), heads=convert)


def converted(model, tokenizer, weights: str, quantization: str, console: Console, head=None) -> Path:
    """The CTranslate2 copy of `model`'s weights, converted on first use and then reused; with
    `head`, an output layer of those ids only (`ct2.convert`)."""
    from lowres_mt.corpora.fetch import cache_dir
    from lowres_mt.translate import ct2

    folder = cache_dir() / "ct2" / ct2.cache_key(weights, quantization, head)
    if folder.is_dir():
        return folder
    rows = "" if head is None else f", an output layer of {len(head):,} tokens"
    console.print(f"converting the model for CTranslate2 ({quantization}{rows}) into {folder} (once)",
                  highlight=False)
    with tempfile.TemporaryDirectory(prefix="lowres-mt-hf-") as scratch:
        model.save_pretrained(scratch, safe_serialization=True)
        tokenizer.save_pretrained(scratch)
        return ct2.convert(Path(scratch), folder, quantization, head)


@cache
def _file_digest(path: Path, size: int, mtime_ns: int) -> str:
    from lowres_mt.io import sha256_file

    return sha256_file(path)


def base_digest(folder: Path) -> str:
    """A digest of a base model folder's weights and config (each file hashed once per process)."""
    files = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("config.json"))
    parts = [_file_digest(p, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return hashlib.sha256("".join(parts).encode()).hexdigest()
