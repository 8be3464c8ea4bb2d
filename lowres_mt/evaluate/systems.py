"""The systems an evaluation compares, one class per kind (`KINDS`), and how each one turns test
sources into hypotheses.

- `tell`, `sft`, `tell+book`: LoRA adapters from runs/<recipe>-<method> (any other run named
  on the command line works the same way);
- `zero-shot`: the recipe's base model with the plain translation prompt;
- `icl`: the base model with k examples retrieved (BM25) from the recipe's training pairs;
- `copy`: the source sentence itself as the translation, the floor a system must clear
  (names, numbers and loanwords already give chrF well above zero);
- `apertium`: the rule-based apertium-isl-eng pair (is→en only) when `apertium` is installed;
- `openai:<name>`: an OpenAI-compatible server (`eval.openai.<name>`) given our prompts;
- `external`: outputs submitted to a shared task, shipped with the test set as a
  `<set>-systems` companion (e.g. wmt21:en-is-systems), one row per submitted system.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from lowres_mt.config import METHODS, RecipeConfig, recipe_arg
from lowres_mt.data.prompts import style_for
from lowres_mt.errors import UserError
from lowres_mt.evaluate.outside import (
    APERTIUM_MODES,
    apertium_translate,
    apertium_version,
    external_outputs,
)
from lowres_mt.evaluate.retrieval import RETRIEVAL_VERSION
from lowres_mt.run import TRAIN_VOCABULARY, Run
from lowres_mt.train.rundir import default_run_name
from lowres_mt.translate.engine import ENGINE_VERSION, DecodeSettings
from lowres_mt.translate.signature import decoding_identity
from lowres_mt.typed import to_dict

if TYPE_CHECKING:
    from lowres_mt.evaluate.generate import HypothesisMaker
    from lowres_mt.records import Pair

BUILTIN = ("zero-shot", "icl", "icl-book", "copy", "apertium", "external", "openai:<name>")  # not runs


@dataclass(frozen=True)
class System:
    """One row of the results table: what produces its hypotheses and what its outputs depend on.

    Each kind is one subclass: `signature` (what, beyond the sentences, its outputs depend on: the
    one source of its cache key and of its results' `decode` record), `translate` (sources →
    hypotheses, using the shared `HypothesisMaker`'s models and retrievers) and `expand` (the
    systems it stands for on one test set and direction).
    `KINDS` maps kind names to classes; nothing else compares kind names."""

    name: str
    style: str = "plain"
    run: Path | None = None
    method: str = ""
    task_tokens: int | None = None
    model: str = ""  # base model name or path
    fingerprint: str = ""  # changes whenever the system's outputs could change

    kind: ClassVar[str] = ""
    order: ClassVar[int] = 0  # report and run order: floors and baselines, in-context, runs, tools, submissions
    generates: ClassVar[bool] = True  # its outputs are produced here (their speed is reported)
    optional: ClassVar[bool] = False  # a failure on one test set skips it there with a note
    submitted: ClassVar[bool] = False  # someone else's outputs (reference rows, ranked apart)

    def expand(self, testset: str, direction: str) -> list[System]:
        return [self]

    def signature(self, cfg: RecipeConfig, settings: DecodeSettings, tgt_lang: str) -> dict:
        """Everything its answers into `tgt_lang` depend on beyond the source sentences, built from
        its own fields (sacrebleu's `get_signature`); systems the engine decodes add the decoding
        identity under "decode"."""
        return {"system": self.name, "kind": self.kind, "fingerprint": self.fingerprint, "style": self.style,
                "model": self.model}

    def retrieves(self, cfg: RecipeConfig) -> bool:
        """Whether its prompts carry examples retrieved from the (guarded) training pool."""
        return False

    def translate(self, maker: HypothesisMaker, pairs: Sequence[Pair], direction: str, testset: str) -> list[str]:
        raise NotImplementedError


class CopySystem(System):
    """The source sentence as its own translation: the floor every system must clear."""

    kind, generates = "copy", False

    def translate(self, maker, pairs, direction, testset):
        return [p.src for p in pairs]


class _ModelSystem(System):
    """A system decoded by the engine: its outputs depend on the decoding settings."""

    def signature(self, cfg, settings, tgt_lang):
        decode = decoding_identity(settings, tgt_lang, model_config=self.model_config)
        # the setting changes only a trimmed run's answers: other caches stay valid when it changes
        decode["train_vocabulary"] = settings.train_vocabulary and self.trims_vocabulary()
        return {**super().signature(cfg, settings, tgt_lang), "engine": ENGINE_VERSION, "decode": decode,
                "prompt": {"anchor": to_dict(cfg.anchor), "names": cfg.language_names, "format": cfg.prompt_format}}

    def trims_vocabulary(self) -> bool:
        """Whether `train_vocabulary` limits its answers (a run trained with a trimmed head)."""
        return False

    def model_config(self):
        """The base model's transformers config (read only where the backend depends on it)."""
        from transformers import AutoConfig

        from lowres_mt.models import resolve_base

        return AutoConfig.from_pretrained(resolve_base(self.model))


class BaseSystem(_ModelSystem):
    """`zero-shot`: the recipe's base model with the plain translation prompt."""

    kind = "base"

    def translate(self, maker, pairs, direction, testset):
        return maker.base_translate(self, pairs, direction, testset)


class IclSystem(BaseSystem):
    """`icl`: the base model with `eval.icl_k` examples retrieved (BM25) from the training pairs."""

    kind, order = "icl", 1

    def signature(self, cfg, settings, tgt_lang):
        return {**super().signature(cfg, settings, tgt_lang), "icl": _pool_parts(cfg, cfg.eval.icl_k)}

    def retrieves(self, cfg: RecipeConfig) -> bool:
        return True

    def translate(self, maker, pairs, direction, testset):
        return maker.base_translate(self, pairs, direction, testset, k=maker.cfg.eval.icl_k)


class IclBookSystem(_ModelSystem):
    """`icl-book`: MTOB's in-context track, wordlist + sentences + grammar within a budget."""

    kind, order = "icl-book", 1

    def signature(self, cfg, settings, tgt_lang):
        return {**super().signature(cfg, settings, tgt_lang), "book": to_dict(cfg.book),
                "guard": list(cfg.eval.testsets + cfg.task.guard)}

    def translate(self, maker, pairs, direction, testset):
        return maker.book_translate(self, pairs, direction, testset)


class AdapterSystem(_ModelSystem):
    """A trained run (its own config supplies the prompt)."""

    kind, order = "adapter", 2

    def signature(self, cfg, settings, tgt_lang):
        parts = super().signature(cfg, settings, tgt_lang)
        del parts["prompt"]  # the run's config.yaml is part of the fingerprint
        return parts

    def trims_vocabulary(self):
        return (Path(self.run) / "adapter" / TRAIN_VOCABULARY).is_file()

    def translate(self, maker, pairs, direction, testset):
        return maker.adapter_translate(self, pairs, direction, testset)


class ApertiumSystem(System):
    """The rule-based apertium-isl-eng pair (is→en only), when `apertium` is installed."""

    kind, order, optional = "apertium", 3, True

    def expand(self, testset, direction):
        return [self] if direction in APERTIUM_MODES else []

    def translate(self, maker, pairs, direction, testset):
        return apertium_translate([p.src for p in pairs], direction)


class ExternalSystem(System):
    """`external`: stands for every submission shipped with a test set (`<set>-systems`)."""

    kind, order, generates, optional, submitted = "external", 4, False, True, True

    def expand(self, testset, direction):
        corpus = testset.split(":", 1)[0]
        return [SubmittedSystem(f"{corpus}:{name}", fingerprint="submitted")
                for name in sorted(external_outputs(testset, direction))]


class SubmittedSystem(ExternalSystem):
    """One submitted system's outputs, looked up by segment id."""

    def expand(self, testset, direction):
        return [self]

    def translate(self, maker, pairs, direction, testset):
        return maker.external_rows(self, pairs, direction, testset)


class OpenAISystem(System):
    """`openai:<name>`: an OpenAI-compatible server (`eval.openai.<name>`) given our prompts."""

    kind, order = "openai", 1

    @property
    def endpoint_name(self) -> str:
        return self.name.split(":", 1)[1]

    def retrieves(self, cfg):
        return cfg.eval.openai[self.endpoint_name].shots > 0

    def signature(self, cfg, settings, tgt_lang):
        endpoint = cfg.eval.openai[self.endpoint_name]
        parts = {**super().signature(cfg, settings, tgt_lang),
                 "prompt": {"anchor": to_dict(cfg.anchor), "names": cfg.language_names},
                 "decode": {"max_tokens": settings.max_new_tokens}}
        if endpoint.shots:
            parts["icl"] = _pool_parts(cfg, endpoint.shots)
        return parts

    def translate(self, maker, pairs, direction, testset):
        return maker.remote_translate(self, pairs, direction, testset)


KINDS: dict[str, type[System]] = {cls.kind: cls for cls in (
    CopySystem, BaseSystem, IclSystem, IclBookSystem, AdapterSystem, ApertiumSystem, ExternalSystem, OpenAISystem)}


def _pool_parts(cfg: RecipeConfig, k: int) -> dict:
    return {"k": k, "pool": list(cfg.task.train), "guard": list(cfg.eval.testsets + cfg.task.guard),
            "chars": [cfg.task.min_chars, cfg.task.max_chars], "retrieval": RETRIEVAL_VERSION}


def model_fingerprint(name_or_path: str) -> str:
    """A registry name or hub id stands for itself; a local folder adds its files' sizes and times."""
    path = Path(name_or_path)
    if not path.is_dir():
        return name_or_path
    files = sorted(p for p in path.rglob("*") if p.is_file())
    stats = [(str(p.relative_to(path)), p.stat().st_size, int(p.stat().st_mtime)) for p in files]
    return name_or_path + ":" + hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:16]


