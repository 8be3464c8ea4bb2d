"""Score a user's own files, sacrebleu style: one segment per line in HYP, REF (and SRC).

BLEU, chrF and chrF++ with bootstrap 95% intervals and signatures come from `metrics`; the copy
rate (needs SRC) and the off-target rate (needs the target language) from `rates`; COMET (needs
SRC and a model) from `comet`. Nothing here computes a score itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from lowres_mt.errors import UserError
from lowres_mt.evaluate import rates
from lowres_mt.evaluate.comet import load_comet, resolve_checkpoint, score_comet
from lowres_mt.evaluate.metrics import score_corpus
from lowres_mt.io import iter_lines
from lowres_mt.langid import is_supported


@dataclass(frozen=True)
class MetricScore:
    """One corpus score; the interval is the bootstrap mean ± half-width (`metrics`)."""

    score: float
    ci_low: float
    ci_high: float
    signature: str


@dataclass(frozen=True)
class FileScores:
    n: int
    bleu: MetricScore
    chrf: MetricScore
    chrfpp: MetricScore
    copy_rate: float | None = None  # share of hypotheses that near-copy their source (needs SRC)
    off_target_rate: float | None = None  # share not identified as the target language
    languages: dict[str, int] | None = None  # what language ID found: {code, "other" or "empty": count}
    comet: float | None = None
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {**asdict(self), "notes": list(self.notes)}


def score_files(hyp: Path | str, ref: Path | str, src: Path | str | None = None,
                tgt_lang: str | None = None, comet_model: str | None = None) -> FileScores:
    """Scores of the hypotheses in `hyp` against the references in `ref` (sources in `src`).

    `tgt_lang` picks BLEU's tokenizer, as sacrebleu's `-l`, and asks for the off-target rate.
    Missing, empty or unequally long files are a `UserError`, as is COMET without sources."""
    hyps, refs = read_segments("HYP", hyp), read_segments("REF", ref)
    _check_same_length(("HYP", hyp, hyps), ("REF", ref, refs))
    sources = None
    if src is not None:
        sources = read_segments("SRC", src)
        _check_same_length(("SRC", src, sources), ("REF", ref, refs))
    checkpoint = _comet_checkpoint(comet_model, sources) if comet_model else None  # fails fast
    scores = score_corpus(hyps, refs, tgt_lang=tgt_lang or "")
    off_target = rates.off_target(hyps, tgt_lang) if tgt_lang else None
    copies = rates.copies(sources, hyps) if sources is not None else None
    notes = (f"language ID not available for {tgt_lang}",) if tgt_lang and not is_supported(tgt_lang) else ()
    return FileScores(
        n=len(hyps), bleu=_metric(scores["BLEU"]), chrf=_metric(scores["chrF"]),
        chrfpp=_metric(scores["chrF++"]), copy_rate=copies["rate"] if copies else None,
        off_target_rate=off_target["rate"] if off_target else None,
        languages=off_target["languages"] if off_target else None,
        comet=_comet(checkpoint, sources, hyps, refs) if checkpoint else None, notes=notes)


def read_segments(label: str, path: Path | str) -> list[str]:
    """The lines of a UTF-8 file, one segment each; a missing or empty file is a `UserError`."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{label} {path}: no such file")
    if not path.is_file():
        raise UserError(f"{label} {path}: not a file")
    segments = list(iter_lines(path))
    if not segments:
        raise UserError(f"{label} {path} is empty: nothing to score (one segment per line)")
    return segments


def _check_same_length(a: tuple[str, Path | str, list[str]], b: tuple[str, Path | str, list[str]]) -> None:
    (label_a, path_a, lines_a), (label_b, path_b, lines_b) = a, b
    if len(lines_a) != len(lines_b):
        raise UserError(f"{label_a} {path_a} has {len(lines_a)} lines but {label_b} {path_b} has "
                        f"{len(lines_b)}; the files must match line by line")


def _metric(result: dict) -> MetricScore:
    low, high = result["ci"]
    return MetricScore(score=result["score"], ci_low=low, ci_high=high, signature=result["signature"])


def _comet_checkpoint(comet_model: str, sources: list[str] | None) -> Path:
    if sources is None:
        raise UserError("COMET needs the source sentences: add --src SRC")
    return resolve_checkpoint(comet_model)


def _comet(checkpoint: Path, sources: list[str], hyps: list[str], refs: list[str]) -> float:
    return score_comet(load_comet(str(checkpoint)), sources, hyps, refs)["score"]
