"""The builder on the real corpora mirror: no dev/test sentence ever reaches a training file."""

import json

import pytest

from lowres_mt.config import load_recipe
from lowres_mt.corpora import load_set, mirror_dir
from lowres_mt.data.guard import protected_sets
from lowres_mt.dataset import build_dataset
from lowres_mt.text import normalize

pytestmark = pytest.mark.skipif(mirror_dir() is None, reason="no corpora mirror here (set LOWRES_MT_MIRROR)")


def protected_texts(cfg):
    return {normalize(t) for ref in protected_sets(cfg) for p in load_set(ref) for t in (p.src, p.tgt)} - {""}


def trained_texts(path):
    """Every message of every training row, plus the source/target of task rows."""
    texts = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        texts.update(normalize(row[k]) for k in ("src", "tgt") if row.get(k))
        if row["role"] != "general":
            for message in row["messages"]:
                texts.update(normalize(part) for part in message["content"].split("\n\n"))
    return texts


@pytest.mark.parametrize(("recipe", "method"), [("en-is", "tell"), ("en-kgv", "tell+book")])
def test_no_protected_sentence_reaches_train_jsonl(tmp_path, tiny_tokenizer, recipe, method):
    cfg = load_recipe(recipe, ["task.tokens=4000", "general.ratio=1"])
    out = tmp_path / "data"
    report = build_dataset(cfg, method=method, out_dir=out, tokenizer=tiny_tokenizer)
    assert report.examples
    assert not protected_texts(cfg) & trained_texts(out / "train.jsonl")
    if recipe == "en-kgv":
        assert "mtob:kgv-test" in protected_sets(cfg)
        assert any(k.startswith("book") for k in report.examples)
