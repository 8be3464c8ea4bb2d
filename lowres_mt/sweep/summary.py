"""A sweep's summary: one point per run, `sweep.json` (deterministic: the same grid, data and
seeds give the same file, however often the sweep was stopped), `sweep.md` (adds wall times) and
the plots; and the headline read off the curves: how many task tokens SFT needs to match TELL."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from lowres_mt.config import RecipeConfig
from lowres_mt.io import write_json, write_text
from lowres_mt.sweep.plots import plot_axis
from lowres_mt.train import rundir

if TYPE_CHECKING:
    from lowres_mt.sweep.grid import PlannedRun
    from lowres_mt.sweep.runner import SweepPlan

TOKENS = "task.tokens"


@dataclass
class Point:
    run: str
    method: str
    values: dict[str, str]  # axis key → value
    task_tokens: int
    steps: int | None = None
    best_step: int | None = None
    dev_chrf: float | None = None  # the chosen adapter's (best step's unless train.keep=last)
    selected: bool = True
    results: dict[str, dict] = field(default_factory=dict)  # "testset direction" → scores
    minutes: float | None = None  # wall time of the last training attempt; not in sweep.json
    tokens_per_s: float | None = None  # not in sweep.json either

    @classmethod
    def of_run(cls, run: PlannedRun, cfg: RecipeConfig, run_dir: Path) -> Point:
        info = rundir.read_run_info(run_dir)
        dev = info.get("best_dev_chrf") if cfg.train.keep == "best" else None
        return cls(run.name, run.method, dict(run.values), cfg.task.tokens, info.get("steps"), info.get("best_step"),
                   dev if dev is not None else info.get("dev_chrf"), minutes=_minutes(info),
                   tokens_per_s=info.get("tokens_per_s"))

    def as_json(self) -> dict:
        return {"run": self.run, "method": self.method, "values": self.values, "task_tokens": self.task_tokens,
                "steps": self.steps, "best_step": self.best_step, "dev_chrf": self.dev_chrf,
                "selected": self.selected, "results": self.results}


def _minutes(info: dict) -> float | None:
    try:
        began, ended = datetime.fromisoformat(info["started"]), datetime.fromisoformat(info["finished"])
    except (KeyError, TypeError, ValueError):
        return None
    return round((ended - began).total_seconds() / 60, 1)


def sft_tokens_to_match(tell: tuple[int, float], sft: list[tuple[int, float]]) -> dict:
    """Task tokens SFT needs to reach TELL's chrF at its budget, interpolated in log tokens.

    `bound` is "=" for a crossing inside SFT's measured range, "<=" when SFT's smallest budget
    already matches, ">" when no measured SFT budget does; `ratio` is SFT tokens / TELL tokens."""
    tokens, score = tell
    curve = sorted(sft)
    if not curve:
        return {"tell_tokens": tokens, "tell_chrF": score, "sft_tokens": None, "bound": None, "ratio": None}
    if curve[0][1] >= score:
        found, bound = curve[0][0], "<="
    else:
        found, bound = curve[-1][0], ">"
        for (t0, y0), (t1, y1) in zip(curve, curve[1:], strict=False):
            if y0 < score <= y1:
                share = (score - y0) / (y1 - y0)
                found, bound = round(math.exp(math.log(t0) + share * (math.log(t1) - math.log(t0)))), "="
                break
    return {"tell_tokens": tokens, "tell_chrF": score, "sft_tokens": found, "bound": bound,
            "ratio": round(found / tokens, 2)}


def matches(points: list[Point], select: str | None) -> list[dict]:
    """For every test panel and selected TELL point: the SFT tokens that match it (same other values)."""
    out = []
    others = lambda p: tuple((k, v) for k, v in sorted(p.values.items()) if k not in (TOKENS, select))  # noqa: E731
    chosen = [p for p in points if p.selected and p.results]
    for panel in sorted({key for p in chosen for key in p.results}):
        for tell in (p for p in chosen if p.method == "tell" and panel in p.results):
            curve = [(p.task_tokens, p.results[panel]["chrF"]) for p in chosen
                     if p.method == "sft" and panel in p.results and others(p) == others(tell)]
            if curve:
                out.append({"panel": panel, "run": tell.run,
                            **sft_tokens_to_match((tell.task_tokens, tell.results[panel]["chrF"]), curve)})
    return out


def headline(match: dict) -> str:
    n, k = match["tell_tokens"], match["ratio"]
    if match["bound"] == "=":
        return f"SFT needs {k:g}× the task tokens to match TELL at {n:,} ({match['panel']})"
    if match["bound"] == "<=":
        return (f"SFT at {match['sft_tokens']:,} task tokens ({k:g}× TELL's {n:,}) already matches TELL "
                f"({match['panel']})")
    return (f"no measured SFT budget (up to {match['sft_tokens']:,} task tokens, {k:g}× TELL's) matches TELL at "
            f"{n:,} ({match['panel']})")


def write_summary(plan: SweepPlan, points: list[Point], baselines: dict[str, dict]) -> list[Path]:
    """sweep.json, sweep.md and the plots under plan.out; returns the plot paths."""
    found = matches(points, plan.select)
    data = {"recipe": plan.recipe, "methods": plan.methods, "axes": {a.key: list(a.values) for a in plan.axes},
            "select": plan.select, "testsets": plan.testsets, "sample": plan.sample,
            "points": [p.as_json() for p in points], "baselines": baselines, "matches": found}
    write_json(plan.out / "sweep.json", data)
    plots = [path for axis in plan.axes if len(axis.values) > 1 and axis.key != plan.select
             if (path := plot_axis(points, baselines, axis.key, plan.out / f"chrf-by-{axis.key}.png",
                                   ignore=(plan.select,) if plan.select else ()))]
    write_text(plan.out / "sweep.md", render_markdown(plan, points, baselines, found, plots))
    return plots


def render_markdown(plan: SweepPlan, points: list[Point], baselines: dict[str, dict], found: list[dict],
                    plots: list[Path]) -> str:
    keys = [a.key for a in plan.axes if len(a.values) > 1]
    panels = sorted({key for p in points for key in p.results})
    lines = [f"# Sweep of {plan.recipe}", "",
             f"Methods {', '.join(plan.methods)}; axes " +
             "; ".join(f"`{a.key}` = {', '.join(a.values)}" for a in plan.axes) + ".",
             ""]
    if plan.select:
        lines += [f"For each method and each value of the other axes, the `{plan.select}` value with the best "
                  "dev chrF (during training) is selected (✓) and evaluated.", ""]
    head = ["run", "method", *keys, "steps", "best step", "dev chrF", "selected", "minutes", "tokens/s",
            *(f"{p} chrF" for p in panels)]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in points:
        cells = [p.run, p.method, *(p.values[k] for k in keys), _fmt(p.steps), _fmt(p.best_step), _fmt(p.dev_chrf),
                 "✓" if p.selected else "", _fmt(p.minutes), _fmt(p.tokens_per_s),
                 *(_score(p.results.get(panel)) for panel in panels)]
        lines.append("| " + " | ".join(cells) + " |")
    if baselines:
        lines += ["", "Baselines: " + "; ".join(f"{name} {_score(s)}" for name, s in sorted(baselines.items())) + "."]
    if found:
        lines += ["", "## SFT tokens to match TELL", ""] + [f"- {headline(m)}" for m in found]
    lines += [""] + [f"![{path.stem}]({path.name})" for path in plots]
    return "\n".join(lines).rstrip() + "\n"


def _fmt(value) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _score(scores: dict | None) -> str:
    if not scores:
        return "-"
    p = f" (p {scores['p_vs_sft']:.3f} vs SFT)" if "p_vs_sft" in scores else ""
    return f"{scores['chrF']:.1f} ± {scores['chrF_ci']:.1f}{p}"
