"""`lowres-mt sweep`: train a grid of runs one after another, pick the best of the selection axis
on dev chrF, evaluate the picked runs with the normal cached `eval`, and write the summary.

The sweep folder (runs/sweeps/<name>/) holds one run folder per grid point. Finished runs are
skipped, an interrupted one resumes from its last checkpoint, and evaluation reuses cached
results, so the same command can be stopped and started again at any point and ends with the
same `sweep.json`. Under `accelerate launch` every process trains each run together; only the
main process evaluates and writes the summary.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from lowres_mt.config import RecipeConfig, load_recipe, runs_dir
from lowres_mt.errors import UserError
from lowres_mt.sweep.grid import Axis, PlannedRun, plan_runs
from lowres_mt.sweep.summary import Point, write_summary
from lowres_mt.train import rundir
from lowres_mt.train.checkpoint import latest_checkpoint

if TYPE_CHECKING:
    from lowres_mt.evaluate.result import Result


@dataclass
class SweepPlan:
    recipe: str
    axes: list[Axis]
    methods: list[str]
    folder: Path  # holds the run folders
    out: Path  # sweep.json, sweep.md, plots and the evaluation's results/
    select: str | None = None  # axis whose best value (dev chrF) is picked per method and other values
    testsets: list[str] | None = None  # default: the recipe's eval.testsets
    sample: int | None = None  # default: the recipe's eval.sample
    baselines: list[str] = field(default_factory=lambda: ["copy"])
    evaluate: bool = True
    evaluate_all: bool = False  # also the runs the selection did not pick

    @property
    def runs(self) -> list[PlannedRun]:
        return plan_runs(self.axes, self.methods)

    def config(self, run: PlannedRun) -> RecipeConfig:
        return load_recipe(self.recipe, [*run.overrides, f"train.method={run.method}"])


def sweep_folder(name: str) -> Path:
    return runs_dir() / "sweeps" / name


def run_sweep(plan: SweepPlan, *, progress: bool = True, console: Console | None = None) -> list[Point]:
    """Train every planned run (skipping finished ones), then select, evaluate and summarise."""
    if plan.select and plan.select not in {a.key for a in plan.axes}:
        raise UserError(f"--select {plan.select}: not a sweep axis; give it values, e.g. {plan.select}=1,2")
    runs = plan.runs
    configs = {run.name: plan.config(run) for run in runs}  # every override is checked before training
    for name, cfg in configs.items():
        if cfg.train.eval_every == 0:
            raise UserError(f"{name}: train.eval_every=0 measures no dev chrF, which a sweep selects on; "
                            "set it above 0 (a value at or past the last step evaluates once, at the end)")
    _train_all(plan, runs, configs, progress=progress, console=console)
    if not _is_main():
        return []
    points = [Point.of_run(run, configs[run.name], plan.folder / run.name) for run in runs]
    chosen = _select(points, plan.select)
    baselines = _evaluate(plan, points, chosen, console) if plan.evaluate else {}
    write_summary(plan, points, baselines)
    return points


def _train_all(plan: SweepPlan, runs: list[PlannedRun], configs: dict[str, RecipeConfig], *, progress: bool,
               console: Console | None) -> None:
    from lowres_mt.train.loop import train

    say = console.print if console is not None and _is_main() else (lambda *a, **k: None)
    seconds, units = 0.0, 0.0
    for k, run in enumerate(runs, 1):
        cfg, run_dir = configs[run.name], plan.folder / run.name
        action = next_action(cfg, run_dir)
        remaining = sum(cost_units(configs[r.name]) for r in runs[k - 1:]
                        if next_action(configs[r.name], plan.folder / r.name) != "skip")
        eta = f", about {remaining * seconds / units / 60:.0f} min left" if units and remaining else ""
        say(f"[bold]run {k}/{len(runs)}[/] {run.name}: "
            f"{ {'skip': 'already trained', 'resume': 'resuming', 'start': 'training'}[action]}{eta}",
            highlight=False)
        if action == "skip":
            continue
        began = time.perf_counter()
        train(cfg, run_dir=run_dir, resume=action == "resume", progress=progress)
        seconds += time.perf_counter() - began
        units += cost_units(cfg)


def next_action(cfg: RecipeConfig, run_dir: Path) -> str:
    """'skip' (trained), 'resume' (has a checkpoint) or 'start'; another run's folder is an error."""
    rundir.check_same_run(cfg, run_dir)
    if (run_dir / "config.yaml").is_file() and rundir.is_done(run_dir):
        return "skip"
    return "resume" if latest_checkpoint(run_dir / "checkpoints") is not None else "start"


def cost_units(cfg: RecipeConfig) -> float:
    """Training tokens up to a constant factor: unique task tokens × (epochs + general + mono ratios)."""
    general = cfg.general.ratio if cfg.train.method.startswith("tell") else 0.0
    mono = cfg.mono.ratio if cfg.mono.corpora else 0.0
    return cfg.task.tokens * (cfg.task.epochs + general + mono)


