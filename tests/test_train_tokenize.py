"""Chat-template tokenization: labels sit exactly on the assistant turns."""

import pytest

from lowres_mt.train.tokenize import IGNORE, remap_examples, tokenize_example, tokenize_rows

CHAT = [
    {"role": "user", "content": "Translate from English to Icelandic.\n\nThe cat sleeps."},
    {"role": "assistant", "content": "Sure, here is the Icelandic translation:\n\nKötturinn sefur."},
]
MULTI = [
    {"role": "user", "content": "Name a colour."},
    {"role": "assistant", "content": "Blue."},
    {"role": "user", "content": "Another one?"},
    {"role": "assistant", "content": "Red, of course."},
]


def labelled_text(tokenizer, example) -> list[str]:
    """The labelled spans of an example, decoded one contiguous run at a time."""
    runs, current = [], []
    for token, label in zip(example.input_ids, example.labels, strict=True):
        if label != IGNORE:
            assert label == token
            current.append(token)
        elif current:
            runs.append(tokenizer.decode(current))
            current = []
    if current:
        runs.append(tokenizer.decode(current))
    return runs


def test_labels_cover_the_answer_and_its_end_of_turn_only(tiny_tokenizer):
    example, truncated = tokenize_example(tiny_tokenizer, CHAT, max_length=512)
    assert not truncated
    assert labelled_text(tiny_tokenizer, example) == [CHAT[1]["content"] + "<end_of_turn>"]
    full = tiny_tokenizer.apply_chat_template(CHAT, tokenize=False)
    assert tiny_tokenizer.decode(example.input_ids) == full


def test_prompt_part_is_tokenized_as_at_inference(tiny_tokenizer):
    example, _ = tokenize_example(tiny_tokenizer, CHAT, max_length=512)
    prompt = tiny_tokenizer.apply_chat_template(CHAT[:1], tokenize=False, add_generation_prompt=True)
    prompt_ids = tiny_tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert list(example.input_ids[: len(prompt_ids)]) == prompt_ids
    assert all(label == IGNORE for label in example.labels[: len(prompt_ids)])
    assert example.labels[len(prompt_ids)] != IGNORE


def test_every_assistant_turn_is_learned_in_a_conversation(tiny_tokenizer):
    example, _ = tokenize_example(tiny_tokenizer, MULTI, max_length=512)
    assert labelled_text(tiny_tokenizer, example) == ["Blue.<end_of_turn>", "Red, of course.<end_of_turn>"]


def test_overlong_examples_are_truncated_or_dropped_and_counted(tiny_tokenizer):
    full, _ = tokenize_example(tiny_tokenizer, CHAT, max_length=512)
    prompt_len = full.labels.index(next(t for t in full.labels if t != IGNORE))
    rows = [{"messages": CHAT}, {"messages": MULTI}]
    examples, stats = tokenize_rows(tiny_tokenizer, rows, max_length=prompt_len + 3)
    assert stats.examples == 2 and stats.truncated == 2 and stats.dropped == 0
    assert all(len(e) == prompt_len + 3 for e in examples)
    assert examples[0].n_labels == 3

    examples, stats = tokenize_rows(tiny_tokenizer, rows, max_length=prompt_len - 1)
    assert stats.dropped == 1 and stats.kept == 1  # CHAT has no answer token left; MULTI still has one
    assert stats.label_tokens == sum(e.n_labels for e in examples)


def test_rows_without_an_answer_are_dropped(tiny_tokenizer):
    _, stats = tokenize_rows(tiny_tokenizer, [{"messages": CHAT[:1]}], max_length=512)
    assert stats.dropped == 1 and stats.kept == 0


def test_remap_translates_ids_and_labels(tiny_tokenizer):
    example, _ = tokenize_example(tiny_tokenizer, CHAT, max_length=512)
    keep = sorted(set(example.input_ids))
    old_to_new = [-1] * len(tiny_tokenizer)
    for new, old in enumerate(keep):
        old_to_new[old] = new
    (mapped,) = remap_examples([example], old_to_new)
    assert [keep[i] for i in mapped.input_ids] == list(example.input_ids)
    assert [IGNORE if t == IGNORE else keep[t] for t in mapped.labels] == list(example.labels)


def test_a_tokenizer_without_chat_template_is_a_user_error():
    from conftest import TINY_TOKENIZER
    from transformers import AutoTokenizer

    from lowres_mt.errors import UserError

    bare = AutoTokenizer.from_pretrained(TINY_TOKENIZER)
    bare.chat_template = None
    with pytest.raises(UserError, match="chat template"):
        tokenize_example(bare, CHAT, max_length=64)


def test_text_format_labels_the_answer_and_its_eos_and_a_lone_text_entirely(tiny_tokenizer):
    import copy

    from lowres_mt.models import TEXT_TEMPLATE

    text_tokenizer = copy.deepcopy(tiny_tokenizer)
    text_tokenizer.chat_template = TEXT_TEMPLATE
    example, _ = tokenize_example(text_tokenizer, CHAT, 256)
    eos = text_tokenizer.eos_token
    assert labelled_text(text_tokenizer, example) == [CHAT[1]["content"] + eos]
    mono, _ = tokenize_example(text_tokenizer, [{"role": "assistant", "content": "Kötturinn sefur."}], 256)
    assert labelled_text(text_tokenizer, mono) == ["Kötturinn sefur." + eos]
    assert mono.labels[0] == IGNORE  # only <bos> is unlabelled
