"""In-context grammar-book prompts (MTOB's track): W, W+S, W+S+G within a token budget.

For one source sentence the prompt carries, before the usual translation instruction:
- W: wordlist entries for the sentence's words (`Lexicon`, simple morphological matching);
- S: the parallel sentences most similar to it (BM25 via bm25s over the source-language side);
- G: the grammar passages most similar to it (BM25 over passages; the query adds the English
  glosses of the sentence's words, so a Kalamang sentence also finds English prose about them).
Parts are filled in that order; each may use its share of the budget (W 25 %, S 35 %, G 40 % for
W+S+G) plus whatever the parts before it left unused, so short prompts stay short. All material
was contamination-filtered when the context was built (`from_config`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import bm25s

from lowres_mt.book.aux_tasks import split_passages
from lowres_mt.book.lexicon import (
    STOPWORDS,
    Lexicon,
    english_words,
    fold,
    format_entry,
    stem_en,
    words,
)
from lowres_mt.config import AnchorConfig, RecipeConfig
from lowres_mt.corpora.book.records import BookSection
from lowres_mt.data.filters import near_duplicate
from lowres_mt.data.guard import ContaminationGuard
from lowres_mt.data.prompts import language_name, prompt_messages
from lowres_mt.errors import UserError
from lowres_mt.io import read_jsonl
from lowres_mt.records import Message, Pair

TokenCounter = Callable[[Sequence[str]], list[int]]
SETTINGS = {"W": {"W": 1.0}, "S": {"S": 1.0}, "W+S": {"W": 0.4, "S": 0.6},
            "W+S+G": {"W": 0.25, "S": 0.35, "G": 0.4}}
_CANDIDATES = 24  # retrieved items considered per part before the budget cuts


class Retriever:
    """BM25 (bm25s) over pre-tokenised documents; returns indices of documents with a positive score."""

    def __init__(self, docs: Sequence[list[str]]):
        self.size = len(docs)
        self.index = bm25s.BM25()
        if self.size:
            self.index.index([d or ["∅"] for d in docs], show_progress=False)

    def search(self, query: list[str], k: int) -> list[int]:
        if not self.size or not query:
            return []
        docs, scores = self.index.retrieve([query], k=min(k, self.size), show_progress=False)
        return [int(d) for d, s in zip(docs[0], scores[0]) if s > 0]


@dataclass
class BookContext:
    """Retrieval over one recipe's wordlist, sentence pairs and grammar passages."""

    lexicon: Lexicon
    pairs: list[Pair]
    passages: list[tuple[str, str]]  # (section title, passage text)
    object_lang: str

    def __post_init__(self) -> None:
        self._pair_index: dict[str, tuple[list[Pair], Retriever]] = {}
        self._passage_index = Retriever([self.tokens(f"{t}\n{p}", "en") + self.tokens(p, self.object_lang)
                                         for t, p in self.passages])

    @classmethod
    def from_config(cls, cfg: RecipeConfig, guard: ContaminationGuard) -> BookContext:
        """Load the recipe's book resources and sentence pairs, keeping only guard-clean material."""
        from lowres_mt.book.resources import load_resources, protected_spans
        from lowres_mt.corpora import load_set

        resources = load_resources(cfg, guard, protected_spans(cfg))
        pairs = [p for ref in (cfg.book.sentences or cfg.task.train) for p in load_set(ref)
                 if isinstance(p, Pair) and guard.is_clean(p)]
        return cls.build(resources.lexemes, pairs, resources.sections, resources.object_lang,
                         cfg.book.passage_words)

    @classmethod
    def build(cls, lexemes, pairs: list[Pair], sections: list[BookSection], object_lang: str,
              passage_words: int = 160) -> BookContext:
        passages = [(s.title, p) for s in sections for p in split_passages(s.text, passage_words)]
        return cls(Lexicon(lexemes), list(pairs), passages, object_lang)

    def tokens(self, text: str, lang: str) -> list[str]:
        """Retrieval terms: English stems without stopwords; object-language words and their stems."""
        if lang != self.object_lang:
            return [stem_en(w) for w in english_words(text) if fold(w) not in STOPWORDS]
        out = []
        for word in words(text):
            out.append(fold(word))
            out += [fold(e.headword) for e in self.lexicon.lookup(word)[:1]]
        return out

    def wordlist_part(self, src: str, src_lang: str, per_word: int) -> list[str]:
        return [format_entry(e) for e in self.lexicon.entries_for(src, src_lang, per_word)]

    def sentence_part(self, src: str, src_lang: str, tgt_lang: str, exclude: Pair | None = None) -> list[str]:
        """Similar example pairs, best first; none that nearly repeats `src` or, when a training
        example is given as `exclude`, either of its sides."""
        key = f"{src_lang}-{tgt_lang}"
        if key not in self._pair_index:
            oriented = [p if p.src_lang == src_lang else p.reversed() for p in self.pairs
                        if {p.src_lang, p.tgt_lang} == {src_lang, tgt_lang}]
            self._pair_index[key] = (oriented, Retriever([self.tokens(p.src, src_lang) for p in oriented]))
        oriented, retriever = self._pair_index[key]
        found = (oriented[i] for i in retriever.search(self.tokens(src, src_lang), _CANDIDATES))
        banned = [src] + ([exclude.src, exclude.tgt] if exclude is not None else [])
        return [f"{p.src}\n→ {p.tgt}" for p in found if not any(near_duplicate(p, text) for text in banned)]

    def grammar_part(self, src: str, src_lang: str) -> list[str]:
        query = self.tokens(src, src_lang)
        if src_lang == self.object_lang:
            query += [stem_en(w) for e in self.lexicon.entries_for(src, src_lang, 1) for w in words(e.gloss)]
        return [f"[{self.passages[i][0]}]\n{self.passages[i][1]}"
                for i in self._passage_index.search(query, _CANDIDATES)]

    def material(self, src: str, src_lang: str, tgt_lang: str, setting: str, budget: int,
                 count_tokens: TokenCounter, names: dict[str, str] | None = None,
                 per_word: int = 2, exclude: Pair | None = None) -> str:
        """The in-context block for one sentence: headed parts, within `budget` tokens."""
        shares = SETTINGS[setting]
        obj, other = language_name(self.object_lang, names), language_name(
            tgt_lang if src_lang == self.object_lang else src_lang, names)
        parts = {
            "W": (f"Entries from a {obj}–{other} wordlist:", lambda: self.wordlist_part(src, src_lang, per_word), "\n"),
            "S": (f"{language_name(src_lang, names)}–{language_name(tgt_lang, names)} example sentences:",
                  lambda: self.sentence_part(src, src_lang, tgt_lang, exclude), "\n\n"),
            "G": (f"Excerpts from a grammar of {obj}:", lambda: self.grammar_part(src, src_lang), "\n\n"),
        }
        blocks, carry = [], 0
        for key, share in shares.items():
            heading, items, sep = parts[key]
            allowance = int(budget * share) + carry
            heading_cost = count_tokens([heading])[0] + 2
            chosen, used = _within(items(), allowance - heading_cost, count_tokens)
            carry = allowance - (used + heading_cost if chosen else 0)
            if chosen:
                blocks.append(heading + "\n" + sep.join(chosen))
        return "\n\n".join(blocks)

    def prompt(self, src: str, src_lang: str, tgt_lang: str, *, setting: str, budget: int,
               count_tokens: TokenCounter, style: str, anchor: AnchorConfig,
               names: dict[str, str] | None = None, per_word: int = 2) -> tuple[list[Message], str]:
        """Chat messages and answer prefix (as `prompts.prompt_messages`), material first in the user turn."""
        messages, prefix = prompt_messages(src, src_lang, tgt_lang, style, anchor, names)
        block = self.material(src, src_lang, tgt_lang, setting, budget, count_tokens, names, per_word)
        if block:
            messages[-1] = Message("user", f"{block}\n\n{messages[-1].content}")
        return messages, prefix


