"""Book-track readers on small fixtures in the real files' shapes (LaTeX, glossary, MTOB, CLDF)."""

import zipfile
from pathlib import Path

import pytest

from lowres_mt.corpora.book import cldf, latex, mtob
from lowres_mt.corpora.book.records import BookSection, GlossedExample, Lexeme, join_morphemes
from lowres_mt.corpora.book.texmarkup import latex_to_text
from lowres_mt.corpora.readers import READERS, Source
from lowres_mt.records import Pair

FIX = Path(__file__).parent / "fixtures" / "book"
GRAMMAR = FIX / "grammar"
CHAPTER = GRAMMAR / "chapters" / "01Toy.tex"
MACROS = latex.parse_gloss_macros((GRAMMAR / "localcommands.tex").read_text(encoding="utf-8"))


def parsed():
    return latex.parse_chapter(CHAPTER.read_text(encoding="utf-8"), chapter_id="01Toy", lang="kgv",
                               macros=MACROS, corpus="toy")


def test_gloss_macros_expand_to_small_caps():
    assert MACROS["glse"] == "\\textsc{iam}"
    assert latex_to_text("{\\glse} \\textsc{3pl}-both", MACROS, gloss=True) == "IAM 3PL-both"


@pytest.mark.parametrize("tex, text", [
    ("\\textit{kolak} `mountain'", "kolak ‘mountain'"),
    ("see §\\ref{sec:x} and \\textcite{visser2020}", "see § and Visser 2020"),
    ("a\\footnote{note \\textbf{b}} c", "a (note b) c"),
    ("\\is{noun|(}noun\\isi{phrase}", "nounphrase"),
    ("\\href{http://x}{[conv8]}", "[conv8]"),
    ("\\'e and \\u{a} and {\\ob}...{\\cb}", "é and ă and [...]"),
    ("A~B--C \\& D\\_E", "A B–C & D_E"),
    ("``Let's go.''", "“Let's go.”"),
])
def test_latex_to_text_strips_markup(tex, text):
    assert latex_to_text(tex, MACROS) == text


def test_chapter_sections_keep_heading_structure_and_drop_markup():
    sections, _ = parsed()
    assert [s.path for s in sections] == [
        ("Nouns and noun phrases",),
        ("Nouns and noun phrases", "Noun subclasses"),
        ("Nouns and noun phrases", "Noun subclasses", "Relational nouns"),
        ("Nouns and noun phrases", "Noun subclasses", "Three-line examples"),
    ]
    text = "\n".join(s.text for s in sections)
    for leftover in ("\\", "{", "}", "comment that must disappear", "sec:nouncl"):
        assert leftover not in text
    assert "Common nouns include kolak ‘mountain' and sasul ‘spoon'. (A sixth root was elicited.)" in text
    assert "Part-whole nouns" in text and "al- | ‘string'" in text
    assert all(isinstance(s, BookSection) and s.corpus == "toy" for s in sections)


def test_interlinear_examples_become_records():
    sections, examples = parsed()
    assert len(examples) == 4
    first = examples[0]
    assert first == GlossedExample(
        text="mu se koi wat pes=at di=kahalong siep-un=ko",
        gloss="3PL IAM then coconut shell=OBJ CAUS=spear edge-3POSS=LOC",
        translation="Then they put coconut shell on the edge of the spear.",
        lang="kgv", translation_lang="en", surface="", judgement="",
        section="Nouns and noun phrases › Noun subclasses › Relational nouns", corpus="toy", id="01Toy#0")
    assert first.sentence == "mu se koi wat pesat dikahalong siepunko"
    # rendered in place in the section text, with no source reference left
    relational = sections[2]
    assert relational.example_ids == ("01Toy#0", "01Toy#1")
    assert "    mu se koi wat pes=at" in relational.text and "conv8" not in relational.text


def test_judgements_three_line_surfaces_and_label_rows():
    _, examples = parsed()
    starred, three, labelled = examples[1], examples[2], examples[3]
    assert starred.judgement == "*" and starred.translation == "He shows me the bird."
    assert (three.surface, three.text) == ("Ma birara main.", "ma bir=at=a ma ∅=kin")
    assert three.gloss == "3SG beer=OBJ=FOC 3SG give=PLNK"
    assert three.sentence == "Ma birara main."
    assert labelled.text == "go_dung inier se ter-nan=i koyet" and labelled.surface == ""
    assert labelled.gloss.startswith("morning 1DU.EX IAM")
    assert join_morphemes(labelled.text) == "go dung inier se ternani koyet"


