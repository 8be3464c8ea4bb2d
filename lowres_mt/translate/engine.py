"""The generation engine: batched translation with a causal LM.

Prompts are tokenized once, sorted by length (longest first) so each batch carries little
padding, and decoded with the KV cache; results come back in input order.
A sequence stops at the end of its answer: an end-of-turn / eos token, or the first newline
after some text (the translation is the first non-empty line, as `prompts.parse_response` reads
it). Greedy by default (`greedy.greedy_decode`, finished rows leave the batch); `num_beams > 1`
uses `model.generate` beam search.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from rich.console import Console
from transformers import (
    GenerationConfig,
    LogitsProcessorList,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    StoppingCriteria,
    StoppingCriteriaList,
)

from lowres_mt.config import AnchorConfig, EvalConfig, RecipeConfig
from lowres_mt.data.prompts import END_OF_TURN_TOKENS, parse_response, prompt_messages
from lowres_mt.errors import UserError
from lowres_mt.progress import bar as progress_bar
from lowres_mt.records import Pair
from lowres_mt.text import alphabet_letters, drop_repeated_tail, fits_alphabet, learn_alphabets
from lowres_mt.translate.greedy import Sampling, StopTables, greedy_decode
from lowres_mt.translate.mbr import mbr_select

# bump when generation or parsing changes in a way that changes outputs (part of every cache key)
ENGINE_VERSION = 4


@dataclass(frozen=True)
class DecodeSettings:
    batch_size: int = 32  # prompts decoded together (larger batches amortize the output layer)
    max_new_tokens: int = 128
    num_beams: int = 1  # 1 = greedy
    stop_repeats: int = EvalConfig.stop_repeats  # stop a sentence whose newest 4 tokens occur this often; 0 = off
    # a trimmed run's answers use only the ids its head was trained over (no stray tokens, but
    # words needing pieces the training data never had cannot be written)
    train_vocabulary: bool = False
    # repetition controls over the answer's own tokens in greedy decoding (transformers' logits
    # processors), so a source's names and numbers may still be copied; beam search passes them to
    # `generate`, which also counts the prompt's tokens
    no_repeat_ngram: int = EvalConfig.no_repeat_ngram  # 0 = off
    repetition_penalty: float = EvalConfig.repetition_penalty  # 1 = off
    # answers into a language use only a-z and its letters (`text.alphabet_letters`): a mapping
    # language → letters, True for text.EXTRA_LETTERS, False for no limit
    alphabet: Mapping[str, str] | bool = True
    # which decoder (`translate.backends`): torch (this engine), ctranslate2, or auto (CTranslate2
    # where it is measured faster and decodes alike: on CUDA; torch on CPU)
    backend: str = "torch"
    # the compute type (`backends.choose`): CTranslate2's (float32, int8_float32, int8 on CPU), or
    # bfloat16 for torch; auto: bfloat16 torch under the auto backend where the device measures it
    # faster, else float32
    quantization: str = "auto"
    device: str = "cpu"
    # MBR decoding (`translate.mbr`): this many epsilon-sampled answers a sentence, the one with the
    # highest mean chrF against the others kept (0 = greedy, or beam search with num_beams)
    mbr_samples: int = 0
    epsilon: float = 0.02  # sampling keeps the tokens of probability >= epsilon
    seed: int = 0  # of the sampling

    @classmethod
    def from_config(cls, ev: EvalConfig, **overrides) -> DecodeSettings:
        """The decoding a recipe's `eval:` section asks for (`overrides` win). `eval.alphabet: auto`
        needs the recipe's training pairs: use `for_recipe`, or give `alphabet=`."""
        alphabet = overrides.pop("alphabet", ev.alphabet)
        if alphabet == "auto":
            raise ValueError("eval.alphabet: auto is learned from the recipe: use DecodeSettings.for_recipe")
        settings = cls(batch_size=ev.batch_size, max_new_tokens=ev.max_new_tokens, num_beams=ev.num_beams,
                       stop_repeats=ev.stop_repeats, train_vocabulary=ev.train_vocabulary,
                       no_repeat_ngram=ev.no_repeat_ngram, repetition_penalty=ev.repetition_penalty,
                       alphabet=alphabet, backend=ev.backend, quantization=ev.quantization,
                       mbr_samples=ev.mbr_samples, epsilon=ev.mbr_epsilon)
        return dataclasses.replace(settings, **overrides)

    @classmethod
    def for_recipe(cls, cfg: RecipeConfig, **overrides) -> DecodeSettings:
        """`from_config` of the recipe's `eval:`, its alphabet learned where it says `auto`."""
        return cls.from_config(cfg.eval, **{"alphabet": recipe_alphabet(cfg), **overrides})

    def processors(self) -> LogitsProcessorList:
        out = LogitsProcessorList()
        if self.repetition_penalty != 1.0:
            out.append(RepetitionPenaltyLogitsProcessor(self.repetition_penalty))
        if self.no_repeat_ngram > 0:
            out.append(NoRepeatNGramLogitsProcessor(self.no_repeat_ngram))
        return out


