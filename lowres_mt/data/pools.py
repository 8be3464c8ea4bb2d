"""The builder's pools: every corpus it reads, counted per corpus (`CorpusStats`, reported in the
manifest), and the task pairs filtered (length, duplicates, contamination, quality, language)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lowres_mt.config import RecipeConfig, TaskConfig
from lowres_mt.data import filters
from lowres_mt.data.guard import ContaminationGuard
from lowres_mt.errors import UserError
from lowres_mt.io import read_jsonl
from lowres_mt.records import Instruction, Pair


@dataclass
class CorpusStats:
    ref: str
    read: int = 0
    too_long_or_short: int = 0
    duplicates: int = 0
    contaminated: int = 0
    bad_ratio: int = 0  # quality filters (lowres_mt.data.filters); a pair counts under the first
    fragments: int = 0  # filter that drops it
    near_copies: int = 0
    wrong_language: int = 0
    low_gain: int = 0  # synthetic pairs below `synthetic.keep`'s share by source_gain
    unescaped: int = 0  # pairs kept with their HTML entities decoded
    used: int = 0
    files: list[dict] = field(default_factory=list)


def load_counted(ref: str, kind: type, key: str, what: str, stats: dict[str, CorpusStats]) -> tuple[list, CorpusStats]:
    """Load a set, check its record type, and start its stats entry (files with checksums, count read)."""
    from lowres_mt.corpora import load_set, set_info

    info = set_info(ref)
    entry = stats[ref] = CorpusStats(ref, files=[{"path": f.path, "sha256": f.sha256} for f in info.files])
    records = load_set(ref)
    entry.read = len(records)
    if any(not isinstance(r, kind) for r in records):
        raise UserError(f"{key} set '{ref}' holds no {what} (its role is {info.role})")
    if not records:
        raise UserError(f"{key} set '{ref}' holds no {what}; check the file and its format")
    return records, entry


def check_pair_languages(ref: str, key: str, languages: tuple[str, ...]) -> None:
    """A pair set must hold the recipe's two languages: otherwise it would give 0 examples."""
    from lowres_mt.corpora import set_info

    held = set_info(ref).languages
    if set(held) != set(languages):
        raise UserError(f"{key} set '{ref}' holds {'-'.join(held)} pairs, but the recipe translates "
                        f"{'-'.join(languages)}; fix the recipe's `languages:` or name another set")


def load_task_pool(cfg: RecipeConfig, guard: ContaminationGuard, stats: dict[str, CorpusStats],
                   dropped: list[tuple[str, Pair]] | None = None) -> list[Pair]:
    """All usable training pairs: length-filtered, de-duplicated, contamination-free, and through
    the quality filters (length ratio, fragments, near-copies, language). `dropped`, when given,
    receives (counter, pair) for every pair left out."""
    if not cfg.task.train:
        raise UserError("the recipe names no training corpora (task.train is empty)")
    pool: list[Pair] = []
    seen: set[tuple[str, str]] = set()
    for ref in cfg.task.train:
        pool.extend(filtered_pairs(ref, "task.train", cfg, guard, stats, seen, dropped))
    if not pool:
        raise UserError("no training pairs left after length, duplicate, contamination and quality "
                        "filtering; check task.train, task.min_chars/max_chars, task.guard and the "
                        "task quality settings (ratio_range, min_letters, near_copies, langid)")
    return pool


def filtered_pairs(ref: str, key: str, cfg: RecipeConfig, guard: ContaminationGuard,
                   stats: dict[str, CorpusStats], seen: set[tuple[str, str]],
                   dropped: list[tuple[str, Pair]] | None = None) -> list[Pair]:
    """The pairs of one set that pass the task filters (`drop_reason`, then language ID), counted
    in `stats[ref]`; `seen` carries the duplicate check across sets."""
    check_pair_languages(ref, key, cfg.languages)
    records, entry = load_counted(ref, Pair, key, "sentence pairs", stats)
    kept: list[Pair] = []
    for record in records:
        pair = filters.unescape_entities(record)
        entry.unescaped += pair is not record
        reason = drop_reason(pair, cfg.task, seen, guard)
        if reason:
            setattr(entry, reason, getattr(entry, reason) + 1)
            if dropped is not None:
                dropped.append((reason, pair))
        else:
            kept.append(pair)
    if cfg.task.langid:
        wrong = filters.wrong_language(kept, cfg.task.langid_min_chars)
        entry.wrong_language = sum(wrong)
        if dropped is not None:
            dropped.extend(("wrong_language", pair) for pair, bad in zip(kept, wrong) if bad)
        kept = [pair for pair, bad in zip(kept, wrong) if not bad]
    return kept


def drop_reason(pair: Pair, task: TaskConfig, seen: set[tuple[str, str]],
                guard: ContaminationGuard) -> str | None:
    """The CorpusStats counter of the first filter that drops `pair`, or None to keep it. A pair
    that passes the length filter is remembered in `seen` for the duplicate check."""
    if not (task.min_chars <= min(len(pair.src), len(pair.tgt))
            and max(len(pair.src), len(pair.tgt)) <= task.max_chars):
        return "too_long_or_short"
    key = (pair.src.strip(), pair.tgt.strip())
    if key in seen:
        return "duplicates"
    seen.add(key)
    if not guard.is_clean(pair):
        return "contaminated"
    if filters.bad_ratio(pair, task.ratio_range):
        return "bad_ratio"
    if task.min_letters > 0 and (filters.is_fragment(pair.src, task.min_letters)
                                 or filters.is_fragment(pair.tgt, task.min_letters)):
        return "fragments"
    if task.near_copies and filters.is_near_copy(pair.tgt, pair.src):
        return "near_copies"
    return None


def load_general_pool(cfg: RecipeConfig, stats: dict[str, CorpusStats]) -> list[Instruction]:
    if not cfg.general.corpora:
        raise UserError("method 'tell' needs general data but general.corpora is empty")
    selected = load_selection(cfg) if cfg.general.select == "s2l" else None
    pool: list[Instruction] = []
    for ref in cfg.general.corpora:
        records, _ = load_counted(ref, Instruction, "general.corpora", "instruction examples", stats)
        pool.extend(ins for ins in records if selected is None or (ins.corpus, ins.id) in selected)
    return pool


def load_selection(cfg: RecipeConfig) -> set[tuple[str, str]]:
    """The general examples chosen by `lowres-mt select` (rows with `corpus` and `id`)."""
    from lowres_mt.config import runs_dir

    path = Path(cfg.general.selection) if cfg.general.selection else runs_dir() / f"{cfg.name}-s2l" / "selection.jsonl"
    if not path.is_file():
        raise UserError(f"general.select is s2l but {path} does not exist; run `lowres-mt select {cfg.name} "
                        "--budget N` first or set general.selection")
    return {(row["corpus"], row["id"]) for row in read_jsonl(path)}
