"""A LaTeX grammar (Language Science Press, langsci-gb4e) → sections of plain text and glossed examples.

- `parse_chapter` splits a chapter at \\chapter/\\section/\\subsection/\\subsubsection headings
  into `BookSection`s (heading path kept) and pulls out every interlinear example
  (`\\gll` two-line or `\\glll` three-line, then `\\glt` translation) as a `GlossedExample`;
  the examples stay in the section text, rendered as indented plain lines.
- `parse_gloss_macros` reads the book's gloss shorthands (`\\newcommand{\\glse}{\\textsc{iam}}`).
- `parse_wordlist` reads the book's glossary (both the Kalamang–English and English–Kalamang parts).
Markup is stripped by `latex_to_text`; small caps become upper case (Leipzig gloss labels).
"""

from __future__ import annotations

import re

from lowres_mt.corpora.book.records import BookSection, GlossedExample, Lexeme
from lowres_mt.corpora.book.texmarkup import command_args, latex_to_text, strip_comments

_HEADING = re.compile(r"\\(chapter|addchap|section|subsection|subsubsection)\*?\s*(?:\[[^\]]*\])?\s*\{")
_LEVEL = {"chapter": 0, "addchap": 0, "section": 1, "subsection": 2, "subsubsection": 3}
_IGT = re.compile(r"\\(gll|glll)(?![A-Za-z])")
_GLT = re.compile(r"\\glt(?![A-Za-z])")
_TRANSLATION_END = re.compile(
    r"\\(?:jambox|label|ex|ea|exi|z|zlast|end|begin|gll|glll|hfill|footnote)(?![A-Za-z])|\n\s*\n")
_JUDGEMENT = re.compile(r"\\(?:ex|ea|exi)\s*\[([^\]]*)\][^\\]*$")
_MACRO_DEF = re.compile(r"\\newcommand\*?\{?\\(gl\w+)\}?\{\\textsc\{([^{}]*)\}\}")


def parse_gloss_macros(tex: str) -> dict[str, str]:
    """Gloss shorthands defined in the book's preamble: macro name → small-caps label."""
    return {name: f"\\textsc{{{label}}}" for name, label in _MACRO_DEF.findall(tex)}


def parse_chapter(tex: str, *, chapter_id: str, lang: str, translation_lang: str = "en",
                  macros: dict[str, str] | None = None,
                  corpus: str = "") -> tuple[list[BookSection], list[GlossedExample]]:
    """The sections and glossed examples of one chapter file."""
    tex = strip_comments(tex)
    macros = macros or {}
    sections: list[BookSection] = []
    examples: list[GlossedExample] = []
    path: list[str] = []
    for level, title, body in _split_headings(tex, macros):
        if level is not None:
            path = path[:level] + [""] * max(0, level - len(path)) + [title]
        heading = tuple(p for p in path if p) or (chapter_id,)
        text, found = _body_text(body, heading, chapter_id, len(examples), lang, translation_lang,
                                 macros, corpus)
        examples.extend(found)
        if text.strip():
            sections.append(BookSection(heading, text, translation_lang, tuple(e.id for e in found),
                                        corpus, f"{chapter_id}:{len(sections)}"))
    return sections, examples


def _split_headings(tex: str, macros: dict[str, str]) -> list[tuple[int | None, str, str]]:
    """(heading level or None for text before the first heading, title, body) in order."""
    parts: list[tuple[int | None, str, str]] = []
    pos, level, title = 0, None, ""
    for match in _HEADING.finditer(tex):
        if match.start() < pos:
            continue
        parts.append((level, title, tex[pos:match.start()]))
        args, end = command_args(tex, match.end() - 1, 1)
        level, title = _LEVEL[match.group(1)], latex_to_text(args[0], macros).strip()
        pos = end
    parts.append((level, title, tex[pos:]))
    return [p for p in parts if p[0] is not None or p[2].strip()]


