"""The CTranslate2 backend gives the torch engine's answers: conversion (reused), greedy tokens,
the stop rules, the repetition controls, the vocabulary restriction, long prompts, int8."""

import os

import pytest
import torch
from conftest import TINY_TOKENIZER, make_tiny_model

from lowres_mt.config import AnchorConfig
from lowres_mt.data.prompts import prompt_messages
from lowres_mt.translate import DecodeSettings, Engine, StopTables, build_prompt, is_looping
from lowres_mt.translate.ct2 import (
    Ct2Engine,
    cache_key,
    convert,
    supports,
    unsupported,
)

pytestmark = pytest.mark.usefixtures("one_thread")

SOURCES = [
    "Good morning.",
    "The cat sat on the mat near the door.",
    "Hi",
    "We now have mice that are no longer sick.",
    "He added that it was early.",
    "Yes.",
    "The committee met on Tuesday to discuss it.",
    "Rain",
    "Where is the station?",
]
PLAIN = {"no_repeat_ngram": 0, "repetition_penalty": 1.0, "stop_repeats": 0}  # pure argmax


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TINY_TOKENIZER)


@pytest.fixture(scope="module")
def model(tokenizer):
    return make_tiny_model(tokenizer, seed=3)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, model, tokenizer):
    path = tmp_path_factory.mktemp("ct2") / "tiny-hf"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def ct2_dir(model_dir):
    return convert(model_dir, model_dir.parent / "tiny-ct2", "float32")


def settings(**kw):
    return DecodeSettings(**{"batch_size": 4, "max_new_tokens": 10, **kw})


def torch_engine(model, tokenizer, **kw):
    return Engine(model, tokenizer, settings(**kw), progress=False)


def ct2_engine(ct2_dir, torch_eng, **kw):
    """The CTranslate2 engine for `torch_eng`'s model, settings, stop ids and tables."""
    return Ct2Engine(ct2_dir, torch_eng.tokenizer, torch_eng.settings, stop_ids=torch_eng.stop_ids,
                     tables=torch_eng.tables, compute_type="float32", intra_threads=1, progress=False, **kw)


def prompts(tokenizer, style="plain", sources=SOURCES):
    return [build_prompt(tokenizer, *prompt_messages(s, "en", "is", style, AnchorConfig())) for s in sources]


def rows(tokenizer, style="plain", sources=SOURCES):
    return [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts(tokenizer, style, sources)]


def test_conversion_is_written_once_and_reused(model_dir, ct2_dir):
    assert {"model.bin", "vocabulary.json", "config.json", "lowres-mt-ct2.json"} <= set(os.listdir(ct2_dir))
    before = os.stat(ct2_dir / "model.bin")
    assert convert(model_dir, ct2_dir, "float32") == ct2_dir
    after = os.stat(ct2_dir / "model.bin")
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert not [p for p in os.listdir(ct2_dir.parent) if p.startswith(".")]  # no temporaries left


def test_cache_key_names_the_quantization(tokenizer):
    digest = "ab" * 32
    assert cache_key(digest, "float32") != cache_key(digest, "int8_float32")
    assert cache_key(digest, "float32") == cache_key(digest, "float32")
    with pytest.raises(ValueError, match="quantization"):
        cache_key(digest, "int3")


def test_supports_gemma3_text_models_only(model):
    from transformers import LlamaConfig

    assert supports(model.config)
    scaled = model.config.__class__(**{**model.config.to_dict(), "rope_scaling": {"rope_type": "linear", "factor": 8.0}})
    assert not supports(scaled)
    assert not supports(LlamaConfig())


def test_greedy_answers_are_the_torch_engines(model, tokenizer, ct2_dir):
    """Every token, not only the parsed answer: plain argmax, and the default settings (repetition
    controls, loop stop) over prompts of different lengths in one batch."""
    for kw in (PLAIN, {}):
        eng = torch_engine(model, tokenizer, **kw)
        fast = ct2_engine(ct2_dir, eng)
        for batch_size in (1, 4):
            eng.settings = fast.settings = settings(batch_size=batch_size, **kw)
            assert fast._generate(rows(tokenizer)) == eng._generate(rows(tokenizer))
        answers = fast.translate(SOURCES, "en", "is")
        assert answers == eng.translate(SOURCES, "en", "is") and any(answers)


