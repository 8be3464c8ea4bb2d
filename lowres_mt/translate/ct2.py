"""CTranslate2 decoding: the torch engine's answers from a converted model.

`convert` turns a Hugging Face folder (full weights and tokenizer; a LoRA run merged into one by
the caller) into a CTranslate2 model once, in a folder the caller names with `cache_key`.
`Ct2Engine` is an `Engine` whose decoder is `ctranslate2.Generator.generate_batch`: prompts,
batching, the vocabulary restriction and answer parsing are `Engine`'s own.

How `DecodeSettings` maps onto `generate_batch` (exact = the torch engine's tokens up to float
summation order, checked in tests/test_translate_ct2.py):

- stop tokens → `end_token` (exact);
- the newline rule and `stop_repeats` → a per-token `callback` that ends a row where
  `greedy_decode` would (exact); beam search has no callback, so its best hypothesis is cut
  afterwards (approximate, see below);
- `max_new_tokens` → `max_length`, which counts generated tokens only (exact);
- `repetition_penalty`, `no_repeat_ngram` → the same-named options (exact in greedy): CTranslate2
  feeds its processors every token of its decoding loop, which holds the prompt tokens it forces
  one by one for the longer prompts of a batch, so with these on every batch holds prompts of one
  length and the processors see the answer only, as `greedy_decode`'s do (smaller batches);
- `alphabet`, `train_vocabulary` (`Engine.allowed`) → a model converted with an output layer of
  the allowed ids only (`convert(..., head=ids)`, given the engine's `heads`), as the torch engine
  slices its head: the vocabulary is reordered so that those ids come first, the embeddings keep
  every token for the prompt, and the projection keeps the first rows (exact; a `Generator` has no
  `use_vmap` as a `Translator` has). Without `heads`, or for a batch whose last prompt token is
  outside the head (CTranslate2's repetition controls index the logits by it), every other token
  goes to `suppress_sequences` as a one-token sequence (exact, and slower than no restriction);
- `num_beams > 1` → `beam_size`: approximate, `unsupported` says why.

A prompt of more than window + 1 tokens (the model's sliding attention window) is prefilled by
CTranslate2 in window-sized chunks whose later queries see more than the window, so its answer
can differ: such prompts go to `fallback` (a torch `Engine`) when one is given, and are counted in
`Ct2Engine.inexact`, with a note on the console, otherwise. Decoding past the window is exact.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import ctranslate2
import numpy as np
import torch
import transformers
from ctranslate2.converters import TransformersConverter
from rich.console import Console

from lowres_mt.io import atomic_dir, write_json
from lowres_mt.translate.engine import DecodeSettings, Engine, longest_first
from lowres_mt.translate.greedy import StopTables, shared_prefix_length

CONVERSION_VERSION = 1  # bump when `convert` writes different models (part of `cache_key`)
RECORD = "lowres-mt-ct2.json"  # written by `convert` beside the model: what it was made from
QUANTIZATIONS = ("float32", "float16", "bfloat16", "int8", "int8_float32", "int8_float16",
                 "int8_bfloat16", "int16")


def unsupported_architecture(config) -> str | None:
    """Why a transformers model config does not convert to a CTranslate2 model that decodes as
    transformers does, or None: Gemma-3 text models only (those the tests compare), and not
    those using what CTranslate2's Gemma-3 loader leaves out (rope scaling, logit soft-capping,
    bidirectional attention)."""
    text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
    if type(text).__name__ != "Gemma3TextConfig":
        return f"{type(text).__name__}: only Gemma-3 text models are converted for CTranslate2"
    for name in ("rope_scaling", "final_logit_softcapping", "attn_logit_softcapping",
                 "use_bidirectional_attention"):
        if getattr(text, name, None):
            return f"{name} is set, which CTranslate2's Gemma-3 conversion does not carry over"
    return None


def supports(model_config) -> bool:
    """Whether the architecture converts (`unsupported_architecture` says why not)."""
    return unsupported_architecture(model_config) is None


def cache_key(weights_digest: str, quantization: str, head: Sequence[int] | None = None) -> str:
    """The folder name of a conversion: the weights, the quantization, the output layer's ids
    (`convert`'s `head`), the CTranslate2 version and this module's conversion."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown CTranslate2 quantization {quantization!r}; choose one of {', '.join(QUANTIZATIONS)}")
    rows = "" if head is None else f"-h{_ids_digest(head)[:12]}"
    return f"{weights_digest[:16]}-{quantization}{rows}-ct2-{ctranslate2.__version__}-c{CONVERSION_VERSION}"