def _body_text(body: str, heading: tuple[str, ...], chapter_id: str, first_index: int, lang: str,
               translation_lang: str, macros: dict[str, str],
               corpus: str) -> tuple[str, list[GlossedExample]]:
    """Section text with each glossed example rendered in place, and the examples themselves."""
    pieces: list[str] = []
    examples: list[GlossedExample] = []
    pos = 0
    for match in _IGT.finditer(body):
        if match.start() < pos:
            continue
        glt = _GLT.search(body, match.end())
        if glt is None:
            break
        end_match = _TRANSLATION_END.search(body, glt.end())
        end = end_match.start() if end_match else len(body)
        lines = [latex_to_text(line, macros, gloss=True).strip()
                 for line in _split_rows(body[match.end():glt.start()])]
        example = _make_example(lines, match.group(1) == "glll", body[glt.end():end], macros,
                                _judgement(body[max(0, match.start() - 60):match.start()]))
        if example is None:
            pos = end
            continue
        example = GlossedExample(**{**example, "lang": lang, "translation_lang": translation_lang,
                                    "section": " › ".join(heading), "corpus": corpus,
                                    "id": f"{chapter_id}#{first_index + len(examples)}"})
        examples.append(example)
        pieces.append(latex_to_text(body[pos:match.start()], macros))
        pieces.append("\n\n" + render_example(example) + "\n\n")
        pos = end
    pieces.append(latex_to_text(body[pos:], macros))
    return _tidy("".join(pieces)), examples


def _split_rows(block: str) -> list[str]:
    """The `\\\\`-separated rows of an interlinear block, empty ones dropped."""
    return [r for r in re.split(r"\\\\", block) if r.strip().strip("{}").strip()]


def _make_example(lines: list[str], three: bool, translation_tex: str, macros: dict[str, str],
                  judgement: str) -> dict | None:
    if len(lines) < 2:
        return None
    surface = ""
    if three and len(lines) >= 3:
        first, second, gloss = lines[0], lines[1], lines[2]
        words = [len(line.split()) for line in (first, second, gloss)]
        if words[1] == words[2] or words[0] != words[2]:
            surface, text = first, second
        else:  # the middle row is a slot/label row (e.g. "Subj Pred")
            text = first
    else:
        text, gloss = lines[0], lines[1]
    translation = _translation(translation_tex, macros)
    if not text or not gloss or not translation:
        return None
    return {"text": text, "gloss": gloss, "translation": translation, "surface": surface,
            "judgement": judgement}


def _translation(tex: str, macros: dict[str, str]) -> str:
    text = latex_to_text(tex, macros).strip().rstrip("}").strip()
    quoted = re.search(r"[`‘']+(.+)['’]", text, re.DOTALL)
    if quoted:
        text = quoted.group(1)
    return " ".join(text.split()).strip("`'‘’ ")


def _judgement(before: str) -> str:
    match = _JUDGEMENT.search(before)
    return match.group(1).strip() if match else ""


def render_example(example: GlossedExample) -> str:
    """Plain-text interlinear block: (surface,) segmented line, gloss line, quoted translation."""
    rows = ([example.surface] if example.surface else []) + [example.text, example.gloss]
    mark = example.judgement
    rows[0] = f"{mark}{rows[0]}" if mark else rows[0]
    return "\n".join(["    " + r for r in rows] + [f"    ‘{example.translation}’"])


def _tidy(text: str) -> str:
    lines = [" ".join(line.split()) if not line.startswith("    ") else line.rstrip()
             for line in text.split("\n")]
    out = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return out.strip()


_ENTRY = re.compile(r"\\newentry(.*?)(?=\\newentry|\\end\{letter\}|\Z)", re.DOTALL)
_FIELD = re.compile(r"\\(headword|pos|glosses)\{([^{}]*)\}")
_EN_KGV = re.compile(r"\\english\{([^{}]*)\}((?:\s*;?\s*\\kalamang\{[^{}]*\})+)")


def parse_wordlist(tex: str, *, lang: str, gloss_lang: str = "en", corpus: str = "") -> list[Lexeme]:
    """Both glossary parts as Lexemes (headword in `lang`); exact repeats are dropped."""
    tex = strip_comments(tex)
    out: list[Lexeme] = []
    seen: set[tuple[str, str]] = set()

    def add(head: str, gloss: str, pos: str, entry_id: str) -> None:
        head, gloss = latex_to_text(head, {}).strip(), latex_to_text(gloss, {}).strip()
        if head and gloss and (head, gloss) not in seen:
            seen.add((head, gloss))
            out.append(Lexeme(head, gloss, lang, gloss_lang, pos, corpus, entry_id))

    for i, entry in enumerate(_ENTRY.finditer(tex)):
        head, pos = "", ""
        for name, value in _FIELD.findall(entry.group(1)):
            if name == "headword":
                head = value
            elif name == "pos":
                pos = value
            else:
                add(head, value, pos, f"kgv-en:{i}")
    for i, match in enumerate(_EN_KGV.finditer(tex)):
        for head in re.findall(r"\\kalamang\{([^{}]*)\}", match.group(2)):
            add(head, match.group(1), "", f"en-kgv:{i}")
    return out
