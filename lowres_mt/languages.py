"""Language names for prompts ("Translate from Faroese to English."): the recipe's
`language_names` first, then the English name from the ISO 639 data of `langcodes`.

A code with no name is a UserError: a prompt must never say "Translate from fo to English."
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

import langcodes

from lowres_mt.errors import UserError

# Only where langcodes' name differs from what trained runs' prompts say (a prompt that changes
# changes what a trained model reads): ISO 639-3 kgv is "Karas" in langcodes' data.
NAME_OVERRIDES = {"kgv": "Kalamang"}


def language_name(code: str, names: Mapping[str, str] | None = None) -> str:
    """The English name of `code`: `names` (a recipe's language_names) first, then NAME_OVERRIDES,
    then langcodes; an unknown code is a UserError that says how to name it."""
    name = (names or {}).get(code) or NAME_OVERRIDES.get(code) or _iso_name(code)
    if name is None:
        raise UserError(f"no language name for '{code}': give one with language_names: {{{code}: Name}} "
                        f"in the recipe (or --names {code}=Name with lowres-mt init)")
    return name


def has_name(code: str, names: Mapping[str, str] | None = None) -> bool:
    try:
        language_name(code, names)
    except UserError:
        return False
    return True


@cache
def _iso_name(code: str) -> str | None:
    """langcodes' English display name, or None for a malformed or unknown code (langcodes then
    answers with a placeholder such as "Unknown language [xq]")."""
    try:
        name = langcodes.Language.get(code).display_name("en")
    except (langcodes.LanguageTagError, ValueError):
        return None
    return None if "Unknown" in name else name


def parse_names(text: str) -> dict[str, str]:
    """`"en=English,fo=Faroese"` → {"en": "English", "fo": "Faroese"} (for `--names`)."""
    names: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        code, sep, name = (s.strip() for s in item.partition("="))
        if not sep or not code or not name or " " in code:
            raise UserError(f"--names item '{item}' must look like CODE=Name (e.g. fo=Faroese); "
                            f"separate items with commas")
        names[code] = name
    return names
