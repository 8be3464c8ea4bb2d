"""What a stored result depends on, as hashes, so a rerun redoes only what changed.

Three keys per result: `generation` (system identity incl. model/adapter bytes, prompt format,
decoding settings, the exact sample of source sentences), `scoring` (the hypotheses, the
references, the metric versions, the COMET model) and `significance` (this system's and the
baseline's hypotheses). A result is reused only when its stored key equals the current one
and its hypothesis file still has the recorded sha256.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from lowres_mt.config import RecipeConfig
from lowres_mt.evaluate.systems import System
from lowres_mt.records import Pair
from lowres_mt.text import alphabet_letters
from lowres_mt.translate import DecodeSettings


def digest(obj) -> str:
    blob = obj if isinstance(obj, str) else json.dumps(obj, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def text_digest(lines: Sequence[str]) -> str:
    return digest("\n".join(lines))


def config_hash(cfg: RecipeConfig) -> str:
    return digest(cfg.to_dict())[:16]


def generation_key(system: System, cfg: RecipeConfig, settings: DecodeSettings, testset: str,
                   direction: str, pairs: Sequence[Pair]) -> str:
    parts: dict = {
        "system": system.name, "kind": system.kind, "fingerprint": system.fingerprint,
        "testset": testset, "direction": direction,
        "ids": [p.id for p in pairs], "sources": text_digest([p.src for p in pairs]),
    }
    parts.update(system.cache_parts(cfg, settings))
    letters = alphabet_letters(direction.split("-")[-1], settings.alphabet)
    if letters is not None:  # only where it limits anything: other caches stay valid
        parts["alphabet"] = letters
    return digest(parts)


def scoring_key(generation: str, hyp_sha: str, refs: Sequence[str], bootstrap: int,
                comet_model: str | None, sacrebleu_version: str) -> str:
    return digest({"generation": generation, "hyps": hyp_sha, "refs": text_digest(refs),
                   "bootstrap": bootstrap, "comet": comet_model, "sacrebleu": sacrebleu_version})


def significance_key(baseline_hyp_sha: str, hyp_sha: str, refs: Sequence[str], bootstrap: int) -> str:
    return digest({"baseline": baseline_hyp_sha, "hyps": hyp_sha, "refs": text_digest(refs),
                   "bootstrap": bootstrap})


def read_result(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
