"""The generation engine: batched greedy == one-by-one, order restored, stop rules, LoRA merge."""

import pytest
import torch
from conftest import make_tiny_model

from lowres_mt.text import drop_repeated_tail, repeated_tail
from lowres_mt.translate import (
    AnswerEnd,
    DecodeSettings,
    Engine,
    StopTables,
    build_prompt,
    first_line,
    greedy_decode,
    is_looping,
    merge_lora,
    shared_prefix_length,
    split_sentences,
    stop_token_ids,
    translate_segments,
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


@pytest.fixture(scope="module")
def tokenizer():
    from conftest import TINY_TOKENIZER
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TINY_TOKENIZER)


@pytest.fixture(scope="module")
def model(tokenizer):
    return make_tiny_model(tokenizer, seed=3)


PLAIN = {"no_repeat_ngram": 0, "repetition_penalty": 1.0, "stop_repeats": 0}  # pure argmax, as `generate`


def engine(model, tokenizer, batch_size, **kw):
    return Engine(model, tokenizer, DecodeSettings(batch_size=batch_size, max_new_tokens=10, **{**PLAIN, **kw}),
                  progress=False)


def test_batched_greedy_equals_one_by_one(model, tokenizer):
    one = engine(model, tokenizer, 1).translate(SOURCES, "en", "is")
    batched = engine(model, tokenizer, 4).translate(SOURCES, "en", "is")
    assert batched == one
    assert any(one)  # the tiny model does produce text


def test_long_prompts_beyond_the_sliding_window_stay_exact(model, tokenizer):
    """TELL prompts are longer than the tiny model's 64-token window: rows are left-padded."""
    from lowres_mt.config import AnchorConfig

    eng = engine(model, tokenizer, 4)
    prompt = build_prompt(tokenizer, *_prompt(SOURCES[1], style="tell"))
    assert len(_ids(tokenizer, prompt)) > model.config.sliding_window
    batched = eng.translate(SOURCES, "en", "is", style="tell", anchor=AnchorConfig())
    one = engine(model, tokenizer, 1).translate(SOURCES, "en", "is", style="tell", anchor=AnchorConfig())
    assert batched == one


def test_engine_matches_plain_generate(model, tokenizer):
    eng = engine(model, tokenizer, 8)
    prompts = [build_prompt(tokenizer, *_prompt(s)) for s in SOURCES[:3]]
    ours = eng.complete(prompts)
    for prompt, got in zip(prompts, ours, strict=True):
        ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=10,
                             do_sample=False, eos_token_id=stop_token_ids(model, tokenizer),
                             pad_token_id=tokenizer.pad_token_id)
        text = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
        assert got == first_line(text)


def _prompt(src, style="plain"):
    from lowres_mt.config import AnchorConfig
    from lowres_mt.data.prompts import prompt_messages

    return prompt_messages(src, "en", "is", style, AnchorConfig())


def test_order_is_restored_whatever_the_input_order(model, tokenizer):
    eng = engine(model, tokenizer, 3)
    forward = eng.translate(SOURCES, "en", "is")
    backward = eng.translate(SOURCES[::-1], "en", "is")
    assert backward == forward[::-1]


def test_batches_are_length_sorted_longest_first(model, tokenizer):
    eng = engine(model, tokenizer, 2)
    encoded = [[1] * n for n in (3, 9, 1, 5, 9)]
    batches = list(eng._length_sorted_batches(encoded))
    assert batches == [[1, 4], [3, 0], [2]]


def test_blank_sources_skip_the_model(model, tokenizer):
    eng = engine(model, tokenizer, 4)
    out = eng.translate(["", "Good morning.", "   "], "en", "is")
    assert out[0] == "" and out[2] == ""
    assert out[1] == eng.translate(["Good morning."], "en", "is")[0]


def test_beam_search_runs(model, tokenizer):
    out = engine(model, tokenizer, 4, num_beams=3).translate(SOURCES[:3], "en", "is")
    assert len(out) == 3 and all("\n" not in o for o in out)


