"""`lowres-mt score HYP REF`: sacrebleu's numbers on a user's files, rates, and one-line errors."""

import json

import pytest
import sacrebleu
from conftest import cli

from lowres_mt.errors import UserError
from lowres_mt.evaluate.score_files import score_files

SOURCES = ["Good morning.", "The cat sat on the mat.", "My name is Jon.", "Where is the library?"]
TARGETS = ["Góðan daginn.", "Kötturinn sat á mottunni.", "Ég heiti Jón.", "Hvar er bókasafnið?"]


def _write(folder, name, lines):
    path = folder / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _cli(monkeypatch, capsys, *args):
    return cli(monkeypatch, capsys, "score", *args)


def _json(monkeypatch, capsys, *args):
    code, out, err = _cli(monkeypatch, capsys, *args, "--json")
    assert code in (0, None), err
    return json.loads(out)


def _assert_one_line_error(result, *needles):
    code, _, err = result
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize("lines", [
    ["The cat sat on the mat."],
    TARGETS,
    ["a b c d e", "", "f g h i j"],  # a blank segment in both files is a match, not an error
])
def test_identical_files_score_100(tmp_path, monkeypatch, capsys, lines):
    hyp, ref = _write(tmp_path, "hyp.txt", lines), _write(tmp_path, "ref.txt", lines)
    scores = _json(monkeypatch, capsys, hyp, ref)
    assert scores["n"] == len(lines)
    for metric in ("bleu", "chrf", "chrfpp"):
        assert scores[metric]["score"] == pytest.approx(100.0)


@pytest.mark.parametrize(("hyps", "refs"), [
    (["Kötturinn sat á teppinu.", "Ég heiti Jón.", "Hvar er bókasafn?", "Góðan dag."], TARGETS),
    (["the the the the", "a cat on a mat"], ["the cat is on the mat", "there is a cat on the mat"]),
])
def test_scores_match_sacrebleu(tmp_path, monkeypatch, capsys, hyps, refs):
    scores = _json(monkeypatch, capsys, _write(tmp_path, "h.txt", hyps), _write(tmp_path, "r.txt", refs))
    expected = {"bleu": sacrebleu.corpus_bleu(hyps, [refs]).score,
                "chrf": sacrebleu.corpus_chrf(hyps, [refs]).score,
                "chrfpp": sacrebleu.corpus_chrf(hyps, [refs], word_order=2).score}
    for metric, score in expected.items():
        assert scores[metric]["score"] == pytest.approx(score, abs=1e-4)
        assert scores[metric]["ci_low"] <= scores[metric]["ci_high"]
        assert "nrefs:1" in scores[metric]["signature"] and "bs:1000" in scores[metric]["signature"]


@pytest.mark.parametrize(("hyps", "rate"), [
    (SOURCES, 1.0),
    (SOURCES[:2] + TARGETS[2:], 0.5),
    (TARGETS, 0.0),
])
def test_copy_rate_with_sources(tmp_path, monkeypatch, capsys, hyps, rate):
    files = _write(tmp_path, "h.txt", hyps), _write(tmp_path, "r.txt", TARGETS)
    scores = _json(monkeypatch, capsys, *files, "--src", _write(tmp_path, "s.txt", SOURCES))
    assert scores["copy_rate"] == rate


def test_json_keys(tmp_path, monkeypatch, capsys):
    scores = _json(monkeypatch, capsys, _write(tmp_path, "h.txt", TARGETS), _write(tmp_path, "r.txt", TARGETS))
    assert {"n", "bleu", "chrf", "chrfpp", "copy_rate", "off_target_rate", "comet", "notes"} <= set(scores)
    for metric in ("bleu", "chrf", "chrfpp"):
        assert set(scores[metric]) == {"score", "ci_low", "ci_high", "signature"}
    assert scores["copy_rate"] is None and scores["off_target_rate"] is None and scores["comet"] is None
    assert scores["notes"] == []