def _ids_digest(ids: Sequence[int]) -> str:
    """A digest of the set of `ids` (order and repeats do not count)."""
    return hashlib.blake2b(np.unique(np.asarray(ids, dtype=np.int64)).tobytes(), digest_size=16).hexdigest()


def head_order(head: Sequence[int], size: int) -> np.ndarray:
    """The token ids of a model converted with an output layer of `head`, in their converted
    order: `head` (ascending, unique), then every other id ascending. Position = converted id."""
    first = np.unique(np.asarray(head, dtype=np.int64))
    if first.size == 0 or first[0] < 0 or first[-1] >= size:
        raise ValueError(f"an output layer needs ids in [0, {size}); got {len(first)} ids")
    rest = np.ones(size, dtype=bool)
    rest[first] = False
    return np.concatenate([first, np.flatnonzero(rest)])


def convert(model_dir: Path, out_dir: Path, quantization: str, head: Sequence[int] | None = None) -> Path:
    """`out_dir`, holding `model_dir` (a Hugging Face folder: config, safetensors weights,
    tokenizer) converted to CTranslate2 with `quantization`; an earlier conversion there with the
    same quantization and head is reused as it is. Written beside `out_dir` and renamed into place.

    `head`: the only ids the converted model's output layer computes logits for (see
    `head_order`; the converted model's ids are positions in that order, and its vocabulary.json
    lists the tokens in it)."""
    heads = None if head is None else _ids_digest(head)
    record = _read_record(out_dir)
    if (record is not None and record.get("quantization") == quantization and record.get("head") == heads
            and (out_dir / "model.bin").is_file()):
        return out_dir
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown CTranslate2 quantization {quantization!r}; choose one of {', '.join(QUANTIZATIONS)}")
    reason = unsupported_architecture(transformers.AutoConfig.from_pretrained(model_dir))
    if reason is not None:
        raise ValueError(f"{model_dir} does not convert to CTranslate2: {reason}")
    converter = _Gemma3Converter(str(model_dir), head=head)
    with atomic_dir(out_dir, marker=RECORD) as tmp:
        # the converter replaces its output folder; give it one inside the locked temporary
        written = Path(converter.convert(str(tmp / "model"), quantization=quantization))
        for path in written.iterdir():
            path.rename(tmp / path.name)
        written.rmdir()
        write_json(tmp / RECORD, {"source": str(model_dir), "quantization": quantization,
                                  "ctranslate2": ctranslate2.__version__, "conversion": CONVERSION_VERSION,
                                  "sliding_window": converter.sliding_window, "head": heads,
                                  "head_size": converter.head_size})
    return out_dir