def _ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("generated, stops", [
    ("\n\n", False),          # leading newlines: the answer has not started
    ("\nHello", False),       # text after a leading newline, no newline yet
    ("Hello there", False),
    ("Hello\n", True),        # newline after text ends the answer
    ("\nHello\nmore", True),
])
def test_answer_end_stop_rule(tokenizer, generated, stops):
    rule = AnswerEnd(StopTables(tokenizer))
    prompt = _ids(tokenizer, "Translate.")
    rule.prompt_width = len(prompt)
    ids = torch.tensor([prompt + _ids(tokenizer, generated)])
    assert bool(rule(ids)[0]) is stops


def test_answer_end_is_per_sequence(tokenizer):
    rule = AnswerEnd(StopTables(tokenizer))
    a, b = _ids(tokenizer, "Hi\n"), _ids(tokenizer, "Hi there")
    width = max(len(a), len(b))
    rows = [a + [tokenizer.pad_token_id] * (width - len(a)), b + [tokenizer.pad_token_id] * (width - len(b))]
    rule.prompt_width = 0
    assert rule(torch.tensor(rows)).tolist() == [True, False]


def test_stop_tables_step_matches_the_rule(tokenizer):
    tables = StopTables(tokenizer)
    seen = torch.tensor([False, False, True])
    tokens = torch.tensor([_ids(tokenizer, "\n")[0], _ids(tokenizer, "Hello")[0], _ids(tokenizer, "\n")[0]])
    assert tables.step(tokens, seen).tolist() == [False, False, True]
    assert seen.tolist() == [False, True, True]


def test_one_answer_end_rule_in_three_forms(tokenizer):
    """Token by token (`step`: greedy, CTranslate2's callback), on whole answers (`ended`: beam
    search) and cutting finished ids (`cut`): the same end, loops included."""
    tables = StopTables(tokenizer)
    gen = torch.Generator().manual_seed(0)
    pool = [*_ids(tokenizer, "Hello world, this is it"), *_ids(tokenizer, "\n"), *_ids(tokenizer, " \n")]
    for stop_repeats in (0, 3):
        for _ in range(40):
            row = [pool[i] for i in torch.randint(len(pool), (12,), generator=gen).tolist()]
            cut = tables.cut(row, stop_repeats)
            seen, done, first = torch.zeros(1, dtype=torch.bool), [], None
            for n, token in enumerate(row):
                done.append(token)
                if first is None and tables.step(torch.tensor([token]), seen, [done], stop_repeats)[0]:
                    first = n + 1
            assert len(cut) == (first or len(row))
            for n in range(1, len(row) + 1):
                assert bool(tables.ended(torch.tensor([row[:n]]), stop_repeats)[0]) == (first is not None and n >= first)


def _prompt_rows(tokenizer, texts):
    return [_ids(tokenizer, build_prompt(tokenizer, *_prompt(t))) for t in texts]


def test_shared_prefix_length():
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert shared_prefix_length([[1, 2], [1, 2]]) == 1  # each row keeps a token of its own
    assert shared_prefix_length([[7, 1], [8, 1]]) == 0


@pytest.fixture(scope="module")
def wide_model(tokenizer):
    """The tiny model with a 512-token attention window, so the shared-prefix layout is used."""
    from transformers import Gemma3ForCausalLM

    torch.manual_seed(5)
    config = make_tiny_model(tokenizer).config
    config.sliding_window = 512
    return Gemma3ForCausalLM(config).eval()


def test_shared_prefix_and_padding_do_not_change_tokens(wide_model, tokenizer):
    from lowres_mt.translate.greedy import _can_share_prefix

    rows = _prompt_rows(tokenizer, SOURCES)
    assert shared_prefix_length(rows) > 5 and _can_share_prefix(wide_model.config, rows, 8)
    tables = StopTables(tokenizer)
    batched = greedy_decode(wide_model, rows, pad_id=0, max_new_tokens=8, stop_ids=[], tables=tables)
    single = [greedy_decode(wide_model, [r], pad_id=0, max_new_tokens=8, stop_ids=[], tables=tables)[0]
              for r in rows]
    assert batched == single
    eng = Engine(wide_model, tokenizer, DecodeSettings(batch_size=4, max_new_tokens=8, **PLAIN), progress=False)
    prompts = [build_prompt(tokenizer, *_prompt(s)) for s in SOURCES]
    for prompt, got in zip(prompts, eng.complete(prompts), strict=True):  # against model.generate
        ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        answer_end = AnswerEnd(eng.tables)
        answer_end.prompt_width = ids.shape[1]
        out = wide_model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=8,
                                  do_sample=False, eos_token_id=eng.stop_ids, pad_token_id=0,
                                  stopping_criteria=[answer_end])
        assert got == first_line(tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True))


