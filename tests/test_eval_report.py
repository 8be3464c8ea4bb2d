"""Report rendering and plots from hand-written result JSONs."""

import dataclasses
import json
from pathlib import Path

import pytest

from lowres_mt.config import EvalConfig, RecipeConfig
from lowres_mt.evaluate.plots import efficiency_points, plot_data_efficiency
from lowres_mt.evaluate.report import (
    load_results,
    render_markdown,
    rich_table,
    system_order,
    write_report,
)
from lowres_mt.evaluate.result import Result

CFG = RecipeConfig(name="en-is", languages=("en", "is"), eval=EvalConfig(bootstrap=1000))


def _score(value, hw=1.0):
    return {"score": value, "mean": value, "ci_halfwidth": hw, "ci": [value - hw, value + hw],
            "signature": "nrefs:1|bs:1000|seed:12345|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0"}


def row(system, kind, chrf, *, testset="flores200:devtest", direction="en-is", p=None,
        method=None, tokens=None, comet=None) -> dict:
    """A stored result's JSON, with the keys the report reads."""
    return {
        "system": system, "kind": kind, "method": method, "testset": testset, "direction": direction,
        "n": 200, "task_tokens": tokens,
        "scores": {"BLEU": _score(chrf / 3), "chrF": _score(chrf), "chrF++": _score(chrf - 1),
                   "COMET": comet or {"score": None, "note": "n/a (no COMET model)"}},
        "significance": None if p is None else {"baseline": "sft", "p": {"BLEU": p, "chrF": p, "chrF++": p}},
        "timings": {"sentences_per_s": 2.5}, "path": f"{system}/x.json", "hypotheses": "x.txt",
        "off_target": None if direction.endswith("kgv") else {"rate": 0.125, "languages": {"is": 175, "da": 25}},
        "copies": {"rate": 0.02, "count": 4},
    }


def result(*args, **kwargs) -> Result:
    return Result.from_dict(row(*args, **kwargs))


RESULTS = [
    result("wmt21:Online-B", "external", 60.0, testset="wmt21:en-is"),
    result("wmt21:Mideind", "external", 62.0, testset="wmt21:en-is"),
    result("zero-shot", "base", 20.0, p=0.001),
    result("sft", "adapter", 35.0, method="sft", tokens=10000),
    result("tell", "adapter", 37.5, p=0.2, method="tell", tokens=10000, comet={"score": 0.71234, "model": "x"}),
    result("tell", "adapter", 30.0, direction="is-en", method="tell", tokens=10000),
]


def test_system_order_puts_ours_first_then_externals_by_score():
    assert system_order(RESULTS) == ["tell", "sft", "zero-shot", "wmt21:Mideind", "wmt21:Online-B"]


def test_markdown_tables_scores_comet_and_significance():
    md = render_markdown(RESULTS, ["tell: skipped — no run"], CFG, [])
    assert md.startswith("# Evaluation: en-is")
    assert "- tell: skipped — no run" in md
    assert "## flores200:devtest en→is (n=200)" in md and "## flores200:devtest is→en (n=200)" in md
    assert "| tell | 12.5 ± 1.0 | 37.5 ± 1.0 | 36.5 ± 1.0 | 0.7123 | 12.5% | 2.0% | 0.200 | 2.50 |" in md
    assert "| zero-shot | 6.7 ± 1.0 | 20.0 ± 1.0 | 19.0 ± 1.0 | n/a (no COMET model) | 12.5% | 2.0% | 0.001 * | 2.50 |" in md
    assert "| sft | 11.7 ± 1.0 | 35.0 ± 1.0 | 34.0 ± 1.0 | n/a (no COMET model) | 12.5% | 2.0% | baseline | 2.50 |" in md
    assert "| system | BLEU | chrF | chrF++ | COMET | off-target | copies | p (chrF vs sft) | sent/s |" in md
    assert "| wmt21:Mideind |" in md and "| – |\n" in md  # no speed for submitted outputs
    overview = md.split("## chrF overview")[1].split("\n## ")[0]
    assert "| system | flores200:devtest en→is | flores200:devtest is→en | wmt21:en-is en→is |" in overview
    assert "| sft | 35.0 ± 1.0 | – | – |" in overview
    assert "nw:0" in md.split("## Signatures")[1]


def test_rates_show_a_dash_for_an_unknown_target_language_and_for_old_results():
    kgv = result("tell", "adapter", 20.0, direction="en-kgv")
    old = row("tell", "adapter", 20.0, direction="is-en")
    del old["off_target"], old["copies"]
    md = render_markdown([kgv, Result.from_dict(old)], [], CFG, [])
    assert "| tell | 6.7 ± 1.0 | 20.0 ± 1.0 | 19.0 ± 1.0 | n/a (no COMET model) | – | 2.0% |" in md
    assert "| tell | 6.7 ± 1.0 | 20.0 ± 1.0 | 19.0 ± 1.0 | n/a (no COMET model) | – | – |" in md


def test_empty_results_render():
    md = render_markdown([], ["tell: skipped", "sft: skipped"], CFG, [])
    assert "sft: skipped" in md


def test_rich_table_has_a_row_per_system():
    table = rich_table(RESULTS)
    assert table.row_count == 5 and len(table.columns) == 4