def recipe_alphabet(cfg: RecipeConfig) -> Mapping[str, str] | bool:
    """`DecodeSettings.alphabet` for a recipe: `eval.alphabet` true or false as it is; auto → the
    letters each language's side of the `task.train` pairs uses (`text.learn_alphabets`)."""
    if cfg.eval.alphabet != "auto":
        return cfg.eval.alphabet
    from lowres_mt import corpora

    if not cfg.task.train:
        raise UserError("eval.alphabet: auto learns each language's letters from task.train, which is "
                        "empty; name training pairs, or set eval.alphabet to true or false")
    try:
        pairs = [r for ref in cfg.task.train for r in corpora.load_set(ref) if isinstance(r, Pair)]
    except UserError as err:
        raise UserError(f"eval.alphabet: auto reads task.train: {err}") from None
    return learn_alphabets(pairs, cfg.languages)


def build_prompt(tokenizer, messages, prefix: str = "") -> str:
    """The text a model continues: chat template with the generation prompt, then the answer prefix."""
    rows = [{"role": m.role, "content": m.content} for m in messages]
    return tokenizer.apply_chat_template(rows, tokenize=False, add_generation_prompt=True) + prefix


def merge_lora(model, *, copy_first: bool = False):
    """Fold LoRA weights into the base layers for faster inference; other models pass through.

    Merging is exact for float weights; a quantized base keeps its adapter unmerged.
    `copy_first` leaves the caller's model untouched (e.g. a model still being trained).
    """
    if not hasattr(model, "merge_and_unload") or getattr(model, "is_quantized", False):
        return model
    base = getattr(model, "base_model", model)
    if getattr(getattr(base, "model", base), "is_quantized", False):
        return model
    target = copy.deepcopy(model) if copy_first else model
    return target.merge_and_unload().eval()


def stop_token_ids(model, tokenizer) -> list[int]:
    """eos plus the chat format's end-of-turn token(s) and whatever the model's config lists."""
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, list) else [configured])
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in END_OF_TURN_TOKENS if t in vocab)
    return sorted(i for i in ids if i is not None)


class AnswerEnd(StoppingCriteria):
    """`generate` stopping criterion for beam search: the answer-end rule (`StopTables.ended`) on
    the whole generated part each step, so it stays correct when beams are reordered."""

    def __init__(self, tables: StopTables, stop_repeats: int = 0):
        self.tables = tables
        self.stop_repeats = stop_repeats
        self.prompt_width = 0

    def __call__(self, input_ids: torch.LongTensor, scores=None, **kwargs) -> torch.BoolTensor:
        ended = self.tables.ended(input_ids[:, self.prompt_width:].cpu(), self.stop_repeats)
        return ended.to(input_ids.device)