def test_a_prompt_that_begins_another_keeps_its_own_answer(model, tokenizer, ct2_dir):
    """CTranslate2 prefills what every row of a batch has; rows left with one token to go (a
    one-token prompt, or a shared prefix as long as a prompt) must not leak the others' tokens."""
    eng = torch_engine(model, tokenizer, **PLAIN)
    fast = ct2_engine(ct2_dir, eng)
    row = rows(tokenizer)[1]
    for batch in ([row[:-3], row], [[tokenizer.bos_token_id], row], [row[:1], row[:2], row]):
        assert fast._generate(batch) == eng._generate(batch)


def test_repetition_controls_get_batches_of_one_prompt_length(model, tokenizer, ct2_dir):
    """CTranslate2 would count the prompt tokens it forces for a batch's longer prompts."""
    encoded = [[1] * n for n in (3, 9, 3, 5, 9, 9)]
    fast = ct2_engine(ct2_dir, torch_engine(model, tokenizer, batch_size=2, no_repeat_ngram=3))
    assert list(fast._length_sorted_batches(encoded)) == [[1, 4], [5], [3], [0, 2]]
    plain = ct2_engine(ct2_dir, torch_engine(model, tokenizer, batch_size=2, **PLAIN))
    assert list(plain._length_sorted_batches(encoded)) == [[1, 4], [5, 3], [0, 2]]


def test_no_repeated_ngram_and_penalty_match_over_longer_answers(model, tokenizer, ct2_dir):
    kw = {"no_repeat_ngram": 2, "repetition_penalty": 1.5, "stop_repeats": 0, "max_new_tokens": 24}
    eng = torch_engine(model, tokenizer, **kw)
    out = ct2_engine(ct2_dir, eng)._generate(rows(tokenizer))
    assert out == eng._generate(rows(tokenizer))
    assert max(map(len, out)) > 8


def _mid_answer_token(outs):
    """A token some row produces after its first token and no row produces first."""
    firsts = {o[0] for o in outs if o}
    return next(t for o in outs for t in o[1:] if t not in firsts)


def test_a_stop_token_ends_both_engines_at_the_same_place(model, tokenizer, ct2_dir):
    eng = torch_engine(model, tokenizer, **PLAIN)
    stop = _mid_answer_token(eng._generate(rows(tokenizer)))
    eng.stop_ids = sorted({*eng.stop_ids, stop})
    fast = ct2_engine(ct2_dir, eng)
    out = fast._generate(rows(tokenizer))
    assert out == eng._generate(rows(tokenizer))
    assert any(len(o) < 10 for o in out) and not any(stop in o for o in out)


@pytest.fixture
def callback_only(monkeypatch):
    """Greedy rows must end in CTranslate2's callback, not in the cut made afterwards."""
    monkeypatch.setattr(StopTables, "cut", lambda self, ids, stop_repeats=0: list(ids))


@pytest.mark.usefixtures("callback_only")
def test_the_newline_rule_ends_both_engines_at_the_same_place(model, tokenizer, ct2_dir):
    eng = torch_engine(model, tokenizer, **PLAIN)
    free = eng._generate(rows(tokenizer))
    token = _mid_answer_token(free)
    eng.tables.newline[token] = True  # the model's own token now reads as "text\n"
    eng.tables.text_then_newline[token] = True
    try:
        fast = ct2_engine(ct2_dir, eng)
        out = fast._generate(rows(tokenizer))
        assert out == eng._generate(rows(tokenizer))
        assert any(o and o[-1] == token and len(o) < len(f) for o, f in zip(out, free, strict=True))
    finally:
        eng.tables.newline[token] = eng.tables.text_then_newline[token] = False


@pytest.mark.usefixtures("callback_only")
def test_the_loop_stop_ends_both_engines_at_the_same_place(model, tokenizer, ct2_dir):
    eng = torch_engine(model, tokenizer, max_new_tokens=48, **{**PLAIN, "stop_repeats": 3})
    fast = ct2_engine(ct2_dir, eng)
    out = fast._generate(rows(tokenizer))
    assert out == eng._generate(rows(tokenizer))
    assert any(len(o) < 48 and is_looping(o, 3, eng.tables.texts) for o in out)  # the random model loops


