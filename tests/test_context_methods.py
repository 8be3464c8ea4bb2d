"""The +context methods (tell+context, sft+context) on the book fixture world: every task prompt
carries its evidence block, no training prompt holds its own pair or a near-duplicate of it, no
test sentence enters any prompt, dev rows keep their block for dev chrF, and inference rebuilds
the same block from the run's own task pairs."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from test_book_tasks import count_words, leaks, world  # noqa: F401 — the fixture is used by name

from lowres_mt.book.context import evidence_for_run
from lowres_mt.data.filters import is_near_copy
from lowres_mt.data.guard import guard_from_sets, protected_sets
from lowres_mt.dataset import build_dataset
from lowres_mt.errors import UserError
from lowres_mt.io import read_jsonl
from lowres_mt.records import Pair
from lowres_mt.train.devset import dev_sample

HEADINGS = ("Entries from a Kalamang–English wordlist:", "example sentences:")


def build(cfg, tmp_path, method):
    out = tmp_path / "run" / "data"
    build_dataset(cfg, method=method, out_dir=out, count_tokens=count_words)
    return read_jsonl(out / "train.jsonl"), read_jsonl(out / "dev.jsonl")


def retrieved(context: str) -> list[tuple[str, str]]:
    """The (source, target) example pairs inside an evidence block."""
    part = context.split("example sentences:\n", 1)[1] if "example sentences:" in context else ""
    pairs = []
    for item in part.split("\n\n"):
        if "\n→ " in item:
            src, tgt = item.split("\n→ ", 1)
            pairs.append((src, tgt))
    return pairs


@pytest.mark.parametrize("method", ["tell+context", "sft+context"])
def test_every_task_prompt_carries_evidence_but_never_its_own_pair(world, tmp_path, method):  # noqa: F811
    cfg, _ = world
    # more pairs than the world's default budget, and no general data (the world has none)
    cfg = replace(cfg, task=replace(cfg.task, tokens=400), general=replace(cfg.general, ratio=0.0))
    rows, dev = build(cfg, tmp_path, method)
    task = [r for r in rows if r["role"] == "task"]
    with_context = [r for r in task if r.get("context")]  # a sentence with no word or pair found has none
    assert task and len(with_context) >= len(task) // 2
    some_pairs = 0
    for row in with_context:
        user = row["messages"][0]["content"]
        assert row["context"] in user and user.index(row["context"]) > 0  # the instruction stays first
        assert any(h in row["context"] for h in HEADINGS)
        for src, tgt in retrieved(row["context"]):
            some_pairs += 1
            for text in (row["src"], row["tgt"]):
                assert not is_near_copy(src, text) and not is_near_copy(tgt, text), (row["id"], src)
        assert not leaks(user)  # no test sentence in any prompt
    assert some_pairs > 0
    assert dev and any(r.get("context") for r in dev)
    assert any(s.context for s in dev_sample(dev, 2))  # dev chrF prompts carry the same blocks
    assert not any(leaks(m["content"]) for r in rows + dev for m in r["messages"])


def test_inference_rebuilds_the_block_from_the_runs_own_pairs(world, tmp_path):  # noqa: F811
    cfg, _ = world
    rows, _ = build(cfg, tmp_path, "sft+context")
    evidence = evidence_for_run(tmp_path / "run", cfg, guard_from_sets(protected_sets(cfg)), count_words)
    task_sources = {r["src"] for r in rows if r["role"] == "task"} | {r["tgt"] for r in rows if r["role"] == "task"}
    pool = {p.src for p in evidence.book.pairs} | {p.tgt for p in evidence.book.pairs}
    assert pool <= task_sources  # nothing beyond the run's task budget
    first = next(r for r in rows if r["role"] == "task")
    src_lang, tgt_lang = first["direction"].split("-")
    again = evidence.block(first["src"], src_lang, tgt_lang, exclude=Pair(first["src"], first["tgt"], src_lang, tgt_lang))
    assert again == first["context"]
    block = evidence.block("wat kon tiba", "kgv", "en")  # a test sentence: it is not in the pool
    assert not any(is_near_copy(src, "wat kon tiba") for src, _ in retrieved(block))


def test_a_context_run_without_its_data_is_a_clear_error(world, tmp_path):  # noqa: F811
    cfg, _ = world
    (tmp_path / "bare").mkdir()
    with pytest.raises(UserError, match="data/train.jsonl"):
        evidence_for_run(tmp_path / "bare", cfg, guard_from_sets(protected_sets(cfg)), count_words)


def test_context_methods_are_recipe_methods():
    from lowres_mt.config import METHODS, load_recipe

    assert {"tell+context", "sft+context"} <= set(METHODS)
    cfg = load_recipe("en-kgv", ["train.method=tell+context", "context.tokens=128"])
    assert cfg.train.method == "tell+context" and cfg.context.tokens == 128
    assert json.dumps(cfg.to_dict()["context"]) == '{"setting": "W+S", "tokens": 128, "entries_per_word": 2}'


def test_an_adapter_of_a_context_run_is_prompted_with_the_evidence(tiny_tokenizer, monkeypatch):
    from conftest import make_tiny_model

    from lowres_mt.config import RecipeConfig, TaskConfig
    from lowres_mt.evaluate.generate import HypothesisMaker
    from lowres_mt.evaluate.systems import AdapterSystem
    from lowres_mt.translate import DecodeSettings, Engine

    class Evidence:
        def block(self, src, src_lang, tgt_lang, exclude=None):
            return f"EVIDENCE FOR {src}"

    seen = []
    monkeypatch.setattr(Engine, "complete", lambda self, prompts, description="", tgt_lang=None: seen.extend(prompts) or
                        ["x"] * len(prompts))
    cfg = RecipeConfig(name="toy", languages=("en", "kgv"), task=TaskConfig(train=("toy:train",)))
    maker = HypothesisMaker(cfg, DecodeSettings(max_new_tokens=2), progress=False,
                            load_run=lambda run: (make_tiny_model(tiny_tokenizer), tiny_tokenizer, cfg))
    monkeypatch.setattr(maker, "_evidence", lambda run, run_cfg, engine: Evidence())
    system = AdapterSystem("toy-sft+context", "plain", run="runs/toy", method="sft+context")
    pairs = [Pair("the boat", "kabor", "en", "kgv"), Pair("", "", "en", "kgv")]
    assert maker.make(system, pairs, "en-kgv", "toy:test") == ["x", ""]
    assert len(seen) == 1 and "EVIDENCE FOR the boat" in seen[0]
    assert seen[0].index("Translate from English to Kalamang.") < seen[0].index("EVIDENCE FOR")
