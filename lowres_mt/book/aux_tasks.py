"""The grammar book as training signal: auxiliary examples mixed into TELL (`method: tell+book`).

Task kinds (weights in `book.tasks`, shares of the book-token budget):
- `words`: wordlist entries translated in both directions, with the TELL translation anchor;
- `gloss`: sentence → interlinear gloss and gloss → sentence (book anchors `gloss_*`, `unglossed_*`);
- `gloss-translation`: gloss line → translation (book anchor + the TELL lead-in);
- `passages`: a grammar passage's first part → its continuation.
Each kind has its own fixed instruction and answer lead-in, as TELL's translation anchor does, so
the model can tell the tasks apart. All material passes the contamination guard first
(`lowres_mt.book.resources`). Token costs count content only (source + target), like task pairs.
"""

from __future__ import annotations

import random
import re

from lowres_mt.book.resources import BookResources, load_resources, protected_spans
from lowres_mt.config import RecipeConfig
from lowres_mt.corpora.book.records import BookSection, GlossedExample, Lexeme
from lowres_mt.data.budget import TokenCounter, costed_in_random_order
from lowres_mt.data.guard import ContaminationGuard
from lowres_mt.data.prompts import example_messages, language_name
from lowres_mt.records import Example, Message, Pair

KINDS = ("words", "gloss", "gloss-translation", "passages")
# a candidate: (example, the content text whose tokens it costs)
Candidate = tuple[Example, str]
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")


def book_examples(cfg: RecipeConfig, guard: ContaminationGuard, rng: random.Random, token_budget: int,
                  count_tokens: TokenCounter) -> list[tuple[Example, int]]:
    """Book-derived examples (role "book") filling `token_budget` content tokens, shared across the
    task kinds by `book.tasks` weights (kinds without material are left out)."""
    resources = load_resources(cfg, guard, protected_spans(cfg))
    return sample_book_examples(cfg, resources, rng, token_budget, count_tokens)


def sample_book_examples(cfg: RecipeConfig, resources: BookResources, rng: random.Random,
                         token_budget: int, count_tokens: TokenCounter) -> list[tuple[Example, int]]:
    pools = {kind: candidates(cfg, resources, kind) for kind in KINDS}
    weights = {k: float(cfg.book.tasks.get(k, 0.0)) for k in KINDS if pools[k]}
    weights = {k: w for k, w in weights.items() if w > 0}
    total = sum(weights.values())
    out: list[tuple[Example, int]] = []
    for kind, weight in weights.items():
        out += _fill(pools[kind], round(token_budget * weight / total), count_tokens, rng)
    return out


def candidates(cfg: RecipeConfig, res: BookResources, kind: str) -> list[Candidate]:
    if kind == "words":
        return [c for lexeme in res.lexemes for c in word_examples(cfg, lexeme)]
    if kind == "gloss":
        return [c for ex in res.glossed for c in gloss_examples(cfg, ex)]
    if kind == "gloss-translation":
        return [gloss_translation_example(cfg, ex) for ex in res.glossed]
    if kind == "passages":
        return [c for section in res.sections for c in passage_examples(cfg, section, res.object_lang)]
    raise ValueError(f"unknown book task kind {kind!r}")


def _fill(pool: list[Candidate], budget: int, count_tokens: TokenCounter,
          rng: random.Random) -> list[tuple[Example, int]]:
    out: list[tuple[Example, int]] = []
    total = 0
    for (example, _), cost in costed_in_random_order(pool, lambda c: c[1], count_tokens, rng):
        if total >= budget:
            break
        out.append((example, cost))
        total += cost
    return out


def _names(cfg: RecipeConfig, src_lang: str, tgt_lang: str) -> dict[str, str]:
    return {"src_name": language_name(src_lang, cfg.language_names),
            "tgt_name": language_name(tgt_lang, cfg.language_names)}


def _chat(user: str, assistant: str) -> tuple[Message, Message]:
    return Message("user", user), Message("assistant", assistant)


def word_examples(cfg: RecipeConfig, lexeme: Lexeme) -> list[Candidate]:
    """The entry as a TELL translation example in both directions."""
    pair = Pair(lexeme.headword, lexeme.gloss, lexeme.lang, lexeme.gloss_lang, lexeme.corpus, lexeme.id)
    out = []
    for oriented in (pair, pair.reversed()):
        messages = example_messages(oriented, "tell", cfg.anchor, cfg.language_names)
        example = Example(messages, "book", oriented.direction, lexeme.corpus,
                          f"{lexeme.corpus}#{lexeme.id}/words/{oriented.direction}", oriented.src, oriented.tgt)
        out.append((example, f"{oriented.src}\n{oriented.tgt}"))
    return out


