"""Synthetic pairs (`lowres-mt synth` files) in the training data: guarded, tagged in training
prompts only, each in its own direction, counted apart from the real task tokens."""

import json
import shutil

import pytest
from conftest import FIXTURES

from lowres_mt.config import load_recipe
from lowres_mt.dataset import build_dataset
from lowres_mt.errors import UserError

SYNTH = [  # (synthetic source, real target, direction)
    ("The harbour is cold today.", "Havnin er køld í dag.", "en-fo"),
    ("We eat bread at home.", "Vit eta breyð heima.", "en-fo"),
    ("The cat drinks milk.", "Kettan drekkur mjólk.", "en-fo"),  # the test set's pair: must be dropped
    ("Eg lesi bókina.", "I read the book.", "fo-en"),
    ("Hann syngur væl.", "He sings well.", "fo-en"),
    ("The sea is calm.", "Havið er kvirt.", "en-de"),  # another pair of languages: skipped
]


@pytest.fixture
def project(tmp_path):
    shutil.copytree(FIXTURES / "own_pair", tmp_path / "data")
    lines = [json.dumps({"source": s, "target": t, "direction": d, "run": "r", "line": str(i)}, ensure_ascii=False)
             for i, (s, t, d) in enumerate(SYNTH)]
    (tmp_path / "synth.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "r.yaml").write_text(json.dumps({
        "extends": "_base", "name": "en-fo", "languages": ["en", "fo"], "general": {"ratio": 0},
        "task": {"train": ["data/train.tsv"], "guard": ["data/test.tsv"], "dev": "data/dev.tsv",
                 "dev_size": 2, "tokens": 100000, "langid": False},
        "synthetic": {"corpora": ["synth.jsonl"], "ratio": 10.0}}), encoding="utf-8")
    return tmp_path


def build(project, tiny_tokenizer, *overrides, method="tell"):
    cfg = load_recipe(str(project / "r.yaml"), list(overrides))
    out = project / "runs" / method / "data"
    report = build_dataset(cfg, method=method, out_dir=out, tokenizer=tiny_tokenizer)
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    dev = [json.loads(line) for line in (out / "dev.jsonl").read_text(encoding="utf-8").splitlines()]
    return report, rows, dev, json.loads((out / "manifest.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("method", ["tell", "sft"])
def test_synthetic_pairs_are_guarded_tagged_and_directed(project, tiny_tokenizer, method):
    report, rows, dev, manifest = build(project, tiny_tokenizer, method=method)
    synthetic = [r for r in rows if r["role"] == "synthetic"]
    assert {(r["src"], r["direction"]) for r in synthetic} == {
        ("The harbour is cold today.", "en-fo"), ("We eat bread at home.", "en-fo"),
        ("Eg lesi bókina.", "fo-en"), ("Hann syngur væl.", "fo-en")}
    assert all("<bt> " + r["src"] in r["messages"][0]["content"] for r in synthetic)
    real = [r for r in rows if r["role"] == "task"] + dev
    assert real and not any("<bt>" in m["content"] for r in real for m in r["messages"])
    ref = str(project / "synth.jsonl")
    assert manifest["corpora"][ref]["contaminated"] == 1 and manifest["corpora"][ref]["used"] == 4
    assert manifest["task_unique"]["pairs"] == 30  # real pairs only
    assert set(report.tokens) >= {"synthetic/en-fo", "synthetic/fo-en", "task/en-fo"}


def test_untagged_and_budgeted(project, tiny_tokenizer):
    report, rows, _, _ = build(project, tiny_tokenizer, "synthetic.tagged=false", "synthetic.ratio=0.01")
    synthetic = [r for r in rows if r["role"] == "synthetic"]
    assert len(synthetic) == 1  # 1% of the real tokens: the first pair drawn already fills it
    assert not any("<bt>" in m["content"] for r in rows for m in r["messages"])


def test_off_by_default_and_empty_is_an_error(project, tiny_tokenizer):
    _, rows, _, _ = build(project, tiny_tokenizer, "synthetic.ratio=0")
    assert not any(r["role"] == "synthetic" for r in rows)
    with pytest.raises(UserError, match="synthetic.corpora is empty"):
        build(project, tiny_tokenizer, "synthetic.corpora=[]")


def test_keep_takes_the_pairs_whose_source_explains_most(project, tiny_tokenizer):
    gains = {"0": 0.9, "1": -0.2, "2": 5.0, "3": 0.1, "4": 0.4, "5": 3.0}  # "2": guarded; "5": en-de
    path = project / "synth.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    path.write_text("".join(json.dumps({**r, "source_gain": gains[r["line"]]}, ensure_ascii=False) + "\n"
                            for r in rows) + "not a JSON line\n", encoding="utf-8")  # skipped, as without keep
    _, rows, _, manifest = build(project, tiny_tokenizer, "synthetic.keep=0.5")
    # the guard and the language pair act first: 4 candidates, the best half by gain is kept
    assert {r["src"] for r in rows if r["role"] == "synthetic"} == {"The harbour is cold today.", "Hann syngur væl."}
    entry = manifest["corpora"][str(path)]
    assert (entry["contaminated"], entry["low_gain"], entry["used"]) == (1, 2, 2)


def test_keep_needs_scores_and_a_share(project, tiny_tokenizer):
    with pytest.raises(UserError, match="lack .*lowres-mt synth --resume"):
        build(project, tiny_tokenizer, "synthetic.keep=0.5")
    with pytest.raises(UserError, match="synthetic.keep is a share"):
        build(project, tiny_tokenizer, "synthetic.keep=1.5")
    with pytest.raises(UserError, match="synthetic.keep is a share"):
        build(project, tiny_tokenizer, "synthetic.keep=0")
