"""Typed records that every reader produces and every stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pair:
    """One aligned sentence pair, source → target."""

    src: str
    tgt: str
    src_lang: str
    tgt_lang: str
    corpus: str = ""
    id: str = ""

    @property
    def direction(self) -> str:
        return f"{self.src_lang}-{self.tgt_lang}"

    def reversed(self) -> Pair:
        return Pair(self.tgt, self.src, self.tgt_lang, self.src_lang, self.corpus, self.id)

    def towards(self, direction: str) -> Pair | None:
        """This pair turned to `direction` ("src-tgt"); None when it holds other languages."""
        if self.direction == direction:
            return self
        flipped = self.reversed()
        return flipped if flipped.direction == direction else None


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class Instruction:
    """A general instruction-following example as chat messages (ends on an assistant turn)."""

    messages: tuple[Message, ...]
    corpus: str = ""
    id: str = ""

    def as_dicts(self) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in self.messages]


@dataclass(frozen=True)
class Text:
    """A monolingual sentence or paragraph."""

    text: str
    lang: str
    corpus: str = ""
    id: str = ""


@dataclass(frozen=True)
class SystemOutput:
    """One external system's translation of one test segment (reference rows in reports)."""

    system: str
    hyp: str
    src_lang: str
    tgt_lang: str
    corpus: str = ""
    id: str = ""


@dataclass(frozen=True)
class Example:
    """A training/dev example as written to train.jsonl: chat messages plus bookkeeping."""

    messages: tuple[Message, ...]
    role: str  # "task" | "general" | "mono" | "book"
    direction: str | None = None
    corpus: str = ""
    id: str = ""
    src: str | None = None
    tgt: str | None = None
    context: str = ""  # the evidence block in the prompt (+context methods), for dev chrF prompts
    extra: dict = field(default_factory=dict, compare=False)

    def to_json(self) -> dict:
        row: dict = {
            "messages": [{"role": m.role, "content": m.content} for m in self.messages],
            "role": self.role,
            "direction": self.direction,
            "corpus": self.corpus,
            "id": self.id,
        }
        if self.src is not None:
            row["src"], row["tgt"] = self.src, self.tgt
        if self.context:
            row["context"] = self.context
        return row

    @classmethod
    def from_json(cls, row: dict) -> Example:
        return cls(
            messages=tuple(Message(m["role"], m["content"]) for m in row["messages"]),
            role=row["role"],
            direction=row.get("direction"),
            corpus=row.get("corpus", ""),
            id=row.get("id", ""),
            src=row.get("src"),
            tgt=row.get("tgt"),
            context=row.get("context", ""),
        )
