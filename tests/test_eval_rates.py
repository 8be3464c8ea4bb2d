"""Off-target and copy rates of hypotheses."""

from lowres_mt.evaluate.rates import copies, off_target

SOURCES = ["The scientists announced a new diagnostic tool on Monday.",
           "The ship sank in the storm last night.",
           "Good morning.",
           "Where is the station?"]
HYPS = ["Vísindamennirnir kynntu nýtt greiningartæki á mánudaginn.",
        "Skibet sank i stormen i går aftes.",  # Danish
        "",
        "Where is the station?"]  # a copy of the source


def test_off_target_counts_other_languages_and_empty_hypotheses():
    rate = off_target(HYPS, "is")
    assert rate == {"rate": 0.75, "languages": {"is": 1, "da": 1, "empty": 1, "en": 1}}


def test_off_target_is_none_for_a_language_the_identifier_does_not_know():
    assert off_target(HYPS, "kgv") is None
    assert off_target([], "is") is None


def test_copies_are_hypotheses_that_repeat_their_source():
    assert copies(SOURCES, HYPS) == {"rate": 0.25, "count": 1}
    assert copies(SOURCES, SOURCES)["rate"] == 1.0