def gloss_examples(cfg: RecipeConfig, ex: GlossedExample) -> list[Candidate]:
    """Sentence → gloss and gloss → sentence."""
    book, names = cfg.book, _names(cfg, ex.lang, ex.translation_lang)
    to_gloss = _chat(f"{book.gloss_instruction.format(**names)}\n\n{ex.text}",
                     f"{book.gloss_lead_in.format(**names)}\n\n{ex.gloss}")
    from_gloss = _chat(f"{book.unglossed_instruction.format(**names)}\n\n{ex.gloss}",
                       f"{book.unglossed_lead_in.format(**names)}\n\n{ex.text}")
    content = f"{ex.text}\n{ex.gloss}"
    return [(Example(to_gloss, "book", None, ex.corpus, f"{ex.corpus}#{ex.id}/gloss"), content),
            (Example(from_gloss, "book", None, ex.corpus, f"{ex.corpus}#{ex.id}/unglossed"), content)]


def gloss_translation_example(cfg: RecipeConfig, ex: GlossedExample) -> Candidate:
    names = _names(cfg, ex.lang, ex.translation_lang)
    lead = cfg.anchor.lead_in.format(**names)
    messages = _chat(f"{cfg.book.gloss_translation_instruction.format(**names)}\n\n{ex.gloss}",
                     f"{lead}\n\n{ex.translation}" if lead else ex.translation)
    example = Example(messages, "book", None, ex.corpus, f"{ex.corpus}#{ex.id}/gloss-translation")
    return example, f"{ex.gloss}\n{ex.translation}"


def passage_examples(cfg: RecipeConfig, section: BookSection, object_lang: str) -> list[Candidate]:
    """Each passage of the section split into a prompt part and its continuation."""
    names = _names(cfg, object_lang, section.lang)
    out = []
    for i, passage in enumerate(split_passages(section.text, cfg.book.passage_words)):
        head, tail = split_continuation(passage)
        if not head or not tail:
            continue
        messages = _chat(f"{cfg.book.passage_instruction.format(**names)}\n\n{section.title}\n\n{head}",
                         f"{cfg.book.passage_lead_in.format(**names)}\n\n{tail}")
        example = Example(messages, "book", None, section.corpus, f"{section.corpus}#{section.id}/passage/{i}")
        out.append((example, f"{head}\n{tail}"))
    return out


def split_passages(text: str, max_words: int) -> list[str]:
    """Consecutive paragraphs grouped into passages of at most `max_words` words; a longer
    paragraph is cut at sentence ends (a single overlong sentence stays whole)."""
    passages: list[str] = []
    current: list[str] = []
    words = 0
    for para in (p.strip("\n") for p in text.split("\n\n")):
        for piece in _pieces(para, max_words):
            n = len(piece.split())
            if current and words + n > max_words:
                passages.append("\n\n".join(current))
                current, words = [], 0
            current.append(piece)
            words += n
    if current:
        passages.append("\n\n".join(current))
    return passages


def _pieces(paragraph: str, max_words: int) -> list[str]:
    """An overlong paragraph cut into runs of lines (tables), else of sentences, within `max_words`."""
    if len(paragraph.split()) <= max_words or paragraph.startswith("    "):
        return [paragraph] if paragraph.strip() else []
    lines = paragraph.split("\n")
    units, joiner = (lines, "\n") if len(lines) > 1 else (_SENTENCE_END.split(paragraph), " ")
    pieces, current = [], []
    for unit in units:
        if current and len(joiner.join(current + [unit]).split()) > max_words:
            pieces.append(joiner.join(current))
            current = []
        current.append(unit)
    return pieces + [joiner.join(current)]


def split_continuation(passage: str) -> tuple[str, str]:
    """Cut a passage near its middle at a paragraph break, else at a sentence end."""
    paras = passage.split("\n\n")
    if len(paras) > 1:
        half = len(passage.split()) / 2
        cumulative = [len(" ".join(paras[:i]).split()) for i in range(1, len(paras))]
        cut = min(range(1, len(paras)), key=lambda i: abs(cumulative[i - 1] - half))
        return "\n\n".join(paras[:cut]), "\n\n".join(paras[cut:])
    sentences = _SENTENCE_END.split(passage)
    if len(sentences) < 2:
        return "", ""
    cut = max(1, len(sentences) // 2)
    return " ".join(sentences[:cut]), " ".join(sentences[cut:])
