"""Auxiliary book tasks, the in-context prompt builder and the en-kgv data build, on a fixture world:
manifests, mirror and cache under tmp_path with the book fixtures in the real files' shapes."""

import hashlib
import random
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from lowres_mt.book.aux_tasks import book_examples, split_continuation, split_passages
from lowres_mt.book.context import BookContext
from lowres_mt.config import load_recipe
from lowres_mt.corpora import fetch
from lowres_mt.data.guard import guard_from_sets, protected_sets
from lowres_mt.data.prompts import response_prefix
from lowres_mt.dataset import build_dataset
from lowres_mt.io import read_jsonl
from lowres_mt.text import normalize

FIX = Path(__file__).parent / "fixtures" / "book"
MACROS = {"macros": "localcommands.tex"}
CHAPTERS = ["localcommands.tex", "chapters/01Toy.tex", "chapters/02Leak.tex"]
SPLIT = {"dev_size": 1, "test_size": 1, "min_words": 3,
         "exclude": ["kalamang_grammar:examples", "mtob:kgv-train", "mtob:kgv-test"]}
CORPORA = {
    "mtob": ("mtob", ["mtob.zip"], {
        "kgv-train": ("train", "mtob-pairs", ["en", "kgv"], {"member": "data/kalamang/train_examples.txt",
                                                            "labels": ["English", "Kalamang"]}),
        "kgv-test": ("test", "mtob-table", ["en", "kgv"], {"member": "data/kalamang/test.tsv",
                                                           "columns": ["english", "kalamang"]}),
        "kgv-wordlist": ("book", "mtob-wordlist", ["kgv", "en"], {"member": "data/kalamang/dictionary.tsv",
                                                                  "layout": "gloss-colon"}),
    }),
    "kalamang_grammar": ("grammar", CHAPTERS + ["chapters/glossary.tex"], {
        "sections": ("book", "latex-sections", ["kgv", "en"], MACROS, CHAPTERS),
        "examples": ("book", "latex-examples", ["kgv", "en"], MACROS, CHAPTERS),
        "example-pairs": ("train", "latex-example-pairs", ["kgv", "en"], MACROS, CHAPTERS),
        "wordlist": ("book", "latex-wordlist", ["kgv", "en"], {}, ["chapters/glossary.tex"]),
    }),
    "dictionaria": ("dictionaria", ["cldf/entries.csv", "cldf/senses.csv", "cldf/examples.csv"], {
        "entries": ("book", "cldf-lexemes", ["kgv", "en"], {}, ["cldf/entries.csv", "cldf/senses.csv"]),
        "glossed": ("book", "cldf-glossed", ["kgv", "en"], {}, ["cldf/examples.csv"]),
        **{name: (role, "cldf-split", ["kgv", "en"], {**SPLIT, "split": name}, ["cldf/examples.csv"])
           for name, role in (("train", "train"), ("dev", "dev"), ("test", "test"))},
    }),
}
RECIPE = {
    "name": "toy-kgv", "languages": ["en", "kgv"], "seed": 3,
    "task": {"train": ["mtob:kgv-train", "dictionaria:train", "kalamang_grammar:example-pairs"], "tokens": 60,
             "dev": "dictionaria:dev", "dev_size": 2, "guard": ["mtob:kgv-test", "dictionaria:dev", "dictionaria:test"]},
    "eval": {"testsets": ["mtob:kgv-test"]},
    "book": {"wordlists": ["mtob:kgv-wordlist", "kalamang_grammar:wordlist", "dictionaria:entries"],
             "grammar": ["kalamang_grammar:sections"], "glossed": ["kalamang_grammar:examples", "dictionaria:glossed"],
             "passage_words": 40, "context_tokens": 120},
}
# the toy test set's sentences, as the guard compares them
PROTECTED = ["wat kon tiba", "one coconut fell", "joni tamatko", "where is the boat",
             "tumun mu kebun koi bo", "the children went to the garden"]


def count_words(texts):
    return [len(t.split()) for t in texts]


def _mirror(root: Path) -> None:
    shutil.copytree(FIX / "grammar", root / "grammar")
    shutil.copytree(FIX / "dictionaria", root / "dictionaria")
    (root / "mtob").mkdir()
    with zipfile.ZipFile(root / "mtob" / "mtob.zip", "w") as zf:
        for path in sorted((FIX / "mtob").rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(FIX / "mtob").as_posix())


