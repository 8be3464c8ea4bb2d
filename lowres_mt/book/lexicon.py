"""A bilingual wordlist with simple morphological matching, for in-context prompts and word tasks.

Headwords are in the object language (`lang`), glosses in `gloss_lang` (English). Looking up a
word of the object language tries, in order: the exact form; a form written with boundaries (`kewe-un=ko`)
as its stem plus the wordlist's bound morphemes; the form with one or two bound
morphemes of the wordlist itself (entries written `-un`, `=at`, …) stripped from its end; the
longest headword of at least three letters that starts the word, leaving at most four letters.
(Stripping the wordlist's own affixes may leave a two-letter stem: Kalamang has many, e.g. `bo`.)
English words are matched against the words of each gloss after light stemming (plural,
past, progressive endings), whole-gloss matches first.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable

from lowres_mt.corpora.book.records import Lexeme

_WORD = re.compile(r"[^\W\d_](?:[\w'’∼~-]*\w)?", re.UNICODE)
STOPWORDS = frozenset(
    "a an the and or but of to in on at by for with from as is are was were be been being am do does "
    "did have has had it its this that these those there here i you he she we they me him her us them "
    "my your his our their not no so if then than too very can will would shall should may might must "
    "just also what who whom which when where why how all any some one s t don't isn't it's i'm".split())
_BOUNDARY = re.compile(r"(?=[-=])")
_MAX_REST = 4  # letters a headword prefix may leave unexplained
_MIN_STEM = 3  # shortest headword accepted as a prefix match
_MIN_AFFIXED_STEM = 2  # shortest stem left when stripping the wordlist's own affixes


def fold(text: str) -> str:
    """Comparison form of a word: NFC, case-folded, boundary marks and edge punctuation removed."""
    text = unicodedata.normalize("NFC", text).casefold().strip()
    return text.strip("-=.,;:!?()[]'\"‘’“”*").replace("∼", "").replace("~", "")


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def english_words(text: str) -> list[str]:
    """Words of English text, hyphenated compounds split (`kidney-disease` → kidney, disease)."""
    return [part for word in words(text) for part in word.split("-") if part]


def stem_en(word: str) -> str:
    """A crude English stem: enough to match `houses`/`house`, `walked`/`walk`, `going`/`go`."""
    w = fold(word)
    if w.endswith(("'s", "’s")):
        w = w[:-2]
    if len(w) <= 3:
        return w
    if w.endswith(("ies", "ied")) and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith("sses") or (w.endswith("es") and w[:-2].endswith(("x", "z", "ch", "sh"))):
        return w[:-2]
    if w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    if w.endswith("ing") and len(w) >= 5:
        return w[:-3]
    if w.endswith("ed") and len(w) >= 5:
        return w[:-2]
    return w


_STOP_STEMS = frozenset(stem_en(w) for w in STOPWORDS)


class Lexicon:
    """Wordlist entries indexed by headword and by gloss words; repeats are kept once."""

    def __init__(self, entries: Iterable[Lexeme]):
        self.entries: list[Lexeme] = []
        self._by_head: dict[str, list[Lexeme]] = defaultdict(list)
        self._by_gloss: dict[str, list[Lexeme]] = defaultdict(list)
        self._affixes: dict[str, list[Lexeme]] = defaultdict(list)
        seen: set[tuple[str, str]] = set()
        for entry in entries:
            key = (fold(entry.headword), entry.gloss.strip().casefold())
            if not key[0] or key in seen:
                continue
            seen.add(key)
            self.entries.append(entry)
            if entry.headword[:1] in "-=":
                self._affixes[key[0]].append(entry)
            else:
                self._by_head[key[0]].append(entry)
            for stem in {stem_en(w) for w in words(entry.gloss)} - _STOP_STEMS:
                self._by_gloss[stem].append(entry)
        self._suffixes = sorted(self._affixes, key=len, reverse=True)
        self._cache: dict[str, list[Lexeme]] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, word: str) -> list[Lexeme]:
        """Entries for one object-language word (stem first, then any stripped affixes)."""
        key = fold(word)
        if key not in self._cache:
            self._cache[key] = self._lookup(key)
        return list(self._cache[key])

    def _lookup(self, key: str) -> list[Lexeme]:
        if not key:
            return []
        if key in self._by_head:
            return list(self._by_head[key])
        stem, *bound = _BOUNDARY.split(key)
        if bound and stem in self._by_head:  # written with its boundaries: `kewe-un=ko`
            return self._by_head[stem] + [e for b in bound for e in self._affixes.get(fold(b), [])]
        for stem, affixes in self._strip_affixes(key, depth=2):
            if stem in self._by_head:
                return self._by_head[stem] + [e for a in affixes for e in self._affixes[a]]
        for n in range(len(key) - 1, max(_MIN_STEM, len(key) - _MAX_REST) - 1, -1):
            if key[:n] in self._by_head:
                return list(self._by_head[key[:n]])
        return []

    def _strip_affixes(self, key: str, depth: int) -> list[tuple[str, list[str]]]:
        out = []
        for suffix in self._suffixes:
            if key.endswith(suffix) and len(key) - len(suffix) >= _MIN_AFFIXED_STEM:
                stem = key[: -len(suffix)]
                out.append((stem, [suffix]))
                if depth > 1:
                    out += [(s, [*a, suffix]) for s, a in self._strip_affixes(stem, depth - 1)]
        return out

    def lookup_gloss(self, word: str, limit: int = 3) -> list[Lexeme]:
        """Entries whose gloss contains the English `word` (whole-gloss matches, then shortest)."""
        stem = stem_en(word)
        if not stem or fold(word) in STOPWORDS:
            return []
        hits = self._by_gloss.get(stem, [])
        exact = fold(word)

        def rank(entry: Lexeme) -> tuple[int, int]:
            senses = [fold(s) for s in re.split(r"[;,/]", entry.gloss)]
            whole = exact in senses or stem in (stem_en(s) for s in senses)
            return (0 if whole else 1, len(entry.gloss))

        return sorted(hits, key=rank)[:limit]

    def entries_for(self, text: str, lang: str, per_word: int = 3) -> list[Lexeme]:
        """Entries for every word of `text` in the order the words appear, each entry once.

        `lang` is the language of `text`: the headword language, or any other for gloss lookup.
        """
        out: list[Lexeme] = []
        seen: set[int] = set()
        object_lang = self.entries[0].lang if self.entries else lang
        for word in words(text) if lang == object_lang else english_words(text):
            found = self.lookup(word) if lang == object_lang else self.lookup_gloss(word, per_word)
            for entry in found[:per_word]:
                if id(entry) not in seen:
                    seen.add(id(entry))
                    out.append(entry)
        return out


def format_entry(entry: Lexeme) -> str:
    pos = f" ({entry.pos})" if entry.pos else ""
    return f"{entry.headword}{pos}: {entry.gloss}"
