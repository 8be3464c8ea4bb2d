"""Wordlist lookup with simple morphology, and the contamination-safe dictionary split."""

import pytest

from lowres_mt.book.lexicon import Lexicon, format_entry, stem_en
from lowres_mt.corpora.book.records import Lexeme
from lowres_mt.corpora.book.splits import NearDuplicates, SpanGuard, split_dictionary_examples
from lowres_mt.records import Pair


def lex(head: str, gloss: str, pos: str = "") -> Lexeme:
    return Lexeme(head, gloss, "kgv", "en", pos)


LEXICON = Lexicon([
    lex("kewe", "house", "n"), lex("rep", "get", "v"), lex("kiem", "basket", "n"), lex("=at", "object marker"),
    lex("-un", "third person possessive"), lex("=ko", "locative"), lex("sasul", "spoon", "n"),
    lex("kewe", "house", "n"),  # repeated entry kept once
    lex("bo", "go", "v"), lex("tumun", "child; children", "n"), lex("mat", "him; her", "pro"),
])


@pytest.mark.parametrize("word, heads", [
    ("kewe", ["kewe"]),
    ("Kewe,", ["kewe"]),  # case and punctuation
    ("keweat", ["kewe", "=at"]),  # one bound morpheme of the wordlist
    ("keweunko", ["kewe", "-un", "=ko"]),  # two
    ("sasulnggo", ["sasul"]),  # longest headword prefix, rest of at most four letters
    ("sasulnggoxyz", []),  # rest too long
    ("bo", ["bo"]),
    ("boat", ["bo", "=at"]),
    ("xyz", []),
])
def test_object_language_lookup(word, heads):
    assert [e.headword for e in LEXICON.lookup(word)] == heads


def test_english_lookup_prefers_whole_gloss_and_stems():
    assert [e.headword for e in LEXICON.lookup_gloss("houses")] == ["kewe"]
    assert [e.headword for e in LEXICON.lookup_gloss("children")] == ["tumun"]
    assert LEXICON.lookup_gloss("the") == []
    assert stem_en("walked") == "walk" and stem_en("going") == "go" and stem_en("class") == "class"


def test_entries_for_a_sentence_in_order_once_each():
    found = LEXICON.entries_for("Kewe keweat rep.", "kgv")
    assert [format_entry(e) for e in found] == ["kewe (n): house", "=at: object marker", "rep (v): get"]
    assert [e.headword for e in LEXICON.entries_for("I get a basket.", "en")] == ["rep", "kiem"]
    assert [e.headword for e in LEXICON.entries_for("a house-spoon", "en")] == ["kewe", "sasul"]
    assert len(LEXICON) == 10


def pairs(*rows):
    return [Pair(src, tgt, "kgv", "en", "dict", str(i)) for i, (src, tgt) in enumerate(rows)]


EXAMPLES = pairs(
    ("An kewe rep se.", "I got a house."),            # in MTOB train (exact, English side)
    ("Ma kiem-un=at jie reba.", "He takes his basket."),  # in the book, segmented spelling
    ("Mu bo kewe-ko metko.", "They go to the house there."),
    ("Ka sasul tama rep.", "You get a big spoon."),
    ("Ka sasul tama rep.", "You take a big spoon."),  # repeated Kalamang side: never held out
    ("Pi bo kolak tua.", "We go to the empty mountain."),
    ("Wa me yartep.", "This is a sardine."),
    ("Ma bo.", "He goes."),                            # too short to hold out
    ("Tumun bo sekola reidak.", "The children go to school a lot."),
)
EXCLUDE = ["i got a house", "Ma kiemunat jie reba."]


def test_split_is_disjoint_deterministic_and_excludes_other_sources():
    a = split_dictionary_examples(EXAMPLES, EXCLUDE, dev_size=1, test_size=2)
    b = split_dictionary_examples(list(reversed(EXAMPLES)), EXCLUDE, dev_size=1, test_size=2)
    assert {k: {p.src for p in v} for k, v in a.items()} == {k: {p.src for p in v} for k, v in b.items()}
    ids = {k: {p.id for p in v} for k, v in a.items()}
    assert len(ids["dev"]) == 1 and len(ids["test"]) == 2
    assert not (ids["dev"] & ids["test"] or ids["dev"] & ids["train"] or ids["test"] & ids["train"])
    everything = ids["dev"] | ids["test"] | ids["train"]
    assert everything == {str(i) for i in range(len(EXAMPLES))} - {"0", "1"}  # excluded everywhere
    held = {p.src for p in a["dev"] + a["test"]}
    assert not held & {"Ka sasul tama rep.", "Ma bo."}


def test_near_duplicates_ignore_boundaries_and_spaces():
    near = NearDuplicates(["ma kiem-un=at jie reba", "something else entirely"])
    assert "Ma kiemunat jie reba." in near
    assert "Ma kiemunat jie rebe." in near  # one letter off
    assert "Pi bo kolak tua." not in near


def test_span_guard_finds_protected_sentences_inside_text():
    spans = SpanGuard(["Then they put coconut shell on the edge.", "Yes."])
    assert spans.hits("We saw that: then they put coconut shell on the edge! Next paragraph.")
    assert not spans.hits("They put coconut shell on the edge.")  # not the whole sentence
    assert not spans.hits("Yes. He said yes.")  # short sentences are left to the exact guard
    assert len(spans) == 1
