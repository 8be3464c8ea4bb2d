"""Tables from result JSONs: results/<recipe>/REPORT.md (markdown, every stored result of the
recipe) and the rich terminal table.

The report is a pure function of the results (no dates or timings in it), so rerunning an
unchanged evaluation rewrites the same file.
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from lowres_mt.config import RecipeConfig, recipe_arg
from lowres_mt.evaluate.comet import NO_COMET
from lowres_mt.evaluate.metrics import METRIC_NAMES
from lowres_mt.evaluate.plots import group_key, plot_chrf, plot_data_efficiency
from lowres_mt.evaluate.result import Result, read_result
from lowres_mt.evaluate.systems import KINDS, System
from lowres_mt.io import write_text
from lowres_mt.text import alphabet_letters

SYSTEM_ORDER = ["tell", "sft", "icl", "zero-shot", "copy", "apertium"]
ALPHA = 0.05


def load_results(root: Path) -> list[Result]:
    """Every stored result under results/<recipe>/ (any system, any earlier run)."""
    return [r for path in sorted(root.glob("*/*.json")) if (r := read_result(path)) is not None]


def system_order(results: list[Result]) -> list[str]:
    """tell, sft, icl, zero-shot, copy, apertium, other runs, then submitted systems by mean chrF."""
    names = {r.system for r in results}
    ours = [n for n in SYSTEM_ORDER if n in names]
    runs = sorted(n for n in names if n not in ours and not _is_external(results, n))
    chrf: dict[str, list[float]] = {}
    for r in results:
        if _is_external(results, r.system):
            chrf.setdefault(r.system, []).append(r.scores["chrF"]["score"])
    external = sorted(chrf, key=lambda n: (-sum(chrf[n]) / len(chrf[n]), n))
    return ours + runs + external


def _is_external(results: list[Result], name: str) -> bool:
    return any(r.system == name and KINDS.get(r.kind, System).submitted for r in results)


def fmt_score(score: dict | None) -> str:
    if not score:
        return "–"
    return f"{score['score']:.1f} ± {score['ci_halfwidth']:.1f}"


def fmt_comet(score: dict | None) -> str:
    if not score or score.get("score") is None:
        return (score or {}).get("note", NO_COMET)
    return f"{score['score']:.4f}"


def fmt_rate(rate: dict | None) -> str:
    return f"{100 * rate['rate']:.1f}%" if rate else "–"


def fmt_p(result: Result, baseline: str, metric: str = "chrF") -> str:
    sig = result.significance
    if not sig:
        return "baseline" if result.system == baseline else "–"
    p = sig["p"][metric]
    return f"{p:.3f}{' *' if p < ALPHA else ''}"


def _groups(results: list[Result]) -> dict[str, list[Result]]:
    groups: dict[str, list[Result]] = {}
    for r in sorted(results, key=lambda r: (r.testset, r.direction)):
        groups.setdefault(group_key(r), []).append(r)
    return groups


def overview_rows(results: list[Result]) -> tuple[list[str], list[list[str]]]:
    """chrF ± CI per system (rows) and test set + direction (columns)."""
    groups = _groups(results)
    header = ["system", *groups]
    rows = []
    for name in system_order(results):
        cells = [name]
        for group in groups.values():
            found = next((r for r in group if r.system == name), None)
            cells.append(fmt_score(found.scores["chrF"]) if found else "–")
        rows.append(cells)
    return header, rows


def published_rows(cfg: RecipeConfig) -> list[list[str]]:
    return [[row.system, group_key(row), row.metric, row.score, row.source] for row in cfg.eval.published]


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def detail_rows(group: list[Result], order: list[str], baseline: str) -> list[list[str]]:
    rows = []
    for r in sorted(group, key=lambda r: order.index(r.system)):
        speed = r.timings.get("sentences_per_s")
        rows.append([r.system, *(fmt_score(r.scores.get(m)) for m in METRIC_NAMES),
                     fmt_comet(r.scores.get("COMET")), fmt_rate(r.off_target),
                     fmt_rate(r.copies), fmt_p(r, baseline),
                     f"{speed:.2f}" if speed else "–"])
    return rows


def _alphabet_note(cfg: RecipeConfig, results: list[Result]) -> str:
    if cfg.eval.alphabet == "auto":  # learned from task.train: the letters each result was decoded with
        learned = {r.tgt_lang: r.decode["alphabet"] for r in results if "alphabet" in r.decode}
        letters = {lang: learned.get(lang) for lang in cfg.languages}
    else:
        letters = {lang: alphabet_letters(lang) for lang in cfg.languages}
    return "".join(f", answers into {lang} written with a–z{f' and {extra}' if extra else ''} only"
                   for lang, extra in letters.items() if extra is not None)


def _search(decode: dict) -> str:
    if decode.get("mbr_samples"):
        return (f"MBR over {decode['mbr_samples']} epsilon-sampled answers (ε = {decode.get('epsilon')}, "
                "chrF consensus)")
    return "greedy" if decode.get("num_beams", 1) == 1 else f"beam {decode['num_beams']}"


def _search_note(cfg: RecipeConfig, results: list[Result]) -> str:
    """How answers were searched for, and by which decoder, as the results record it (the
    recipe's settings for results from before the record)."""
    ev = cfg.eval
    recorded = [r.decode for r in results if "num_beams" in r.decode]
    searches = sorted({_search(d) for d in recorded}) or [
        _search({"num_beams": ev.num_beams, "mbr_samples": ev.mbr_samples, "epsilon": ev.mbr_epsilon})]
    backends = sorted({" ".join(filter(None, (r.decode["backend"], r.decode.get("quantization"))))
                       for r in results if r.decode.get("backend")})
    if not backends:
        return " / ".join(searches)
    older = any("num_beams" in r.decode and not r.decode.get("backend") for r in results)  # model results
    return (" / ".join(searches) + f" on the {' / '.join(backends)} backend"
            + (" (results recorded before backends: the torch engine in float32)" if older else ""))


def render_markdown(results: list[Result], notes: list[str], cfg: RecipeConfig,
                    plots: list[Path], command: str = "") -> str:
    order = system_order(results)
    baseline = cfg.eval.baseline
    n = sorted({r.n for r in results})
    commands = list(dict.fromkeys(r.command for r in results if r.command)) or [
        command or f"lowres-mt eval {recipe_arg(cfg)}"]
    lines = [f"# Evaluation: {cfg.name}", "",
             "Every result stored under this folder, produced by:", "",
             *(f"    {c}" for c in commands), "",
             f"{'/'.join(map(str, n)) or 0} sentences per test set and direction (seeded sample, seed "
             f"{cfg.seed}); base model `{cfg.base_model}`; decoding: {_search_note(cfg, results)}, "
             f"≤ {cfg.eval.max_new_tokens} new tokens"
             f"{f', loop stop at a 4-token n-gram seen {cfg.eval.stop_repeats}×' if cfg.eval.stop_repeats else ''}"
             f"{f', no repeated {cfg.eval.no_repeat_ngram}-gram' if cfg.eval.no_repeat_ngram else ''}"
             f"{f', repetition penalty {cfg.eval.repetition_penalty}' if cfg.eval.repetition_penalty != 1 else ''}"
             f"{', adapters limited to their training vocabulary' if cfg.eval.train_vocabulary else ''}"
             f"{_alphabet_note(cfg, results) if cfg.eval.alphabet else ''}"
             ". Scores are corpus-level with 95% bootstrap "
             f"confidence intervals (± half-width).", ""]
    guard = {r.direction: r.guard_dropped for r in results if r.guard_dropped is not None}
    if guard:
        notes = [*notes, "icl: the contamination guard dropped " + ", ".join(
            f"{n} {d} pool pairs" for d, n in sorted(guard.items())) + " that occur in a test set"]
    notes = [*notes, *(f"{r.system} {r.testset} {r.direction}: {r.shot_copies['count']} of {r.n} "
                       f"hypotheses ({fmt_rate(r.shot_copies)}) repeat a retrieved example's translation"
                       for r in results if r.shot_copies)]
    if notes:
        lines += ["## Notes", "", *(f"- {note}" for note in notes), ""]
    lines += ["## chrF overview", "", *_markdown_table(*overview_rows(results)), ""]
    if cfg.eval.published:
        lines += ["## Published reference points (not run here; other models or people)", "",
                  *_markdown_table(["system", "test set", "metric", "score", "source"],
                                   published_rows(cfg)), ""]
    for title, group in _groups(results).items():
        lines += [f"## {title} (n={group[0].n})", ""]
        lines += _markdown_table(["system", *METRIC_NAMES, "COMET", "off-target", "copies",
                                  f"p (chrF vs {baseline})", "sent/s"],
                                 detail_rows(group, order, baseline))
        lines.append("")
    lines += [f"p: paired bootstrap resampling against `{baseline}` ({cfg.eval.bootstrap} resamples, "
              f"sacrebleu); * marks p < {ALPHA}. `–` where no `{baseline}` result exists.", "",
              "off-target: hypotheses not identified as the target language (lingua; empty ones "
              "count), `–` where the identifier does not know it. copies: hypotheses that repeat "
              "their source (equal after normalisation, or sentence chrF ≥ 80 against it).", ""]
    if plots:
        lines += ["## Plots", "", *(f"![{p.stem}](plots/{p.name})" for p in plots), ""]
    lines += ["## Signatures", ""]
    sigs = {m: r.scores[m]["signature"] for r in results for m in METRIC_NAMES if m in r.scores}
    lines += [f"- {m}: `{sig}`" for m, sig in sigs.items()]
    return "\n".join(lines).rstrip() + "\n"


def write_report(root: Path, results: list[Result], notes: list[str], cfg: RecipeConfig,
                 command: str = "") -> list[Path]:
    """REPORT.md and the plots for this evaluation; the curve also uses earlier stored runs."""
    plots = [p for p in (
        plot_chrf(results, root / "plots" / "chrf.png", system_order(results)),
        plot_data_efficiency(load_results(root), root / "plots" / "data_efficiency.png"),
    ) if p is not None]
    write_text(root / "REPORT.md", render_markdown(results, notes, cfg, plots, command))
    return plots


def rich_table(results: list[Result], title: str = "chrF (± 95% CI)") -> Table:
    header, rows = overview_rows(results)
    table = Table(title=title)
    for col in header:
        table.add_column(col, justify="left" if col == "system" else "right")
    for row in rows:
        table.add_row(*row)
    return table