def test_table_shows_scores_signatures_and_rates(tmp_path, monkeypatch, capsys):
    files = _write(tmp_path, "h.txt", SOURCES), _write(tmp_path, "r.txt", TARGETS)
    code, out, err = _cli(monkeypatch, capsys, *files, "--src", _write(tmp_path, "s.txt", SOURCES))
    assert code in (0, None), err
    for needle in ("BLEU", "chrF++", "95% CI", "copy rate", "100.0%", "tok:13a", "nw:2"):
        assert needle in out


def test_off_target_rate(tmp_path):
    hyps = SOURCES[:3] + TARGETS[3:]  # three English answers where Icelandic was asked for
    scores = score_files(_write(tmp_path, "h.txt", hyps), _write(tmp_path, "r.txt", TARGETS), tgt_lang="is")
    assert scores.off_target_rate == 0.75
    assert scores.languages == {"en": 3, "is": 1}


@pytest.mark.parametrize("lang", ["kgv", "kau"])
def test_unsupported_language_gives_note(tmp_path, monkeypatch, capsys, lang):
    files = _write(tmp_path, "h.txt", TARGETS), _write(tmp_path, "r.txt", TARGETS)
    scores = _json(monkeypatch, capsys, *files, "--to", lang)
    assert scores["off_target_rate"] is None
    assert scores["notes"] == [f"language ID not available for {lang}"]
    code, out, _ = _cli(monkeypatch, capsys, *files, "--to", lang)
    assert code in (0, None) and f"language ID not available for {lang}" in out


@pytest.mark.parametrize(("hyp_lines", "ref_lines", "src_lines", "needles"), [
    (TARGETS[:3], TARGETS, None, ["h.txt", "has 3 lines", "r.txt", "has 4"]),
    (TARGETS, TARGETS, SOURCES[:2], ["s.txt", "has 2 lines", "r.txt", "has 4"]),
    ([], TARGETS, None, ["h.txt", "is empty"]),
    (TARGETS, [], None, ["r.txt", "is empty"]),
    (TARGETS, TARGETS, [], ["s.txt", "is empty"]),
])
def test_bad_files_are_one_line(tmp_path, monkeypatch, capsys, hyp_lines, ref_lines, src_lines, needles):
    args = [_write(tmp_path, "h.txt", hyp_lines), _write(tmp_path, "r.txt", ref_lines)]
    if src_lines is not None:
        args += ["--src", _write(tmp_path, "s.txt", src_lines)]
    _assert_one_line_error(_cli(monkeypatch, capsys, *args), *needles)


def test_missing_file_is_one_line(tmp_path, monkeypatch, capsys):
    ref = _write(tmp_path, "r.txt", TARGETS)
    _assert_one_line_error(_cli(monkeypatch, capsys, tmp_path / "nope.txt", ref), "nope.txt", "no such file")
    _assert_one_line_error(_cli(monkeypatch, capsys, ref, tmp_path), "REF", "not a file")


@pytest.mark.parametrize(("with_src", "needle"), [
    (False, "COMET needs the source sentences"),
    (True, "neither a file, a folder nor a hub id"),
])
def test_comet_errors_are_one_line(tmp_path, monkeypatch, capsys, with_src, needle):
    args = [_write(tmp_path, "h.txt", TARGETS), _write(tmp_path, "r.txt", TARGETS),
            "--comet-model", tmp_path / "no" / "model.ckpt"]
    if with_src:
        args += ["--src", _write(tmp_path, "s.txt", SOURCES)]
    _assert_one_line_error(_cli(monkeypatch, capsys, *args), needle)


def test_library_raises_user_error(tmp_path):
    with pytest.raises(UserError, match="has 3 lines"):
        score_files(_write(tmp_path, "h.txt", TARGETS[:3]), _write(tmp_path, "r.txt", TARGETS))
