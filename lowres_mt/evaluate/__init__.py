"""Evaluation: systems × test sets, scored with sacrebleu (and COMET when a model is given).

systems    which systems exist (runs, base model, ICL, apertium, submitted outputs) and their identity
generate   hypotheses for one system on one test sample (models loaded lazily, one at a time)
retrieval  BM25 few-shot examples for ICL, with the contamination guard
metrics    BLEU / chrF / chrF++ with signatures, bootstrap CIs, paired significance
comet      optional COMET scores (unbabel-comet)
cache      the keys that decide what a rerun may reuse
runner     `lowres-mt eval`: sample, generate, score, write JSON + hypotheses
report     REPORT.md and the terminal table; plots: PNG charts
"""
