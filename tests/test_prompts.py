import pytest

from lowres_mt.config import AnchorConfig
from lowres_mt.data.prompts import (
    example_messages,
    parse_response,
    parse_user_message,
    prompt_messages,
    style_for,
)
from lowres_mt.records import Pair

ANCHOR = AnchorConfig()
PAIR = Pair("Good morning.", "Góðan daginn.", "en", "is")


@pytest.mark.parametrize("style", ["tell", "plain"])
def test_example_round_trip(style):
    user, assistant = example_messages(PAIR, style, ANCHOR)
    instruction, src = parse_user_message(user.content)
    assert src == PAIR.src
    assert "English" in instruction and "Icelandic" in instruction
    assert parse_response(assistant.content, style, ANCHOR, "en", "is") == PAIR.tgt


def test_tell_anchor_and_lead_in():
    user, assistant = example_messages(PAIR, "tell", ANCHOR)
    assert user.content.startswith("This text is in English and needs to be translated into Icelandic.")
    assert user.content.endswith("\n\nEnglish: Good morning.")
    assert assistant.content == "Sure, here is the Icelandic translation:\n\nIcelandic: Góðan daginn."
    _, plain_answer = example_messages(PAIR, "plain", ANCHOR)
    assert plain_answer.content == "Icelandic: Góðan daginn."


def test_prompt_has_shots_then_query_and_prefix():
    shot = Pair("Thank you.", "Takk fyrir.", "en", "is")
    messages, prefix = prompt_messages("Hello.", "en", "is", "tell", ANCHOR, shots=[shot])
    assert [m.role for m in messages] == ["user", "assistant", "user"]
    assert messages[-1].content.endswith("\n\nEnglish: Hello.")
    assert prefix == "Sure, here is the Icelandic translation:\n\nIcelandic:"
    assert prompt_messages("Hello.", "en", "is", "plain", ANCHOR)[1] == "Icelandic:"


def test_parse_response_keeps_first_line_and_custom_names():
    assert parse_response("  Halló heimur\nextra line", "plain", ANCHOR, "en", "is") == "Halló heimur"
    assert parse_response("", "plain", ANCHOR, "en", "is") == ""
    assert parse_response(" Icelandic: Halló", "plain", ANCHOR, "en", "is") == "Halló"
    names = {"kgv": "Kalamang"}
    user, _ = example_messages(Pair("a", "b", "en", "kgv"), "plain", ANCHOR, names)
    assert "to Kalamang" in user.content


@pytest.mark.parametrize(("method", "style"), [("tell", "tell"), ("tell+book", "tell"), ("sft", "plain"), ("icl", "plain")])
def test_style_for(method, style):
    assert style_for(method) == style