def _select(points: list[Point], axis: str | None) -> set[str]:
    """Names of the runs to report: per method and other axis values, the best dev chrF along `axis`."""
    if axis is None:
        return {p.run for p in points}
    groups: dict[tuple, list[Point]] = {}
    for p in points:
        groups.setdefault((p.method, *((k, v) for k, v in p.values.items() if k != axis)), []).append(p)
    chosen = set()
    for group in groups.values():
        scored = [p for p in group if p.dev_chrf is not None]
        best = max(scored, key=lambda p: p.dev_chrf) if scored else None  # ties: the first in grid order
        for p in group:
            p.selected = p is best
        if best is not None:
            chosen.add(best.run)
    return chosen


def _evaluate(plan: SweepPlan, points: list[Point], chosen: set[str], console: Console | None) -> dict[str, dict]:
    """Scores of the chosen runs into their points; returns the baselines' scores by "system panel"."""
    from lowres_mt.evaluate.runner import read_hypotheses, run_eval

    testsets = [f"eval.testsets=[{','.join(plan.testsets)}]"] if plan.testsets else []
    results_root = plan.out / "results"
    hypotheses: dict[str, dict[str, list[str]]] = {}  # run → panel → hypotheses
    for p in points:
        if p.run not in chosen and not plan.evaluate_all:
            continue
        run = next(r for r in plan.runs if r.name == p.run)
        cfg = load_recipe(plan.recipe, [*run.overrides, f"train.method={run.method}", *testsets])
        outcome = run_eval(cfg, systems=[p.run], sample=plan.sample, runs_root=plan.folder,
                           results_root=results_root, progress=console is not None, console=console,
                           command=f"lowres-mt sweep {plan.recipe} (run {p.run})")
        p.results = {f"{r.testset} {r.direction}": _scores(r) for r in outcome.results if r.system == p.run}
        hypotheses[p.run] = {f"{r.testset} {r.direction}": read_hypotheses(results_root / cfg.name, r)
                             for r in outcome.results if r.system == p.run}
    _add_paired_tests(plan, points, hypotheses)
    if not plan.baselines:
        return {}
    cfg = load_recipe(plan.recipe, [*plan.runs[0].overrides, *testsets])
    outcome = run_eval(cfg, systems=plan.baselines, sample=plan.sample, runs_root=plan.folder,
                       results_root=results_root, progress=console is not None, console=console,
                       command=f"lowres-mt sweep {plan.recipe} (baselines)")
    return {f"{r.system} {r.testset} {r.direction}": _scores(r) for r in outcome.results
            if r.system in plan.baselines}


def _add_paired_tests(plan: SweepPlan, points: list[Point], hypotheses: dict[str, dict[str, list[str]]]) -> None:
    """Each evaluated TELL point gets `p_vs_sft` per panel: the paired bootstrap p-value (chrF) of
    TELL against the SFT point with the same axis values (the selection axis aside)."""
    from lowres_mt.evaluate.metrics import paired_significance
    from lowres_mt.evaluate.runner import sample_testsets

    def others(p: Point) -> tuple:
        return tuple((k, v) for k, v in sorted(p.values.items()) if k != plan.select)

    refs: dict[str, list[str]] = {}
    for tell in (p for p in points if p.method == "tell" and p.run in hypotheses):
        sft = next((p for p in points if p.method == "sft" and p.run in hypotheses and others(p) == others(tell)), None)
        if sft is None:
            continue
        for panel, hyps in hypotheses[tell.run].items():
            if panel not in hypotheses[sft.run]:
                continue
            if panel not in refs:
                run = next(r for r in plan.runs if r.name == tell.run)
                testset, direction = panel.split(" ")
                cfg = load_recipe(plan.recipe, [*run.overrides, f"eval.testsets=[{testset}]"])
                size = cfg.eval.sample if plan.sample is None else plan.sample
                refs[panel] = [q.tgt for q in sample_testsets(cfg, size)[(testset, direction)]]
            pvalues = paired_significance(("sft", hypotheses[sft.run][panel]), [("tell", hyps)], refs[panel],
                                          panel.split(" ")[1].split("-")[1])
            tell.results[panel]["p_vs_sft"] = pvalues["tell"]["chrF"]


def _scores(result: Result) -> dict:
    scores = result.scores
    return {"n": result.n,
            **{name: scores[name]["score"] for name in ("chrF", "chrF++", "BLEU") if name in scores},
            "chrF_ci": scores["chrF"]["ci_halfwidth"],
            "off_target": (result.off_target or {}).get("rate")}


def _is_main() -> bool:
    return os.environ.get("RANK", "0") == "0"
