"""Corpus scores through sacrebleu objects: BLEU, chrF, chrF++ with signatures, bootstrap 95%
confidence intervals and paired bootstrap significance against a baseline system.

Both the intervals and the p-values come from `sacrebleu.significance.PairedTest` (paired
bootstrap resampling, 1000 resamples, seed from SACREBLEU_SEED, default 12345). The resample
indices depend only on the seed and the number of segments, so a system's interval is the same
whether it is scored alone or next to a baseline. An interval is `mean ± half-width` where the
half-width is half the span between the 2.5th and 97.5th percentiles of the resampled scores
(sacrebleu's `estimate_ci`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sacrebleu
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.metrics.base import Metric
from sacrebleu.significance import PairedTest

from lowres_mt.errors import UserError

METRIC_NAMES = ("BLEU", "chrF", "chrF++")
BOOTSTRAP_SAMPLES = 1000
# sacrebleu names its scores "chrF2"/"chrF2++"; we keep the names people quote
_SACREBLEU_NAME = {"BLEU": "BLEU", "chrF2": "chrF", "chrF2++": "chrF++"}


def make_metrics(tgt_lang: str = "") -> dict[str, Metric]:
    """Fresh metric objects (they cache references, so one set per reference list)."""
    try:
        bleu = BLEU(trg_lang=tgt_lang)
    except RuntimeError:  # sacrebleu's Japanese and Korean BLEU tokenizers need MeCab
        if tgt_lang not in ("ja", "ko"):
            raise
        raise UserError(f"BLEU for {tgt_lang} tokenizes with MeCab, which is not installed: "
                        f"pip install 'sacrebleu[{tgt_lang}]'") from None
    return {"BLEU": bleu, "chrF": CHRF(), "chrF++": CHRF(word_order=2)}


def signatures(tgt_lang: str = "") -> dict[str, str]:
    """Plain signatures (no bootstrap fields) for one reference: what the point scores mean."""
    out = {}
    for name, metric in make_metrics(tgt_lang).items():
        metric.corpus_score(["a"], [["a"]])  # fixes nrefs=1 in the signature
        out[name] = metric.get_signature().format()
    return out


def _check(hyps: Sequence[str], refs: Sequence[str]) -> None:
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    if not refs:
        raise ValueError("nothing to score: no references")


def score_corpus(hyps: Sequence[str], refs: Sequence[str], tgt_lang: str = "",
                 n_samples: int = BOOTSTRAP_SAMPLES) -> dict[str, dict]:
    """{metric: {score, mean, ci_halfwidth, ci: [low, high], signature}} for one system."""
    _check(hyps, refs)
    sigs, table = PairedTest([("system", list(hyps))], make_metrics(tgt_lang), [list(refs)],
                             test_type="bs", n_samples=n_samples)()
    out = {}
    for key, results in table.items():
        if key == "System":
            continue
        result = results[0]
        name = _SACREBLEU_NAME[key]
        out[name] = {
            "score": round(float(result.score), 4),
            "mean": round(float(result.mean), 4),
            "ci_halfwidth": round(float(result.ci), 4),
            "ci": [round(float(result.mean - result.ci), 4), round(float(result.mean + result.ci), 4)],
            "signature": sigs[key].format(),
        }
    return out


def paired_significance(baseline: tuple[str, Sequence[str]], systems: Sequence[tuple[str, Sequence[str]]],
                        refs: Sequence[str], tgt_lang: str = "",
                        n_samples: int = BOOTSTRAP_SAMPLES) -> dict[str, dict[str, float]]:
    """p-values of the paired bootstrap test of each system against `baseline`, per metric."""
    _check(baseline[1], refs)
    for _, hyps in systems:
        _check(hyps, refs)
    # sacrebleu counts only strictly larger resampled differences, which gives a system identical
    # to the baseline p = 1/(n+1); identical output is no difference at all, so it gets p = 1.
    out: dict[str, dict[str, float]] = {
        name: dict.fromkeys(METRIC_NAMES, 1.0) for name, hyps in systems if list(hyps) == list(baseline[1])}
    differing = [(n, list(h)) for n, h in systems if n not in out]
    if not differing:
        return out
    named = [(baseline[0], list(baseline[1]))] + differing
    _, table = PairedTest(named, make_metrics(tgt_lang), [list(refs)], test_type="bs",
                          n_samples=n_samples)()
    for key, results in table.items():
        if key == "System":
            continue
        for (name, _), result in zip(differing, results[1:], strict=True):
            out.setdefault(name, {})[_SACREBLEU_NAME[key]] = round(float(result.p_value), 6)
    return out


def sacrebleu_version() -> str:
    return sacrebleu.__version__
