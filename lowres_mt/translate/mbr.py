"""Minimum-Bayes-risk selection: of N sampled answers, the one the others agree with most.

Each candidate is scored by its mean sentence chrF against the other candidates (the samples
stand in for references: Eikema & Aziz 2022; epsilon sampling, Freitag et al. 2023). chrF comes
from `fastchrf`, which gives sacrebleu's sentence chrF to the last digit with no dependencies and
computes all N × N scores in one call (`mbr` needs transformers < 4.39; `mbrs` brings its own
generation stack).
"""

from __future__ import annotations

from collections.abc import Sequence

from fastchrf import pairwise_chrf


def mbr_select(candidates: Sequence[str]) -> int:
    """Index of the consensus candidate: the highest mean chrF against the others (ties: the
    first)."""
    n = len(candidates)
    if n <= 1:
        return 0
    scores = pairwise_chrf([list(candidates)], [list(candidates)])[0]
    means = [(sum(row) - row[i]) / (n - 1) for i, row in enumerate(scores)]
    return max(range(n), key=lambda i: (means[i], -i))
