"""Language identification: the candidates, what is (not) supported, short and empty texts."""

import pytest

from lowres_mt.langid import confidence, identify, is_supported, unavailable_note

ICELANDIC = "Á mánudaginn tilkynntu vísindamenn frá læknadeild Stanford-háskóla um nýtt greiningartæki."
DANISH = "Regeringen fremlagde i går et nyt lovforslag om skat."
NORWEGIAN = "Regjeringen la i går fram et nytt lovforslag om skatt."
SWEDISH = "Regeringen lade i går fram ett nytt lagförslag om skatt."
ENGLISH = "On Monday, scientists from the Stanford University School of Medicine announced a new tool."


@pytest.mark.parametrize("text, lang", [
    (ICELANDIC, "is"), (ENGLISH, "en"), (DANISH, "da"), (NORWEGIAN, "nb"), (SWEDISH, "sv"),
    ("Hvar er klósettið?", "is"), ("", None), ("2016/18 — 27", None),
])
def test_identify(text, lang):
    assert identify([text]) == [lang]


def test_identify_keeps_order_and_length():
    assert identify([ENGLISH, ICELANDIC, ""]) == ["en", "is", None]
    assert identify([]) == []


@pytest.mark.parametrize("lang, supported", [
    ("is", True), ("en", True), ("da", True), ("nb", True), ("kgv", False), ("kau", False), ("xx", False)])
def test_is_supported(lang, supported):
    assert is_supported(lang) is supported


def test_confidence_tells_icelandic_from_its_neighbours():
    sure = confidence([ICELANDIC, DANISH, NORWEGIAN, ENGLISH], "is")
    assert sure[0] > 0.9 and max(sure[1:]) < 0.05


@pytest.mark.parametrize("langs, note", [
    (("en", "is"), None), (("en", "fo"), "language ID not available for fo"),
    (("kgv", "en", "kau", "kgv"), "language ID not available for kau, kgv"), ((), None)])
def test_unavailable_note(langs, note):
    assert unavailable_note(langs) == note
