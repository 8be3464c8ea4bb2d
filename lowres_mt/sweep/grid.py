"""A sweep's grid: `KEY=V1,V2,…` axes × methods, expanded into named runs.

Values are split at top-level commas only, so a list value stays whole
(`task.train=[a,b],[c]` is two values). Each run is named after its method and the values of
the keys that vary (`tell-task.tokens=2500`), so the same grid always gives the same folders.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from lowres_mt.config import METHODS
from lowres_mt.errors import UserError

UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


@dataclass(frozen=True)
class Axis:
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class PlannedRun:
    name: str
    method: str
    values: tuple[tuple[str, str], ...]  # (key, value) for every axis, in the grid's order

    @property
    def overrides(self) -> list[str]:
        return [f"{key}={value}" for key, value in self.values]

    def value(self, key: str) -> str:
        return dict(self.values)[key]


def split_values(text: str) -> list[str]:
    """Split at commas outside brackets and braces: "[a,b],[c]" → ["[a,b]", "[c]"]."""
    values, depth, current = [], 0, []
    for char in text:
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        if char == "," and depth == 0:
            values.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    values.append("".join(current).strip())
    return values


def parse_axes(items: list[str]) -> list[Axis]:
    """`KEY=V1,V2` items as axes; one key twice, or an empty value, is an error."""
    axes: dict[str, Axis] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"sweep axis '{item}' must look like KEY=V1,V2 (e.g. task.tokens=2500,10000)")
        if key in axes:
            raise UserError(f"sweep axis {key} is given twice; list all its values once: {key}=V1,V2")
        values = split_values(raw)
        if any(not v for v in values):
            raise UserError(f"sweep axis '{item}' has an empty value; separate values with single commas")
        if len(set(values)) != len(values):
            raise UserError(f"sweep axis '{item}' repeats a value")
        axes[key] = Axis(key, tuple(values))
    return list(axes.values())


def parse_methods(text: str) -> list[str]:
    methods = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if not methods or unknown:
        raise UserError(f"--methods: unknown method {', '.join(unknown) or '(none)'}; use a comma-separated "
                        f"list of {', '.join(METHODS)}")
    return list(dict.fromkeys(methods))


def plan_runs(axes: list[Axis], methods: list[str]) -> list[PlannedRun]:
    """Every method × every combination of axis values, methods outermost."""
    varying = [a.key for a in axes if len(a.values) > 1]
    runs = []
    for method in methods:
        for combo in itertools.product(*(a.values for a in axes)):
            values = tuple(zip((a.key for a in axes), combo, strict=True))
            parts = [f"{key}={UNSAFE.sub('_', value).strip('_')}" for key, value in values if key in varying]
            runs.append(PlannedRun("-".join([method, *parts]) if parts else f"{method}-run", method, values))
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        clash = next(n for n in names if names.count(n) > 1)
        raise UserError(f"two sweep runs would share the folder name {clash}; make the values differ in "
                        "letters or digits, not only in punctuation")
    return runs


def default_sweep_name(recipe: str, axes: list[Axis]) -> str:
    varying = [a.key for a in axes if len(a.values) > 1] or ["runs"]
    return UNSAFE.sub("_", "-".join([recipe.rsplit("/", 1)[-1].removesuffix(".yaml"), *varying]))
