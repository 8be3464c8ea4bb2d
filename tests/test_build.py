"""The data builder on a fake, in-memory corpora layer (fast, independent of the mirror)."""

import json
import random
from types import SimpleNamespace

import pytest

import lowres_mt.corpora
from lowres_mt.config import load_recipe
from lowres_mt.data.budget import token_counter
from lowres_mt.dataset import build_dataset
from lowres_mt.errors import UserError
from lowres_mt.records import Instruction, Message, Pair, Text
from lowres_mt.text import normalize

WORDS = "cat dog house river stone bird tree ship sun moon road fire".split()
IS_WORDS = "köttur hundur hús á steinn fugl tré skip sól máni vegur eldur".split()


def fake_pairs(ref, n, seed):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        idx = [rng.randrange(len(WORDS)) for _ in range(rng.randint(3, 9))]
        out.append(Pair(" ".join(WORDS[j] for j in idx) + f" {i}.", " ".join(IS_WORDS[j] for j in idx) + f" {i}.",
                        "en", "is", ref, str(i)))
    return out


def fake_instructions(ref, n):
    return [Instruction((Message("user", f"Question {i}: what is {' '.join(WORDS[: i % 7 + 1])}?"),
                         Message("assistant", f"Answer {i}: " + " ".join(WORDS[: i % 11 + 2]))), ref, str(i))
            for i in range(n)]


@pytest.fixture
def corpora(monkeypatch):
    sets = {
        "toy:train": fake_pairs("toy:train", 400, 1),
        "toy:more": fake_pairs("toy:more", 100, 2),
        "toy:dev": fake_pairs("toy:dev", 30, 3),
        "toy:test": fake_pairs("toy:test", 30, 4),
        "gen:a": fake_instructions("gen:a", 600),
        "gen:b": fake_instructions("gen:b", 300),
        "mono:is": [Text(" ".join(IS_WORDS[(i + j) % 12] for j in range(5)) + f" {i}.", "is", "mono:is", str(i))
                    for i in range(300)],
    }
    # contaminate: a test sentence also sits in the training data (with a trivial variation)
    leaked = sets["toy:test"][0]
    sets["toy:train"].append(Pair(leaked.src.upper(), "eitthvað annað", "en", "is", "toy:train", "leak"))
    sets["mono:is"].append(Text(leaked.tgt, "is", "mono:is", "leak"))

    def load_set(ref):
        if ref not in sets:
            raise UserError(f"unknown set {ref}")
        return list(sets[ref])

    def set_info(ref):
        role = "general" if ref.startswith("gen") else "monolingual" if ref.startswith("mono") else "train"
        languages = ("is",) if role == "monolingual" else ("en", "is")
        return SimpleNamespace(ref=ref, role=role, languages=languages,
                               files=(SimpleNamespace(path=f"{ref}.txt", sha256="0" * 64, size=0),))

    monkeypatch.setattr(lowres_mt.corpora, "load_set", load_set)
    monkeypatch.setattr(lowres_mt.corpora, "set_info", set_info)
    return sets


def recipe(*overrides):
    base = [
        "task.train=[toy:train, toy:more]", "task.weights={}", "task.dev=toy:dev", "task.guard=[toy:test]", "task.tokens=600",
        "task.dev_size=5", "task.epochs=1", "mono.ratio=0", "general.corpora=[gen:a, gen:b]", "general.ratio=4", "eval.testsets=[]",
    ]
    return load_recipe("en-is", base + list(overrides))


def build(tmp_path, tiny_tokenizer, method="tell", name="run", cfg=None):
    out = tmp_path / name / "data"
    report = build_dataset(cfg or recipe(), method=method, out_dir=out, tokenizer=tiny_tokenizer)
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    return report, rows, out


def test_same_seed_gives_byte_identical_files(tmp_path, tiny_tokenizer, corpora):
    _, _, a = build(tmp_path, tiny_tokenizer, name="a")
    _, _, b = build(tmp_path, tiny_tokenizer, name="b")
    assert (a / "train.jsonl").read_bytes() == (b / "train.jsonl").read_bytes()
    assert (a / "dev.jsonl").read_bytes() == (b / "dev.jsonl").read_bytes()
    _, _, c = build(tmp_path, tiny_tokenizer, name="c", cfg=recipe("seed=1"))
    assert (a / "train.jsonl").read_bytes() != (c / "train.jsonl").read_bytes()


def test_general_to_task_ratio_within_five_percent(tmp_path, tiny_tokenizer, corpora):
    report, rows, _ = build(tmp_path, tiny_tokenizer)
    task = sum(v for k, v in report.tokens.items() if k.startswith("task/"))
    assert task >= 600
    assert report.tokens["general"] / task == pytest.approx(4.0, rel=0.05)
    count = token_counter(tiny_tokenizer)
    recount = sum(count(["\n".join(m["content"] for m in r["messages"])])[0] for r in rows if r["role"] == "general")
    assert recount == report.tokens["general"]


