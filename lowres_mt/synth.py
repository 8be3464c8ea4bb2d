"""Synthetic pairs for back-translation: a trained run translates a monolingual corpus.

`synthesize(run, "icepahc:modern", "is", "en")` translates Icelandic sentences into English and
writes one JSON object a line to `runs/<run>/synth/icepahc-modern.is-en.jsonl`:

    {"source": <the run's translation: SYNTHETIC>, "target": <the monolingual sentence: REAL>,
     "direction": "en-is", "run": ..., "adapter_digest": ..., "decoding": {...},
     "mono": "icepahc:modern", "line": <the sentence's id in the corpus>,
     "source_gain": <nats per target token the source adds: translate.forced.source_gain>}

Back-translation trains the other way round: the pair teaches `direction` (here en→is), a real
Icelandic target written from a synthetic English source, so the model only ever learns to write
real text. Decoding goes through `translate.open_translator` (greedy by default; no sampling).

`source_gain` is scored by the same run in the direction the pair trains, when the run was trained
for it: how much the synthetic source raises the real target's probability, the score the recipe's
`synthetic.keep` ranks pairs by (about 0 for a translation that invents its content).

The file is written a batch at a time (appended, flushed and fsynced), so a killed job keeps every
finished batch; `resume=True` checks that the file came from the same adapter, decoding, corpus
and direction, drops a half-written last line, scores lines written without a `source_gain`, and
translates only the sentences not yet in it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lowres_mt.errors import UserError
from lowres_mt.records import Pair, Text
from lowres_mt.run import Run


@dataclass(frozen=True)
class SynthReport:
    out: Path
    written: int  # pairs this call added
    already: int  # pairs the file held before (resume)
    too_long: int  # sentences left out: one sentence over MAX_SENTENCE_CHARS
    empty: int  # written pairs whose translation came back empty
    seconds: float  # the whole call, model loading included
    decode_seconds: float  # translating only
    scored: int = 0  # lines already in the file that this call gave a source_gain (resume)

    @property
    def rate(self) -> float:
        """Sentences translated per second of decoding."""
        return self.written / self.decode_seconds if self.decode_seconds > 0 else 0.0


@dataclass(frozen=True)
class Provenance:
    """What every line of a synthetic file repeats, and what a resume must find unchanged."""

    run: str
    adapter_digest: str
    decoding: dict
    mono: str
    direction: str

    def mismatch(self, row: Mapping) -> str | None:
        """Why `row` (a line of an existing file) cannot be continued by this call, or None."""
        if row.get("adapter_digest") != self.adapter_digest:
            return (f"another adapter (run '{row.get('run')}', digest {str(row.get('adapter_digest'))[:12]}…; "
                    f"now run '{self.run}', {self.adapter_digest[:12]}…)")
        if row.get("mono") != self.mono or row.get("direction") != self.direction:
            return f"{row.get('mono')} as {row.get('direction')} pairs (now {self.mono} as {self.direction})"
        tgt_lang = self.direction.split("-")[0]
        old, new = _identity(row.get("decoding"), tgt_lang), _identity(self.decoding, tgt_lang)
        if old != new:
            keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            return "other decoding settings (" + ", ".join(f"{k}: {old.get(k)!r} → {new.get(k)!r}" for k in keys) + ")"
        return None


def synthesize(run_dir: Path | str, mono: str, src: str, tgt: str, out: Path | str | None = None, *,
               limit: int | None = None, resume: bool = False, batch_size: int = 32, num_beams: int = 1,
               max_new_tokens: int | None = None, progress: bool = True) -> SynthReport:
    """Translate the monolingual set `mono` (a `corpus:set` ref or a text file, one sentence a line)
    from `src` into `tgt` with the run at `run_dir`, and write synthetic pairs to `out` (default
    `runs/<run>/synth/<corpus>-<set>.<src>-<tgt>.jsonl`, or `<file stem>.<src>-<tgt>.jsonl`).

    Each line's "source" is the model's translation (synthetic, in `tgt`), its "target" the
    corpus sentence (real, in `src`), and "direction" `tgt-src`, the direction the pair trains.
    Only the first `limit` sentences are translated when given. An existing `out` is an error
    unless `resume`. Decoding is the recipe's `eval:` settings with `num_beams` (1 = greedy),
    `batch_size` and, when given, `max_new_tokens`."""
    from lowres_mt.translate import DecodeSettings, open_translator

    started = time.perf_counter()
    if limit is not None and limit < 1:
        raise UserError(f"--limit {limit}: give at least 1 sentence (or leave --limit out for all)")
    run = Run.open(run_dir)
    ref, texts = load_mono(run, mono, src, tgt)
    texts = texts[:limit]
    keys = line_keys(texts)
    out = Path(out) if out is not None else default_output(run, ref, src, tgt)
    overrides = {"max_new_tokens": max_new_tokens} if max_new_tokens is not None else {}
    settings = DecodeSettings.for_recipe(run.cfg, batch_size=batch_size, num_beams=num_beams, **overrides)
    provenance = Provenance(run.name, run.digest, decoding_record(settings, tgt), ref, f"{tgt}-{src}")
    done = resume_point(out, provenance) if resume else _refuse_existing(out)
    todo, too_long = pending(texts, keys, done)
    # scores come from the run in the direction the pairs train: a run without it cannot give any
    unscored = unscored_lines(out) if done and f"{tgt}-{src}" in run.directions else 0
    if not todo and not unscored:  # a finished file: nothing to load
        return SynthReport(out, 0, len(done), too_long, 0, time.perf_counter() - started, 0.0)
    translator = open_translator(run.path, None, settings, direction=(src, tgt), progress=False)
    scorer = gain_scorer(translator, src, tgt)
    scored = backfill_scores(out, scorer, progress=progress) if unscored and scorer is not None else 0
    out.parent.mkdir(parents=True, exist_ok=True)
    decode_started = time.perf_counter()
    written, empty = write_pairs(translator, todo, out, provenance, src, tgt,
                                 batch_size=batch_size, total=len(texts), done=len(texts) - len(todo),
                                 progress=progress, scorer=scorer)
    now = time.perf_counter()
    return SynthReport(out, written, len(done), too_long, empty, now - started, now - decode_started, scored)


Scorer = Callable[[Sequence[str], Sequence[str]], list[float]]


def gain_scorer(translator, src: str, tgt: str) -> Scorer | None:
    """(synthetic sources, real targets) → each pair's `source_gain` under the run that wrote
    them, in the direction the pairs train (`translate.forced.source_gain`); None when the run
    was not trained for that direction (its scores would mean nothing)."""
    from lowres_mt.translate.forced import source_gain

    if translator.directions is not None and f"{tgt}-{src}" not in translator.directions:
        return None
    engine = translator.engine
    model = (engine.fallback or engine).model  # float32 torch, whichever backend decodes
    tokenizer = engine.tokenizer

    def score(sources: Sequence[str], targets: Sequence[str]) -> list[float]:
        pairs = [Pair(s, t, tgt, src) for s, t in zip(sources, targets, strict=True)]
        return source_gain(model, tokenizer, pairs, translator.style, translator.anchor, translator.names)

    return score


def read_gains(path: str | Path) -> dict[str, float]:
    """{pair id: source_gain} of a synth file's scored lines, the ids as the synthetic-pair reader
    gives them (`corpora.local`: "line", else the line's index); lines that are not JSON objects
    are passed over, as that reader passes them over."""
    from lowres_mt.corpora.readers import Source, json_rows

    return {str(row.get("line", i)): row["source_gain"] for i, row in json_rows(Source(str(path), (Path(path),), ()))
            if isinstance(row.get("source_gain"), float) and math.isfinite(row["source_gain"])}


def _unscored(row: Mapping) -> bool:
    return not isinstance(row.get("source_gain"), float) and bool(str(row.get("source", "")).strip())


def unscored_lines(out: Path) -> int:
    """How many lines of `out` could carry a `source_gain` and do not."""
    from lowres_mt.io import read_jsonl

    return sum(map(_unscored, read_jsonl(out)))


def backfill_scores(out: Path, scorer: Scorer, *, batch: int = 32, save_every: int = 512,
                    progress: bool = True) -> int:
    """Give every line of `out` without a `source_gain` (written before scores existed) its
    score; the file is rewritten atomically every `save_every` lines, so a kill loses at most
    those. Returns how many lines were scored."""
    from lowres_mt.io import read_jsonl, write_jsonl
    from lowres_mt.progress import bar

    rows = read_jsonl(out)
    missing = [r for r in rows if _unscored(r)]
    started, done = time.perf_counter(), 0
    with bar("rate", enabled=progress and bool(missing), transient=True) as shown:
        task = shown.add_task("scoring source gain", total=len(missing), rate="")
        for start in range(0, len(missing), batch):
            part = missing[start:start + batch]
            for row, gain in zip(part, scorer([r["source"] for r in part], [r["target"] for r in part]), strict=True):
                row["source_gain"] = round(gain, 4)
            done += len(part)
            if done % save_every < batch or done == len(missing):
                write_jsonl(out, rows)
            shown.update(task, completed=done, rate=f"{done / max(time.perf_counter() - started, 1e-9):.2f} pairs/s")
    return len(missing)


def load_mono(run: Run, mono: str, src: str, tgt: str) -> tuple[str, list[Text]]:
    """(the ref recorded in each line, the set's sentences), checked to be `src` text.

    A file path is read as one sentence a line: in the language its name gives (`news.is.txt`),
    else in `src`. A shipped set must be monolingual `src` text; an empty set is an error."""
    from lowres_mt import corpora
    from lowres_mt.corpora import local

    ref = mono
    if local.is_path_ref(mono):
        path = Path(mono).expanduser()
        if not path.is_file():
            raise UserError(f"--mono {mono}: no such file")
        ref = str(path.resolve())
        local.declare(ref, "text", (tgt, src), dict(run.cfg.language_names))  # no `.xx.` part: src
    info = corpora.set_info(ref)
    if info.role != "monolingual":
        raise UserError(f"{mono} is a {info.role} set ({info.format}), not monolingual text; "
                        "use a monolingual set (see `lowres-mt corpora list`) or a text file")
    if info.languages != (src,):
        raise UserError(f"{mono} is {'/'.join(info.languages)} text, not '{src}'; give --from "
                        f"{info.languages[0]} (a run direction from it) or a set in '{src}'")
    texts = [r for r in corpora.load_set(ref) if isinstance(r, Text)]
    if not texts:
        raise UserError(f"{mono} holds no sentences; nothing to translate")
    return ref, texts


def default_output(run: Run, ref: str, src: str, tgt: str) -> Path:
    from lowres_mt.corpora import local

    stem = Path(ref).stem if local.is_path_ref(ref) else ref.replace(":", "-")
    return run.path / "synth" / f"{stem}.{src}-{tgt}.jsonl"


def line_keys(texts: Sequence[Text]) -> list[str]:
    """Each sentence's "line": its corpus id (its position when it has none), `#2`, `#3` … added
    to a repeated id, so that a resume can tell every sentence apart."""
    seen: Counter[str] = Counter()
    keys = []
    for position, text in enumerate(texts):
        key = text.id or str(position)
        seen[key] += 1
        keys.append(key if seen[key] == 1 else f"{key}#{seen[key]}")
    return keys


def decoding_record(settings, tgt_lang: str) -> dict:
    """The decoding each line carries: its identity (`translate.signature.decoding_identity`, the
    one `eval`'s cache keys use) and the fields that only change speed, which a resume may change."""
    from lowres_mt.translate.signature import NOT_IDENTITY, decoding_identity

    return {**decoding_identity(settings, tgt_lang), **{k: getattr(settings, k) for k in NOT_IDENTITY}}


def pending(texts: Sequence[Text], keys: Sequence[str], done: set[str]) -> tuple[list[tuple[str, str]], int]:
    """(key, sentence) still to translate, and how many sentences are too long to translate."""
    from lowres_mt.translate import MAX_SENTENCE_CHARS, SPLIT_CHARS, split_sentences

    todo, too_long = [], 0
    for key, text in zip(keys, texts, strict=True):
        pieces = split_sentences(text.text) if len(text.text) > SPLIT_CHARS else [text.text]
        if max(map(len, pieces), default=0) > MAX_SENTENCE_CHARS:
            too_long += 1
        elif key not in done:
            todo.append((key, text.text))
    return todo, too_long


def resume_point(out: Path, provenance: Provenance) -> set[str]:
    """The "line" keys `out` already holds, after checking each line came from this adapter,
    decoding, corpus and direction; a half-written last line (a killed job) is cut off."""
    if not out.exists():
        return set()
    data = out.read_bytes()
    end = data.rfind(b"\n") + 1
    complete, partial = data[:end], data[end:]
    try:
        rows = [json.loads(line) for line in complete.decode("utf-8").splitlines()]
    except (UnicodeDecodeError, ValueError):
        rows = None
    if rows is None or not all(isinstance(r, dict) and "line" in r and "source" in r for r in rows) \
            or (not rows and partial and not partial.startswith(b'{"source":')):
        raise UserError(f"{out} is not a file `lowres-mt synth` wrote; give another --out")
    for number, row in enumerate(rows, 1):
        if (why := provenance.mismatch(row)) is not None:
            raise UserError(f"cannot resume {out}: line {number} holds pairs from {why}; give another --out")
    if partial:
        os.truncate(out, end)
    return {str(row["line"]) for row in rows}


def write_pairs(translator, todo: Sequence[tuple[str, str]], out: Path, provenance: Provenance,
                src: str, tgt: str, *, batch_size: int, total: int, done: int,
                progress: bool = True, scorer: Scorer | None = None) -> tuple[int, int]:
    """Translate `todo` a batch at a time, appending each batch's lines to `out` (flushed and
    fsynced before the next batch starts), each with its `source_gain` when `scorer` is given.
    Returns (pairs written, empty translations)."""
    from lowres_mt.progress import bar

    written = empty = 0
    started = time.perf_counter()
    with bar("rate", enabled=progress and bool(todo), transient=True) as shown, \
            open(out, "a", encoding="utf-8") as f:
        task = shown.add_task(f"synth {src}→{tgt}", total=total, completed=done, rate="")
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            real = [text for _, text in batch]
            lines = translator.translate(real, src, tgt)
            gains = _gains(scorer, lines, real)
            f.write("".join(_line(provenance, key, text, line, gain)
                            for (key, text), line, gain in zip(batch, lines, gains, strict=True)))
            f.flush()
            os.fsync(f.fileno())
            written += len(batch)
            empty += sum(not line.strip() for line in lines)
            rate = written / max(time.perf_counter() - started, 1e-9)
            shown.update(task, completed=done + written, rate=f"{rate:.2f} sentences/s")
    return written, empty


def _gains(scorer: Scorer | None, synthetic: Sequence[str], real: Sequence[str]) -> list[float | None]:
    """Each pair's source gain; None for an empty translation (nothing to score) or no scorer."""
    gains: list[float | None] = [None] * len(real)
    scored = [i for i, line in enumerate(synthetic) if line.strip()]
    if scorer is not None and scored:
        for i, gain in zip(scored, scorer([synthetic[i] for i in scored], [real[i] for i in scored]), strict=True):
            gains[i] = round(gain, 4)
    return gains


def _line(provenance: Provenance, key: str, real: str, synthetic: str, gain: float | None = None) -> str:
    row = {"source": synthetic, "target": real, "direction": provenance.direction, "run": provenance.run,
           "adapter_digest": provenance.adapter_digest, "decoding": provenance.decoding,
           "mono": provenance.mono, "line": key}
    if gain is not None:
        row["source_gain"] = gain
    return json.dumps(row, ensure_ascii=False) + "\n"


def _refuse_existing(out: Path) -> set[str]:
    if out.exists():
        raise UserError(f"{out} exists; pass --resume to continue it (or give another --out)")
    return set()


def _identity(decoding, tgt_lang: str) -> dict:
    """A line's decoding identity; a line written before the identity resolved the backend and
    the alphabet (it holds the settings as given: `backend: auto`, `alphabet: true`) is resolved
    now, so such a file still resumes."""
    from lowres_mt.translate import DecodeSettings
    from lowres_mt.translate.signature import NOT_IDENTITY, decoding_identity, without_unused

    decoding = decoding if isinstance(decoding, dict) else {}
    as_given = decoding.get("backend") == "auto" or decoding.get("alphabet") in (True, False, "auto")
    if as_given:
        known = {f.name for f in dataclasses.fields(DecodeSettings)}
        decoding = decoding_identity(DecodeSettings(**{k: v for k, v in decoding.items() if k in known}), tgt_lang)
    return without_unused({k: v for k, v in decoding.items() if k not in NOT_IDENTITY})