def adapter_system(name: str, run: Path) -> AdapterSystem:
    """A trained run as a system (`Run.open` checks the folder); the adapter's bytes are part of its identity."""
    opened = Run.open(run)
    return AdapterSystem(name, style_for(opened.method), run, opened.method, opened.task_tokens,
                         opened.base_model, f"{model_fingerprint(opened.base_model)}|adapter:{opened.digest}")


def builtin_system(cfg: RecipeConfig, name: str) -> System | None:
    """The system a built-in name stands for (None for a run's name); a missing tool is a UserError."""
    base = model_fingerprint(cfg.base_model)
    book = cfg.book
    if name == "zero-shot":
        return BaseSystem("zero-shot", model=cfg.base_model, fingerprint=base)
    if name == "icl":
        return IclSystem("icl", model=cfg.base_model,
                         fingerprint=f"{base}|k={cfg.eval.icl_k}|pool={','.join(cfg.task.train)}")
    if name == "icl-book":
        return IclBookSystem("icl-book", model=cfg.base_model,
                             fingerprint=f"{base}|book:{book.context}|{book.context_tokens}|{book.entries_per_word}|"
                                         f"{','.join(book.wordlists + book.grammar)}|"
                                         f"{','.join(book.sentences or cfg.task.train)}")
    if name == "copy":
        return CopySystem("copy", fingerprint="source-copy")
    if name == "apertium":
        tool = shutil.which("apertium")
        if tool is None:
            raise UserError("apertium: skipped — `apertium` is not installed (Debian/Ubuntu: apt install "
                            "apertium-isl-eng)")
        return ApertiumSystem("apertium", fingerprint=apertium_version(tool))
    if name == "external":
        return ExternalSystem("external", fingerprint="submitted-outputs")
    if name.startswith("openai:"):
        return openai_system(cfg, name)
    return None


