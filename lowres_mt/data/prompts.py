"""Every prompt's content lives here: TELL anchor prompts, the plain translation prompt, k-shot prompts.

A translation example is a user turn (instruction, blank line, `English: <source>`) and an
assistant turn (`Icelandic: <target>`). TELL's assistant turn opens with its fixed lead-in before
the label. At inference the lead-in and label are given as the start of the answer, so the model
writes only the translation, and `parse_response` removes them if repeated. How turns become
text (a chat template, or plain text for base models) is the tokenizer's template's job; see
`lowres_mt.models.TEXT_TEMPLATE`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lowres_mt.config import AnchorConfig
from lowres_mt.languages import language_name
from lowres_mt.records import Message, Pair

# tokens that end a chat turn in the formats lowres-mt meets (Gemma, ChatML, Llama 3, Phi-3)
END_OF_TURN_TOKENS = ("<end_of_turn>", "<|im_end|>", "<|eot_id|>", "<|end|>")

STYLES = ("tell", "plain")
__all__ = ["language_name"]  # re-exported: lowres_mt.languages names the languages


def style_for(method: str) -> str:
    """The prompt style a training method or system uses: `tell*` → anchor, everything else plain."""
    return "tell" if method.startswith("tell") else "plain"


def _fill(template: str, src_lang: str, tgt_lang: str, names: Mapping[str, str] | None) -> str:
    return template.format(src_name=language_name(src_lang, names), tgt_name=language_name(tgt_lang, names))


def instruction_text(style: str, anchor: AnchorConfig, src_lang: str, tgt_lang: str,
                     names: Mapping[str, str] | None = None) -> str:
    template = anchor.instruction if style == "tell" else anchor.plain
    return _fill(template, src_lang, tgt_lang, names)


def response_prefix(style: str, anchor: AnchorConfig, tgt_lang: str, src_lang: str = "",
                    names: Mapping[str, str] | None = None) -> str:
    """Text the assistant turn starts with before the translation: TELL's lead-in (tell style)
    and the target-language label, e.g. `Icelandic:`."""
    label = f"{language_name(tgt_lang, names)}:"
    if style != "tell" or not anchor.lead_in:
        return label
    return _fill(anchor.lead_in, src_lang, tgt_lang, names) + "\n\n" + label


def user_message(src: str, style: str, anchor: AnchorConfig, src_lang: str, tgt_lang: str,
                 names: Mapping[str, str] | None = None, context: str = "") -> Message:
    """The instruction, the evidence block of the +context methods (when given), the source."""
    instruction = instruction_text(style, anchor, src_lang, tgt_lang, names)
    evidence = f"{context}\n\n" if context else ""
    return Message("user", f"{instruction}\n\n{evidence}{language_name(src_lang, names)}: {src}")


def example_messages(pair: Pair, style: str, anchor: AnchorConfig,
                     names: Mapping[str, str] | None = None, context: str = "") -> tuple[Message, Message]:
    """A training example: the user turn and the assistant turn (lead-in, label, target)."""
    prefix = response_prefix(style, anchor, pair.tgt_lang, pair.src_lang, names)
    return (
        user_message(pair.src, style, anchor, pair.src_lang, pair.tgt_lang, names, context),
        Message("assistant", f"{prefix} {pair.tgt}"),
    )


def prompt_messages(src: str, src_lang: str, tgt_lang: str, style: str, anchor: AnchorConfig,
                    names: Mapping[str, str] | None = None,
                    shots: Sequence[Pair] = (), context: str = "") -> tuple[list[Message], str]:
    """Inference prompt: earlier turns (k-shot examples), the user turn, and the answer prefix."""
    messages: list[Message] = []
    for shot in shots:
        messages.extend(example_messages(shot, style, anchor, names))
    messages.append(user_message(src, style, anchor, src_lang, tgt_lang, names, context))
    return messages, response_prefix(style, anchor, tgt_lang, src_lang, names)


def parse_response(text: str, style: str, anchor: AnchorConfig, src_lang: str, tgt_lang: str,
                   names: Mapping[str, str] | None = None) -> str:
    """The translation inside a generated answer: a repeated lead-in or label removed, first
    non-empty line kept."""
    text = text.strip()
    for lead in (response_prefix(style, anchor, tgt_lang, src_lang, names).strip(),
                 f"{language_name(tgt_lang, names)}:"):
        if text.startswith(lead):
            text = text[len(lead):].strip()
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def parse_user_message(content: str) -> tuple[str, str]:
    """Split a user turn back into (instruction, source) — the inverse of `user_message`."""
    instruction, _, labelled = content.rpartition("\n\n")
    return instruction, labelled.partition(": ")[2]
