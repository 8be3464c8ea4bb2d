"""Two ways a translation fails that chrF hides, as rates over a system's hypotheses.

- off-target: the share of hypotheses not identified (`lowres_mt.langid`) as the target
  language; an empty hypothesis counts, since it is no translation into the target language.
  None when the identifier does not know the target language (Kalamang, Kanuri).
- copies: the share of hypotheses that are near-copies of their source
  (`lowres_mt.data.filters.is_near_copy`: equal after normalisation, or sentence chrF ≥ 80).

- shot copies (`icl`, `openai:` with shots): the share that are near-copies of one of their
  retrieved examples' targets; computed when the hypotheses are made (it needs the shots).

Off-target and copies come from the hypotheses alone, so a rerun fills them in for results whose hypotheses are
reused from the cache.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from lowres_mt.data.filters import is_near_copy
from lowres_mt.langid import identify, is_supported


def off_target(hyps: Sequence[str], tgt_lang: str) -> dict | None:
    """{"rate", "languages": {code, "other" (none of the candidates) or "empty": count}}, or
    None when `tgt_lang` is not supported."""
    if not hyps or not is_supported(tgt_lang):
        return None
    found = [lang or ("other" if hyp.strip() else "empty") for hyp, lang in zip(hyps, identify(hyps))]
    off = sum(lang != tgt_lang for lang in found)
    return {"rate": round(off / len(hyps), 4), "languages": dict(Counter(found).most_common())}


def copies(sources: Sequence[str], hyps: Sequence[str]) -> dict | None:
    """{"rate", "count"} of hypotheses that are near-copies of their source."""
    if not hyps:
        return None
    count = sum(is_near_copy(hyp, src) for src, hyp in zip(sources, hyps, strict=True))
    return {"rate": round(count / len(hyps), 4), "count": count}


def shot_copies(hyps: Sequence[str], shot_targets: Sequence[Sequence[str]]) -> dict | None:
    """{"rate", "count"} of hypotheses that are near-copies of a retrieved example's target
    (an in-context system copying its shots instead of translating)."""
    if not hyps:
        return None
    count = sum(any(is_near_copy(hyp, t) for t in targets) for hyp, targets in zip(hyps, shot_targets, strict=True))
    return {"rate": round(count / len(hyps), 4), "count": count}