def test_finished_rows_leave_the_batch_without_changing_the_others(model, tokenizer):
    rows = _prompt_rows(tokenizer, SOURCES)
    tables = StopTables(tokenizer)
    free = greedy_decode(model, rows, pad_id=0, max_new_tokens=8, stop_ids=[], tables=tables)
    # stop one row early on a token no other row produces: the other rows must not change
    row, at = next((r, n) for r in range(len(free)) for n in range(1, len(free[r]) - 1)
                   if not any(free[r][n] in other for o, other in enumerate(free) if o != r))
    pruned = greedy_decode(model, rows, pad_id=0, max_new_tokens=8, stop_ids=[free[row][at]], tables=tables)
    stop_at = free[row].index(free[row][at])
    assert pruned[row] == free[row][:stop_at + 1] and len(pruned[row]) < len(free[row])
    assert [p for r, p in enumerate(pruned) if r != row] == [f for r, f in enumerate(free) if r != row]


def test_stop_tokens_include_end_of_turn(model, tokenizer):
    ids = stop_token_ids(model, tokenizer)
    assert tokenizer.convert_tokens_to_ids("<end_of_turn>") in ids
    assert tokenizer.eos_token_id in ids
    eng = engine(model, tokenizer, 1)
    eot = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    assert eng._until_stop([7, 8, eot, 9]) == [7, 8]


def test_first_line():
    assert first_line("\n  Halló heimur \nmore") == "Halló heimur"
    assert first_line("\n\n") == ""


