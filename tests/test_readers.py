"""Every reader on a tiny committed fixture in the real file's format."""

from pathlib import Path

import pytest

from lowres_mt.corpora.readers import READERS, Source
from lowres_mt.errors import UserError
from lowres_mt.records import Instruction, Message, Pair, SystemOutput, Text

FIXTURES = Path(__file__).parent / "fixtures" / "corpora"
# format -> (fixture files, languages, options, record type): one row per registered reader
FIXTURE_FOR = {
    "tsv-pairs": (["pairs.tsv"], ("en", "is"), {}, Pair),
    "aligned": (["aligned.en", "aligned.is"], ("en", "is"), {}, Pair),
    "system-outputs": (["system-a.is", "system-b.is"], ("en", "is"), {"systems": ["A", "B"]}, SystemOutput),
    "text-lines": (["lines.txt"], ("is",), {}, Text),
    "conllu": (["tiny.conllu"], ("is",), {}, Text),
    "icepahc-tsv": (["icepahc.tsv"], ("is",), {}, Text),
    "dolly-jsonl": (["dolly.jsonl"], ("en",), {}, Instruction),
    "gsm8k-jsonl": (["gsm8k.jsonl"], ("en",), {}, Instruction),
    "alpaca-json": (["alpaca.json"], ("en",), {}, Instruction),
    "oasst-threads": (["oasst.jsonl"], ("en",), {}, Instruction),
    "selfinstruct-jsonl": (["selfinstruct.jsonl"], ("en",), {}, Instruction),
}


def read(fmt: str, files: list[str], languages: tuple[str, ...], options: dict | None = None) -> tuple[list, Source]:
    source = Source(f"toy:{fmt}", tuple(FIXTURES / f for f in files), languages, options or {})
    return READERS[fmt].read(source), source


def chat(user: str, assistant: str) -> tuple[Message, ...]:
    return (Message("user", user), Message("assistant", assistant))


def test_tsv_pairs_skips_and_counts_malformed_lines():
    pairs, source = read("tsv-pairs", ["pairs.tsv"], ("en", "is"))
    assert pairs == [
        Pair("The cat sleeps.", "Kötturinn sefur.", "en", "is", "toy:tsv-pairs", "0"),
        Pair("Good morning!", "Góðan daginn!", "en", "is", "toy:tsv-pairs", "4"),
    ]
    assert source.skipped == {"malformed": 2, "empty": 1}


def test_aligned_keeps_line_index_ids_and_splits_only_on_newline():
    pairs, source = read("aligned", ["aligned.en", "aligned.is"], ("en", "is"))
    assert [p.id for p in pairs] == ["0", "1", "3"]  # line 2 is blank on the English side
    assert pairs[1].src == "A line with a\u2028line separator."
    assert pairs[2] == Pair("Thank you.", "Takk fyrir.", "en", "is", "toy:aligned", "3")
    assert source.skipped == {"empty": 1}


def test_aligned_rejects_files_of_different_length():
    with pytest.raises(UserError, match="aligned.en and lines.txt have 4 and 3 lines"):
        read("aligned", ["aligned.en", "lines.txt"], ("en", "is"))


def test_system_outputs_one_record_per_system_and_line():
    outputs, _ = read("system-outputs", ["system-a.is", "system-b.is"], ("en", "is"), {"systems": ["A", "B"]})
    assert len(outputs) == 6
    assert outputs[0] == SystemOutput("A", "Halló.", "en", "is", "toy:system-outputs", "0")
    by_system = {(o.system, o.id): o.hyp for o in outputs}
    assert by_system[("B", "1")] == ""  # an empty translation is still that system's output
    assert by_system[("B", "2")] == "Takk fyrir."


def test_text_lines_drops_empty_and_strips():
    texts, source = read("text-lines", ["lines.txt"], ("is",))
    assert texts == [Text("Fyrsta lína.", "is", "toy:text-lines", "0"), Text("Önnur lína.", "is", "toy:text-lines", "2")]
    assert source.skipped == {"empty": 1}


def test_conllu_reads_text_comments_with_sent_ids():
    texts, _ = read("conllu", ["tiny.conllu"], ("is",))
    assert [(t.text, t.id) for t in texts] == [("Hann kom heim.", "TINY_1"), ("Hún les.", "TINY_2"), ("Án auðkennis.", "2")]
    assert all(t.lang == "is" and t.corpus == "toy:conllu" for t in texts)


