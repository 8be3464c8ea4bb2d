"""Corpus metrics through sacrebleu: values, signatures, bootstrap CIs and paired significance."""

import pytest

from lowres_mt.evaluate.metrics import paired_significance, score_corpus, signatures

# (hypotheses, references, BLEU, chrF, chrF++) — values as sacrebleu 2.x computes them
TABLE = [
    (["the cat sat on the mat"], ["the cat sat on the mat"], 100.0, 100.0, 100.0),
    (["a b c d"], ["w x y z"], 0.0, 0.0, 0.0),
    (["the cat is on the mat", "there is a dog"], ["the cat sat on the mat", "a dog is there"],
     31.1166, 57.0593, 60.298),
    (["Kötturinn sat á mottunni."], ["Kötturinn sat á teppinu."], 42.7287, 59.7097, 61.0376),
]


@pytest.mark.parametrize("hyps, refs, bleu, chrf, chrfpp", TABLE)
def test_scores_match_sacrebleu(hyps, refs, bleu, chrf, chrfpp):
    scores = score_corpus(hyps, refs, "is", n_samples=50)
    assert scores["BLEU"]["score"] == pytest.approx(bleu, abs=1e-3)
    assert scores["chrF"]["score"] == pytest.approx(chrf, abs=1e-3)
    assert scores["chrF++"]["score"] == pytest.approx(chrfpp, abs=1e-3)


def test_signatures_name_the_metric_settings():
    scores = score_corpus(["a b"], ["a b"], n_samples=20)
    assert "tok:13a" in scores["BLEU"]["signature"] and "bs:20" in scores["BLEU"]["signature"]
    assert "nw:0" in scores["chrF"]["signature"]
    assert "nw:2" in scores["chrF++"]["signature"]
    plain = signatures()
    assert plain["BLEU"].startswith("nrefs:1|") and "bs:" not in plain["BLEU"]


REFS = [f"sentence number {i} about the {w} in the garden" for i, w in enumerate(
    ["cat", "dog", "bird", "tree", "house", "river", "car", "boat", "sun", "moon"] * 3)]
GOOD = [r if i % 3 else r.replace("garden", "yard") for i, r in enumerate(REFS)]
BAD = [r.split()[-1] + " nothing like it" for r in REFS]


def test_confidence_interval_brackets_the_score():
    scores = score_corpus(GOOD, REFS, n_samples=300)
    for name in ("BLEU", "chrF", "chrF++"):
        s = scores[name]
        low, high = s["ci"]
        assert low <= s["score"] <= high
        assert high - low == pytest.approx(2 * s["ci_halfwidth"], abs=1e-3)
        assert 0 < s["ci_halfwidth"] < 20


def test_identical_output_has_no_uncertainty():
    s = score_corpus(REFS, REFS, n_samples=100)["chrF"]
    assert s["score"] == 100.0 and s["ci_halfwidth"] == 0.0 and s["ci"] == [100.0, 100.0]


def test_intervals_are_reproducible():
    assert score_corpus(GOOD, REFS, n_samples=100) == score_corpus(GOOD, REFS, n_samples=100)


def test_paired_significance_separates_clear_differences():
    close = list(GOOD)
    close[0] = REFS[0]  # one sentence better
    p = paired_significance(("sft", GOOD), [("bad", BAD), ("close", close), ("same", list(GOOD))],
                            REFS, n_samples=200)
    assert set(p) == {"bad", "close", "same"} and set(p["bad"]) == {"BLEU", "chrF", "chrF++"}
    assert p["bad"]["chrF"] < 0.05
    assert p["close"]["chrF"] > 0.05
    assert p["same"] == {"BLEU": 1.0, "chrF": 1.0, "chrF++": 1.0}
    assert paired_significance(("sft", GOOD), [], REFS) == {}


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError):
        score_corpus(["a"], ["a", "b"])


def test_japanese_bleu_without_mecab_is_a_one_line_error():
    """sacrebleu's ja/ko BLEU tokenizers need MeCab: eval, score and sweeps all say so in one line."""
    import importlib.util

    from lowres_mt.errors import UserError
    from lowres_mt.evaluate.metrics import make_metrics

    if importlib.util.find_spec("MeCab") is not None:
        pytest.skip("MeCab is installed here")
    with pytest.raises(UserError, match=r"MeCab.*sacrebleu\[ja\]"):
        make_metrics("ja")
