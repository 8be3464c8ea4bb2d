"""The book resources a recipe names (`book:` section), loaded and filtered against every test set.

Every piece of book-derived material — wordlist entries, glossed examples, grammar paragraphs,
retrieved sentence pairs — passes the contamination guard before it is trained on or put in a
prompt. Exact matches use the recipe's `ContaminationGuard`; grammar paragraphs and examples
are also searched for protected sentences *inside* them (`SpanGuard`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lowres_mt.config import RecipeConfig
from lowres_mt.corpora.book.readers import record_texts
from lowres_mt.corpora.book.records import BookSection, GlossedExample, Lexeme, join_morphemes
from lowres_mt.corpora.book.splits import SpanGuard
from lowres_mt.data.guard import ContaminationGuard
from lowres_mt.errors import UserError
from lowres_mt.records import Pair


@dataclass
class BookResources:
    object_lang: str
    lexemes: list[Lexeme] = field(default_factory=list)
    sections: list[BookSection] = field(default_factory=list)
    glossed: list[GlossedExample] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)  # kind → records withheld by the guard


def protected_spans(cfg: RecipeConfig) -> SpanGuard:
    """A SpanGuard over every sentence of the recipe's dev/test/guard sets."""
    from lowres_mt.corpora import load_set
    from lowres_mt.data.guard import protected_sets

    texts: list[str] = []
    for ref in protected_sets(cfg):
        for record in load_set(ref):
            texts += record_texts(record)
    return SpanGuard(texts)


def load_resources(cfg: RecipeConfig, guard: ContaminationGuard, spans: SpanGuard) -> BookResources:
    """The recipe's wordlists, grammar sections and glossed examples, contamination-filtered."""
    from lowres_mt.corpora import load_set

    res = BookResources(object_lang=cfg.languages[1])
    lexemes = _typed(cfg.book.wordlists, Lexeme, load_set)
    res.lexemes = [x for x in lexemes if guard.is_clean(Pair(x.headword, x.gloss, x.lang, x.gloss_lang))]
    glossed = [x for x in _typed(cfg.book.glossed, GlossedExample, load_set) if not x.judgement]
    res.glossed = [x for x in glossed if example_is_clean(x, guard, spans)]
    sections = _typed(cfg.book.grammar, BookSection, load_set)
    withheld = 0
    for section in sections:
        paragraphs = section.text.split("\n\n")
        kept = [p for p in paragraphs if paragraph_is_clean(p, guard, spans)]
        withheld += len(paragraphs) - len(kept)
        if kept:
            res.sections.append(BookSection(section.path, "\n\n".join(kept), section.lang,
                                            section.example_ids, section.corpus, section.id))
    res.dropped = {"wordlist": len(lexemes) - len(res.lexemes), "glossed": len(glossed) - len(res.glossed),
                   "paragraphs": withheld}
    if res.lexemes:
        res.object_lang = res.lexemes[0].lang
    return res


def example_is_clean(example: GlossedExample, guard: ContaminationGuard, spans: SpanGuard) -> bool:
    texts = (example.sentence, example.text, example.translation, example.surface)
    return not any(t and (guard.contains(t) or spans.hits(t)) for t in texts)


def paragraph_is_clean(paragraph: str, guard: ContaminationGuard, spans: SpanGuard) -> bool:
    """No protected sentence in the paragraph, on any of its lines (morphemes joined), or inside it."""
    for line in paragraph.split("\n"):
        line = line.strip().strip("‘’'`")
        if line and (guard.contains(line) or guard.contains(join_morphemes(line))):
            return False
    return not spans.hits(paragraph)


def _typed(refs: tuple[str, ...], kind: type, load_set) -> list:
    out = []
    for ref in refs:
        records = load_set(ref)
        if records and not isinstance(records[0], kind):
            raise UserError(f"book set '{ref}' holds {type(records[0]).__name__} records, not {kind.__name__}; "
                            "check the recipe's book: section")
        out += records
    return out