def _read_record(model_path: Path) -> dict | None:
    try:
        return json.loads((Path(model_path) / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class _Gemma3Converter(TransformersConverter):
    """CTranslate2's converter plus what its Gemma-3 loader (4.8) leaves at defaults: attention
    scaled by `query_pre_attn_scalar`^-0.5 (the loader keeps head_dim^-0.5, which differs when
    the two differ, as in the tiny test models) and the model's RMSNorm epsilon. Records the
    sliding window the converted model uses. `head`: see `convert`."""

    sliding_window: int | None = None

    def __init__(self, model_name_or_path: str, head: Sequence[int] | None = None):
        super().__init__(model_name_or_path)
        self.head = head
        self.head_size = None

    def _load(self):
        spec = super()._load()
        config = transformers.AutoConfig.from_pretrained(self._model_name_or_path)
        text = config.get_text_config(decoder=True)
        for layer in spec.decoder.layer:
            layer.self_attention.queries_scale = np.float32(text.query_pre_attn_scalar ** -0.5)
        spec.config.layer_norm_epsilon = text.rms_norm_eps
        window = getattr(spec.decoder, "sliding_window", None)
        self.sliding_window = None if window is None else int(window)
        if self.head is not None:
            self._restrict_output(spec)
        return spec

    def _restrict_output(self, spec) -> None:
        """Reorder the vocabulary by `head_order` and keep the projection's `head` rows only."""
        decoder = spec.decoder
        order = head_order(self.head, len(spec._vocabulary))  # noqa: SLF001 (the loader's vocabulary)
        self.head_size = size = int(np.unique(np.asarray(self.head)).size)
        if decoder.embeddings.weight.shape[0] != order.size:
            raise ValueError("the embeddings and the vocabulary differ in size")
        index = torch.from_numpy(order)
        decoder.projection.weight = torch.as_tensor(decoder.projection.weight)[index[:size]].clone()
        if isinstance(getattr(decoder.projection, "bias", None), (torch.Tensor, np.ndarray)):
            decoder.projection.bias = torch.as_tensor(decoder.projection.bias)[index[:size]].clone()
        decoder.embeddings.weight = torch.as_tensor(decoder.embeddings.weight)[index].clone()
        spec.register_vocabulary([spec._vocabulary[i] for i in order.tolist()])  # noqa: SLF001


def unsupported(settings: DecodeSettings) -> str | None:
    """Why `Ct2Engine` may answer differently from the torch `Engine` under `settings`, in one
    line, or None where it gives the same answers."""
    if settings.num_beams > 1:
        return ("beam search: CTranslate2 ends and ranks beams differently from transformers' generate "
                "(the newline and loop stops cut its best beam afterwards instead of ending beams, its "
                "repetition controls act on logits over the answer instead of on log-probabilities "
                "over prompt and answer, and it stops after num_beams finished hypotheses)")
    return None


class _StopCallback:
    """`generate_batch` callback (greedy only): ends a row at its answer's end (`StopTables.step`).
    `ids`: the tokenizer id of each converted id (a model converted with a head), or None."""

    def __init__(self, tables: StopTables, stop_repeats: int, ids: np.ndarray | None = None):
        self.rows: dict[int, tuple[list[int], torch.Tensor]] = {}
        self.tables, self.stop_repeats, self.ids = tables, stop_repeats, ids

    def __call__(self, step) -> bool:
        ids, seen = self.rows.setdefault(step.batch_id, ([], torch.zeros(1, dtype=torch.bool)))
        token = step.token_id if self.ids is None else int(self.ids[step.token_id])
        ids.append(token)
        return bool(self.tables.step(torch.tensor([token]), seen, [ids], self.stop_repeats)[0])


@dataclass(frozen=True)
class _Head:
    """A generator whose output layer holds the allowed ids only (`convert`'s `head`)."""

    generator: ctranslate2.Generator
    ids: np.ndarray  # converted id -> tokenizer id (`head_order`)
    inside: np.ndarray  # tokenizer id -> whether it is in the output layer


class Ct2Engine(Engine):
    """`Engine` with CTranslate2 as its decoder; `complete` and `translate` as `Engine`'s.

    `model_path`: a `convert` output. `stop_ids`: `engine.stop_token_ids(model, tokenizer)` of the
    model it was converted from. `fallback`: a torch `Engine` of the same model that decodes the
    prompts CTranslate2 cannot decode exactly (longer than the sliding window); without one they
    are decoded here and counted in `inexact`. `heads(ids)`: the folder of this model converted
    with an output layer of `ids` only (`convert`'s `head`), used for restricted vocabularies.
    """

    def __init__(self, model_path: Path | str, tokenizer, settings: DecodeSettings = DecodeSettings(), *,
                 stop_ids: Sequence[int], tables: StopTables | None = None, device: str = "cpu",
                 compute_type: str = "default", vocabulary: Sequence[int] | None = None,
                 progress: bool = True, console: Console | None = None, fallback: Engine | None = None,
                 intra_threads: int = 0, heads: Callable[[Sequence[int]], Path] | None = None):
        self._open = functools.partial(ctranslate2.Generator, device=device, compute_type=compute_type,
                                       intra_threads=intra_threads)
        self.generator = self._open(str(model_path))
        self.tokens = _model_tokens(Path(model_path), tokenizer)
        self.model = None
        self.tokenizer = tokenizer
        self.settings = settings
        self.progress = progress
        self.console = console or Console(stderr=True)
        self.stop_ids = sorted(stop_ids)
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.stop_ids[0]
        self.size = len(self.tokens)
        self.tables = StopTables(tokenizer, self.size) if tables is None else tables
        self.vocabulary = None if vocabulary is None else sorted({*vocabulary, *self.stop_ids})
        self._allowed = {}
        self._suppressed: dict[str, list[list[str]]] = {}
        self.heads = heads
        self._heads: dict[str, _Head] = {}
        self.window = (_read_record(Path(model_path)) or {}).get("sliding_window")
        if fallback is not None and fallback.settings != settings:
            raise ValueError("the fallback engine must decode with the same settings")
        self.fallback = fallback
        self.inexact = 0  # prompts decoded here that were longer than the sliding window

    def _length_sorted_batches(self, encoded: list[list[int]]) -> Iterator[list[int]]:
        """Longest first; with repetition controls on, each batch holds prompts of one length."""
        if not self.settings.processors():
            yield from super()._length_sorted_batches(encoded)
            return
        size = max(1, self.settings.batch_size)
        for _, same in itertools.groupby(longest_first(encoded), key=lambda i: len(encoded[i])):
            same = list(same)
            for start in range(0, len(same), size):
                yield same[start:start + size]

    def _generate(self, rows: list[list[int]], allowed: torch.Tensor | None = None) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in rows]
        if not rows or self.settings.max_new_tokens <= 0:
            return out
        long = [n for n, row in enumerate(rows) if self.window is not None and len(row) - 1 > self.window]
        if long and self.fallback is not None:
            for n, ids in zip(long, self.fallback._generate([rows[n] for n in long], allowed), strict=True):
                out[n] = ids
            here = sorted(set(range(len(rows))) - set(long))
        else:
            if long and not self.inexact:
                self.console.print(f"note: prompts longer than the model's {self.window}-token attention window "
                                   "are decoded by CTranslate2 inexactly; answers to them may differ from the "
                                   "torch engine's (give Ct2Engine a fallback engine for them)")
            self.inexact += len(long)
            here = list(range(len(rows)))
        if here:
            for n, ids in zip(here, self._decode([rows[n] for n in here], allowed), strict=True):
                out[n] = ids
        return out

    def _decode(self, rows: list[list[int]], allowed: torch.Tensor | None) -> list[list[int]]:
        """Rows of one length go to `generate_batch` together when repetition controls are on
        (`_length_sorted_batches` makes such batches; other callers get them split here), and
        when a row has one token: with nothing of every row to prefill at once, CTranslate2
        would return the longer rows' prompt tokens and count them in `max_length`."""
        one_length = len({len(row) for row in rows}) == 1
        if one_length or (not self.settings.processors() and min(map(len, rows)) > 1):
            return self._decode_batch(rows, allowed)
        out: list[list[int]] = [[] for _ in rows]
        for _, same in itertools.groupby(sorted(range(len(rows)), key=lambda n: len(rows[n])),
                                         key=lambda n: len(rows[n])):
            same = list(same)
            for n, ids in zip(same, self._decode_batch([rows[n] for n in same], allowed), strict=True):
                out[n] = ids
        return out

    def _decode_batch(self, rows: list[list[int]], allowed: torch.Tensor | None) -> list[list[int]]:
        settings = self.settings
        greedy = settings.num_beams == 1
        head = self._head(allowed)
        if head is not None and all(head.inside[row[-1]] for row in rows):
            generator, ids, suppress = head.generator, head.ids, None
        else:
            generator, ids, suppress = self.generator, None, self._suppress(allowed)
        # the shared prefix runs once (`static_prompt`), leaving every row 2 tokens (see `_decode`)
        shared = max(0, min(shared_prefix_length(rows), min(map(len, rows)) - 2)) if len(rows) > 1 else 0
        results = generator.generate_batch(
            [[self.tokens[i] for i in row[shared:]] for row in rows],
            static_prompt=[self.tokens[i] for i in rows[0][:shared]] or None, cache_static_prompt=False,
            include_prompt_in_result=False, max_length=settings.max_new_tokens,
            end_token=[self.tokens[i] for i in self.stop_ids],
            beam_size=settings.num_beams, repetition_penalty=settings.repetition_penalty,
            no_repeat_ngram_size=settings.no_repeat_ngram, suppress_sequences=suppress,
            callback=_StopCallback(self.tables, settings.stop_repeats, ids) if greedy else None)
        answers = [r.sequences_ids[0] if ids is None else ids[r.sequences_ids[0]].tolist() for r in results]
        return [self._until_stop(self.tables.cut(answer, settings.stop_repeats)) for answer in answers]

    def _head(self, allowed: torch.Tensor | None) -> _Head | None:
        """The generator whose output layer holds `allowed` only (converted on first use), or None."""
        if allowed is None or self.heads is None:
            return None
        key = _ids_digest(allowed.numpy())
        if key not in self._heads:
            folder = self.heads(allowed.tolist())
            ids = head_order(allowed.tolist(), self.size)
            tokens = json.loads((Path(folder) / "vocabulary.json").read_text(encoding="utf-8"))
            if tokens != [self.tokens[i] for i in ids.tolist()]:
                raise ValueError(f"the vocabulary of {folder} is not this model's in head order: convert it again")
            inside = np.zeros(self.size, dtype=bool)
            inside[allowed.numpy()] = True
            self._heads[key] = _Head(self._open(str(folder)), ids, inside)
        return self._heads[key]

    def _suppress(self, allowed: torch.Tensor | None) -> list[list[str]] | None:
        """`allowed` as what `generate_batch` takes: every other token, as a one-token sequence."""
        if allowed is None:
            return None
        key = _ids_digest(allowed.numpy())
        if key not in self._suppressed:
            keep = torch.zeros(self.size, dtype=torch.bool)
            keep[allowed] = True
            self._suppressed[key] = [[self.tokens[i]] for i in (~keep).nonzero().squeeze(1).tolist()]
        return self._suppressed[key] or None


def _model_tokens(model_path: Path, tokenizer) -> list[str]:
    """The converted model's vocabulary, checked to give every tokenizer id its own token, so
    ids pass between the two unchanged."""
    path = model_path / "vocabulary.json"
    if not path.is_file():
        raise FileNotFoundError(f"{model_path} holds no CTranslate2 vocabulary.json: convert the model first")
    tokens = json.loads(path.read_text(encoding="utf-8"))
    own = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    if tokens[:len(own)] != own or len(set(tokens)) != len(tokens):
        raise ValueError(f"the vocabulary of {model_path} does not match the tokenizer id for id: "
                         "convert the model together with this tokenizer")
    return tokens
