"""Language identification of sentences, offline, with lingua (its models ship in the wheel).

A text is told apart from a fixed set of candidates: English and Icelandic, and the languages a
small model drifts into when it is asked for Icelandic (Danish, Norwegian Bokmål and Nynorsk,
Swedish, German). Never only the two languages of a pair, or "not Icelandic" could not be seen.
Each further candidate costs accuracy on short English sentences (Tatoeba en, ≥ 20 characters:
99.6% with these 7, 99.3% with 12), so the set is kept to the languages that matter here.
Codes are ISO 639-1, as elsewhere in the project (`is`, `nb`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache

from lingua import Language, LanguageDetectorBuilder

CANDIDATES = (Language.ENGLISH, Language.ICELANDIC, Language.DANISH, Language.BOKMAL,
              Language.NYNORSK, Language.SWEDISH, Language.GERMAN)


def _code(language: Language) -> str:
    return language.iso_code_639_1.name.lower()


_BY_CODE = {_code(language): language for language in CANDIDATES}


def is_supported(lang: str) -> bool:
    """Whether `lang` is a candidate (Kalamang `kgv` and Kanuri `kau` are not)."""
    return lang in _BY_CODE


def unavailable_note(langs: Iterable[str]) -> str | None:
    """"language ID not available for kgv" naming the languages of `langs` that are not
    candidates (nothing is identified for them), or None when every one is."""
    missing = sorted({lang for lang in langs if not is_supported(lang)})
    return f"language ID not available for {', '.join(missing)}" if missing else None


@cache
def _detector():
    return LanguageDetectorBuilder.from_languages(*CANDIDATES).build()


def identify(texts: Sequence[str]) -> list[str | None]:
    """The language code of each text among CANDIDATES; None where lingua cannot tell (an empty
    text, one without letters)."""
    if not texts:
        return []
    return [_code(found) if found else None
            for found in _detector().detect_languages_in_parallel_of(list(texts))]


def confidence(texts: Sequence[str], lang: str) -> list[float]:
    """How sure lingua is that each text is in `lang` (0..1, shared among CANDIDATES; a
    supported code)."""
    if not texts:
        return []
    return _detector().compute_language_confidence_in_parallel(list(texts), _BY_CODE[lang])