def test_write_report_and_load_results(tmp_path):
    for r in RESULTS:
        path = tmp_path / r.system.replace(":", "-") / f"{r.testset.replace(':', '-')}.{r.direction}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(r.to_dict()))
    (tmp_path / "zero-shot" / "broken.json").write_text("{")
    (tmp_path / "zero-shot" / "other.json").write_text("[]")  # JSON, but no result
    loaded = load_results(tmp_path)
    assert sorted(loaded, key=RESULTS.index) == RESULTS
    plots = write_report(tmp_path, loaded, [], CFG)
    assert [p.name for p in plots] == ["chrf.png"]  # one task budget: no data-efficiency curve
    assert (tmp_path / "plots" / "chrf.png").read_bytes()[:4] == b"\x89PNG"
    assert "![chrf](plots/chrf.png)" in (tmp_path / "REPORT.md").read_text()


def test_data_efficiency_curve_needs_two_budgets(tmp_path):
    budgets = [result("tell", "adapter", 30.0 + t / 1e4, method="tell", tokens=t) for t in (10000, 40000)]
    budgets.append(result("sft", "adapter", 25.0, method="sft", tokens=10000))
    points = efficiency_points(budgets)
    assert points["flores200:devtest en→is"]["tell"] == [(10000, 31.0, 1.0), (40000, 34.0, 1.0)]
    assert plot_data_efficiency(budgets, tmp_path / "curve.png") == tmp_path / "curve.png"
    assert plot_data_efficiency(budgets[1:], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_published_reference_rows_are_labelled_and_apart_from_ours():
    from lowres_mt.config import PublishedScore

    cfg = RecipeConfig(name="en-kgv", languages=("en", "kgv"), eval=EvalConfig(published=(
        PublishedScore("Claude 2, W+S+G in context", "mtob:kgv-test", "kgv-en", "chrF", "44.7", "Tanzer et al. 2024"),
    )))
    md = render_markdown(RESULTS, [], cfg, [])
    section = md.split("## Published reference points")[1].split("\n## ")[0]
    assert "not run here" in section
    assert "| Claude 2, W+S+G in context | mtob:kgv-test kgv→en | chrF | 44.7 | Tanzer et al. 2024 |" in section
    assert "Claude 2" not in md.split("## chrF overview")[1].split("## Published")[0]
    assert "## Published" not in render_markdown(RESULTS, [], CFG, [])


def test_recipe_published_rows_load_and_reject_bad_entries(tmp_path):
    import pytest

    from lowres_mt.config import load_recipe
    from lowres_mt.errors import UserError

    cfg = load_recipe("en-kgv")
    assert {(p.direction, p.score) for p in cfg.eval.published} >= {("kgv-en", "44.7"), ("en-kgv", "45.8")}
    bad = tmp_path / "bad.yaml"
    recipes = Path(__file__).resolve().parent.parent / "recipes"
    bad.write_text(f"extends: {recipes / 'en-kgv.yaml'}\n" "eval:\n  published:\n    - {system: x, testset: t, direction: en-kgv}\n")
    with pytest.raises(UserError, match="published\\[0\\].metric"):
        load_recipe(str(bad))


@pytest.mark.parametrize(("alphabet", "decode", "note"), [
    (True, {}, ", answers into is written with a–z and áðéíóúýþæö only."),  # the shipped table, as before
    ("auto", {"en-is": "ðó", "is-en": ""}, ", answers into en written with a–z only, answers into is written "
                                            "with a–z and ðó only."),  # what each result was decoded with
    (False, {}, "≤ 128 new tokens, loop stop"),
])
def test_header_names_the_alphabet_answers_were_written_in(alphabet, decode, note):
    cfg = RecipeConfig(name="en-is", languages=("en", "is"), eval=EvalConfig(alphabet=alphabet))
    results = [dataclasses.replace(result("sft", "adapter", 35.0, direction=d, method="sft"), tgt_lang=d[-2:],
                                   decode={"alphabet": letters}) for d, letters in decode.items()] or RESULTS
    md = render_markdown(results, [], cfg, [])
    assert note in md and (alphabet is not False or "a–z" not in md)


@pytest.mark.parametrize(("ev", "decodes", "note"), [
    (EvalConfig(), [{"backend": "torch", "quantization": ""}], "decoding: greedy on the torch backend, ≤"),
    (EvalConfig(num_beams=4), [], "decoding: beam 4, ≤"),  # results from before the backend was recorded
    (EvalConfig(), [{"backend": "torch", "num_beams": 1, "mbr_samples": 8, "epsilon": 0.02}],  # as recorded,
     "decoding: MBR over 8 epsilon-sampled answers (ε = 0.02, chrF consensus) on the torch backend, ≤"),  # not as set now
    (EvalConfig(mbr_samples=8), [{"backend": "torch"}],
     "decoding: MBR over 8 epsilon-sampled answers (ε = 0.02, chrF consensus) on the torch backend, ≤"),
    (EvalConfig(backend="ctranslate2"), [{"backend": "ctranslate2", "quantization": "int8_float32"},
                                        {"backend": "torch", "quantization": ""}],
     "decoding: greedy on the ctranslate2 int8_float32 / torch backend, ≤"),  # a fallback shows
    (EvalConfig(), [{"backend": "torch", "quantization": "bfloat16"}, {"num_beams": 1}],  # with older results
     "decoding: greedy on the torch bfloat16 backend (results recorded before backends: the torch engine in "
     "float32), ≤"),
])
def test_header_names_the_search_and_the_backend_that_decoded(ev, decodes, note):
    cfg = RecipeConfig(name="en-is", languages=("en", "is"), eval=ev)
    results = [dataclasses.replace(r, decode=d) for r, d in zip(RESULTS[2:], decodes)] or RESULTS
    assert note in render_markdown(results, [], cfg, [])