def test_cut_at_the_answer_end(tokenizer):
    from lowres_mt.translate import StopTables

    tables = StopTables(tokenizer)

    def ids(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    assert tables.cut(ids("\nHello\nmore"), 0) == ids("\nHello\n")
    assert tables.cut(ids("Hello there"), 0) == ids("Hello there")
    assert tables.cut([1, 2, 3, 4] * 3 + [5], 3) == [1, 2, 3, 4] * 3


@pytest.mark.parametrize("alphabet", [False, True])
def test_a_restricted_vocabulary_gives_the_torch_engines_answers(model, tokenizer, ct2_dir, alphabet):
    eng = torch_engine(model, tokenizer, **PLAIN)
    chosen = {t for out in eng._generate(rows(tokenizer)) for t in out} - set(eng.stop_ids)
    if alphabet:  # the tiny vocabulary is ASCII: spell the chosen tokens with Danish letters
        eng.tables.texts = [f"{t}på" if i in chosen else t for i, t in enumerate(eng.tables.texts)]
        fast = ct2_engine(ct2_dir, eng)
    else:  # a run's training vocabulary without the chosen tokens
        vocabulary = [i for i in range(len(tokenizer)) if i not in chosen]
        eng = Engine(model, tokenizer, eng.settings, progress=False, vocabulary=vocabulary)
        fast = ct2_engine(ct2_dir, eng, vocabulary=vocabulary)
    allowed = eng.allowed("is")
    assert allowed is not None and torch.equal(fast.allowed("is"), allowed)
    out = fast._generate(rows(tokenizer), fast.allowed("is"))
    assert out == eng._generate(rows(tokenizer), allowed)
    assert all(out) and not {t for o in out for t in o} & chosen


@pytest.fixture(scope="module")
def heads(model_dir):
    """`Ct2Engine.heads`: the tiny model converted with an output layer of the given ids."""
    def convert_head(ids):
        return convert(model_dir, model_dir.parent / cache_key("0" * 16, "float32", ids), "float32", head=ids)
    return convert_head


@pytest.mark.parametrize("kw", [PLAIN, {}])
def test_an_output_layer_of_the_allowed_ids_gives_the_torch_engines_answers(model, tokenizer, heads, ct2_dir, kw):
    """The restricted head reorders the vocabulary and keeps the allowed rows of the projection:
    the same tokens as the torch engine's sliced head, with and without the repetition controls."""
    eng = torch_engine(model, tokenizer, **kw)
    chosen = {t for out in eng._generate(rows(tokenizer)) for t in out} - set(eng.stop_ids)
    ends = {row[-1] for row in rows(tokenizer)}
    vocabulary = [i for i in range(len(tokenizer)) if i not in chosen or i in ends][: len(tokenizer) // 2]
    vocabulary = sorted({*vocabulary, *ends})  # every prompt's last token is inside the head
    eng = Engine(model, tokenizer, eng.settings, progress=False, vocabulary=vocabulary)
    fast = ct2_engine(ct2_dir, eng, vocabulary=vocabulary, heads=heads)
    allowed = eng.allowed("is")
    fast._head(allowed)
    fast.generator = None  # every batch must go to the head's generator
    for batch_size in (1, 4):
        eng.settings = fast.settings = settings(batch_size=batch_size, **kw)
        out = fast._generate(rows(tokenizer), allowed)
        assert out == eng._generate(rows(tokenizer), allowed)
    assert len(fast._heads) == 1 and all(out)
    assert {t for o in out for t in o} <= set(allowed.tolist())
    head = next(iter(fast._heads.values()))
    assert head.ids[: len(allowed)].tolist() == allowed.tolist()
    assert fast.translate(SOURCES, "en", "is") == eng.translate(SOURCES, "en", "is")


def test_a_prompt_ending_outside_the_head_is_decoded_with_suppression(model, tokenizer, heads, ct2_dir):
    eng = torch_engine(model, tokenizer)
    ends = {row[-1] for row in rows(tokenizer)}
    vocabulary = [i for i in range(len(tokenizer)) if i not in ends]
    eng = Engine(model, tokenizer, eng.settings, progress=False, vocabulary=vocabulary)
    fast = ct2_engine(ct2_dir, eng, vocabulary=vocabulary, heads=heads)
    allowed = eng.allowed("is")
    fast._head(allowed)
    for head in fast._heads.values():
        object.__setattr__(head, "generator", None)  # the head's generator must not be used
    assert fast._generate(rows(tokenizer), allowed) == eng._generate(rows(tokenizer), allowed)


def test_a_head_conversion_is_its_own_folder(ct2_dir, heads):
    import json

    digest = "0" * 16
    assert cache_key(digest, "float32", [1, 2, 3]) not in (cache_key(digest, "float32"),
                                                            cache_key(digest, "float32", [1, 2, 4]))
    folder = heads([5, 3, 7])
    tokens = json.loads((folder / "vocabulary.json").read_text())
    full = json.loads((ct2_dir / "vocabulary.json").read_text())
    assert tokens[:3] == [full[3], full[5], full[7]] and sorted(tokens) == sorted(full)
    assert json.loads((folder / "lowres-mt-ct2.json").read_text())["head_size"] == 3
    with pytest.raises(ValueError, match="output layer"):
        heads([-1])


def test_prompts_longer_than_the_window_go_to_the_fallback(model, tokenizer, ct2_dir):
    """TELL prompts are longer than the tiny model's 64-token window: CTranslate2 prefills them in
    chunks whose later queries see more than the window."""
    eng = torch_engine(model, tokenizer)
    long = rows(tokenizer, "tell")
    assert min(map(len, long)) > model.config.sliding_window + 1
    mixed = rows(tokenizer)[:3] + long[:3]
    exact = ct2_engine(ct2_dir, eng, fallback=eng)
    assert exact._generate(mixed) == eng._generate(mixed) and exact.inexact == 0
    alone = ct2_engine(ct2_dir, eng)
    assert alone._generate(mixed)[3:] != eng._generate(mixed)[3:]
    assert alone.inexact == 3


def test_unsupported_names_beam_search_only():
    assert unsupported(DecodeSettings()) is None
    assert unsupported(DecodeSettings(alphabet=False, train_vocabulary=True, stop_repeats=0)) is None
    reason = unsupported(DecodeSettings(num_beams=4))
    assert reason and "beam" in reason and "\n" not in reason


def test_beam_search_runs_and_ends_answers(model, tokenizer, ct2_dir):
    eng = torch_engine(model, tokenizer, num_beams=3)
    out = ct2_engine(ct2_dir, eng).translate(SOURCES, "en", "is")
    assert len(out) == len(SOURCES) and any(out) and all("\n" not in o for o in out)


def test_int8_conversion_decodes(model, tokenizer, model_dir):
    path = convert(model_dir, model_dir.parent / "tiny-ct2-int8", "int8_float32")
    eng = torch_engine(model, tokenizer, **PLAIN)
    fast = Ct2Engine(path, tokenizer, eng.settings, stop_ids=eng.stop_ids, tables=eng.tables,
                     intra_threads=1, progress=False)
    out = fast._generate(rows(tokenizer))  # int8 kernels differ by CPU: no exact tokens to expect
    assert len(out) == len(SOURCES) and any(out) and all(len(o) <= 10 for o in out)
    assert all(0 <= t < len(tokenizer) for o in out for t in o)


def test_a_vocabulary_that_is_not_the_tokenizers_is_refused(ct2_dir, tokenizer, tmp_path):
    import json
    import shutil

    other = tmp_path / "other"
    shutil.copytree(ct2_dir, other)
    tokens = json.loads((other / "vocabulary.json").read_text())
    tokens[10], tokens[11] = tokens[11], tokens[10]
    (other / "vocabulary.json").write_text(json.dumps(tokens))
    with pytest.raises(ValueError, match="does not match the tokenizer"):
        Ct2Engine(other, tokenizer, stop_ids=[1])