def _within(items: list[str], budget: int, count_tokens: TokenCounter) -> tuple[list[str], int]:
    """The leading items (in rank order) that fit in `budget` tokens, skipping ones too long."""
    chosen, used = [], 0
    for item, cost in zip(items, count_tokens(items) if items else []):
        if used + cost + 1 <= budget:
            chosen.append(item)
            used += cost + 1
    return chosen, used


class EvidenceBuilder:
    """The evidence block of the +context methods (`context:` of the recipe): the same function
    at training (where `exclude` is the example itself) and at inference."""

    def __init__(self, book: BookContext, cfg: RecipeConfig, count_tokens: TokenCounter):
        self.book, self.settings, self.count_tokens = book, cfg.context, count_tokens
        self.names = cfg.language_names

    @classmethod
    def from_config(cls, cfg: RecipeConfig, guard: ContaminationGuard, count_tokens: TokenCounter,
                    pairs: Sequence[Pair]) -> EvidenceBuilder:
        """Wordlists from `book:` (contamination-filtered); example pairs from `pairs` only, the
        run's own task pairs, so a +context run uses no parallel data beyond its task budget."""
        from lowres_mt.book.resources import load_resources, protected_spans

        resources = load_resources(cfg, guard, protected_spans(cfg))
        book = BookContext(Lexicon(resources.lexemes), [p for p in pairs if guard.is_clean(p)], [],
                           resources.object_lang)
        return cls(book, cfg, count_tokens)

    def block(self, src: str, src_lang: str, tgt_lang: str, exclude: Pair | None = None) -> str:
        return self.book.material(src, src_lang, tgt_lang, self.settings.setting, self.settings.tokens,
                                  self.count_tokens, self.names, self.settings.entries_per_word, exclude)


def evidence_for_run(run_dir: Path, cfg: RecipeConfig, guard: ContaminationGuard,
                     count_tokens: TokenCounter) -> EvidenceBuilder:
    """A trained +context run's evidence builder: its recipe's wordlists and its own task pairs
    (data/train.jsonl), so inference retrieves from exactly what training retrieved from."""
    path = run_dir / "data" / "train.jsonl"
    if not path.is_file():
        raise UserError(f"run '{run_dir.name}' was trained with evidence in its prompts but {path} is missing; "
                        "it holds the example pairs the prompts retrieve from (copy the run with its data/)")
    pairs: dict[str, Pair] = {}
    for row in read_jsonl(path):
        if row.get("role") == "task" and row.get("src") and row.get("direction"):
            src_lang, tgt_lang = row["direction"].split("-", 1)
            pairs.setdefault(row.get("id", ""), Pair(row["src"], row["tgt"], src_lang, tgt_lang, row.get("corpus", ""),
                                                     row.get("id", "")))
    return EvidenceBuilder.from_config(cfg, guard, count_tokens, list(pairs.values()))