def test_glossary_both_directions():
    entries = latex.parse_wordlist((GRAMMAR / "chapters" / "glossary.tex").read_text(encoding="utf-8"), lang="kgv")
    pairs = [(e.headword, e.gloss, e.pos) for e in entries]
    assert pairs == [("=at", "object marker", "gramm"), ("ajar", "teach", "v"), ("ajar", "continue", "v"),
                     ("bo", "go", "v"), ("kewe", "house", "n"), ("koder", "add", ""), ("tamba", "add", "")]
    assert entries[0].is_affix and not entries[1].is_affix


def test_mtob_files():
    data = FIX / "mtob" / "data" / "kalamang"
    train = mtob.parse_labelled_pairs((data / "train_examples.txt").read_text(), ["English", "Kalamang"], ["en", "kgv"])
    assert [(p.src, p.tgt, p.id) for p in train] == [
        ("The house is big.", "Kewe tama.", "0"), ("I get a basket.", "An kiem rep.", "1"),
        ("Two lines continue here.", "Eir kon.", "3")]
    test = mtob.parse_test_table((data / "test.tsv").read_text(), ["kalamang", "english"], ["kgv", "en"])
    assert [(p.src, p.tgt, p.id, p.direction) for p in test] == [
        ("Wat kon tiba.", "One coconut fell.", "1", "kgv-en"), ("Joni tamatko?", "Where is the boat?", "2", "kgv-en"),
        ("Tumun mu kebun koi bo.", "The children went to the garden.", "3", "kgv-en")]
    words = mtob.parse_colon_wordlist((data / "dictionary.tsv").read_text(), "kgv", "en")
    assert [(w.headword, w.gloss) for w in words] == [("kewe", "house"), ("rep", "get"), ("jie", "get"),
                                                      ("reidak", "a lot of")]
    sections = mtob.split_plain_grammar((data / "grammar.txt").read_text())
    assert [s.path for s in sections] == [("Front matter",), ("1 Introduction",), ("1.1 Nouns",)]
    assert all("0000-4000" not in s.text for s in sections)  # canary line dropped


def test_mtob_table_names_a_missing_column():
    with pytest.raises(Exception, match="no column 'kanuri'.*sid, english, kalamang"):
        mtob.parse_test_table((FIX / "mtob/data/kalamang/test.tsv").read_text(), ["english", "kanuri"], ["en", "kau"])


def test_kanuri_style_tab_wordlist():
    text = "canary [00000000-0000-4000-8000-000000000000]\nKanuri\tEnglish\nkəla\thead\nabba\tn\tfather. —abbanyi my father.\n"
    entries = mtob.parse_tab_wordlist(text, "kau", "en")
    assert [(e.headword, e.pos, e.gloss) for e in entries] == [("kəla", "", "head"), ("abba", "n", "father")]


def test_dictionaria_and_ids():
    d = FIX / "dictionaria" / "cldf"
    lexemes = cldf.dictionaria_lexemes((d / "entries.csv").read_text(), (d / "senses.csv").read_text(), "kgv")
    assert [(x.headword, x.gloss, x.pos) for x in lexemes] == [
        ("kewe", "house", "Noun"), ("rep", "get", "Verb"), ("-un", "third person possessive", "Suffix")]
    pairs = cldf.dictionaria_pairs((d / "examples.csv").read_text(), "kgv")
    assert pairs[0] == Pair("Toka bolo kewe.", "Their house is over there.", "kgv", "en", "", "XV1")  # English side found
    assert pairs[1].tgt == "[She] never called the dog today."
    glossed = cldf.dictionaria_glossed((d / "examples.csv").read_text(), "kgv")
    assert [(g.text, g.gloss, g.surface) for g in glossed] == [
        ("ka=at=a gonggung=nin", "2SG=OBJ=FOC call/call.out=NEG", "Kara tiba gonggungnin.")]
    i = FIX / "ids" / "cldf"
    forms = cldf.ids_lexemes((i / "forms.csv").read_text(), (i / "parameters.csv").read_text(), "kgv")
    assert [(f.headword, f.gloss) for f in forms] == [("dunia", "world"), ("kibis", "earth, land")]


