"""LaTeX markup → plain text, for the prose and example lines of a LaTeX grammar.

A single left-to-right scanner: known commands are dropped with their arguments (labels,
references, index entries, citations in parentheses), unwrapped (\\textit, \\textbf, \\isi, …),
turned into a symbol (\\ob → `[`) or into upper case (\\textsc, the Leipzig gloss labels);
unknown commands lose their name and keep their text. Accents combine into Unicode characters.
"""

from __future__ import annotations

import re
import unicodedata

DROP = {  # command → number of braced arguments removed with it
    "label": 1, "ref": 1, "pageref": 1, "tabref": 1, "figref": 1, "sectref": 1, "is": 1, "il": 1,
    "index": 1, "jambox": 1, "includegraphics": 1, "hspace": 1, "vspace": 1, "parencite": 1,
    "citep": 1, "cite": 1, "cites": 2, "url": 1, "arrayrulecolor": 1, "phantomsection": 0,
    "addcontentsline": 3, "markboth": 2, "fittable": 0, "largerpage": 0, "tablevspace": 0,
    "setlength": 2, "scalebox": 1, "resizebox": 2, "todo": 1, "newpage": 0, "clearpage": 0,
}
UNWRAP = {"textit", "textbf", "emph", "isi", "ili", "mbox", "textsubscript", "textsuperscript",
          "textup", "textrm", "textnormal", "uline", "underline", "textsf", "texttt", "caption",
          "footnotesize", "small", "textstylest", "fbox", "centering"}
CITE = {"textcite", "citet", "citealt", "citeauthor", "citeyear"}
SYMBOL = {
    "ob": "[", "cb": "]", "textendash": "–", "textemdash": "—", "textless": "<", "textgreater": ">",
    "ldots": "…", "dots": "…", "S": "§", "newline": "\n", "par": "\n\n", "item": "\n- ", "ex": "\n",
    "ea": "\n", "exi": "\n", "z": "\n", "zlast": "\n", "\\": "\n", "_": "_", "%": "%", "&": "&",
    "#": "#", "$": "$", ",": " ", " ": " ", ";": " ", "{": "{", "}": "}", "textasciitilde": "~",
    "slash": "/", "hfill": " ", "quad": " ", "qquad": " ", "midrule": "", "lsptoprule": "",
    "lspbottomrule": "", "hline": "", "toprule": "", "bottomrule": "", "noindent": "", "kill": "\n",
    "smallskip": "", "medskip": "", "bigskip": "", "sloppy": "", "raggedright": "", "upshape": "",
    "itshape": "", "scshape": "", "normalfont": "", "indent": "", "endhead": "", "endfirsthead": "",
    "bcbar": "|", "=": " ", ">": " ", "glosses": "",
}
ACCENT = {"'": "\u0301", '"': "\u0308", "`": "\u0300", "^": "\u0302", "~": "\u0303", "u": "\u0306",
          "t": "\u0361", "v": "\u030c", "c": "\u0327"}
_NAME = re.compile(r"[A-Za-z]+\*?|.", re.DOTALL)
_COMMENT = re.compile(r"(?<!\\)%.*")


def strip_comments(tex: str) -> str:
    """Remove `%` comments (an escaped `\\%` stays)."""
    return _COMMENT.sub("", tex)


def command_args(s: str, pos: int, n: int, optional: bool = False) -> tuple[list[str], int]:
    """Up to `n` braced arguments starting at `pos` (spaces skipped; `[opt]` skipped if `optional`)."""
    args: list[str] = []
    while len(args) < n:
        i = _skip_spaces(s, pos)
        if optional and i < len(s) and s[i] == "[":
            close = s.find("]", i)
            pos = close + 1 if close >= 0 else len(s)
            continue
        if i >= len(s) or s[i] != "{":
            break
        end = matching_brace(s, i)
        args.append(s[i + 1:end])
        pos = end + 1
    return args, pos


def matching_brace(s: str, i: int) -> int:
    """Index of the `}` closing the `{` at `i` (escaped braces ignored; end of text if unclosed)."""
    depth = 0
    j = i
    while j < len(s):
        ch = s[j]
        if ch == "\\":
            j += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    return len(s)


