"""`lowres-mt select` end to end on a tiny proxy and a tiny pool: the files it writes, the cache,
and the data builder reading the selection."""

from __future__ import annotations

import json

import pytest
import typer
import yaml
from test_select_trajectories import LORA, toy_pool
from typer.testing import CliRunner

from lowres_mt.cli import select as select_cli
from lowres_mt.config import load_recipe
from lowres_mt.errors import UserError


@pytest.fixture
def toy_recipe(tmp_path, tiny_model_dir, monkeypatch):
    """A recipe whose general corpora are the toy pool (load_set patched), runs under tmp_path."""
    pool = toy_pool(30)
    monkeypatch.setattr("lowres_mt.corpora.load_set", lambda ref: [ins for ins in pool if ins.corpus == ref])
    monkeypatch.setenv("LOWRES_MT_RUNS", str(tmp_path / "runs"))
    recipe = tmp_path / "toy.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "toy", "languages": ["en", "is"], "base_model": str(tiny_model_dir), "seed": 2,
        "general": {"corpora": ["toy:a", "toy:b"], "max_tokens": 40},
        "train": {"batch_tokens": 160, "max_length": 64, "lr": 5e-3, "threads": 1, "warmup_ratio": 0.0},
        "lora": LORA}), encoding="utf-8")
    return recipe, pool


def invoke(*args):
    app = typer.Typer()
    app.callback()(lambda: None)
    select_cli.register(app)
    return CliRunner().invoke(app, ["select", *map(str, args)], catch_exceptions=True)


def read_selection(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_select_writes_selection_report_and_plot_then_reuses_the_cache(toy_recipe, tmp_path, tiny_model_dir,
                                                                        monkeypatch):
    recipe, pool = toy_recipe
    common = ["--proxy", tiny_model_dir, "--clusters", 4, "--epochs", 2, "--checkpoints", 3, "--no-progress"]
    result = invoke(recipe, "--budget", 10, *common)
    assert result.exit_code == 0, result.output + repr(result.exception)
    out = tmp_path / "runs" / "toy-s2l"
    rows = read_selection(out / "selection.jsonl")
    known = {(ins.corpus, ins.id) for ins in pool if ins.id != "long"}  # "long" exceeds max_tokens
    assert len(rows) == 10 and len({(r["corpus"], r["id"]) for r in rows}) == 10
    assert all((r["corpus"], r["id"]) in known and 0 <= r["cluster"] < 4 for r in rows)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["budget"] == 10 and report["pool"] == 30 and report["clusters"] <= 4
    assert report["trajectory_shape"] == [30, len(report["checkpoints"])] and not report["cache_hit"]
    assert sum(report["cluster_selected"].values()) == 10
    assert sum(s["selected"] for s in report["sources"].values()) == 10
    assert (out / "clusters.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    from lowres_mt import models

    monkeypatch.setattr(models, "load_base", lambda *a, **k: pytest.fail("cache hit must not load the proxy"))
    monkeypatch.setattr(models, "load_tokenizer", lambda *a, **k: pytest.fail("token counts are cached too"))
    again = invoke(recipe, "--budget", 6, "--stratify", *common)
    assert again.exit_code == 0, again.output + repr(again.exception)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["cache_hit"] and report["budget"] == 6 and report["stratified"]
    assert {s: c["selected"] for s, c in report["sources"].items()} == {"toy:a": 3, "toy:b": 3}
    assert len(read_selection(out / "selection.jsonl")) == 6

    # the data builder draws general examples from exactly this selection
    from lowres_mt.data.pools import load_selection

    cfg = load_recipe(str(recipe), ["general.select=s2l"])
    assert load_selection(cfg) == {(r["corpus"], r["id"]) for r in read_selection(out / "selection.jsonl")}


def test_budget_beyond_the_pool_is_a_user_error(toy_recipe, tiny_model_dir):
    recipe, _ = toy_recipe
    result = invoke(recipe, "--budget", 31, "--proxy", tiny_model_dir, "--no-progress")
    assert isinstance(result.exception, UserError)
    assert "between 1 and the pool size (30 examples)" in str(result.exception)


def test_pool_cap_is_a_seeded_subset(toy_recipe):
    from lowres_mt.select import load_pool

    recipe, pool = toy_recipe
    cfg = load_recipe(str(recipe))
    small, tokens = load_pool(cfg, limit=12)
    assert len(small) == len(tokens) == 12
    assert [ins.id for ins in small] == [ins.id for ins in load_pool(cfg, limit=12)[0]]
    order = {(ins.corpus, ins.id): i for i, ins in enumerate(load_pool(cfg)[0])}
    assert [order[(ins.corpus, ins.id)] for ins in small] == sorted(order[(ins.corpus, ins.id)] for ins in small)
