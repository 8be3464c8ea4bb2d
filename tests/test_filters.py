"""Training-pair quality filters, as tables of (input, expected)."""

import pytest

from lowres_mt.data.filters import (
    bad_ratio,
    is_fragment,
    is_near_copy,
    unescape_entities,
    wrong_language,
)
from lowres_mt.records import Pair


def pair(src, tgt, src_lang="en", tgt_lang="is"):
    return Pair(src, tgt, src_lang, tgt_lang, "toy", "0")


@pytest.mark.parametrize("src, tgt, out_src, out_tgt", [
    ("R&amp;D spending", "Útgjöld til R&amp;Þ", "R&D spending", "Útgjöld til R&Þ"),
    ("It&#39;s &lt; 50 copies/ml", "Það er &lt; 50 eintök/ml", "It's < 50 copies/ml", "Það er < 50 eintök/ml"),
    ("&#x201C;Yes&#x201D;", "Já", "\u201cYes\u201d", "Já"),
])
def test_html_entities_are_decoded_on_both_sides(src, tgt, out_src, out_tgt):
    fixed = unescape_entities(pair(src, tgt))
    assert (fixed.src, fixed.tgt) == (out_src, out_tgt)


@pytest.mark.parametrize("text", ["AT&T and R&D", "Tom & Jerry", "plain text"])
def test_text_without_entities_is_the_same_pair(text):
    original = pair(text, text)
    assert unescape_entities(original) is original


@pytest.mark.parametrize("src, tgt, bad", [
    ("Hi.", "Hæ.", False),
    ("The cat sat on the mat.", "Kötturinn sat á mottunni.", False),
    ("The moisture content shall be indicated on the labelling.", "Tilgreina skal", True),
    ("No.", "Það geri ég aldrei, aldrei!", True),
    ("ab", "abcd", False),  # exactly 0.5
    ("abcde", "ab", True),  # 2.5
])
def test_length_ratio(src, tgt, bad):
    assert bad_ratio(pair(src, tgt), (0.5, 2.0)) is bad


@pytest.mark.parametrize("text, fragment", [
    ("2016/EES/18/27", True),
    ("↑ Cmax 1.40 (1.18, 1.66)", True),
    ("[2] 17 quadrillion = 17 000 000 000 000 000.", True),
    ("Kafli\t12,5\t14,2", True),  # a table row
    ("a | b | c", True),
    ('"No."', False),  # punctuation does not count against letters
    ("Hæ.", False),
    ("NGC 2014 and NGC 2020.", False),
    ("Reykjavík 27. apríl 2016", False),
    ("...", False),
])
def test_fragments(text, fragment):
    assert is_fragment(text, 0.5) is fragment


@pytest.mark.parametrize("hyp, src, copy", [
    ("Hello, world!", "hello world", True),  # equal after normalisation
    ("Zoetis Česká republika, s.r.o.", "Zoetis Českárepublika, s.r.o.", True),  # chrF ≥ 80
    ("↑ atorvastatín", "↑ atorvastatin", True),
    ("Hæ.", "Hi.", False),
    ("Kötturinn sat á mottunni.", "The cat sat on the mat.", False),
    ("", "Hello.", False),
    ("", "", False),
])
def test_near_copies(hyp, src, copy):
    assert is_near_copy(hyp, src) is copy


def test_wrong_language_checks_only_long_enough_sides_of_known_languages():
    pairs = [
        pair("On Monday the scientists announced a new tool.", "Á mánudaginn kynntu vísindamennirnir nýtt tæki."),
        pair("On Monday the scientists announced a new tool.", "Regeringen fremlagde i går et nyt lovforslag."),
        pair("Á mánudaginn kynntu vísindamennirnir nýtt tæki.", "Á mánudaginn kynntu vísindamennirnir nýtt tæki."),
        pair("Hi.", "Hej."),  # too short to be checked
        pair("On Monday the scientists announced a new tool.", "Regeringen fremlagde i går et nyt lovforslag.",
             "en", "kgv"),  # Kalamang is not known: only the English side is checked
        pair("Regeringen fremlagde i går et nyt lovforslag.", "Bo an mat.", "en", "kgv"),
    ]
    assert wrong_language(pairs, min_chars=20) == [False, True, True, False, False, True]
    assert wrong_language([], min_chars=20) == []