def test_merge_lora_keeps_outputs_and_copy_leaves_original(tokenizer):
    from peft import LoraConfig, PeftModel, get_peft_model

    peft_model = get_peft_model(make_tiny_model(tokenizer),
                                LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    ids = torch.tensor([_ids(tokenizer, "Good morning to you")])
    with torch.no_grad():
        expected = peft_model(ids).logits
        merged = merge_lora(peft_model, copy_first=True)
        assert isinstance(peft_model, PeftModel) and not isinstance(merged, PeftModel)
        torch.testing.assert_close(merged(ids).logits, expected, atol=1e-5, rtol=1e-4)
    plain = make_tiny_model(tokenizer)
    assert merge_lora(plain) is plain


def test_split_sentences():
    text = 'He left. "Why?" she asked. It was 5 p.m. at the station! 2024 was a year.'
    assert split_sentences(text) == ["He left.", '"Why?" she asked.', "It was 5 p.m. at the station!",
                                     "2024 was a year."]
    assert split_sentences("no end") == ["no end"]


def test_translate_segments_keeps_blank_lines_and_rejoins_long_ones():
    calls = []

    def fake(texts):
        calls.append(list(texts))
        return [t.upper() for t in texts]

    long = "First sentence here. Second one follows. Third ends it."
    out = translate_segments(fake, ["a b", "", long, "  "], max_chars=30)
    assert out == ["A B", "", long.upper(), ""]
    assert calls == [["a b", "First sentence here.", "Second one follows.", "Third ends it."]]
    assert translate_segments(fake, ["", ""]) == ["", ""]


@pytest.mark.parametrize("ids, times, loops", [
    ([1, 2, 3, 4] * 3, 3, True),
    ([9, 1, 2, 3, 4] * 3, 3, True),
    ([1, 2, 3, 4] * 2, 3, False),
    ([1, 2, 3, 4] * 3 + [5], 3, False),   # the newest 4-gram is new
    ([1, 2, 3, 4] * 3, 0, False),         # off
    (list(range(40)), 2, False),
])
def test_is_looping(ids, times, loops):
    assert is_looping(ids, times) is loops


@pytest.mark.parametrize("text, times, kept", [
    ("Do you argue with your clock clock clockclock clock clockClock Clock", 3, "Do you argue with your clock"),
    ("your clock clock clockClock", 3, "your clock"),
    ("þetta er gott gott GOTT", 3, "þetta er gott"),
    ("your clock clock", 3, None),         # twice is not a loop
    ("your clock clock clock.", 3, None),  # an answer that ends
    ("1000000000", 3, None),               # units need a letter
    ("clock clock clock", 0, None),        # off
    ("Straße strasse STRASSE", 3, "Straße"),  # case-folded letters that change length
])
def test_a_loop_through_one_words_spellings_is_cut_back_to_its_first_copy(text, times, kept):
    assert drop_repeated_tail(text, times) == (text if kept is None else kept)
    assert (repeated_tail(text, times) is None) is (kept is None)


def test_the_loop_stop_reads_spellings_when_given_the_token_texts():
    texts = ["clock", " clock", "Clock", " Clock", "your"]
    ids = [4, 1, 0, 3]  # "your clockclock Clock": a new token each time
    assert not is_looping(ids, 3)
    assert is_looping(ids, 3, texts)
    assert not is_looping(ids[:3], 3, texts)


def test_decoders_stop_a_spelling_loop(model, tokenizer):
    rows = _prompt_rows(tokenizer, SOURCES[:4])
    tables = StopTables(tokenizer)
    tables.texts = ["Ab"] * len(tables.texts)  # every answer spells one word again and again
    out = greedy_decode(model, rows, pad_id=0, max_new_tokens=12, stop_ids=[], tables=tables, stop_repeats=3)
    assert [len(o) for o in out] == [3] * 4
    rule = AnswerEnd(tables, stop_repeats=3)
    assert rule(torch.tensor([o for o in out])).all()
    assert not rule(torch.tensor([o[:2] for o in out])).any()


def test_answers_keep_the_first_copy_of_a_spelling_loop(model, tokenizer):
    eng = engine(model, tokenizer, 4, stop_repeats=3)
    ids = tokenizer("your clock clock clockClock", add_special_tokens=False)["input_ids"]
    assert eng._answer(ids) == "your clock"
    assert engine(model, tokenizer, 4, stop_repeats=0)._answer(ids) == "your clock clock clockClock"


def _cut_at_loop(ids, times, texts):
    return next((ids[:n] for n in range(1, len(ids) + 1) if is_looping(ids[:n], times, texts)), ids)


def test_loop_stop_ends_degenerate_rows_and_leaves_the_rest(model, tokenizer):
    rows = _prompt_rows(tokenizer, SOURCES)
    tables = StopTables(tokenizer)
    free = greedy_decode(model, rows, pad_id=0, max_new_tokens=48, stop_ids=[], tables=tables)
    stopped = greedy_decode(model, rows, pad_id=0, max_new_tokens=48, stop_ids=[], tables=tables,
                            stop_repeats=3)
    assert stopped == [_cut_at_loop(f, 3, tables.texts) for f in free]
    assert any(len(s) < len(f) for s, f in zip(stopped, free, strict=True))  # the random model loops
    rule = AnswerEnd(tables, stop_repeats=3)  # beam search's criterion agrees
    rule.prompt_width = 0
    for s, f in zip(stopped, free, strict=True):
        assert bool(rule(torch.tensor([s]))[0]) is (len(s) < len(f))


def test_progress_is_logged_when_stderr_is_not_a_terminal(model, tokenizer):
    import io

    from rich.console import Console

    buffer = io.StringIO()
    eng = Engine(model, tokenizer, DecodeSettings(batch_size=4, max_new_tokens=4),
                 console=Console(file=buffer, force_terminal=False, width=200))
    eng.translate(SOURCES[:5], "en", "is", description="tell flores en→is")
    assert "tell flores en→is: 5/5, rate " in buffer.getvalue()
    assert "sent/s" in buffer.getvalue()


@pytest.mark.parametrize("num_beams", [1, 3])
def test_a_training_vocabulary_limits_every_generated_token(model, tokenizer, num_beams):
    rows = _prompt_rows(tokenizer, SOURCES[:4])
    free = engine(model, tokenizer, 4, num_beams=num_beams)
    generated = {t for out in free._generate(rows) for t in out}
    # a vocabulary without the tokens the free model chose: none of them may appear any more
    vocabulary = [i for i in range(len(tokenizer)) if i not in generated]
    limited = Engine(model, tokenizer, DecodeSettings(batch_size=4, max_new_tokens=10, num_beams=num_beams,
                                                      **PLAIN), progress=False, vocabulary=vocabulary)
    outs = limited._generate(rows, limited.allowed())
    assert all(outs) and not {t for out in outs for t in out} & generated
    assert set(limited.stop_ids) <= set(limited.allowed().tolist())  # answers can always end


def test_repetition_controls_act_on_the_answer_only(model, tokenizer):
    rows = _prompt_rows(tokenizer, SOURCES[:4])
    tables = StopTables(tokenizer)
    free = greedy_decode(model, rows, pad_id=0, max_new_tokens=24, stop_ids=[], tables=tables)

    def bigrams(ids):
        return [tuple(ids[i:i + 2]) for i in range(len(ids) - 1)]

    assert any(len(set(bigrams(r))) < len(bigrams(r)) for r in free)  # the random model repeats itself
    settings = DecodeSettings(no_repeat_ngram=2, max_new_tokens=24)
    limited = greedy_decode(model, rows, pad_id=0, max_new_tokens=24, stop_ids=[], tables=tables,
                            processors=settings.processors())
    assert all(len(set(bigrams(r))) == len(bigrams(r)) for r in limited)
    one_row = greedy_decode(model, rows[:1], pad_id=0, max_new_tokens=24, stop_ids=[], tables=tables,
                            processors=settings.processors())
    assert one_row[0] == limited[0]  # batching does not change what the processors see
    penalised = DecodeSettings(repetition_penalty=1.5).processors()
    assert len(penalised) == 2 and not DecodeSettings(**PLAIN).processors()
    assert len(DecodeSettings().processors()) == 2  # the defaults: no repeated 3-gram, penalty 1.1


@pytest.mark.parametrize("num_beams", [1, 3])
def test_answers_into_icelandic_use_only_its_alphabet(model, tokenizer, num_beams):
    from lowres_mt.text import EXTRA_LETTERS, fits_alphabet

    assert fits_alphabet("Góðan daginn, Þórður! 9:30", EXTRA_LETTERS["is"])
    assert not fits_alphabet("Gud morgen på Østerbro", EXTRA_LETTERS["is"])
    rows = _prompt_rows(tokenizer, SOURCES[:4])
    eng = engine(model, tokenizer, 4, num_beams=num_beams)
    chosen = {t for out in eng._generate(rows) for t in out} - set(eng.stop_ids)
    # the tiny vocabulary is plain ASCII: spell the tokens the model chose with Danish letters
    eng.tables.texts = [f"{t}på" if i in chosen else t for i, t in enumerate(eng.tables.texts)]
    assert eng.allowed("en") is None  # English has no alphabet entry: nothing limited
    allowed = set(eng.allowed("is").tolist())
    assert not allowed & chosen and len(allowed) == eng.size - len(chosen)
    outs = eng._generate(rows, eng.allowed("is"))
    assert all(outs) and not {t for out in outs for t in out} & chosen
    off = Engine(model, tokenizer, DecodeSettings(batch_size=4, max_new_tokens=10, alphabet=False), progress=False)
    off.tables.texts = eng.tables.texts
    assert off.allowed("is") is None


def test_a_learned_alphabet_limits_each_language_to_its_own_letters(model, tokenizer):
    eng = engine(model, tokenizer, 4, alphabet={"fo": "å", "en": ""})  # eval.alphabet: auto
    eng.tables.texts = ["på" if i % 2 else "pa" for i in range(eng.size)]
    english = set(eng.allowed("en").tolist())  # "": a-z only
    assert english == {i for i in range(eng.size) if i % 2 == 0} | set(eng.stop_ids)
    assert eng.allowed(None) is None  # asked after "": no limit is not a-z only
    assert eng.allowed("fo") is None  # å is a letter of fo
    assert eng.allowed("is") is None  # the learned table, not text.EXTRA_LETTERS
