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
  measured 0.4× to 0.6× the torch engine's sentences/s (2-core AMD EPYCs with AVX2 and with
  AVX-512; docs/evaluation.md, Backends).

The compute type (`quantization`, default `auto`): for CTranslate2, float32 (the torch engine's
answers) unless named; for torch, bfloat16 weights (attention in float32 on CPU, where bfloat16's
attention kernel is slower) when the backend is `auto` and the device measures bfloat16 faster
(`precision.native_bf16`), else float32, the reference that `--backend torch` keeps. On CPU
torch decodes, in either type, a copy whose linear weights are packed for oneDNN (`decoding_copy`).
A request CTranslate2 cannot serve (beam search, an architecture it does not convert, the
package missing) falls back to torch; asked for by name, with a one-line notice, never silently
different output. `Choice.label` names what decodes, and is part of every evaluation cache key
and result, so caches never mix backends.
"""

from __future__ import annotations

import copy
import dataclasses
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
from lowres_mt.precision import native_bf16
from lowres_mt.translate import packed
from lowres_mt.translate.engine import DecodeSettings, Engine

BACKENDS = ("auto", "torch", "ctranslate2")
CPU_QUANTIZATIONS = ("float32", "int8_float32", "int8")
QUANTIZATIONS = ("auto", *CPU_QUANTIZATIONS, "float16", "bfloat16", "int8_float16")
# the attention `open_engine` gives a bfloat16 copy on CPU (`fp32_attention`)
FP32_ATTENTION = "lowres_mt_sdpa_fp32"


@dataclass(frozen=True)
class Choice:
    backend: str  # "torch" | "ctranslate2"
    # CTranslate2's compute type; for torch "" (float32) or "bfloat16"
    quantization: str = ""
    reason: str = ""  # why a request for CTranslate2 is decoded with torch

    @property
    def label(self) -> str:
        return "-".join(filter(None, (self.backend, self.quantization)))


def choose(settings: DecodeSettings, model_config=None) -> Choice:
    """The backend that decodes with `settings` a model of `model_config` (None: not checked)."""
    if settings.backend not in BACKENDS:
        raise UserError(f"unknown backend '{settings.backend}'; use one of {', '.join(BACKENDS)}")
    if settings.quantization not in QUANTIZATIONS:
        raise UserError(f"unknown quantization '{settings.quantization}'; use one of {', '.join(QUANTIZATIONS)}")
    if settings.backend == "torch" or (settings.backend == "auto" and settings.device == "cpu"):
        return _torch(settings)
    quantization = "float32" if settings.quantization == "auto" else settings.quantization
    problem = ct2_problem(dataclasses.replace(settings, quantization=quantization), model_config)
    if problem is not None:
        return _torch(settings, problem)
    return Choice("ctranslate2", quantization)


def _torch(settings: DecodeSettings, reason: str = "") -> Choice:
    """torch in bfloat16 where asked for, or chosen by `auto` on a device that measures it faster."""
    bf16 = settings.quantization == "bfloat16" or (
        settings.quantization == "auto" and settings.backend == "auto" and native_bf16(settings.device))
    return Choice("torch", "bfloat16" if bf16 else "", reason)


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
    choice = choose(settings, model.config)

    def engine(decoder) -> Engine:
        return Engine(decoder, tokenizer, settings, progress=progress, console=console, vocabulary=vocabulary)

    if choice.backend == "torch":
        if choice.reason and settings.backend == "ctranslate2":
            console.print(f"note: decoding with torch: {choice.reason}", highlight=False)
        if choice.quantization != "bfloat16":
            return engine(decoding_copy(model, settings.device, torch.float32))
        decoder = engine(decoding_copy(model, settings.device, torch.bfloat16))
        decoder.fallback = engine(model)
        return decoder
    reference = engine(model)
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


def decoding_copy(model, device: str, dtype: torch.dtype):
    """`model` for decoding in `dtype` on `device`. On CPU: a copy (the model passed stays as it
    is; the copy doubles the weights' memory while it decodes) whose transformer body's linear
    layers are packed for oneDNN (`packed`): float32 decoding at 2.2-3.2x the unpacked engine's
    speed on a Zen 5 EPYC, with the same answers; in bfloat16 its attention runs
    in float32 (`fp32_attention`: torch's bfloat16 attention kernel took 30% of a decoding step
    there, five times float32's). Elsewhere: `model` itself in float32, a bfloat16 copy otherwise."""
    cpu = torch.device(device).type == "cpu"
    pack = cpu and packed.supported(dtype) and not hasattr(model, "peft_config")  # LoRA layers read weights
    if (not pack or packed.is_packed(model.get_decoder())) and dtype == model.dtype:
        return model
    copied = copy.deepcopy(model).to(dtype)
    if cpu and dtype == torch.bfloat16 and copied.config._attn_implementation == "sdpa":
        _register_fp32_attention()
        copied.set_attn_implementation(FP32_ATTENTION)
    if pack:  # the output layer stays a Linear (tied, sliced per answer language by greedy.OutputHead)
        packed.pack_linears(copied.get_decoder(), keep=(copied.get_output_embeddings(),))
    return copied


def fp32_attention(module, query, key, value, attention_mask, **kwargs):
    """transformers' SDPA attention computed in float32 from bfloat16 inputs, its output cast back."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if attention_mask is not None and attention_mask.is_floating_point():
        attention_mask = attention_mask.float()
    out, weights = sdpa_attention_forward(module, query.float(), key.float(), value.float(), attention_mask,
                                          **kwargs)
    return out.to(query.dtype), weights


@cache
def _register_fp32_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(FP32_ATTENTION, fp32_attention)
    AttentionMaskInterface.register(FP32_ATTENTION, sdpa_mask)  # masks as SDPA takes them


@cache
def _file_digest(path: Path, size: int, mtime_ns: int) -> str:
    from lowres_mt.io import sha256_file

    return sha256_file(path)


def base_digest(folder: Path) -> str:
    """A digest of a base model folder's weights and config (each file hashed once per process)."""
    files = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("config.json"))
    parts = [_file_digest(p, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return hashlib.sha256("".join(parts).encode()).hexdigest()
