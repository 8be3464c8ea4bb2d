"""Records of the grammar-book track: wordlist entries, book sections, interlinear examples.

They sit beside `lowres_mt.records` (Pair, Example, …): book readers return them, and the
auxiliary-task and in-context builders consume them.
"""

from __future__ import annotations

from dataclasses import dataclass

# Characters that mark morpheme boundaries in a segmented (glossed) line: affix, clitic,
# reduplication, infix, zero morpheme.
BOUNDARY_CHARS = "-=∼~<>∅"


@dataclass(frozen=True)
class Lexeme:
    """One wordlist entry: a headword in `lang` and its gloss (translation) in `gloss_lang`."""

    headword: str
    gloss: str
    lang: str
    gloss_lang: str
    pos: str = ""
    corpus: str = ""
    id: str = ""

    @property
    def is_affix(self) -> bool:
        """Bound morphemes are written with a leading or trailing boundary (`-un`, `=at`, `kia-`)."""
        return self.headword[:1] in "-=" or self.headword[-1:] in "-="


@dataclass(frozen=True)
class GlossedExample:
    """An interlinear glossed example: the (segmented) sentence, its gloss line and translation.

    `text` is the object-language line with morpheme boundaries as the source writes them;
    `surface` is the sentence as ordinarily written when the source gives it (three-line
    examples), else derived from `text` by joining morphemes. `judgement` holds a grammaticality
    mark such as `*` or `?` (empty for attested sentences).
    """

    text: str
    gloss: str
    translation: str
    lang: str
    translation_lang: str
    surface: str = ""
    judgement: str = ""
    section: str = ""
    corpus: str = ""
    id: str = ""

    @property
    def sentence(self) -> str:
        return self.surface or join_morphemes(self.text)


@dataclass(frozen=True)
class BookSection:
    """A titled stretch of grammar-book prose (examples rendered inline as plain text).

    `path` is the chain of headings from the chapter down (e.g. ("Nouns", "Noun subclasses")),
    `example_ids` the ids of the glossed examples rendered inside `text`.
    """

    path: tuple[str, ...]
    text: str
    lang: str = "en"
    example_ids: tuple[str, ...] = ()
    corpus: str = ""
    id: str = ""

    @property
    def title(self) -> str:
        return " › ".join(self.path)


def join_morphemes(segmented: str) -> str:
    """A segmented line written as words: boundaries removed, `_` (multiword unit) as space."""
    out = []
    for word in segmented.split():
        joined = "".join(ch for ch in word if ch not in BOUNDARY_CHARS)
        if joined:
            out.append(joined.replace("_", " "))
    return " ".join(out)
