"""One stored evaluation result: results/<recipe>/<system>/<test set>.<direction>.json as a typed
record, shared by the runner, the report, the plots and the sweep.

`Result.to_dict()` writes the JSON layout the results folders hold (fields in this order) and
`Result.from_dict()` reads it back; a result written before a field existed gets its default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class Result:
    recipe: str = ""
    system: str
    kind: str
    method: str | None = None  # a trained run's method
    testset: str
    direction: str  # "en-is"
    src_lang: str = ""
    tgt_lang: str = ""
    n: int  # sentences scored
    sample: int = 0  # the sample size asked for (0 = the whole test set)
    seed: int = 0
    ids: tuple[str, ...] = ()  # the sentences' ids in the test set, in sample order
    model: str | None = None  # base model name or path
    adapter: str | None = None  # a trained run's adapter folder
    task_tokens: int | None = None  # a trained run's task budget
    config_hash: str = ""
    decode: dict = field(default_factory=dict)  # the system's decoding identity and the batch size
    scores: dict  # metric name → {"score", "ci_halfwidth", "signature", …} (COMET: {"score"} or {"note"})
    significance: dict | None = None  # {"baseline", "test", "p": {metric: p}} against the baseline
    off_target: dict | None = None  # {"rate", "languages"}; None where language ID does not know the target
    copies: dict | None = None  # {"rate", "count"}: hypotheses that repeat their source
    shot_copies: dict | None = None  # {"rate", "count"}: ones that repeat a retrieved example's target
    guard_dropped: int | None = None  # pool pairs the contamination guard dropped (retrieving systems)
    timings: dict = field(default_factory=dict)  # generate_s, sentences_per_s, score_s
    hypotheses: str = ""  # the hypothesis file's name, next to this one
    hyp_sha256: str = ""
    cache: dict = field(default_factory=dict)  # {"generation", "scoring", "significance"} keys (`cache`)
    path: str = ""  # this result's JSON, relative to results/<recipe>/
    command: str | None = None  # the command that produced it

    @classmethod
    def from_dict(cls, data: dict) -> Result:
        """A result from its JSON; missing fields (older files) get their defaults, unknown keys
        are left out."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "ids" in values:
            values["ids"] = tuple(values["ids"])
        return cls(**values)

    def to_dict(self) -> dict:
        """The JSON layout of a stored result (every field, in declaration order)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["ids"] = list(self.ids)
        return out


def read_result(path: Path) -> Result | None:
    """The result stored at `path`, or None where there is none (missing, unreadable, or a JSON
    file that is not a result)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or "scores" not in data or "system" not in data:
        return None
    return Result.from_dict(data)
