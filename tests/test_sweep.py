"""`lowres-mt sweep`: the grid, the SFT-matches-TELL interpolation, and a tiny sweep end to end
(trained, selected on dev chrF, evaluated, summarised; rerun skips; an interrupted sweep resumed
ends with the same sweep.json as an uninterrupted one)."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pytest
from test_build import fake_instructions, fake_pairs

import lowres_mt.corpora
from lowres_mt.errors import UserError
from lowres_mt.sweep.grid import parse_axes, parse_methods, plan_runs, split_values
from lowres_mt.sweep.summary import sft_tokens_to_match

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("text, values", [
    ("2500,10000", ["2500", "10000"]),
    ("[a,b],[c]", ["[a,b]", "[c]"]),
    ("{x: 1, y: 2},3", ["{x: 1, y: 2}", "3"]),
    ("0.5", ["0.5"]),
])
def test_values_split_at_top_level_commas(text, values):
    assert split_values(text) == values


@pytest.mark.parametrize("items, message", [
    (["task.tokens"], "KEY=V1,V2"),
    (["task.tokens=1,,2"], "empty value"),
    (["task.tokens=1,1"], "repeats"),
    (["task.tokens=1", "task.tokens=2"], "twice"),
])
def test_bad_axes_are_one_line_errors(items, message):
    with pytest.raises(UserError, match=message):
        parse_axes(items)


def test_unknown_method_is_an_error():
    with pytest.raises(UserError, match="unknown method nope"):
        parse_methods("tell,nope")


def test_runs_are_named_by_method_and_varying_values():
    runs = plan_runs(parse_axes(["task.tokens=2500,10000", "train.max_steps=2"]), ["tell", "sft"])
    assert [r.name for r in runs] == ["tell-task.tokens=2500", "tell-task.tokens=10000",
                                      "sft-task.tokens=2500", "sft-task.tokens=10000"]
    assert runs[0].overrides == ["task.tokens=2500", "train.max_steps=2"]
    assert [r.name for r in plan_runs(parse_axes(["train.lr=1e-4"]), ["sft"])] == ["sft-run"]
    with pytest.raises(UserError, match="share the folder name"):
        plan_runs(parse_axes(["task.train=[a b],[a_b]"]), ["sft"])


@pytest.mark.parametrize("tell, sft, expected", [
    ((10000, 15.0), [(2500, 10.0), (10000, 13.0), (40000, 17.0)], (20000, "=", 2.0)),  # halfway in log tokens
    ((10000, 15.0), [(40000, 16.0), (2500, 15.5)], (2500, "<=", 0.25)),
    ((10000, 25.0), [(2500, 16.0), (40000, 20.0)], (40000, ">", 4.0)),
    ((10000, 13.0), [(2500, 10.0), (10000, 13.0)], (10000, "=", 1.0)),
])
def test_sft_tokens_to_match_tell_interpolate_in_log_tokens(tell, sft, expected):
    match = sft_tokens_to_match(tell, sft)
    assert (match["sft_tokens"], match["bound"], match["ratio"]) == expected


# -- a tiny sweep end to end

@pytest.fixture
def toy_corpora(monkeypatch):
    sets = {"toy:train": fake_pairs("toy:train", 200, 1), "toy:dev": fake_pairs("toy:dev", 20, 3),
            "toy:test": fake_pairs("toy:test", 20, 4), "gen:a": fake_instructions("gen:a", 300)}

    def load_set(ref):
        if ref not in sets:
            raise UserError(f"unknown set {ref}")
        return list(sets[ref])

    def set_info(ref):
        if ref not in sets:
            raise UserError(f"unknown set {ref}")
        return SimpleNamespace(ref=ref, role="general" if ref.startswith("gen") else "train",
                               directions=("en-is", "is-en"), languages=("en", "is"),
                               files=(SimpleNamespace(path=f"{ref}.txt", sha256="0" * 64, size=0),))

    monkeypatch.setattr(lowres_mt.corpora, "load_set", load_set)
    monkeypatch.setattr(lowres_mt.corpora, "set_info", set_info)


@pytest.fixture
def toy_recipe(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("LOWRES_MT_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("LOWRES_MT_RESULTS", str(tmp_path / "results"))
    path = tmp_path / "toy.yaml"
    path.write_text(json.dumps({
        "name": "toy", "languages": ["en", "is"], "base_model": str(tiny_model_dir), "seed": 3,
        "task": {"train": ["toy:train"], "dev": "toy:dev", "guard": ["toy:test"], "tokens": 300, "dev_size": 4},
        "general": {"corpora": ["gen:a"], "ratio": 1.0, "max_tokens": 64},
        "mono": {"corpora": []},
        "train": {"max_steps": 3, "batch_tokens": 192, "max_length": 96, "eval_every": 3, "save_every": 1,
                  "dev_chrf_size": 2, "lr": 5e-3, "threads": 1, "warmup_ratio": 0.0, "dtype": "float32"},
        "lora": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]},
        "eval": {"max_new_tokens": 6, "batch_size": 4, "bootstrap": 20, "testsets": ["toy:test"]}}),
        encoding="utf-8")
    return path


def sweep(monkeypatch, *args: str) -> int:
    from lowres_mt.cli import main

    monkeypatch.setattr(sys, "argv", ["lowres-mt", "sweep", *args, "--no-progress"])
    with pytest.raises(SystemExit) as done:
        main()
    return done.value.code or 0


def test_sweep_trains_selects_evaluates_and_skips_on_rerun(tmp_path, toy_corpora, toy_recipe, monkeypatch, capsys):
    args = [str(toy_recipe), "task.tokens=150,300", "task.epochs=1,2", "--methods", "tell,sft", "--sample", "3"]
    assert sweep(monkeypatch, *args) == 0
    folder = tmp_path / "runs" / "sweeps" / "toy-task.tokens-task.epochs"
    summary = json.loads((folder / "sweep.json").read_text())
    points = summary["points"]
    assert len(points) == 8 and summary["select"] == "task.epochs"
    assert all(json.loads((folder / p["run"] / "run.json").read_text())["status"] == "done" for p in points)
    for method in ("tell", "sft"):
        for tokens in ("150", "300"):
            group = [p for p in points if p["method"] == method and p["values"]["task.tokens"] == tokens]
            chosen = [p for p in group if p["selected"]]
            assert len(chosen) == 1 and chosen[0]["dev_chrf"] == max(p["dev_chrf"] for p in group)
            assert set(chosen[0]["results"]) == {"toy:test en-is", "toy:test is-en"}
            assert all(not p["results"] for p in group if not p["selected"])
    assert {"copy toy:test en-is", "copy toy:test is-en"} <= set(summary["baselines"])
    assert len(summary["matches"]) == 4  # 2 TELL budgets × 2 directions
    for point in (p for p in points if p["method"] == "tell" and p["selected"]):
        assert all(0 < scores["p_vs_sft"] <= 1 for scores in point["results"].values())
    assert (folder / "sweep.md").read_text().count("| ✓ |") == 4
    assert (folder / "chrf-by-task.tokens.png").read_bytes()[:4] == b"\x89PNG"

    capsys.readouterr()
    assert sweep(monkeypatch, *args) == 0
    assert capsys.readouterr().err.count("already trained") == 8
    assert json.loads((folder / "sweep.json").read_text()) == summary


def test_interrupted_sweep_resumes_to_the_same_summary(tmp_path, toy_corpora, toy_recipe, monkeypatch):
    import lowres_mt.train.loop as loop

    args = [str(toy_recipe), "task.tokens=150,300", "--methods", "sft", "--sample", "3"]
    assert sweep(monkeypatch, *args, "--name", "whole") == 0

    calls = {"n": 0}
    step = loop._train_step

    def interrupted_step(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:  # the second run's second step: its first checkpoint is on disk
            raise KeyboardInterrupt
        return step(*a, **k)

    monkeypatch.setattr(loop, "_train_step", interrupted_step)
    assert sweep(monkeypatch, *args, "--name", "halted") == 130
    halted = tmp_path / "runs" / "sweeps" / "halted"
    assert json.loads((halted / "sft-task.tokens=300" / "run.json").read_text())["status"] == "interrupted"
    assert not (halted / "sweep.json").exists()

    monkeypatch.setattr(loop, "_train_step", step)
    assert sweep(monkeypatch, *args, "--name", "halted") == 0
    whole = json.loads((tmp_path / "runs" / "sweeps" / "whole" / "sweep.json").read_text())
    assert json.loads((halted / "sweep.json").read_text()) == whole


def test_selecting_on_a_key_that_is_not_an_axis_is_an_error(toy_corpora, toy_recipe, monkeypatch, capsys):
    assert sweep(monkeypatch, str(toy_recipe), "task.tokens=150,300", "--select", "train.lr") == 2
    assert "not a sweep axis" in capsys.readouterr().err