def test_contamination_guard_drops_and_reports(tmp_path, tiny_tokenizer, corpora):
    report, rows, out = build(tmp_path, tiny_tokenizer, cfg=recipe("task.tokens=100000", "general.ratio=0"))
    assert report.corpora["toy:train"].contaminated == 1
    protected = {normalize(t) for p in corpora["toy:test"] + corpora["toy:dev"] for t in (p.src, p.tgt)}
    train_texts = {normalize(r[k]) for r in rows if r["role"] == "task" for k in ("src", "tgt")}
    assert not protected & train_texts
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["corpora"]["toy:train"]["contaminated"] == 1
    assert manifest["corpora"]["toy:train"]["files"][0]["sha256"] == "0" * 64


def test_tell_and_sft_see_the_same_task_pairs(tmp_path, tiny_tokenizer, corpora):
    cfg = recipe("anchor.instruction=This text is in {src_name}; into {tgt_name}, please.")  # en-is's anchor is SFT's prompt
    _, tell, _ = build(tmp_path, tiny_tokenizer, "tell", "t", cfg=cfg)
    _, sft, _ = build(tmp_path, tiny_tokenizer, "sft", "s", cfg=cfg)
    key = lambda rows: sorted((r["id"], r["direction"]) for r in rows if r["role"] == "task")  # noqa: E731
    assert key(tell) == key(sft)
    assert {r["role"] for r in sft} == {"task"}
    assert {r["role"] for r in tell} == {"task", "general"}
    tell_task = next(r for r in tell if r["role"] == "task")
    sft_task = next(r for r in sft if r["id"] == tell_task["id"])
    assert tell_task["messages"][0]["content"].startswith("This text is in")
    assert sft_task["messages"][0]["content"].startswith("Translate from")


def test_both_directions_and_dev_sample(tmp_path, tiny_tokenizer, corpora):
    report, rows, out = build(tmp_path, tiny_tokenizer)
    directions = [r["direction"] for r in rows if r["role"] == "task"]
    assert abs(directions.count("en-is") - directions.count("is-en")) <= 1
    is_en = next(r for r in rows if r["direction"] == "is-en")
    assert is_en["messages"][0]["content"].endswith(is_en["src"])
    assert any(w in is_en["src"] for w in IS_WORDS)
    dev = [json.loads(line) for line in (out / "dev.jsonl").read_text().splitlines()]
    assert len(dev) == report.dev_examples == 10
    assert {d["direction"] for d in dev} == {"en-is", "is-en"}


def test_empty_pool_is_a_clear_error_and_keeps_old_output(tmp_path, tiny_tokenizer, corpora):
    _, _, out = build(tmp_path, tiny_tokenizer)
    before = (out / "train.jsonl").read_bytes()
    with pytest.raises(UserError, match="no training pairs left"):
        build_dataset(recipe("task.max_chars=3"), method="tell", out_dir=out, tokenizer=tiny_tokenizer)
    assert (out / "train.jsonl").read_bytes() == before
    with pytest.raises(UserError, match="unknown method"):
        build_dataset(recipe(), method="dpo", out_dir=out, tokenizer=tiny_tokenizer)


def test_general_budget_too_large_is_an_error(tmp_path, tiny_tokenizer, corpora):
    with pytest.raises(UserError, match="general corpora hold only"):
        build_dataset(recipe("general.ratio=100000"), method="tell", out_dir=tmp_path / "x", tokenizer=tiny_tokenizer)


def test_task_epochs_show_every_pair_in_both_directions_and_keep_the_general_budget(tmp_path, tiny_tokenizer,
                                                                                    corpora):
    once, once_rows, _ = build(tmp_path, tiny_tokenizer, name="once")
    twice, twice_rows, out = build(tmp_path, tiny_tokenizer, name="twice", cfg=recipe("task.epochs=2"))
    task = lambda rows: sorted((r["id"], r["direction"]) for r in rows if r["role"] == "task")  # noqa: E731
    ids = {i for i, _ in task(once_rows)}
    assert task(twice_rows) == sorted((i, d) for i in ids for d in ("en-is", "is-en"))
    assert twice.tokens["general"] == once.tokens["general"]  # the ratio counts unique task tokens
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["task_unique"] == {"pairs": len(ids), "tokens": once.task_unique["tokens"], "epochs": 2}
    with pytest.raises(UserError, match="task.epochs' must be at least 1"):
        build(tmp_path, tiny_tokenizer, name="none", cfg=recipe("task.epochs=0"))