def test_icepahc_tsv_reads_text_column_and_filters_by_year():
    texts, source = read("icepahc-tsv", ["icepahc.tsv"], ("is",))
    assert [t.id for t in texts] == ["1150.TINY.SCI-LIN,1.1", "1888.TINY.NAR-FIC,2.2", "2008.TINY.NAR-SAG,4.4"]
    assert texts[1].text == "Hún gekk út."
    assert source.skipped == {"malformed": 1, "empty": 1}
    modern, _ = read("icepahc-tsv", ["icepahc.tsv"], ("is",), {"min_year": 1850})
    assert [t.text for t in modern] == ["Hún gekk út.", "Þau komu heim."]


def test_dolly_joins_context_after_a_blank_line():
    records, source = read("dolly-jsonl", ["dolly.jsonl"], ("en",))
    assert records[0] == Instruction(chat(
        "When did the airline start operating?\n\nThe airline commenced services on 31 August 2000.",
        "It started on 31 August 2000."), "toy:dolly-jsonl", "dolly:0")
    assert records[1].messages == chat("Which is a species of fish? Tope or Rope", "Tope")
    assert len(records) == 2
    assert source.skipped == {"empty": 1, "malformed": 1}


def test_gsm8k_strips_calculator_annotations_and_keeps_the_answer_line():
    records, _ = read("gsm8k-jsonl", ["gsm8k.jsonl"], ("en",))
    assert records[0].messages == chat("Ann has 3 apples and buys 4 more. How many apples does she have?",
                                       "She has 3+4 = 7 apples.\n#### 7")
    assert records[1].messages[1].content == "5 pens cost 5*2 = $10.\n#### 10"
    assert [r.id for r in records] == ["0", "1"]


def test_alpaca_appends_real_inputs_and_ignores_placeholders():
    records, source = read("alpaca-json", ["alpaca.json"], ("en",))
    users = [r.messages[0].content for r in records]
    assert users == [
        "Create a palindrome sentence.",
        "Edit the sentence for proper grammar.\n\nI seen the movie.",
        "Give a brief history of the bridge.",
        "Name a colour.",
    ]
    assert [r.id for r in records] == ["0", "1", "2", "4"]
    assert source.skipped == {"empty": 1}


def test_oasst_threads_are_multi_turn_and_end_on_the_assistant():
    records, source = read("oasst-threads", ["oasst.jsonl"], ("en",))
    assert records[0].messages == chat("What is a fjord?", "A long, narrow inlet with steep sides.") + chat(
        "Name one in Iceland.", "Eyjafjörður.")
    assert records[1] == Instruction(chat("Hi!", "Hello! How can I help?"), "toy:oasst-threads", "tree-2")
    assert len(records) == 2  # tree-3 has no assistant turn at all
    assert source.skipped == {"empty": 1}


def test_selfinstruct_uses_the_first_instance():
    records, _ = read("selfinstruct-jsonl", ["selfinstruct.jsonl"], ("en",))
    assert records[0] == Instruction(chat("What is the relation between the given pairs?\n\nNight : Day :: Right : Left",
                                          "They are opposites."), "toy:selfinstruct-jsonl", "seed_task_0")
    assert records[1].messages == chat("Suggest a breakfast without eggs.", "Oatmeal with fruit.")


@pytest.mark.parametrize(("fmt", "files", "languages", "options", "problem"), [
    ("aligned", ("a",), ("en", "is"), {}, "exactly 2 file"),
    ("tsv-pairs", ("a",), ("en",), {}, "exactly 2 language"),
    ("conllu", ("a",), ("is",), {"systems": []}, "unknown option 'systems'"),
    ("system-outputs", ("a", "b"), ("en", "is"), {"systems": ["A"]}, "name each of the 2 files once"),
    ("system-outputs", ("a",), ("en", "is"), {}, "needs 'options.systems'"),
    ("icepahc-tsv", ("a",), ("is",), {"min_year": "old"}, "must be a year"),
    ("text-lines", (), ("is",), {}, "at least one file"),
])
def test_reader_set_checks(fmt, files, languages, options, problem):
    assert problem in READERS[fmt].check_set(files, languages, options)
    assert READERS["aligned"].check_set(("a", "b"), ("en", "is"), {}) is None


# the grammar-book formats (lowres_mt.corpora.book.readers) have their own fixtures in test_book_readers.py
CORE_FORMATS = sorted(f for f, r in READERS.items() if r.read.__module__ != "lowres_mt.corpora.book.readers")


@pytest.mark.parametrize("fmt", CORE_FORMATS)
def test_every_registered_format_reads_its_fixture(fmt):
    files, languages, options, record_type = FIXTURE_FOR[fmt]  # a new format needs a fixture row
    assert READERS[fmt].check_set(tuple(files), languages, options) is None
    records, _ = read(fmt, files, languages, options)
    assert records and all(isinstance(r, record_type) for r in records)
    assert all(r.corpus == f"toy:{fmt}" and r.id for r in records)
