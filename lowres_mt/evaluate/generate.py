"""Turn a system and a test sample into hypotheses: loads models lazily (one at a time),
retrieves ICL examples, calls apertium, or looks up submitted outputs."""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console

from lowres_mt.config import RecipeConfig
from lowres_mt.corpora.local import shown
from lowres_mt.data.budget import token_counter
from lowres_mt.data.prompts import parse_response, prompt_messages
from lowres_mt.errors import UserError
from lowres_mt.evaluate.outside import external_outputs
from lowres_mt.evaluate.retrieval import ShotRetriever, guard_pool, orient
from lowres_mt.evaluate.systems import System
from lowres_mt.progress import bar as progress_bar
from lowres_mt.records import Pair
from lowres_mt.translate import DecodeSettings, Engine, merge_lora
from lowres_mt.translate.backends import base_digest, open_engine
from lowres_mt.translate.engine import build_prompt


def _load_base(name: str, prompt_format: str = "auto"):
    from lowres_mt import models

    return models.load_base(name, prompt_format=prompt_format)


def _load_run(run: Path):
    from lowres_mt import models

    return models.load_run(run)


def _load_pairs(refs: Sequence[str]) -> list[Pair]:
    from lowres_mt import corpora

    pairs = []
    for ref in refs:
        rows = corpora.load_set(ref)
        pairs.extend(r for r in rows if isinstance(r, Pair))
    return pairs