def _manifest(name: str, folder: str, files: list[str], sets: dict, mirror: Path) -> dict:
    entries = []
    for path in files:
        data = (mirror / folder / path).read_bytes()
        entries.append({"path": path, "url": f"https://example.org/{path}",
                        "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
    specs = {}
    for set_name, spec in sets.items():
        role, fmt, langs, options = spec[:4]
        specs[set_name] = {"role": role, "format": fmt, "languages": langs, "options": options,
                           "files": spec[4] if len(spec) > 4 else files}
    return {"name": name, "description": name, "license": "CC-BY-4.0", "languages": ["en", "kgv"],
            "mirror": folder, "upstream": {"repo": "example/x", "commit": "0000000"}, "files": entries, "sets": specs}


@pytest.fixture
def world(tmp_path, monkeypatch):
    mirror, manifests = tmp_path / "mirror", tmp_path / "corpora"
    _mirror(mirror)
    manifests.mkdir()
    for name, (folder, files, sets) in CORPORA.items():
        (manifests / f"{name}.yaml").write_text(yaml.safe_dump(_manifest(name, folder, files, sets, mirror)))
    for key, value in {"LOWRES_MT_MIRROR": mirror, "LOWRES_MT_CORPORA": manifests,
                       "LOWRES_MT_CACHE": tmp_path / "cache"}.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.setattr(fetch, "_verified", {})
    (tmp_path / "toy-kgv.yaml").write_text(yaml.safe_dump(RECIPE))
    cfg = load_recipe(str(tmp_path / "toy-kgv.yaml"))
    return cfg, guard_from_sets(protected_sets(cfg))


def leaks(text: str) -> bool:
    norm = normalize(text)
    return any(p in norm for p in PROTECTED)


def test_book_examples_cover_every_kind_within_budget_and_never_the_test_set(world):
    cfg, guard = world
    made = book_examples(cfg, guard, random.Random(0), 400, count_words)
    assert made and all(ex.role == "book" for ex, _ in made)
    kinds = {ex.id.split("/")[1] for ex, _ in made}
    assert kinds == {"words", "gloss", "unglossed", "gloss-translation", "passage"}
    assert sum(cost for _, cost in made) <= 400 + max(cost for _, cost in made) * 4
    for ex, _ in made:
        assert not any(leaks(m.content) for m in ex.messages), ex.id
    again = book_examples(cfg, guard, random.Random(0), 400, count_words)
    assert [ex.id for ex, _ in again] == [ex.id for ex, _ in made]


def test_book_examples_are_anchor_tagged(world):
    cfg, guard = world
    made = {ex.id.split("/")[1]: ex for ex, _ in book_examples(cfg, guard, random.Random(1), 400, count_words)}
    word = made["words"]
    lead = response_prefix("tell", cfg.anchor, word.direction.split("-")[1], word.direction.split("-")[0])
    assert word.messages[0].content.startswith("This text is in ")
    assert word.messages[1].content == f"{lead} {word.tgt}"
    gloss = made["gloss"].messages
    assert gloss[0].content.startswith("This text is in Kalamang and needs an interlinear gloss.")
    assert gloss[1].content.startswith("Sure, here is the interlinear gloss:\n\n")
    assert made["gloss-translation"].messages[1].content.startswith("Sure, here is the English translation:\n\n")
    passage = made["passage"].messages
    assert passage[0].content.startswith("This text is from a grammar of Kalamang. Please continue it.\n\n")


def test_passages_split_on_paragraphs_then_sentences():
    text = "One two three.\n\nFour five six seven.\n\nEight nine."
    assert split_passages(text, 7) == ["One two three.\n\nFour five six seven.", "Eight nine."]
    assert split_passages("A b c. D e f. G h i j k.", 6) == ["A b c. D e f.", "G h i j k."]  # cut at sentences
    assert split_continuation("A b c.\n\nD e f.\n\nG h.") == ("A b c.", "D e f.\n\nG h.")
    assert split_continuation("A b. C d. E f.") == ("A b.", "C d. E f.")
    assert split_continuation("No break here") == ("", "")


@pytest.mark.parametrize("setting, headings", [
    ("W", ["Entries from a Kalamang–English wordlist:"]),
    ("W+S", ["Entries from a Kalamang–English wordlist:", "Kalamang–English example sentences:"]),
    ("W+S+G", ["Entries from a Kalamang–English wordlist:", "Kalamang–English example sentences:",
               "Excerpts from a grammar of Kalamang:"]),
])
def test_context_prompt_settings(world, setting, headings):
    cfg, guard = world
    context = BookContext.from_config(cfg, guard)
    messages, prefix = context.prompt("Mu bo kewe-ko.", "kgv", "en", setting=setting, budget=300,
                                      count_tokens=count_words, style="plain", anchor=cfg.anchor)
    user = messages[-1].content
    assert [m.role for m in messages] == ["user"] and prefix == "English:"
    assert user.endswith("Translate from Kalamang to English.\n\nKalamang: Mu bo kewe-ko.")
    present = [h for h in ["Entries from a Kalamang–English wordlist:", "Kalamang–English example sentences:",
                           "Excerpts from a grammar of Kalamang:"] if h in user]
    assert present == headings
    assert "bo (v): go" in user and "kewe: house" in user
    material = user.split("Translate from")[0]
    assert not leaks(material)
    assert sum(count_words([material])) <= 300


def test_context_respects_the_budget_and_tell_style(world):
    cfg, guard = world
    context = BookContext.from_config(cfg, guard)
    small = context.material("Mu bo kewe-ko.", "kgv", "en", "W+S+G", 30, count_words)
    large = context.material("Mu bo kewe-ko.", "kgv", "en", "W+S+G", 400, count_words)
    assert 0 < len(small.split()) <= 30 < len(large.split()) <= 400
    assert context.material("Mu bo kewe-ko.", "kgv", "en", "W+S+G", 5, count_words) == ""
    messages, prefix = context.prompt("The house is big.", "en", "kgv", setting="W+S", budget=200,
                                      count_tokens=count_words, style="tell", anchor=cfg.anchor)
    assert prefix == "Sure, here is the Kalamang translation:\n\nKalamang:"
    assert "Entries from a Kalamang–English wordlist:" in messages[-1].content
    assert "kewe" in messages[-1].content.split("This text is in")[0]


def test_en_kgv_style_build_keeps_the_test_set_out(world, tmp_path):
    cfg, _ = world
    report = build_dataset(cfg, method="sft", out_dir=tmp_path / "run" / "data", count_tokens=count_words)
    rows = read_jsonl(tmp_path / "run" / "data" / "train.jsonl")
    assert rows and not any(leaks(m["content"]) for row in rows for m in row["messages"])
    # the book's examples whose translation is a test sentence are dropped by the guard
    assert report.corpora["kalamang_grammar:example-pairs"].contaminated == 1
    assert report.corpora["dictionaria:train"].contaminated == 0  # the split already left them out