def resolve_systems(cfg: RecipeConfig, names: Sequence[str], runs: Path, *,
                    all_runs: bool = False) -> tuple[list[System], list[str]]:
    """The systems to evaluate, and a note for every requested one that cannot run here."""
    systems, notes = [], []
    for name in dict.fromkeys(names):
        try:
            builtin = builtin_system(cfg, name)
        except UserError as err:
            if name != "apertium":
                raise
            notes.append(str(err))
            continue
        if builtin is not None:
            systems.append(builtin)
            continue
        method = name in METHODS
        run = runs / (default_run_name(cfg.name, name) if method else name)
        if not method and not run.is_dir():
            raise UserError(f"unknown system '{name}': use {', '.join((*BUILTIN, *METHODS))} or the "
                            f"name of a run folder under {runs}")
        if not Run(run, {}).adapter_config.is_file():  # not trained (yet)
            how = f" (train it: lowres-mt train {recipe_arg(cfg)} --method {name})" if method else ""
            notes.append(f"{name}: skipped — no trained run with an adapter at {run}{how}")
            continue
        systems.append(adapter_system(name, run))  # a damaged run is an error, not a note
    if all_runs:
        systems += _budget_runs(cfg, runs, {s.name for s in systems})
    return systems, notes


def openai_system(cfg: RecipeConfig, name: str) -> OpenAISystem:
    """`openai:<endpoint>`: the recipe's `eval.openai.<endpoint>` server with our prompts."""
    endpoint = cfg.eval.openai.get(name.split(":", 1)[1])
    if endpoint is None:
        known = ", ".join(f"openai:{n}" for n in cfg.eval.openai) or "none in this recipe"
        raise UserError(f"unknown system '{name}' (known: {known}); describe it in the recipe or on the "
                        f"command line: eval.{name.replace(':', '.')}.base_url=http://127.0.0.1:8000/v1")
    return OpenAISystem(name, model=endpoint.model,
                        fingerprint=f"{endpoint.base_url}|{endpoint.model}|{endpoint.mode}|shots={endpoint.shots}|"
                                    f"prefill={endpoint.prefill}")


def _budget_runs(cfg: RecipeConfig, runs: Path, taken: set[str]) -> list[System]:
    """Every other finished run of this recipe (e.g. other task budgets), named by its folder."""
    found = []
    for run_json in sorted(runs.glob("*/run.json")):
        run = run_json.parent
        try:
            info = json.loads(run_json.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            continue
        if info.get("recipe") != cfg.name or run.name in taken:
            continue
        if run.name == default_run_name(cfg.name, str(info.get("method"))) and info.get("method") in taken:
            continue
        try:
            found.append(adapter_system(run.name, run))
        except UserError:  # not finished, or damaged: not part of the curve
            continue
    return found