class HypothesisMaker:
    """Produces hypotheses for (system, sample, direction); keeps at most one model in memory.

    `load_base(name, prompt_format) -> (model, tokenizer)` and `load_run(dir) -> (model, tokenizer, cfg)` default
    to `lowres_mt.models`; `load_pairs(refs)` to the corpora loader (ICL pools, guard sets).
    """

    def __init__(self, cfg: RecipeConfig, settings: DecodeSettings, *,
                 load_base: Callable | None = None, load_run: Callable | None = None,
                 load_pairs: Callable[[Sequence[str]], list[Pair]] | None = None,
                 progress: bool = True, console: Console | None = None):
        self.cfg = cfg
        self.settings = settings
        self.load_base = load_base or _load_base
        self.load_run = load_run or _load_run
        self.load_pairs = load_pairs or _load_pairs
        self.progress = progress
        self.console = console or Console(stderr=True)
        self._engine_key: tuple | None = None
        self._engine: Engine | None = None
        self._run_cfg: RecipeConfig | None = None
        self._retrievers: dict[str, ShotRetriever] = {}
        self._external: dict[tuple[str, str], dict] = {}
        self._book = None  # BookContext, loaded on first use by `icl-book`
        self.guard_dropped: dict[str, int] = {}
        self._evidence_builders: dict[Path, object] = {}
        self.shot_targets: dict[tuple[str, str, str], list[list[str]]] = {}  # (system, testset, direction)

    def make(self, system: System, pairs: Sequence[Pair], direction: str, testset: str) -> list[str]:
        return system.translate(self, pairs, direction, testset)

    # -- what the systems call

    def base_translate(self, system: System, pairs: Sequence[Pair], direction: str, testset: str,
                       k: int = 0) -> list[str]:
        """The base model with the plain prompt, and `k` retrieved examples when k > 0."""
        sources = [p.src for p in pairs]
        src, tgt = direction.split("-")
        engine = self._engine_for(("base", system.model))
        shots = self._shots(system, testset, direction, sources, k) if k else None
        return engine.translate(sources, src, tgt, style="plain", anchor=self.cfg.anchor,
                                names=self.cfg.language_names, shots=shots, description=_label(system, testset, direction))

    def adapter_translate(self, system: System, pairs: Sequence[Pair], direction: str, testset: str) -> list[str]:
        """A trained run with its own prompt; a +context run's prompts carry their evidence."""
        sources = [p.src for p in pairs]
        src, tgt = direction.split("-")
        engine = self._engine_for(("run", str(system.run)))
        run_cfg = self._run_cfg or self.cfg
        contexts = None
        if system.method.endswith("+context"):
            evidence = self._evidence(Path(system.run), run_cfg, engine)
            contexts = [evidence.block(s, src, tgt) if s.strip() else "" for s in sources]
        return engine.translate(sources, src, tgt, style=system.style, anchor=run_cfg.anchor,
                                names=run_cfg.language_names, description=_label(system, testset, direction),
                                contexts=contexts)

    def close(self) -> None:
        self._engine = self._engine_key = self._run_cfg = None
        gc.collect()

    def _engine_for(self, key: tuple) -> Engine:
        if key == self._engine_key and self._engine is not None:
            return self._engine
        self.close()
        kind, where = key
        vocabulary = None
        if kind == "base":
            from lowres_mt.models import resolve_base

            model, tokenizer = self.load_base(where, self.cfg.prompt_format)
            weights = lambda: base_digest(resolve_base(where))  # noqa: E731
        else:
            from lowres_mt.run import Run

            model, tokenizer, self._run_cfg = self.load_run(Path(where))
            model = merge_lora(model)
            vocabulary = Run.open(where).vocabulary if self.settings.train_vocabulary else None
            weights = lambda: Run.open(where).digest  # noqa: E731
        self._engine = open_engine(model, tokenizer, self.settings, weights=weights, vocabulary=vocabulary,
                                   progress=self.progress, console=self.console)
        self._engine_key = key
        return self._engine

    def _evidence(self, run: Path, run_cfg: RecipeConfig, engine: Engine):
        """A +context run's evidence builder, guarded against this evaluation's and the run's sets."""
        if run not in self._evidence_builders:
            from lowres_mt.book.context import evidence_for_run
            from lowres_mt.data.guard import guard_from_sets, protected_sets

            guard = guard_from_sets(dict.fromkeys(protected_sets(self.cfg) + protected_sets(run_cfg)))
            self._evidence_builders[run] = evidence_for_run(run, run_cfg, guard, token_counter(engine.tokenizer))
        return self._evidence_builders[run]

    def _shots(self, system: System, testset: str, direction: str, sources: Sequence[str], k: int) -> list[list[Pair]]:
        """Retrieved examples per source; their targets are kept for the shot-copy rate."""
        shots = self._retriever(direction, k).shots(sources)
        self.shot_targets[(system.name, testset, direction)] = [[p.tgt for p in row] for row in shots]
        return shots

    def _retriever(self, direction: str, k: int) -> ShotRetriever:
        if (direction, k) not in self._retrievers:
            if not self.cfg.task.train:
                raise UserError(f"recipe '{self.cfg.name}' lists no task.train sets, so `icl` has no "
                                "examples to retrieve; add training sets or drop icl from --systems")
            pool = [p for p in orient(self.load_pairs(self.cfg.task.train), direction)
                    if self.cfg.task.min_chars <= max(len(p.src), len(p.tgt)) <= self.cfg.task.max_chars]
            protected = self.load_pairs(tuple(dict.fromkeys(self.cfg.eval.testsets + self.cfg.task.guard)))
            kept, dropped = guard_pool(pool, protected)
            self.guard_dropped[direction] = dropped
            self._retrievers[(direction, k)] = ShotRetriever(kept, k)
        return self._retrievers[(direction, k)]

    def remote_translate(self, system: System, pairs: Sequence[Pair], direction: str, testset: str) -> list[str]:
        """Our prompt for each source, answered by the endpoint (chat turns, or rendered as text)."""
        sources = [p.src for p in pairs]
        src, tgt = direction.split("-")
        label = _label(system, testset, direction)
        from lowres_mt.api.client import OpenAIClient
        from lowres_mt.models import render_text_prompt

        endpoint = self.cfg.eval.openai[system.name.split(":", 1)[1]]
        client = OpenAIClient(endpoint, max_tokens=self.settings.max_new_tokens)
        shots = self._shots(system, testset, direction, sources, endpoint.shots) if endpoint.shots else None
        anchor, names = self.cfg.anchor, self.cfg.language_names
        todo = [i for i, s in enumerate(sources) if s.strip()]
        requests = []
        for i in todo:
            messages, prefix = prompt_messages(sources[i], src, tgt, "plain", anchor, names,
                                               shots=shots[i] if shots else ())
            turns = [{"role": m.role, "content": m.content} for m in messages]
            if endpoint.mode == "completions":
                requests.append(render_text_prompt(turns) + prefix)
            else:  # the answer prefix (e.g. "Icelandic:") as a final assistant turn to continue
                requests.append(turns + ([{"role": "assistant", "content": prefix}] if prefix and endpoint.prefill
                                         else []))
        call = client.chat if endpoint.mode == "chat" else client.complete
        with progress_bar("rate", console=self.console, enabled=self.progress and bool(todo),
                          transient=True) as bar:
            task = bar.add_task(label, total=len(todo), rate="")
            answers = client.map(call, requests, progress=lambda n: bar.advance(task, n))
        out = [""] * len(sources)
        for i, answer in zip(todo, answers, strict=True):
            out[i] = parse_response(answer, "plain", anchor, src, tgt, names)
        return out

    def book_translate(self, system: System, pairs: Sequence[Pair], direction: str, testset: str) -> list[str]:
        """MTOB's in-context track: wordlist entries, example sentences and grammar passages
        retrieved for each source (setting `book.context`) within `book.context_tokens`."""
        sources = [p.src for p in pairs]
        src, tgt = direction.split("-")
        label = _label(system, testset, direction)
        engine = self._engine_for(("base", system.model))
        if self._book is None:
            from lowres_mt.book.context import BookContext
            from lowres_mt.data.guard import guard_from_sets, protected_sets

            self._book = BookContext.from_config(self.cfg, guard_from_sets(protected_sets(self.cfg)))
        count = token_counter(engine.tokenizer)
        book, anchor, names = self.cfg.book, self.cfg.anchor, self.cfg.language_names
        prompts = []
        for source in sources:
            messages, prefix = self._book.prompt(source, src, tgt, setting=book.context, budget=book.context_tokens,
                                                 count_tokens=count, style="plain", anchor=anchor, names=names,
                                                 per_word=book.entries_per_word)
            prompts.append(build_prompt(engine.tokenizer, messages, prefix))
        answers = engine.complete(prompts, label, tgt)
        return [parse_response(a, "plain", anchor, src, tgt, names) for a in answers]

    def external_rows(self, system: System, pairs: Sequence[Pair], direction: str, testset: str) -> list[str]:
        key = (testset, direction)
        if key not in self._external:
            self._external[key] = external_outputs(testset, direction)
        submitted = system.name.split(":", 1)[1]
        rows = self._external[key].get(submitted, {})
        missing = [p.id for p in pairs if p.id not in rows]
        if missing:
            raise UserError(f"{system.name}: no output for segment(s) {', '.join(missing[:5])} of {testset}")
        return [rows[p.id] for p in pairs]


def _label(system: System, testset: str, direction: str) -> str:
    src, tgt = direction.split("-")
    return f"{system.name} {shown(testset)} {src}→{tgt}"

