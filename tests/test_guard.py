from lowres_mt.data.guard import ContaminationGuard
from lowres_mt.records import Pair
from lowres_mt.text import normalize


def test_normalize_ignores_case_punctuation_spacing():
    assert normalize("  Hello,   World! ") == normalize("hello world")
    assert normalize("Ｈｅｌｌｏ") == "hello"  # NFKC
    assert normalize("Ég sagði þeim.") == "ég sagði þeim"


def test_filter_drops_pairs_with_either_side_protected():
    guard = ContaminationGuard(["Hurry up.", "Er þetta nýleg mynd?"])
    pairs = [
        Pair("hurry up", "Flýttu þér.", "en", "is"),
        Pair("Is it a recent picture?", "Er þetta nýleg mynd", "en", "is"),
        Pair("Good night.", "Góða nótt.", "en", "is"),
    ]
    kept, dropped = guard.filter(pairs)
    assert [p.src for p in kept] == ["Good night."]
    assert dropped == 2
    assert len(guard) == 2


def test_empty_text_is_never_protected():
    guard = ContaminationGuard(["...", ""])
    assert len(guard) == 0
    assert guard.is_clean(Pair("!", "?", "en", "is"))
