"""A user's own files as corpus sets: each format read into records, declared by a recipe."""

import hashlib
import json

import pytest

from lowres_mt import corpora
from lowres_mt.config import load_recipe
from lowres_mt.corpora import local
from lowres_mt.errors import UserError

LANGS = ("en", "fo")


def declared(path, kind, text, names=None):
    path.write_text(text, encoding="utf-8")
    local.declare(str(path), kind, LANGS, names)
    return str(path)


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("a.tsv", "Good morning.\tGóðan morgun.\nbad line\n\nThank you.\tTakk.\n",
     [("Good morning.", "Góðan morgun.", "en", "fo"), ("Thank you.", "Takk.", "en", "fo")]),
    ("b.tsv", "fo\ten\nGóðan morgun.\tGood morning.\n", [("Góðan morgun.", "Good morning.", "fo", "en")]),
    ("c.tsv", "Faroese\tEnglish\nTakk.\tThank you.\n", [("Takk.", "Thank you.", "fo", "en")]),
    ("d.csv", 'en,fo\n"Yes, please.","Ja, takk."\n', [("Yes, please.", "Ja, takk.", "en", "fo")]),
    ("e.jsonl", '{"src": "Hello.", "tgt": "Hey."}\nnot json\n{"en": "Bye.", "fo": "Farvæl."}\n',
     [("Hello.", "Hey.", "en", "fo"), ("Bye.", "Farvæl.", "en", "fo")]),
])
def test_pair_formats(tmp_path, name, text, expected):
    ref = declared(tmp_path / name, "pairs", text)
    data = corpora.read_set(ref)
    assert [(p.src, p.tgt, p.src_lang, p.tgt_lang) for p in data.records] == expected
    assert data.info.files[0].sha256 == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()


def test_aligned_prefix(tmp_path):
    (tmp_path / "train.en").write_text("One.\nTwo.\n", encoding="utf-8")
    (tmp_path / "train.fo").write_text("Eitt.\nTvey.\n", encoding="utf-8")
    local.declare(str(tmp_path / "train"), "pairs", LANGS)
    pairs = corpora.load_set(str(tmp_path / "train"))
    assert [(p.src, p.tgt) for p in pairs] == [("One.", "Eitt."), ("Two.", "Tvey.")]
    (tmp_path / "train.fo").write_text("Eitt.\n", encoding="utf-8")
    with pytest.raises(UserError, match="equally many"):
        corpora.load_set(str(tmp_path / "train"))


def test_header_in_other_languages_is_refused(tmp_path):
    ref = declared(tmp_path / "x.tsv", "pairs", "en\tde\nGood.\tGut.\n")
    with pytest.raises(UserError, match="recipe translates en-fo"):
        corpora.load_set(ref)


def test_wordlist_with_several_glosses(tmp_path):
    ref = declared(tmp_path / "w.tsv", "lexemes", "word\tgloss\nhav\tsea; ocean\nbátur\tboat\tship\n")
    entries = corpora.load_set(ref)
    assert [(x.headword, x.gloss, x.lang, x.gloss_lang) for x in entries] == [
        ("hav", "sea", "fo", "en"), ("hav", "ocean", "fo", "en"), ("bátur", "boat", "fo", "en"),
        ("bátur", "ship", "fo", "en")]


def test_monolingual_language_from_the_name(tmp_path):
    ref = declared(tmp_path / "mono.en.txt", "text", "One line.\n\nTwo.\n")
    texts = corpora.load_set(ref)
    assert [(t.text, t.lang) for t in texts] == [("One line.", "en"), ("Two.", "en")]
    other = declared(tmp_path / "mono.txt", "text", "Eitt.\n")
    assert corpora.load_set(other)[0].lang == "fo"  # the recipe's second language


@pytest.mark.parametrize(("text", "paths"), [
    ("# Nouns\nGenders.\n## Articles\nA suffix.\n# Verbs\nAgree.\n",
     [("Nouns",), ("Nouns", "Articles"), ("Verbs",)]),
    ("First paragraph.\n\nSecond\nparagraph.\n", [("paragraph 1",), ("paragraph 2",)]),
])
def test_grammar_sections(tmp_path, text, paths):
    ref = declared(tmp_path / "g.md", "sections", text)
    assert [s.path for s in corpora.load_set(ref)] == paths


def test_recipe_paths_are_relative_to_the_recipe(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.tsv").write_text("Yes.\tJa.\n", encoding="utf-8")
    (tmp_path / "r.yaml").write_text(json.dumps({
        "extends": "_base", "name": "en-fo", "languages": ["en", "fo"],
        "task": {"train": ["data/train.tsv"], "weights": {"data/train.tsv": 2}}}), encoding="utf-8")
    monkeypatch.chdir(tmp_path.parent)  # the recipe's folder decides, not the current one
    cfg = load_recipe(str(tmp_path / "r.yaml"), ["eval.testsets=[other/test.tsv]"])
    assert cfg.task.train == (str(tmp_path / "data" / "train.tsv"),)
    assert cfg.task.weights == {str(tmp_path / "data" / "train.tsv"): 2}
    assert cfg.eval.testsets == (str(tmp_path.parent / "other" / "test.tsv"),)  # overrides: current folder
    assert cfg.general.corpora  # the shipped _base was found from outside recipes/
    assert corpora.set_info(cfg.task.train[0]).languages == ("en", "fo")


def test_files_refused_where_only_shipped_sets_fit(tmp_path):
    (tmp_path / "r.yaml").write_text("extends: _base\nname: en-fo\nlanguages: [en, fo]\n"
                                     "general: {corpora: [mine.jsonl]}\n", encoding="utf-8")
    with pytest.raises(UserError, match="general.corpora takes shipped sets"):
        load_recipe(str(tmp_path / "r.yaml"))


def test_missing_file_names_it(tmp_path):
    local.declare(str(tmp_path / "nope.tsv"), "pairs", LANGS)
    with pytest.raises(UserError, match="no such file"):
        corpora.set_info(str(tmp_path / "nope.tsv"))


@pytest.mark.parametrize(("ref", "is_path"), [
    ("flores200:devtest", False), ("data/train.tsv", True), ("train.tsv", True), ("/abs/x", True),
    ("mtob:kgv-test", False), ("data/train", True),
])
def test_path_refs(ref, is_path):
    assert local.is_path_ref(ref) is is_path
