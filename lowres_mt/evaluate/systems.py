"""The systems an evaluation compares, and how each one turns test sources into hypotheses.

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
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lowres_mt.config import METHODS, RecipeConfig
from lowres_mt.data.prompts import style_for
from lowres_mt.errors import UserError
from lowres_mt.run import Run
from lowres_mt.train.rundir import default_run_name

APERTIUM_MODES = {"is-en": "isl-eng"}
BUILTIN = ("zero-shot", "icl", "icl-book", "copy", "apertium", "external", "openai:<name>")  # not runs


def runs_dir() -> Path:
    return Path(os.environ.get("LOWRES_MT_RUNS", "runs"))


@dataclass(frozen=True)
class System:
    """One row of the results table: what produces its hypotheses and what identifies it."""

    name: str
    kind: str  # "adapter" | "base" | "icl" | "icl-book" | "apertium" | "external" | "openai"
    style: str = "plain"
    run: Path | None = None
    method: str = ""
    task_tokens: int | None = None
    model: str = ""  # base model name or path
    fingerprint: str = ""  # changes whenever the system's outputs could change


def model_fingerprint(name_or_path: str) -> str:
    """A registry name or hub id stands for itself; a local folder adds its files' sizes and times."""
    path = Path(name_or_path)
    if not path.is_dir():
        return name_or_path
    files = sorted(p for p in path.rglob("*") if p.is_file())
    stats = [(str(p.relative_to(path)), p.stat().st_size, int(p.stat().st_mtime)) for p in files]
    return name_or_path + ":" + hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:16]


def adapter_system(name: str, run: Path) -> System:
    """A trained run as a system (`Run.open` checks the folder); the adapter's bytes are part of its identity."""
    opened = Run.open(run)
    return System(name, "adapter", style_for(opened.method), run, opened.method, opened.task_tokens,
                  opened.base_model, f"{model_fingerprint(opened.base_model)}|adapter:{opened.digest}")


def resolve_systems(cfg: RecipeConfig, names: Sequence[str], runs: Path, *,
                    all_runs: bool = False) -> tuple[list[System], list[str]]:
    """The systems to evaluate, and a note for every requested one that cannot run here."""
    systems, notes = [], []
    base = System("zero-shot", "base", "plain", model=cfg.base_model,
                  fingerprint=model_fingerprint(cfg.base_model))
    for name in dict.fromkeys(names):
        if name == "zero-shot":
            systems.append(base)
        elif name == "icl":
            systems.append(System("icl", "icl", "plain", model=cfg.base_model,
                                  fingerprint=f"{base.fingerprint}|k={cfg.eval.icl_k}|"
                                              f"pool={','.join(cfg.task.train)}"))
        elif name == "icl-book":
            book = cfg.book
            systems.append(System("icl-book", "icl-book", "plain", model=cfg.base_model,
                                  fingerprint=f"{base.fingerprint}|book:{book.context}|{book.context_tokens}|"
                                              f"{book.entries_per_word}|{','.join(book.wordlists + book.grammar)}|"
                                              f"{','.join(book.sentences or cfg.task.train)}"))
        elif name == "copy":
            systems.append(System("copy", "copy", fingerprint="source-copy"))
        elif name == "apertium":
            tool = shutil.which("apertium")
            if tool is None:
                notes.append("apertium: skipped — `apertium` is not installed "
                             "(Debian/Ubuntu: apt install apertium-isl-eng)")
            else:
                systems.append(System("apertium", "apertium", fingerprint=_apertium_version(tool)))
        elif name == "external":
            systems.append(System("external", "external", fingerprint="submitted-outputs"))
        elif name.startswith("openai:"):
            systems.append(openai_system(cfg, name))
        else:
            method = name in METHODS
            run = runs / (default_run_name(cfg.name, name) if method else name)
            if not method and not run.is_dir():
                raise UserError(f"unknown system '{name}': use {', '.join((*BUILTIN, *METHODS))} or the "
                                f"name of a run folder under {runs}")
            if not (run / "adapter" / "adapter_config.json").is_file():  # not trained (yet)
                how = f" (train it: lowres-mt train {cfg.name} --method {name})" if method else ""
                notes.append(f"{name}: skipped — no trained run with an adapter at {run}{how}")
                continue
            systems.append(adapter_system(name, run))  # a damaged run is an error, not a note
    if all_runs:
        systems += _budget_runs(cfg, runs, {s.name for s in systems})
    return systems, notes


def openai_system(cfg: RecipeConfig, name: str) -> System:
    """`openai:<endpoint>`: the recipe's `eval.openai.<endpoint>` server with our prompts."""
    endpoint = cfg.eval.openai.get(name.split(":", 1)[1])
    if endpoint is None:
        known = ", ".join(f"openai:{n}" for n in cfg.eval.openai) or "none in this recipe"
        raise UserError(f"unknown system '{name}' (known: {known}); describe it in the recipe or on the "
                        f"command line: eval.{name.replace(':', '.')}.base_url=http://127.0.0.1:8000/v1")
    return System(name, "openai", "plain", model=endpoint.model,
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


def _apertium_version(tool: str) -> str:
    package = Path("/usr/share/apertium/apertium-isl-eng")
    return f"apertium:{tool}:{'isl-eng' if package.exists() else 'mode-from-path'}"


def apertium_translate(sources: Sequence[str], direction: str) -> list[str]:
    """Run apertium over the sources, one line each (unknown-word marks removed)."""
    mode = APERTIUM_MODES.get(direction)
    if mode is None:
        raise UserError(f"apertium translates only {', '.join(APERTIUM_MODES)}, not {direction}")
    text = "\n".join(s.replace("\n", " ") for s in sources) + "\n"
    done = subprocess.run(["apertium", "-u", mode], input=text, capture_output=True, text=True,
                          check=False)
    lines = done.stdout.rstrip("\n").split("\n") if done.stdout.strip() else []
    if done.returncode != 0 or len(lines) != len(sources):
        detail = done.stderr.strip().splitlines()[-1:] or [f"{len(lines)} lines for {len(sources)}"]
        raise UserError(f"apertium {mode} failed: {detail[0]}; check `echo test | apertium {mode}`")
    return [line.strip() for line in lines]


def external_outputs(testset: str, direction: str) -> dict[str, dict[str, str]]:
    """{submitted system: {segment id: output}} from the test set's `-systems` companion set."""
    from lowres_mt import corpora

    ref = f"{testset}-systems"
    try:
        info = corpora.set_info(ref)
    except UserError:
        return {}
    if direction not in info.directions:
        return {}
    out: dict[str, dict[str, str]] = {}
    for row in corpora.load_set(ref):
        if f"{row.src_lang}-{row.tgt_lang}" == direction:
            out.setdefault(row.system, {})[row.id] = row.hyp
    return out