def first_line(text: str) -> str:
    """The first non-empty line of a generated answer, stripped."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def answer_line(text: str, stop_repeats: int) -> str:
    """The answer in generated text: its first line, a loop through one word's spellings cut back
    to the first copy ("your clock clock clockClock" → "your clock"; `stop_repeats`, 0 = off)."""
    return drop_repeated_tail(first_line(text), stop_repeats)


def longest_first(rows: Sequence[Sequence[int]]) -> list[int]:
    """Indices of `rows`, longest first (ties keep input order)."""
    return sorted(range(len(rows)), key=lambda i: (-len(rows[i]), i))


def length_sorted_batches(rows: Sequence[Sequence[int]], size: int) -> Iterator[list[int]]:
    """Indices of `rows` in batches of at most `size`, longest prompts first, so a batch pads little."""
    order, size = longest_first(rows), max(1, size)
    for start in range(0, len(order), size):
        yield order[start:start + size]


class Engine:
    """Batched generation for one model + tokenizer; `translate` builds prompts and parses answers.

    `fallback`: where this engine decodes otherwise than float32 torch (CTranslate2, a bfloat16
    copy), the float32 torch engine of the same model (`backends.open_engine` sets it; scores such
    as `synth`'s source gain use its model)."""

    fallback: Engine | None = None

    def __init__(self, model, tokenizer, settings: DecodeSettings = DecodeSettings(), *,
                 progress: bool = True, console: Console | None = None,
                 vocabulary: Sequence[int] | None = None):
        """`vocabulary`: the only token ids answers may use (a run's training vocabulary)."""
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.settings = settings
        self.progress = progress
        self.console = console or Console(stderr=True)
        self.stop_ids = stop_token_ids(model, tokenizer)
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.stop_ids[0]
        size = model.get_output_embeddings().weight.shape[0]
        self.tables = StopTables(tokenizer, size)
        self.size = size
        self.vocabulary = None if vocabulary is None else sorted({*vocabulary, *self.stop_ids})
        self._allowed: dict[str | None, torch.Tensor | None] = {}
        self.config = GenerationConfig(
            max_new_tokens=settings.max_new_tokens, do_sample=False, num_beams=settings.num_beams,
            eos_token_id=self.stop_ids, pad_token_id=self.pad_id, bos_token_id=tokenizer.bos_token_id,
            use_cache=True, no_repeat_ngram_size=settings.no_repeat_ngram,
            repetition_penalty=settings.repetition_penalty,
        )

    def allowed(self, tgt_lang: str | None = None) -> torch.Tensor | None:
        """The ids an answer into `tgt_lang` may use (ascending), or None for all: the run's
        training vocabulary when given, and only tokens written in the language's alphabet when
        `settings.alphabet` names letters for the language (a–z only where they are "")."""
        extra = alphabet_letters(tgt_lang, self.settings.alphabet)
        if extra not in self._allowed:
            keep = torch.ones(self.size, dtype=torch.bool)
            if self.vocabulary is not None:
                keep[:] = False
                keep[self.vocabulary] = True
            if extra is not None:
                keep &= torch.tensor([fits_alphabet(t, extra) for t in self.tables.texts])
                keep[self.stop_ids] = True
            self._allowed[extra] = None if bool(keep.all()) else keep.nonzero().squeeze(1)
        return self._allowed[extra]

    def complete(self, prompts: Sequence[str], description: str = "generating",
                 tgt_lang: str | None = None) -> list[str]:
        """The first answer line for every prompt, in input order (answers into `tgt_lang`)."""
        encoded = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        copies = max(1, self.settings.mbr_samples)
        rows = [ids for ids in encoded for _ in range(copies)]  # MBR: each prompt's samples side by side
        answers: list[str] = [""] * len(rows)
        allowed = self.allowed(tgt_lang)
        sampling = Sampling(self.settings.epsilon, self.settings.seed) if self.settings.mbr_samples else None
        with self._progress(description, len(prompts)) as advance:
            for batch in self._length_sorted_batches(rows):
                chosen = [rows[i] for i in batch]
                outs = self._generate(chosen, allowed) if sampling is None else self._generate(chosen, allowed, sampling)
                for index, ids in zip(batch, outs, strict=True):
                    answers[index] = self._answer(ids)
                advance(len(batch) / copies)
        if sampling is None:
            return answers
        groups = [answers[i * copies:(i + 1) * copies] for i in range(len(prompts))]
        return [group[mbr_select(group)] for group in groups]

    def translate(self, sources: Sequence[str], src_lang: str, tgt_lang: str, *, style: str = "plain",
                  anchor: AnchorConfig | None = None, names: Mapping[str, str] | None = None,
                  shots: Sequence[Sequence[Pair]] | None = None, description: str | None = None,
                  contexts: Sequence[str] | None = None) -> list[str]:
        """Translate `sources`; blank sources give blank translations without a model call.
        `shots`: example pairs per source; `contexts`: an evidence block per source (+context runs)."""
        anchor = anchor or AnchorConfig()
        todo = [i for i, s in enumerate(sources) if s.strip()]
        prompts = []
        for i in todo:
            messages, prefix = prompt_messages(sources[i], src_lang, tgt_lang, style, anchor, names,
                                               shots=shots[i] if shots else (),
                                               context=contexts[i] if contexts else "")
            prompts.append(build_prompt(self.tokenizer, messages, prefix))
        answers = self.complete(prompts, description or f"{src_lang}→{tgt_lang}", tgt_lang)
        out = [""] * len(sources)
        for i, answer in zip(todo, answers, strict=True):
            out[i] = parse_response(answer, style, anchor, src_lang, tgt_lang, names)
        return out

    def _answer(self, ids: list[int]) -> str:
        return answer_line(self.tokenizer.decode(ids, skip_special_tokens=True), self.settings.stop_repeats)

    def _length_sorted_batches(self, encoded: list[list[int]]) -> Iterator[list[int]]:
        """How this engine batches prompts (a backend may split them further)."""
        return length_sorted_batches(encoded, self.settings.batch_size)

    @torch.inference_mode()
    def _generate(self, rows: list[list[int]], allowed: torch.Tensor | None = None,
                  sampling: Sampling | None = None) -> list[list[int]]:
        if self.settings.num_beams == 1 or sampling is not None:
            out = greedy_decode(self.model, rows, pad_id=self.pad_id, stop_ids=self.stop_ids,
                                max_new_tokens=self.settings.max_new_tokens, tables=self.tables,
                                stop_repeats=self.settings.stop_repeats, allowed=allowed,
                                processors=self.settings.processors(), sampling=sampling)
            return [self._until_stop(seq) for seq in out]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row):] = 1
        answer_end = AnswerEnd(self.tables, self.settings.stop_repeats)
        answer_end.prompt_width = width
        config = self.config
        if allowed is not None:
            keep = torch.zeros(self.size, dtype=torch.bool)
            keep[allowed] = True
            config = copy.deepcopy(self.config)
            config.suppress_tokens = (~keep).nonzero().squeeze(1).tolist()
        out = self.model.generate(input_ids=ids, attention_mask=mask, generation_config=config,
                                  stopping_criteria=StoppingCriteriaList([answer_end]))
        return [self._until_stop(seq[width:].tolist()) for seq in out]

    def _until_stop(self, ids: list[int]) -> list[int]:
        stops = set(self.stop_ids) | {self.pad_id}
        for n, token in enumerate(ids):
            if token in stops:
                return ids[:n]
        return ids

    @contextmanager
    def _progress(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """Sentences done and sentences/s (a bar in a terminal, log lines elsewhere)."""
        with progress_bar("rate", console=self.console, enabled=self.progress and total > 0,
                          transient=True) as bar:
            task = bar.add_task(description, total=total, rate="")
            started = time.perf_counter()

            def advance(n: int) -> None:
                done = bar.tasks[0].completed + n
                rate = done / max(time.perf_counter() - started, 1e-9)
                bar.update(task, completed=done, rate=f"{rate:.2f} sent/s")

            yield advance