def latex_to_text(tex: str, macros: dict[str, str] | None = None, gloss: bool = False) -> str:
    """Plain text of a LaTeX fragment; `macros` maps shorthand names to their LaTeX expansion.

    In `gloss` mode a braced multi-word group (one gloss for one word) is joined with dots.
    """
    out: list[str] = []
    i = 0
    while i < len(tex):
        ch = tex[i]
        if ch == "\\":
            text, i = _command(tex, i + 1, macros or {}, gloss)
            out.append(text)
        elif ch == "{" and gloss:
            end = matching_brace(tex, i)
            inner = latex_to_text(tex[i + 1:end], macros).split()
            out.append(".".join(inner))
            i = end + 1
        elif ch in "{}$":
            i += 1
        elif ch == "`":
            double = tex.startswith("``", i)
            out.append("“" if double else "‘")
            i += 2 if double else 1
        elif ch == "~":
            out.append(" ")
            i += 1
        elif ch == "&":
            out.append(" | ")
            i += 1
        else:
            out.append(ch)
            i += 1
    text = "".join(out)
    text = text.replace("---", "—").replace("--", "–").replace("''", "”")
    return unicodedata.normalize("NFC", text)


def _command(tex: str, i: int, macros: dict[str, str], gloss: bool) -> tuple[str, int]:
    """Text for the command whose name starts at `i`, and where scanning resumes."""
    match = _NAME.match(tex, i)
    if match is None:
        return "", i
    name, pos = match.group(0).rstrip("*"), match.end()
    if name in macros:
        return latex_to_text(macros[name], macros, gloss), pos
    if name in ACCENT and (len(name) == 1 and not name.isalpha() or not tex[pos:pos + 1].isalpha()):
        args, end = command_args(tex, pos, 1)
        base = args[0] if args else tex[pos:pos + 1]
        end = end if args else pos + 1
        return latex_to_text(base, macros) + ACCENT[name], end
    if name in SYMBOL:
        if name in ("ex", "ea", "item"):
            _, pos = command_args(tex, pos, 0, optional=True)
        return SYMBOL[name], pos
    if name in DROP:
        _, end = command_args(tex, pos, DROP[name], optional=True)
        return "", end
    if name == "textsc":
        args, end = command_args(tex, pos, 1)
        return latex_to_text(args[0] if args else "", macros).upper(), end
    if name in CITE:
        args, end = command_args(tex, pos, 1, optional=True)
        return _cite_text(args[0] if args else ""), end
    if name in ("begin", "end"):
        args, end = command_args(tex, pos, 1)
        env = args[0] if args else ""
        if name == "begin":
            _, end = command_args(tex, end, 1 if env in ("tabular", "tabbing", "tabularx") else 0,
                                  optional=True)
        return "\n", end
    if name in ("textcolor", "href", "parbox"):
        args, end = command_args(tex, pos, 2)
        return latex_to_text(args[-1] if args else "", macros, gloss), end
    if name == "multicolumn":
        args, end = command_args(tex, pos, 3)
        return latex_to_text(args[-1] if args else "", macros, gloss), end
    if name == "footnote":
        args, end = command_args(tex, pos, 1, optional=True)
        return f" ({latex_to_text(args[0], macros).strip()})" if args else "", end
    if name in UNWRAP:
        args, end = command_args(tex, pos, 1, optional=True)
        return (latex_to_text(args[0], macros) if args else ""), end
    return "", pos  # unknown command: its name goes, its braced text stays


def _cite_text(keys: str) -> str:
    names = []
    for key in keys.split(","):
        match = re.match(r"([A-Za-z]+)\D*(\d{4}[a-z]?)?", key.strip())
        if match:
            names.append(match.group(1).capitalize() + (f" {match.group(2)}" if match.group(2) else ""))
    return "; ".join(names)


def _skip_spaces(s: str, i: int) -> int:
    while i < len(s) and s[i] in " \t\n" and not s.startswith("\n\n", i):
        i += 1
    return i
