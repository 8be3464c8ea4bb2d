"""Translating user text: segments (blank lines kept, long ones split into sentences and
rejoined; a sentence too long to translate is refused), streamed a batch at a time, and a trained
run or bare base model loaded with its prompt style and directions."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from lowres_mt.config import AnchorConfig
from lowres_mt.data.prompts import style_for
from lowres_mt.errors import UserError
from lowres_mt.languages import language_name
from lowres_mt.progress import bar as progress_bar
from lowres_mt.run import Run
from lowres_mt.translate.backends import base_digest, open_engine
from lowres_mt.translate.engine import DecodeSettings, Engine, merge_lora, recipe_alphabet

SPLIT_CHARS = 200  # segments longer than this are translated sentence by sentence
MAX_SENTENCE_CHARS = 2000  # a longer sentence is refused: its prompt would not fit in memory
_SENTENCE_GAP = re.compile(r"(?<=[.!?…])[\"'»”’)\]]*\s+")


def split_sentences(text: str) -> list[str]:
    """Split at sentence-final punctuation followed by space and an upper-case letter or digit."""
    pieces, start = [], 0
    for gap in _SENTENCE_GAP.finditer(text):
        following = text[gap.end():].lstrip("\"'«“„([")
        if following[:1].isupper() or following[:1].isdigit():
            pieces.append(text[start:gap.end()].strip())
            start = gap.end()
    pieces.append(text[start:].strip())
    return [p for p in pieces if p]


def segment_pieces(segments: Sequence[str], max_chars: int = SPLIT_CHARS) -> list[list[str]]:
    """What each segment is translated as: nothing (blank), itself, or its sentences when it is
    longer than `max_chars`. A sentence over MAX_SENTENCE_CHARS is a UserError naming its line."""
    pieces: list[list[str]] = []
    for number, segment in enumerate(segments, 1):
        text = segment.strip()
        group = [] if not text else split_sentences(text) if len(text) > max_chars else [text]
        longest = max(map(len, group), default=0)
        if longest > MAX_SENTENCE_CHARS:
            raise UserError(f"input line {number} holds a sentence of {longest:,} characters, more than the "
                            f"{MAX_SENTENCE_CHARS:,} translated at once; split it into shorter sentences")
        pieces.append(group)
    return pieces


def translate_segments(translate: Callable[[list[str]], list[str]], segments: Sequence[str],
                       max_chars: int = SPLIT_CHARS) -> list[str]:
    """One output line per input segment: blank stays blank, long segments are split and rejoined."""
    pieces = segment_pieces(segments, max_chars)
    flat = translate([p for group in pieces for p in group]) if any(pieces) else []
    out, at = [], 0
    for group in pieces:
        out.append(" ".join(flat[at:at + len(group)]))
        at += len(group)
    return out


@dataclass
class Translator:
    """A model ready to translate, with the prompt style and the directions it was trained for."""

    style: str
    anchor: AnchorConfig
    names: dict[str, str]
    languages: tuple[str, ...] | None  # None: any language with a name (a base model)
    directions: tuple[str, ...] | None  # None: any pair of `languages` (a base model)
    label: str
    engine: Engine | None = None
    evidence: object | None = None  # a +context run's EvidenceBuilder (book.context)

    def check(self, src: str, tgt: str) -> None:
        for code in (src, tgt):
            if self.languages is None:
                language_name(code, self.names)  # a code with no name is refused here
            elif code not in self.languages:
                raise UserError(f"unknown language '{code}' for {self.label}; use one of: "
                                f"{', '.join(self.languages)}")
        if src == tgt:
            raise UserError(f"--from and --to are both '{src}'; give two different languages")
        if self.directions is not None and f"{src}-{tgt}" not in self.directions:
            raise UserError(f"{self.label} was trained for {', '.join(self.directions)}, not "
                            f"{src}-{tgt}; pick one of those directions")

    def translate(self, segments: Sequence[str], src: str, tgt: str) -> list[str]:
        self.check(src, tgt)
        if self.engine is None:
            raise RuntimeError("no model loaded; use open_translator()")
        engine, evidence = self.engine, self.evidence

        def translate(texts: list[str]) -> list[str]:
            contexts = [evidence.block(t, src, tgt) for t in texts] if evidence is not None else None
            return engine.translate(texts, src, tgt, style=self.style, anchor=self.anchor, names=self.names,
                                    contexts=contexts)

        return translate_segments(translate, segments)

    def stream(self, segments: Sequence[str], src: str, tgt: str, *, chunk: int = 32,
               progress: bool = True) -> Iterator[str]:
        """Translations in input order, `chunk` segments at a time, each chunk's lines as soon as
        they are done; progress as a bar in a terminal, else a log line every 30 s."""
        self.check(src, tgt)
        segment_pieces(segments)  # a sentence too long is refused before any line is written
        with progress_bar("rate", enabled=progress and bool(segments), transient=True) as bar:
            task = bar.add_task(f"translating {src}→{tgt}", total=len(segments), rate="")
            started = time.perf_counter()
            for start in range(0, len(segments), chunk):
                part = segments[start:start + chunk]
                yield from self.translate(part, src, tgt)
                done = start + len(part)
                rate = done / max(time.perf_counter() - started, 1e-9)
                bar.update(task, completed=done, rate=f"{rate:.2f} lines/s")


def open_translator(run: Path | None = None, base_model: str | None = None,
                    settings: DecodeSettings = DecodeSettings(), *, direction: tuple[str, str] | None = None,
                    progress: bool = True) -> Translator:
    """Load a trained run (base + adapter, LoRA merged) or a bare base model for zero-shot use.

    `direction` (src, tgt) is checked before any model is loaded, so mistakes fail fast.
    """
    from lowres_mt import models

    if run is not None:
        opened = Run.open(run)
        cfg, method = opened.cfg, opened.method
        translator = Translator(style_for(method), cfg.anchor, dict(cfg.language_names), tuple(cfg.languages),
                                opened.directions, label=f"run '{opened.name}'")
    elif base_model is not None:
        translator = Translator("plain", AnchorConfig(), {}, None, None,
                                label=f"base model '{base_model}'")
    else:
        raise UserError("give --run RUN_DIR (a trained run) or --base-model NAME (zero-shot)")
    if direction is not None:
        translator.check(*direction)
    vocabulary = None
    if run is not None:
        settings = dataclasses.replace(settings, alphabet=recipe_alphabet(cfg))  # the run's eval.alphabet
        model, tokenizer, _ = models.load_run(opened)
        model = merge_lora(model)
        vocabulary = opened.vocabulary if settings.train_vocabulary else None
        weights = lambda: opened.digest  # noqa: E731
    else:
        model, tokenizer = models.load_base(base_model)
        weights = lambda: base_digest(models.resolve_base(base_model))  # noqa: E731
    translator.engine = open_engine(model, tokenizer, settings, weights=weights, vocabulary=vocabulary,
                                    progress=progress)
    if run is not None and method.endswith("+context"):
        from lowres_mt.book.context import evidence_for_run
        from lowres_mt.data.budget import token_counter
        from lowres_mt.data.guard import guard_from_sets, protected_sets

        translator.evidence = evidence_for_run(run, cfg, guard_from_sets(protected_sets(cfg)), token_counter(tokenizer))
    return translator