def test_task_weights_draw_a_corpus_more_readily_and_are_checked(tmp_path, tiny_tokenizer, corpora):
    used = lambda report: report.corpora["toy:more"].used  # noqa: E731  (100 of the 500 pairs)
    even, _, _ = build(tmp_path, tiny_tokenizer, name="even")
    heavy, _, _ = build(tmp_path, tiny_tokenizer, name="heavy", cfg=recipe("task.weights.toy:more=20"))
    assert used(even) < 0.4 * (used(even) + even.corpora["toy:train"].used)
    assert used(heavy) > 0.7 * (used(heavy) + heavy.corpora["toy:train"].used)
    assert heavy.task_unique["tokens"] >= 600  # the budget is still filled
    with pytest.raises(UserError, match="task.weights names 'toy:other', which is not in task.train"):
        recipe("task.weights.toy:other=2")
    with pytest.raises(UserError, match=r"task.weights\['toy:more'\] must be above 0"):
        recipe("task.weights.toy:more=0")


NOISY = [  # (src, tgt, the counter that drops it, or None when the pair is kept)
    ("Hi.", "Hæ.", None),
    ("Figures on employed persons in R&amp;D.", "Tölur um starfandi fólk við rannsóknir og þróun.", None),
    ("The moisture content shall be indicated on the labelling.", "Tilgreina skal", "bad_ratio"),
    ("(Text with EEA relevance)", "2016/EES/18/17", "fragments"),
    ("Zoetis Českárepublika, s.r.o.", "Zoetis Česká republika, s.r.o.", "near_copies"),
    ("On Monday the scientists announced a new tool.", "I mandags præsenterede forskerne et nyt værktøj.",
     "wrong_language"),
]


def test_quality_filters_are_counted_per_corpus(corpora):
    from lowres_mt.data.guard import ContaminationGuard
    from lowres_mt.data.pools import load_task_pool

    corpora["toy:noisy"] = [Pair(s, t, "en", "is", "toy:noisy", str(i)) for i, (s, t, _) in enumerate(NOISY)]
    stats, dropped = {}, []
    pool = load_task_pool(recipe("task.train=[toy:noisy]"), ContaminationGuard(), stats, dropped)
    assert [(p.src, p.tgt) for p in pool] == [
        ("Hi.", "Hæ."), ("Figures on employed persons in R&D.", NOISY[1][1])]
    entry = stats["toy:noisy"]
    assert (entry.bad_ratio, entry.fragments, entry.near_copies, entry.wrong_language, entry.unescaped) == (1, 1, 1, 1, 1)
    assert sorted((reason, p.id) for reason, p in dropped) == sorted(
        (reason, str(i)) for i, (_, _, reason) in enumerate(NOISY) if reason)
    off = recipe("task.train=[toy:noisy]", "task.ratio_range=[0, .inf]", "task.min_letters=0",
                 "task.near_copies=false", "task.langid=false")
    assert len(load_task_pool(off, ContaminationGuard(), {})) == len(NOISY)


def test_quality_filter_counts_reach_the_manifest(tmp_path, tiny_tokenizer, corpora):
    _, _, out = build(tmp_path, tiny_tokenizer)
    manifest = json.loads((out / "manifest.json").read_text())["corpora"]["toy:train"]
    assert {"bad_ratio", "fragments", "near_copies", "wrong_language", "unescaped"} <= set(manifest)


def test_monolingual_text_is_an_answer_only_example_within_its_budget(tmp_path, tiny_tokenizer, corpora):
    report, rows, _ = build(tmp_path, tiny_tokenizer, "sft", cfg=recipe("mono.corpora=[mono:is]", "mono.ratio=0.5"))
    mono = [r for r in rows if r["role"] == "mono"]
    assert mono and all([m["role"] for m in r["messages"]] == ["assistant"] for r in mono)
    assert report.tokens["mono"] == pytest.approx(0.5 * report.task_unique["tokens"], rel=0.1)
    assert report.corpora["mono:is"].contaminated == 1  # a test sentence never becomes training text
    assert "leak" not in {r["id"].split("#")[1] for r in mono}
    _, none, _ = build(tmp_path, tiny_tokenizer, "sft", name="none")
    assert not [r for r in none if r["role"] == "mono"]
    with pytest.raises(UserError, match="mono.corpora is empty"):
        build(tmp_path, tiny_tokenizer, "sft", name="empty", cfg=recipe("mono.corpora=[]", "mono.ratio=1"))


@pytest.mark.parametrize(("languages", "langid", "notes"), [
    (("en", "is"), True, []),
    (("en", "kgv"), True, ["wrong-language filter: language ID not available for kgv, so its sides are not checked"]),
    (("en", "kgv"), False, []),
])
def test_build_notes_name_languages_without_language_id(languages, langid, notes):
    from lowres_mt.config import RecipeConfig, TaskConfig
    from lowres_mt.dataset import build_notes

    cfg = RecipeConfig(name="toy", languages=languages, task=TaskConfig(langid=langid))
    assert build_notes(cfg) == notes
