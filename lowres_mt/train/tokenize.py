"""Chat-template tokenization with labels on the assistant turns only.

An example's text is `tokenizer.apply_chat_template(messages)`. The text is cut at the start and
end of every assistant turn and each piece is tokenized on its own, so label boundaries are exact
and the prompt part is tokenized exactly as it is at inference (template with
`add_generation_prompt=True`). Labels cover each assistant turn's content and its end-of-turn
token; every other position (template, user turns, padding) carries `IGNORE`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from lowres_mt.errors import UserError

IGNORE = -100  # label of a position that gets no loss (the value torch's cross-entropy skips)


@dataclass(frozen=True)
class TokenizedExample:
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]  # same length; IGNORE where no loss is taken

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def n_labels(self) -> int:
        return sum(1 for t in self.labels if t != IGNORE)


@dataclass
class TokenizeStats:
    examples: int = 0  # examples read
    kept: int = 0
    truncated: int = 0  # longer than max_length, cut to max_length (still trained on)
    dropped: int = 0  # nothing left to learn after truncation (or no assistant turn)
    tokens: int = 0  # tokens kept
    label_tokens: int = 0
    ids: set[int] = field(default_factory=set, repr=False)  # every token id seen

    def as_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if k != "ids"}


def _render(tokenizer, messages: Sequence[dict], *, generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(list(messages), tokenize=False,
                                         add_generation_prompt=generation_prompt)


def assistant_spans(tokenizer, messages: Sequence[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered text and the character span of every assistant turn (content + end-of-turn)."""
    if not getattr(tokenizer, "chat_template", None):
        raise UserError("the base model's tokenizer has no chat template; use a model that has one")
    text = _render(tokenizer, messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        upto = _render(tokenizer, messages[: i + 1])
        if i:
            prompt = _render(tokenizer, messages[:i], generation_prompt=True)
        else:  # a lone text (monolingual data): templates cannot render an empty conversation
            found = upto.find(message["content"].strip())
            if found < 0:
                raise UserError("the chat template changes a lone assistant text; monolingual "
                                "examples need a template that keeps it verbatim")
            prompt = upto[:found]
        start, end = len(prompt), len(upto.rstrip())
        if not (text.startswith(prompt) and text.startswith(upto)) or end <= start:
            raise UserError("the chat template does not render conversations prefix by prefix; "
                            "label masking needs a template like Gemma's or ChatML")
        spans.append((start, end))
    return text, spans


def tokenize_example(tokenizer, messages: Sequence[dict], max_length: int) -> tuple[TokenizedExample | None, bool]:
    """Token ids and labels of one chat example, cut to `max_length`.

    Returns (example or None when nothing is left to learn, whether it was truncated)."""
    text, spans = assistant_spans(tokenizer, messages)
    ids: list[int] = []
    labels: list[int] = []
    cursor = 0
    for start, end in [*spans, (len(text), len(text))]:
        for piece, learn in ((text[cursor:start], False), (text[start:end], True)):
            if not piece:
                continue
            piece_ids = tokenizer(piece, add_special_tokens=False)["input_ids"]
            ids.extend(piece_ids)
            labels.extend(piece_ids if learn else [IGNORE] * len(piece_ids))
        cursor = end
    truncated = len(ids) > max_length
    ids, labels = ids[:max_length], labels[:max_length]
    if labels:
        labels[0] = IGNORE  # the first token is never predicted (packed rows rely on it)
    if not any(t != IGNORE for t in labels):
        return None, truncated
    return TokenizedExample(tuple(ids), tuple(labels)), truncated


def tokenize_rows(tokenizer, rows: Iterable[dict], max_length: int) -> tuple[list[TokenizedExample], TokenizeStats]:
    """Tokenize train.jsonl/dev.jsonl rows (`{"messages": [...], ...}`); over-long ones are truncated,
    ones with nothing to learn are dropped; both are counted in the stats."""
    stats = TokenizeStats()
    out: list[TokenizedExample] = []
    for row in rows:
        stats.examples += 1
        example, truncated = tokenize_example(tokenizer, row["messages"], max_length)
        stats.truncated += int(truncated and example is not None)
        if example is None:
            stats.dropped += 1
            continue
        out.append(example)
        stats.kept += 1
        stats.tokens += len(example)
        stats.label_tokens += example.n_labels
        stats.ids.update(example.input_ids)
    return out, stats


def remap_examples(examples: Iterable[TokenizedExample], old_to_new: Sequence[int]) -> list[TokenizedExample]:
    """Examples with every id (and label) translated through `old_to_new` (a trimmed vocabulary)."""
    def remap(seq: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(old_to_new[t] if t != IGNORE else IGNORE for t in seq)

    return [TokenizedExample(remap(e.input_ids), remap(e.labels)) for e in examples]
