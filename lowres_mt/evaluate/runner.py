"""`lowres-mt eval`: systems × test sets × directions on a seeded sample, scored, cached, reported.

Writes results/<recipe>/<system>/<testset>.<direction>.json (scores, off-target and copy rates)
and .txt (hypotheses, one per line in sample order), then results/<recipe>/REPORT.md and PNG
plots. Results whose cache keys match (see `cache`) are reused, so a rerun with nothing changed
only re-renders the report (the rates are recomputed from the hypotheses every time).
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.console import Console

from lowres_mt.config import RecipeConfig, recipe_arg, runs_dir
from lowres_mt.corpora.local import shown
from lowres_mt.data.pools import check_pair_languages
from lowres_mt.errors import UserError
from lowres_mt.evaluate import cache, metrics, rates
from lowres_mt.evaluate.comet import NO_COMET
from lowres_mt.evaluate.generate import HypothesisMaker
from lowres_mt.evaluate.report import fmt_rate, load_results, write_report
from lowres_mt.evaluate.result import Result, read_result
from lowres_mt.evaluate.systems import System, resolve_systems
from lowres_mt.io import portable_path, sha256_file, write_json, write_text
from lowres_mt.langid import unavailable_note
from lowres_mt.records import Pair
from lowres_mt.translate import DecodeSettings


def results_dir() -> Path:
    return Path(os.environ.get("LOWRES_MT_RESULTS", "results"))


def slug(testset: str) -> str:
    return testset.replace(":", "-").replace("/", "-")


@dataclass
class Job:
    system: System
    testset: str
    direction: str
    pairs: list[Pair]

    def stem(self, root: Path) -> Path:
        return root / slug(self.system.name) / f"{slug(self.testset)}.{self.direction}"


@dataclass
class EvalOutcome:
    results: list[Result]
    notes: list[str]
    report: Path
    plots: list[Path] = field(default_factory=list)
    generated: int = 0
    reused: int = 0
    seconds: float = 0.0


def sample_testsets(cfg: RecipeConfig, size: int) -> dict[tuple[str, str], list[Pair]]:
    """{(test set, direction): pairs} — the same seeded sentence sample for both directions."""
    from lowres_mt import corpora

    if not cfg.eval.testsets:
        raise UserError(f"recipe '{recipe_arg(cfg)}' lists no eval.testsets; add some (e.g. "
                        "flores200:devtest), or pass --test FILE")
    out = {}
    for ref in cfg.eval.testsets:
        check_pair_languages(ref, "eval.testsets", cfg.languages)
        pairs = [p for p in corpora.load_set(ref) if isinstance(p, Pair)]
        if not pairs:
            raise UserError(f"test set {ref} has no sentence pairs; check eval.testsets")
        index = range(len(pairs))
        if 0 < size < len(pairs):
            index = sorted(random.Random(f"{cfg.seed}:{ref}").sample(index, size))
        chosen = [pairs[i] for i in index]
        for direction in corpora.set_info(ref).directions:
            if direction not in cfg.directions:
                continue
            out[(ref, direction)] = [p.towards(direction) for p in chosen]
    return out


def plan_jobs(systems: list[System], samples: dict[tuple[str, str], list[Pair]],
              notes: list[str]) -> list[Job]:
    """Every system (as `expand` says it stands on each test set and direction) × sample."""
    jobs = [Job(one, testset, direction, pairs) for (testset, direction), pairs in samples.items()
            for system in systems for one in system.expand(testset, direction)]
    for system in systems:
        if not any(system.expand(t, d) for t, d in samples):
            notes.append(f"{system.name}: nothing to translate in this evaluation (no test set and direction "
                         "it covers)")
    return sorted(jobs, key=lambda j: (j.system.order, str(j.system.run), j.system.name))


def run_eval(cfg: RecipeConfig, *, systems: list[str] | None = None, sample: int | None = None,
             comet_model: str | None = None, all_runs: bool = False, results_root: Path | None = None,
             runs_root: Path | None = None, maker: HypothesisMaker | None = None,
             progress: bool = True, console: Console | None = None,
             command: str | None = None) -> EvalOutcome:
    started = time.perf_counter()
    if cfg.eval.threads > 0:
        import torch

        torch.set_num_threads(cfg.eval.threads)
    root = (results_root or results_dir()) / cfg.name
    chosen, notes = resolve_systems(cfg, systems or cfg.eval.systems, runs_root or runs_dir(),
                                    all_runs=all_runs)
    size = cfg.eval.sample if sample is None else sample
    samples = sample_testsets(cfg, size)
    jobs = plan_jobs(chosen, samples, notes)
    unidentified = unavailable_note(pairs[0].tgt_lang for pairs in samples.values() if pairs)
    if unidentified:
        notes.append(f"{unidentified}: answers into it get no off-target rate")
    settings = DecodeSettings.for_recipe(cfg)
    maker = maker or HypothesisMaker(cfg, settings, progress=progress, console=console)
    scorer = _Scorer(comet_model or cfg.eval.comet_model)
    outcome = EvalOutcome([], notes, root / "REPORT.md")
    command = command or f"lowres-mt eval {recipe_arg(cfg)}"
    try:
        for job in jobs:
            try:
                result, generated = _evaluate(job, cfg, settings, maker, scorer, root, size, command)
            except UserError as err:
                if not job.system.optional:
                    raise
                notes.append(f"{job.system.name}: skipped on {job.testset} {job.direction} — {err}")
                continue
            outcome.results.append(result)
            outcome.generated += generated
            outcome.reused += not generated
            if generated:  # kept at once, so an interrupted evaluation resumes after this job
                write_json(root / result.path, result.to_dict())
                if console is not None:
                    console.print(_job_line(result), markup=False, highlight=False)
    finally:
        maker.close()
    if not outcome.results:
        raise UserError(f"nothing was evaluated ({'; '.join(notes) or 'no job'}); {outcome.report} is "
                        "left as it was")
    # the report covers every result stored for this recipe, this evaluation's replacing older ones
    stored = {r.path: r for r in load_results(root)}
    stored.update((r.path, r) for r in outcome.results)
    # p-values against the baseline for every stored result on the same sentences: a new baseline
    # output makes the others' p-values stale even when their own hypotheses were reused
    refs = {key: [p.tgt for p in pairs] for key, pairs in samples.items()}
    ids = {key: tuple(p.id for p in pairs) for key, pairs in samples.items()}
    same_sentences = [r for r in stored.values() if r.ids == ids.get((r.testset, r.direction))]
    changed = _add_significance(same_sentences, refs, root, cfg)
    stored.update((r.path, r) for r in changed)
    outcome.results = [stored[r.path] for r in outcome.results]
    for result in {r.path: r for r in [*outcome.results, *changed]}.values():
        write_json(root / result.path, result.to_dict())
    outcome.plots = write_report(root, list(stored.values()), notes, cfg, command)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _evaluate(job: Job, cfg: RecipeConfig, settings: DecodeSettings, maker: HypothesisMaker,
              scorer: _Scorer, root: Path, size: int, command: str) -> tuple[Result, bool]:
    """One result: hypotheses and scores reused when their cache keys match, else recomputed."""
    stem = job.stem(root)
    json_path, hyp_path = stem.with_suffix(stem.suffix + ".json"), stem.with_suffix(stem.suffix + ".txt")
    system, src_lang, tgt_lang = job.system, job.pairs[0].src_lang, job.pairs[0].tgt_lang
    signature = system.signature(cfg, settings, tgt_lang)
    gen_key = cache.generation_key(signature, job.testset, job.direction, job.pairs)
    hyps, timings, old = _hypotheses(job, gen_key, read_result(json_path), maker, hyp_path)
    hyp_sha = sha256_file(hyp_path)
    refs = [p.tgt for p in job.pairs]
    score_key = cache.scoring_key(gen_key, hyp_sha, refs, cfg.eval.bootstrap, scorer.model_name,
                                  metrics.sacrebleu_version())
    if old is not None and old.cache.get("scoring") == score_key:
        scores = old.scores
    else:
        t0 = time.perf_counter()
        scores = metrics.score_corpus(hyps, refs, tgt_lang, cfg.eval.bootstrap)
        scores["COMET"] = scorer.comet(job.pairs, hyps)
        timings["score_s"] = round(time.perf_counter() - t0, 3)
    result = Result(
        recipe=cfg.name, system=system.name, kind=system.kind, method=system.method or None,
        testset=job.testset, direction=job.direction, src_lang=src_lang, tgt_lang=tgt_lang,
        n=len(hyps), sample=size, seed=cfg.seed, ids=tuple(p.id for p in job.pairs),
        model=system.model or None, adapter=portable_path(system.run / "adapter") if system.run else None,
        task_tokens=system.task_tokens, config_hash=cache.config_hash(cfg),
        # the speed reported depends on the batch size; the outputs do not (not in the key)
        decode={"batch_size": settings.batch_size, **signature.get("decode", {})},
        scores=scores, significance=old.significance if old else None,
        off_target=rates.off_target(hyps, tgt_lang),
        copies=rates.copies([p.src for p in job.pairs], hyps),
        shot_copies=_shot_copies(job, hyps, maker, old),
        guard_dropped=(old.guard_dropped if old else maker.guard_dropped.get(job.direction))
        if system.retrieves(cfg) else None,
        # a speed only for outputs produced here (not copies or submitted outputs)
        timings=timings if system.generates else {k: v for k, v in timings.items() if k == "score_s"},
        hypotheses=hyp_path.name, hyp_sha256=hyp_sha,
        cache={"generation": gen_key, "scoring": score_key,
               "significance": old.cache.get("significance") if old else None},
        path=str(json_path.relative_to(root)), command=command,
    )
    return result, old is None


def _shot_copies(job: Job, hyps: list[str], maker: HypothesisMaker, old: Result | None) -> dict | None:
    """The shot-copy rate of a system with retrieved examples: the stored one when reused."""
    if old is not None:
        return old.shot_copies
    targets = maker.shot_targets.get((job.system.name, job.testset, job.direction))
    return None if targets is None else rates.shot_copies(hyps, targets)


def _job_line(result: Result) -> str:
    chrf, timings = result.scores["chrF"], result.timings
    speed = f", {timings['sentences_per_s']} sent/s" if "sentences_per_s" in timings else ""
    off = f", off-target {fmt_rate(result.off_target)}" if result.off_target else ""
    return (f"{result.system} {shown(result.testset)} {result.direction}: chrF {chrf['score']:.1f}"
            f"{off}, copies {fmt_rate(result.copies)} ({result.n} sentences{speed})")


def _hypotheses(job: Job, gen_key: str, old: Result | None, maker: HypothesisMaker,
                hyp_path: Path) -> tuple[list[str], dict, Result | None]:
    """(hypotheses, timings, the stored result they come from): the stored file when its key and
    checksum match (else None: generated now)."""
    if (old is not None and old.cache.get("generation") == gen_key and hyp_path.is_file()
            and sha256_file(hyp_path) == old.hyp_sha256):
        return hyp_path.read_text(encoding="utf-8").split("\n")[:-1], dict(old.timings), old
    t0 = time.perf_counter()
    hyps = [" ".join(h.split()) for h in maker.make(job.system, job.pairs, job.direction, job.testset)]
    seconds = time.perf_counter() - t0
    write_text(hyp_path, "".join(h + "\n" for h in hyps))
    return hyps, {"generate_s": round(seconds, 3),
                  "sentences_per_s": round(len(hyps) / max(seconds, 1e-9), 3)}, None


def _add_significance(results: list[Result], refs_by_set: dict[tuple[str, str], list[str]],
                      root: Path, cfg: RecipeConfig) -> list[Result]:
    """Paired bootstrap p-values of every system against the baseline, per test set and direction;
    returns the results whose significance changed, as they are now. A result whose hypotheses are
    not on disk (kept out of the repository) keeps what it has."""
    groups: dict[tuple[str, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.testset, r.direction), []).append(r)
    changed = []
    for key, group in groups.items():
        base = next((r for r in group if r.system == cfg.eval.baseline), None)
        if base is None or not _hyp_path(root, base).is_file():
            continue
        if base.significance:
            changed.append(replace(base, significance=None, cache={**base.cache, "significance": None}))
        refs = refs_by_set[key]
        stale = []
        for r in group:
            if r is base:
                continue
            sig_key = cache.significance_key(base.hyp_sha256, r.hyp_sha256, refs, cfg.eval.bootstrap)
            if (r.cache.get("significance") != sig_key or not r.significance) and _hyp_path(root, r).is_file():
                stale.append((r, sig_key))
        if not stale:
            continue
        pvalues = metrics.paired_significance(
            (base.system, read_hypotheses(root, base)), [(r.system, read_hypotheses(root, r)) for r, _ in stale],
            refs, base.tgt_lang, cfg.eval.bootstrap)
        changed += [replace(r, significance={"baseline": base.system, "test": "paired bootstrap",
                                             "p": pvalues[r.system]},
                            cache={**r.cache, "significance": sig_key}) for r, sig_key in stale]
    return changed


def _hyp_path(root: Path, result: Result) -> Path:
    return (root / result.path).with_name(result.hypotheses)


def read_hypotheses(root: Path, result: Result) -> list[str]:
    """The stored hypotheses of one result (`root`: the recipe's results folder)."""
    return _hyp_path(root, result).read_text(encoding="utf-8").split("\n")[:-1]


class _Scorer:
    """COMET on demand: loaded once, only when some result needs (re)scoring."""

    def __init__(self, model_name: str | None):
        self.model_name = model_name
        self._model = None

    def comet(self, pairs: list[Pair], hyps: list[str]) -> dict:
        if not self.model_name:
            return {"score": None, "note": NO_COMET}
        from lowres_mt.evaluate.comet import load_comet, score_comet

        if self._model is None:
            self._model = load_comet(self.model_name)
        scored = score_comet(self._model, [p.src for p in pairs], hyps, [p.tgt for p in pairs])
        return {"score": scored["score"], "model": self.model_name}
