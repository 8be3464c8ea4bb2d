"""The stored result record: every committed result JSON reads into a `Result` and writes back
the same layout."""

import json
from pathlib import Path

import pytest

from lowres_mt.evaluate.result import Result, read_result

RESULTS = Path(__file__).resolve().parent.parent / "results"
COMMITTED = sorted(p for p in RESULTS.glob("**/*.json") if read_result(p) is not None)


def test_committed_results_are_found():
    assert len(COMMITTED) > 100 and RESULTS / "en-is" / "tell" / "flores200-devtest.en-is.json" in COMMITTED


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(RESULTS)))
def test_a_committed_result_round_trips(path):
    stored = json.loads(path.read_text(encoding="utf-8"))
    result = Result.from_dict(stored)
    assert Result.from_dict(result.to_dict()) == result
    written = result.to_dict()
    assert {k: v for k, v in written.items() if k in stored} == stored
    assert list(stored) == [k for k in written if k in stored]  # same keys, same order
    assert all(written[k] is None for k in written if k not in stored)  # older files: defaults


def test_an_older_result_gets_defaults_and_unknown_keys_are_left_out():
    old = {"system": "tell", "kind": "adapter", "testset": "flores200:devtest", "direction": "en-is", "n": 2,
           "scores": {"chrF": {"score": 30.0}}, "ids": ["0", "5"], "_baseline": True}
    result = Result.from_dict(old)
    assert result.ids == ("0", "5") and result.shot_copies is None and result.decode == {}
    assert "_baseline" not in result.to_dict() and result.to_dict()["ids"] == ["0", "5"]


def test_json_that_is_no_result_reads_as_none(tmp_path):
    for name, text in [("broken.json", "{"), ("list.json", "[]"), ("other.json", '{"system": "x"}')]:
        (tmp_path / name).write_text(text)
        assert read_result(tmp_path / name) is None
    assert read_result(tmp_path / "missing.json") is None