def _zip_of_mtob(tmp_path: Path) -> Path:
    archive = tmp_path / "mtob.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((FIX / "mtob").rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(FIX / "mtob").as_posix())
    return archive


def book_fixture_rows(tmp_path: Path) -> dict:
    """format -> (files, languages, options, record type), one row per registered book format."""
    archive = str(_zip_of_mtob(tmp_path))
    member = "data/kalamang/"
    chapters = [str(GRAMMAR / "localcommands.tex"), str(CHAPTER)]
    d, i = FIX / "dictionaria" / "cldf", FIX / "ids" / "cldf"
    return {
        "mtob-pairs": ([archive], ("en", "kgv"), {"member": member + "train_examples.txt", "labels": ["English", "Kalamang"]}, Pair),
        "mtob-table": ([archive], ("en", "kgv"), {"member": member + "test.tsv", "columns": ["english", "kalamang"]}, Pair),
        "mtob-wordlist": ([archive], ("kgv", "en"), {"member": member + "dictionary.tsv", "layout": "gloss-colon"}, Lexeme),
        "mtob-grammar": ([archive], ("en",), {"member": member + "grammar.txt"}, BookSection),
        "latex-sections": (chapters, ("kgv", "en"), {"macros": "localcommands.tex"}, BookSection),
        "latex-examples": (chapters, ("kgv", "en"), {"macros": "localcommands.tex"}, GlossedExample),
        "latex-example-pairs": (chapters, ("kgv", "en"), {"macros": "localcommands.tex"}, Pair),
        "latex-wordlist": ([str(GRAMMAR / "chapters" / "glossary.tex")], ("kgv", "en"), {}, Lexeme),
        "cldf-lexemes": ([str(d / "entries.csv"), str(d / "senses.csv")], ("kgv", "en"), {}, Lexeme),
        "cldf-example-pairs": ([str(d / "examples.csv")], ("kgv", "en"), {}, Pair),
        "cldf-glossed": ([str(d / "examples.csv")], ("kgv", "en"), {}, GlossedExample),
        "cldf-split": ([str(d / "examples.csv")], ("kgv", "en"),
                       {"split": "train", "dev_size": 1, "test_size": 1, "exclude": []}, Pair),
        "ids-lexemes": ([str(i / "forms.csv"), str(i / "parameters.csv")], ("kgv", "en"), {}, Lexeme),
    }


def test_every_book_format_is_registered_and_reads_its_fixture(tmp_path, monkeypatch):
    monkeypatch.setenv("LOWRES_MT_CACHE", str(tmp_path / "cache"))
    rows = book_fixture_rows(tmp_path)
    for fmt, (files, languages, options, record_type) in rows.items():
        reader = READERS[fmt]
        assert reader.check_set(tuple(Path(f).name for f in files), languages, options) is None, fmt
        source = Source(f"toy:{fmt}", tuple(Path(f) for f in files), languages, options)
        records = reader.read(source)
        assert records and all(isinstance(r, record_type) for r in records), fmt
        assert all(r.id for r in records), fmt
    pairs = READERS["latex-example-pairs"].read(Source("toy:x", tuple(map(Path, rows["latex-examples"][0])),
                                                       ("kgv", "en"), {"macros": "localcommands.tex"}))
    assert len(pairs) == 3 and pairs[1].src == "Ma birara main."  # the starred example is not a pair


@pytest.mark.parametrize("fmt, options, problem", [
    ("mtob-pairs", {"member": "a.txt"}, "needs 'options.labels'"),
    ("mtob-table", {"member": "a.tsv", "columns": ["english"]}, "must list two names"),
    ("mtob-wordlist", {"member": "a.tsv", "layout": "csv"}, "'options.layout'"),
    ("cldf-split", {"split": "holdout", "dev_size": 1, "test_size": 1}, "options.split"),
    ("cldf-split", {"split": "dev", "dev_size": -1, "test_size": 1}, "options.dev_size"),
    ("latex-sections", {"macros": "missing.tex"}, "not among the set's files"),
])
def test_bad_options_are_reported(fmt, options, problem):
    files = ("a.zip",) if fmt.startswith("mtob") else ("chapter.tex",)
    languages = ("kgv", "en") if fmt != "mtob-grammar" else ("en",)
    assert problem in READERS[fmt].check_set(files, languages, options)
