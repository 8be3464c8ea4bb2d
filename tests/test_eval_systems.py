"""System resolution (runs, apertium, notes) and ICL example retrieval with the contamination guard."""

import json
import os
import stat

import pytest
import torch
from safetensors.torch import save_file

from lowres_mt.config import RecipeConfig, TaskConfig, dump_recipe
from lowres_mt.errors import UserError
from lowres_mt.evaluate.outside import apertium_translate
from lowres_mt.evaluate.retrieval import ShotRetriever, guard_pool, orient
from lowres_mt.evaluate.systems import resolve_systems
from lowres_mt.records import Pair
from lowres_mt.text import normalize

CFG = RecipeConfig(name="en-is", languages=("en", "is"), task=TaskConfig(train=("parice:eso",)))


def _run(root, name, method, tokens=10000, recipe="en-is", weights=b"abc"):
    run = root / name
    (run / "adapter").mkdir(parents=True)
    (run / "adapter" / "adapter_config.json").write_text("{}")
    save_file({"w": torch.tensor(list(weights), dtype=torch.uint8)}, run / "adapter" / "adapter_model.safetensors")
    (run / "run.json").write_text(json.dumps({"recipe": recipe, "method": method, "base_model": "gemma-3-270m",
                                              "task_tokens": tokens}))
    (run / "config.yaml").write_text(dump_recipe(CFG))
    return run


def test_missing_runs_become_notes(tmp_path):
    (tmp_path / "half-done").mkdir()  # a run folder without an adapter yet
    systems, notes = resolve_systems(CFG, ["tell", "sft", "zero-shot", "half-done"], tmp_path)
    assert [s.name for s in systems] == ["zero-shot"]
    assert notes[0].startswith("tell: skipped — no trained run") and "--method tell" in notes[0]
    assert notes[2].startswith("half-done: skipped")


def test_an_unknown_system_name_is_an_error(tmp_path):
    with pytest.raises(UserError, match="unknown system 'nope'.*zero-shot"):
        resolve_systems(CFG, ["zero-shot", "nope"], tmp_path)


def test_runs_are_adapter_systems_identified_by_their_bytes(tmp_path):
    _run(tmp_path, "en-is-tell", "tell")
    _run(tmp_path / "b", "en-is-tell", "tell", weights=b"abd")
    (tell,), _ = resolve_systems(CFG, ["tell"], tmp_path)
    (other,), _ = resolve_systems(CFG, ["tell"], tmp_path / "b")
    assert tell.kind == "adapter" and tell.style == "tell" and tell.task_tokens == 10000
    assert tell.model == "gemma-3-270m" and tell.fingerprint != other.fingerprint


def test_every_training_method_resolves_to_its_default_run(tmp_path):
    _run(tmp_path, "en-is-tell+book", "tell+book")
    (system,), notes = resolve_systems(CFG, ["tell+book", "sft"], tmp_path, all_runs=True)
    assert (system.name, system.run.name, system.style) == ("tell+book", "en-is-tell+book", "tell")
    assert "en-is-sft" in notes[0] and "--method sft" in notes[0]


def test_a_training_vocabulary_is_part_of_the_adapter_identity(tmp_path):
    run = _run(tmp_path, "en-is-tell", "tell")
    (before,), _ = resolve_systems(CFG, ["tell"], tmp_path)
    (run / "adapter" / "train_vocabulary.json").write_text('{"token_ids": [1, 2, 3]}')
    (after,), _ = resolve_systems(CFG, ["tell"], tmp_path)
    assert before.fingerprint != after.fingerprint  # decoding changes, so cached results do not apply


def test_all_runs_adds_other_budgets_of_the_recipe(tmp_path):
    _run(tmp_path, "en-is-sft", "sft")
    _run(tmp_path, "en-is-sft-40k", "sft", tokens=40000)
    _run(tmp_path, "other-sft", "sft", recipe="en-kgv")
    systems, _ = resolve_systems(CFG, ["sft"], tmp_path, all_runs=True)
    assert [(s.name, s.task_tokens) for s in systems] == [("sft", 10000), ("en-is-sft-40k", 40000)]


def test_apertium_is_skipped_with_a_note_when_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    systems, notes = resolve_systems(CFG, ["apertium"], tmp_path)
    assert systems == [] and "apertium: skipped" in notes[0]


def test_apertium_runs_line_by_line(tmp_path, monkeypatch):
    fake = tmp_path / "apertium"
    fake.write_text("#!/bin/sh\n[ \"$1\" = -u ] && [ \"$2\" = isl-eng ] || exit 3\ntr a-zþ A-ZÞ\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    (system,), notes = resolve_systems(CFG, ["apertium"], tmp_path)
    assert system.kind == "apertium" and notes == []
    assert apertium_translate(["góðan dag", "hæ"], "is-en") == ["GóðAN DAG", "Hæ"]
    with pytest.raises(UserError, match="only is-en"):
        apertium_translate(["hello"], "en-is")


def _pair(src, tgt, i=0):
    return Pair(src, tgt, "en", "is", "toy", str(i))


def test_normalise_ignores_case_punctuation_and_spacing():
    assert normalize("  Góðan   DAGINN! ") == normalize("góðan daginn") == "góðan daginn"


def test_guard_drops_test_sentences_on_either_side_and_duplicates():
    pool = [_pair("Good morning!", "Góðan daginn."), _pair("The dog runs.", "Hundurinn hleypur."),
            _pair("the dog runs", "Hundur hleypur."), _pair("Hello.", "hvar er stöðin")]
    test = [_pair("good morning", "Góðan dag."), _pair("Where is the station?", "Hvar er stöðin?")]
    kept, dropped = guard_pool(pool, test)
    assert dropped == 2 and [p.tgt for p in kept] == ["Hundurinn hleypur."]


def test_orient_reverses_pairs_to_the_direction():
    pairs = [_pair("cat", "köttur"), Pair("hundur", "dog", "is", "en"), Pair("a", "b", "de", "fr")]
    assert [(p.src, p.tgt) for p in orient(pairs, "is-en")] == [("köttur", "cat"), ("hundur", "dog")]


def test_retriever_puts_the_most_similar_example_last():
    pool = [_pair("the weather is cold today", "a", 0), _pair("the cat sleeps on the sofa", "b", 1),
            _pair("my cat likes the sofa and the cat bed", "c", 2), _pair("trains run late", "d", 3)]
    shots = ShotRetriever(pool, k=2).shots(["where does the cat sleep on the sofa", "late trains"])
    assert shots[0][-1].id == "1" and {p.id for p in shots[0]} == {"1", "2"}
    assert shots[1][-1].id == "3"
    assert len(ShotRetriever(pool, k=10).shots(["x"])[0]) == 4  # k capped at the pool size
    # a near-duplicate of the sentence being translated, on either side, is never a shot
    near = [*pool, _pair("The cat sleeps on the sofa!", "e", 4), _pair("köttur", "the cat sleeps on the sofa.", 5)]
    picked = ShotRetriever(near, k=2).shots(["the cat sleeps on the sofa"])[0]
    assert len(picked) == 2 and not {p.id for p in picked} & {"1", "4", "5"}
    with pytest.raises(ValueError):
        ShotRetriever([], k=2)
