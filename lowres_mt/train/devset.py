"""Dev evaluation during training: dev loss on dev.jsonl and chrF of greedy translations of a small
sample, both on the model being trained (trimmed vocabulary included)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from sacrebleu.metrics import CHRF

from lowres_mt.config import RecipeConfig
from lowres_mt.data.prompts import parse_response, prompt_messages, style_for
from lowres_mt.train.batching import BatchStream
from lowres_mt.train.tokenize import TokenizedExample
from lowres_mt.translate.engine import (
    DecodeSettings,
    answer_line,
    build_prompt,
    length_sorted_batches,
    stop_token_ids,
)
from lowres_mt.translate.greedy import StopTables, greedy_decode


@dataclass(frozen=True)
class DevSample:
    src: str
    tgt: str
    src_lang: str
    tgt_lang: str
    context: str = ""  # the evidence block its prompt carries (+context methods)


def dev_sample(rows: Sequence[dict], per_direction: int) -> list[DevSample]:
    """The first `per_direction` translation rows of every direction in dev.jsonl."""
    taken: dict[str, int] = defaultdict(int)
    out = []
    for row in rows:
        direction = row.get("direction")
        if not direction or row.get("src") is None or row.get("tgt") is None:
            continue
        if taken[direction] >= per_direction:
            continue
        taken[direction] += 1
        src_lang, tgt_lang = direction.split("-", 1)
        out.append(DevSample(row["src"], row["tgt"], src_lang, tgt_lang, row.get("context", "")))
    return out


@torch.no_grad()
def dev_loss(module, examples: Sequence[TokenizedExample], *, batch_tokens: int, row_tokens: int,
             pad_id: int, rank: int, processes: int, device) -> tuple[float, int]:
    """(summed loss, labelled positions) over this process's share of the dev examples."""
    if not examples:
        return 0.0, 0
    stream = BatchStream(examples, seed=0, batch_tokens=batch_tokens, row_tokens=row_tokens,
                         pad_id=pad_id, pack=False)
    total, count = 0.0, 0
    for index in range(rank, len(stream.plan(0)), processes):
        batch = stream.batch(index).to(device)
        loss, n = module(batch.input_ids, batch.position_ids, batch.labels)
        total += float(loss)
        count += int(n)
    return total, count


class DevTranslator:
    """Greedy translation with the training model; ids pass through the trimmed vocabulary."""

    def __init__(self, model, tokenizer, cfg: RecipeConfig, *, batch_size: int = 16):
        self.model, self.tokenizer, self.cfg = model, tokenizer, cfg
        self.batch_size = batch_size
        self.style = style_for(cfg.train.method)
        self.old_to_new: list[int] | None = None  # original id -> model id (-1: trimmed away)
        self.new_to_old: list[int] | None = None
        self.stops = self.stop_ids()  # read before trimming renumbers the model's config ids
        self._tables: StopTables | None = None  # answer-end facts per model id, made on first use

    def use_vocab(self, old_to_new: list[int], new_to_old: list[int]) -> None:
        self.old_to_new, self.new_to_old = old_to_new, new_to_old
        self._tables = None

    def _to_model(self, ids: Sequence[int]) -> list[int]:
        if self.old_to_new is None:
            return list(ids)
        unk = self.tokenizer.unk_token_id
        fallback = self.old_to_new[unk] if unk is not None and self.old_to_new[unk] >= 0 else 0
        return [self.old_to_new[i] if self.old_to_new[i] >= 0 else fallback for i in ids]

    def prompt_ids(self, sample: DevSample) -> list[int]:
        """The inference prompt (chat template + answer prefix), in the tokenizer's ids."""
        messages, prefix = prompt_messages(sample.src, sample.src_lang, sample.tgt_lang, self.style,
                                           self.cfg.anchor, self.cfg.language_names, context=sample.context)
        return self.tokenizer(build_prompt(self.tokenizer, messages, prefix), add_special_tokens=False)["input_ids"]

    def stop_ids(self) -> list[int]:
        """Token ids that end an answer: evaluation's (`engine.stop_token_ids`), so dev chrF and
        eval chrF stop alike whatever the chat format's end-of-turn marker."""
        return stop_token_ids(self.model, self.tokenizer)

    def pad_id(self) -> int:
        """Padding id in the model's (possibly trimmed) vocabulary."""
        pad = self.tokenizer.pad_token_id
        return self._to_model([pad if pad is not None else self.tokenizer.eos_token_id])[0]

    @torch.no_grad()
    def translate(self, samples: Sequence[DevSample], max_new_tokens: int) -> list[str]:
        """Greedy translations with evaluation's decoder and settings (`eval:` of the recipe)."""
        # no alphabet limit here (greedy_decode below takes none), so `eval.alphabet: auto` is not learned
        settings = DecodeSettings.from_config(self.cfg.eval, max_new_tokens=max_new_tokens, alphabet=False)
        if self._tables is None:
            tables = StopTables(self.tokenizer)
            self._tables = tables.subset(self.new_to_old) if self.new_to_old is not None else tables
        was_training = self.model.training
        self.model.eval()
        prompts = [self._to_model(self.prompt_ids(s)) for s in samples]
        outputs = [""] * len(samples)
        for batch in length_sorted_batches(prompts, self.batch_size):  # as evaluation batches them
            rows = greedy_decode(self.model, [prompts[i] for i in batch],
                                 pad_id=self.pad_id(), max_new_tokens=max_new_tokens,
                                 stop_ids=self._to_model(self.stops), tables=self._tables,
                                 stop_repeats=settings.stop_repeats, processors=settings.processors())
            for i, row in zip(batch, rows, strict=True):
                outputs[i] = self._decode(row, samples[i], settings.stop_repeats)
        self.model.train(was_training)
        return outputs

    def _decode(self, row: list[int], sample: DevSample, stop_repeats: int) -> str:
        """The answer as evaluation reads it (`Engine.translate`)."""
        if self.new_to_old is not None:
            row = [self.new_to_old[i] for i in row]
        text = answer_line(self.tokenizer.decode(row, skip_special_tokens=True), stop_repeats)
        return parse_response(text, self.style, self.cfg.anchor, sample.src_lang, sample.tgt_lang,
                              self.cfg.language_names)


def dev_chrf(translator: DevTranslator, samples: Sequence[DevSample], max_new_tokens: int) -> dict:
    """chrF of the greedy translations, overall and per direction, and the translations."""
    hyps = translator.translate(samples, max_new_tokens)
    by_direction: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for sample, hyp in zip(samples, hyps, strict=True):
        pair = by_direction[f"{sample.src_lang}-{sample.tgt_lang}"]
        pair[0].append(hyp)
        pair[1].append(sample.tgt)
    chrf = CHRF()
    return {
        "dev_chrf": round(chrf.corpus_score(hyps, [[s.tgt for s in samples]]).score, 2),
        "dev_chrf_by_direction": {d: round(chrf.corpus_score(h, [r]).score, 2) for d, (h, r) in by_direction.items()},
        "dev_example": {"src": samples[0].src, "hyp": hyps[0], "ref": samples[0].tgt} if samples else None,
        "translations": [{"direction": f"{s.src_lang}-{s.tgt_lang}", "src": s.src, "hyp": h, "ref": s.tgt}
                         for s, h in zip(samples, hyps, strict=True)],
    }
