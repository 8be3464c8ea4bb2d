"""What a stored result depends on, as hashes, so a rerun redoes only what changed.

Three keys per result: `generation` (`System.signature`: the system's identity incl.
model/adapter bytes, prompt format and decoding identity with its backend and quantization; and
the exact sample of source sentences), `scoring` (the hypotheses, the references, the metric
versions, the COMET model) and `significance` (this system's and the baseline's hypotheses). A
result is reused only when its stored key equals the current one and its hypothesis file still
has the recorded sha256.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from lowres_mt.config import RecipeConfig
from lowres_mt.records import Pair


def digest(obj) -> str:
    blob = obj if isinstance(obj, str) else json.dumps(obj, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def text_digest(lines: Sequence[str]) -> str:
    return digest("\n".join(lines))


def config_hash(cfg: RecipeConfig) -> str:
    return digest(cfg.to_dict())[:16]


def generation_key(signature: dict, testset: str, direction: str, pairs: Sequence[Pair]) -> str:
    """`signature`: `System.signature` for the direction's target language."""
    return digest({"signature": signature, "testset": testset, "direction": direction,
                   "ids": [p.id for p in pairs], "sources": text_digest([p.src for p in pairs])})


def scoring_key(generation: str, hyp_sha: str, refs: Sequence[str], bootstrap: int,
                comet_model: str | None, sacrebleu_version: str) -> str:
    return digest({"generation": generation, "hyps": hyp_sha, "refs": text_digest(refs),
                   "bootstrap": bootstrap, "comet": comet_model, "sacrebleu": sacrebleu_version})


def significance_key(baseline_hyp_sha: str, hyp_sha: str, refs: Sequence[str], bootstrap: int) -> str:
    return digest({"baseline": baseline_hyp_sha, "hyps": hyp_sha, "refs": text_digest(refs),
                   "bootstrap": bootstrap})
