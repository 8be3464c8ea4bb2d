"""Translations made outside this project: the rule-based apertium pair (is→en) run as a
subprocess, and the outputs submitted to a shared task that ship with a test set."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from lowres_mt.errors import UserError

APERTIUM_MODES = {"is-en": "isl-eng"}


def apertium_version(tool: str) -> str:
    package = Path("/usr/share/apertium/apertium-isl-eng")
    return f"apertium:{tool}:{'isl-eng' if package.exists() else 'mode-from-path'}"


def apertium_translate(sources: Sequence[str], direction: str) -> list[str]:
    """Run apertium over the sources, one line each (unknown-word marks removed)."""
    mode = APERTIUM_MODES.get(direction)
    if mode is None:
        raise UserError(f"apertium translates only {', '.join(APERTIUM_MODES)}, not {direction}")
    text = "\n".join(s.replace("\n", " ") for s in sources) + "\n"
    done = subprocess.run(["apertium", "-u", mode], input=text, capture_output=True, text=True,
                          check=False)
    lines = done.stdout.rstrip("\n").split("\n") if done.stdout.strip() else []
    if done.returncode != 0 or len(lines) != len(sources):
        detail = done.stderr.strip().splitlines()[-1:] or [f"{len(lines)} lines for {len(sources)}"]
        raise UserError(f"apertium {mode} failed: {detail[0]}; check `echo test | apertium {mode}`")
    return [line.strip() for line in lines]


def external_outputs(testset: str, direction: str) -> dict[str, dict[str, str]]:
    """{submitted system: {segment id: output}} from the test set's `-systems` companion set."""
    from lowres_mt import corpora

    ref = f"{testset}-systems"
    try:
        info = corpora.set_info(ref)
    except UserError:
        return {}
    if direction not in info.directions:
        return {}
    out: dict[str, dict[str, str]] = {}
    for row in corpora.load_set(ref):
        if f"{row.src_lang}-{row.tgt_lang}" == direction:
            out.setdefault(row.system, {})[row.id] = row.hyp
    return out
