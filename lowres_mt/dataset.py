"""The data builder: task pairs + (for TELL) general instruction data → runs/<name>/data/.

Stages, each seeded: load → clean (length, duplicates) → contamination guard → sample to the
task-token budget → anchor/plain prompts (both directions) → general data up to `ratio` × task
tokens (tell, tell+book) → target-language monolingual text up to `mono.ratio` × task tokens
(every method) → grammar-book tasks up to `book.ratio` × task tokens (tell+book) → for the
+context methods, each task prompt's evidence block (`book.context.EvidenceBuilder`) →
shuffle together → write train.jsonl, dev.jsonl, manifest.json, config.yaml atomically.

Token budgets count *content* tokens (source + target of a pair; all turns of an instruction
example) with the base model's tokenizer, so `tell` and `sft` sample exactly the same task pairs
whatever their prompt lengths.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from lowres_mt.config import METHODS, RecipeConfig, dump_recipe
from lowres_mt.data.budget import TokenCounter, fill_budget, sample_to_budget, token_counter
from lowres_mt.data.guard import ContaminationGuard, guard_from_sets, protected_sets
from lowres_mt.data.pools import (
    CorpusStats,
    check_pair_languages,
    filtered_pairs,
    load_counted,
    load_general_pool,
    load_task_pool,
)
from lowres_mt.data.prompts import example_messages, style_for
from lowres_mt.errors import UserError
from lowres_mt.io import atomic_dir, check_replaceable, write_json, write_jsonl
from lowres_mt.langid import unavailable_note
from lowres_mt.records import Example, Message, Pair, Text

OUTPUT_MARKER = "manifest.json"  # a folder holding one is a previous build (and may be replaced)


@dataclass
class BuildReport:
    out_dir: Path
    method: str
    corpora: dict[str, CorpusStats]
    tokens: dict[str, int]  # "task/en-is", "general", … → content tokens
    examples: dict[str, int]  # same keys → example counts
    dev_examples: int
    guard_size: int
    task_unique: dict[str, int] = field(default_factory=dict)  # distinct pairs, their tokens, epochs
    notes: list[str] = field(default_factory=list)  # one line each, shown under the report

    def to_json(self) -> dict:
        return {
            "method": self.method,
            "task_unique": self.task_unique,
            "corpora": {ref: vars(s) for ref, s in self.corpora.items()},
            "tokens": self.tokens,
            "examples": self.examples,
            "dev_examples": self.dev_examples,
            "protected_sentences": self.guard_size,
            **({"notes": self.notes} if self.notes else {}),
        }


def build_dataset(cfg: RecipeConfig, *, method: str, out_dir: Path, tokenizer=None,
                  count_tokens: TokenCounter | None = None) -> BuildReport:
    """Build and write the training set for `method` under `out_dir` (replaced atomically)."""
    if method not in METHODS:
        raise UserError(f"unknown method '{method}' (use one of: {', '.join(METHODS)})")
    check_replaceable(out_dir, OUTPUT_MARKER)  # before any work: never replace a folder we did not write
    if count_tokens is None:
        if tokenizer is None:
            from lowres_mt.models import load_tokenizer

            tokenizer = load_tokenizer(cfg.base_model)
        count_tokens = token_counter(tokenizer)
    rng = random.Random(cfg.seed)
    guard = guard_from_sets(protected_sets(cfg))
    stats: dict[str, CorpusStats] = {}

    pool = load_task_pool(cfg, guard, stats)
    pairs, pair_tokens = sample_to_budget(pool, cfg.task.tokens, count_tokens, rng, cfg.task.weights)
    for pair in pairs:
        stats[pair.corpus].used += 1
    evidence = _evidence(cfg, method, guard, count_tokens, pairs)
    task = task_examples(cfg, pairs, pair_tokens, method, evidence)
    if not task:
        raise UserError(f"0 task examples: no pair of {', '.join(cfg.task.train)} turns into the "
                        f"recipe's directions {', '.join(cfg.directions)}; check `languages:` and `directions:`")
    task += synthetic_examples(cfg, sum(pair_tokens), method, count_tokens, guard, rng, stats, evidence)

    general: list[tuple[Example, int]] = []
    if method.startswith("tell") and cfg.general.ratio > 0:
        budget = round(cfg.general.ratio * sum(pair_tokens))
        general = general_examples(cfg, budget, count_tokens, rng, stats)
    mono: list[tuple[Example, int]] = []
    if cfg.mono.ratio > 0:
        mono = mono_examples(cfg, round(cfg.mono.ratio * sum(pair_tokens)), count_tokens, guard, rng, stats)
    book: list[tuple[Example, int]] = []
    if method == "tell+book":
        from lowres_mt.book.aux_tasks import book_examples

        book = book_examples(cfg, guard, rng, round(cfg.book.ratio * sum(pair_tokens)), count_tokens)
        for example, _ in book:
            stats.setdefault(example.corpus, CorpusStats(example.corpus)).used += 1

    mixed = task + general + mono + book
    rng.shuffle(mixed)
    dev = dev_examples(cfg, method, random.Random(cfg.seed + 1), evidence)
    tokens, counts = tally(mixed)
    unique = {"pairs": len(pairs), "tokens": sum(pair_tokens), "epochs": cfg.task.epochs}
    report = BuildReport(Path(out_dir), method, stats, tokens, counts, len(dev), len(guard), unique,
                         notes=build_notes(cfg))
    write_outputs(cfg, report, [ex for ex, _ in mixed], dev)
    return report


def build_notes(cfg: RecipeConfig) -> list[str]:
    """One line for each thing the build could not do for this pair (the report shows them)."""
    unidentified = unavailable_note(cfg.languages) if cfg.task.langid else None
    return [f"wrong-language filter: {unidentified}, so its sides are not checked"] if unidentified else []


def _evidence(cfg: RecipeConfig, method: str, guard: ContaminationGuard, count_tokens: TokenCounter,
              pairs: list[Pair]):
    """The +context methods' evidence builder over the sampled task pairs (None for the others)."""
    if not method.endswith("+context"):
        return None
    from lowres_mt.book.context import EvidenceBuilder

    return EvidenceBuilder.from_config(cfg, guard, count_tokens, pairs)


def task_examples(cfg: RecipeConfig, pairs: list[Pair], costs: list[int],
                  method: str, evidence=None) -> list[tuple[Example, int]]:
    """Each sampled pair as a prompted example, `task.epochs` times.

    The budget is split across directions: in repetition e, pair i appears in direction
    (i + e) mod (number of directions), so `task.tokens` is the unique content and two epochs of
    a two-way recipe show every pair once in each direction. With `evidence` (+context methods)
    each prompt carries its evidence block, retrieved without the pair itself or a near-duplicate.
    """
    style = style_for(method)
    out = []
    for epoch in range(cfg.task.epochs):
        for index, (pair, cost) in enumerate(zip(pairs, costs)):
            direction = cfg.directions[(index + epoch) % len(cfg.directions)]
            oriented = pair.towards(direction)
            if oriented is None:
                continue
            context = evidence.block(oriented.src, oriented.src_lang, oriented.tgt_lang, exclude=oriented) \
                if evidence is not None else ""
            messages = example_messages(oriented, style, cfg.anchor, cfg.language_names, context)
            out.append((Example(messages, "task", direction, pair.corpus, f"{pair.corpus}#{pair.id}",
                                oriented.src, oriented.tgt, context), cost))
    return out


def synthetic_examples(cfg: RecipeConfig, real_tokens: int, method: str, count_tokens: TokenCounter,
                       guard: ContaminationGuard, rng: random.Random, stats: dict[str, CorpusStats],
                       evidence=None) -> list[tuple[Example, int]]:
    """Synthetic pairs up to `synthetic.ratio` × the real task tokens, through the task filters and
    the guard, each in the direction it was made for, its source behind `synthetic.tag` when
    `tagged` (training prompts only: inference never writes the tag)."""
    syn = cfg.synthetic
    if syn.ratio <= 0:
        return []
    if not syn.corpora:
        raise UserError("synthetic.ratio is above 0 but synthetic.corpora is empty; name `lowres-mt "
                        "synth` files there, or set synthetic.ratio=0")
    seen: set[tuple[str, str]] = set()
    pool = [pair for ref in syn.corpora
            for pair in filtered_pairs(ref, "synthetic.corpora", cfg, guard, stats, seen)
            if pair.direction in cfg.directions]
    pool = best_by_gain(pool, syn.keep, stats)
    pairs, costs = sample_to_budget(pool, round(syn.ratio * real_tokens), count_tokens, rng)
    if not pairs:
        raise UserError(f"0 synthetic pairs left from {', '.join(syn.corpora)} after filtering, in the "
                        f"recipe's directions {', '.join(cfg.directions)}")
    style, out = style_for(method), []
    for pair, cost in zip(pairs, costs):
        stats[pair.corpus].used += 1
        shown = dataclasses.replace(pair, src=f"{syn.tag} {pair.src}") if syn.tagged else pair
        context = evidence.block(pair.src, pair.src_lang, pair.tgt_lang, exclude=pair) if evidence else ""
        messages = example_messages(shown, style, cfg.anchor, cfg.language_names, context)
        out.append((Example(messages, "synthetic", pair.direction, pair.corpus, f"{pair.corpus}#{pair.id}",
                            pair.src, pair.tgt, context), cost))
    return out


def best_by_gain(pool: list[Pair], keep: float, stats: dict[str, CorpusStats]) -> list[Pair]:
    """The `keep` share of `pool` (rounded up) with the highest `source_gain` (ties in file order); the rest
    counted as `low_gain` in their corpus's stats. A pair without a score is an error."""
    if keep >= 1:
        return pool
    from lowres_mt.synth import read_gains

    gains: dict[str, dict[str, float]] = {}
    for ref in dict.fromkeys(pair.corpus for pair in pool):
        gains[ref] = read_gains(ref)
    missing = [pair for pair in pool if pair.id not in gains[pair.corpus]]
    if missing:
        raise UserError(f"synthetic.keep={keep} ranks pairs by source_gain, which {len(missing)} lines of "
                        f"{missing[0].corpus} lack (written before scores, or by a run not trained for "
                        f"{missing[0].direction}); run `lowres-mt synth --resume` on the file to score them, "
                        "or set synthetic.keep=1")
    ranked = sorted(range(len(pool)), key=lambda i: -gains[pool[i].corpus][pool[i].id])
    chosen = sorted(ranked[:math.ceil(keep * len(pool))])
    for i in ranked[len(chosen):]:
        stats[pool[i].corpus].low_gain += 1
    return [pool[i] for i in chosen]


def general_examples(cfg: RecipeConfig, budget: int, count_tokens: TokenCounter,
                     rng: random.Random, stats: dict[str, CorpusStats]) -> list[tuple[Example, int]]:
    """Instruction examples drawn from the general corpora until `budget` content tokens."""
    pool = load_general_pool(cfg, stats)
    out, total = fill_budget(
        pool, lambda ins: "\n".join(m.content for m in ins.messages), count_tokens, rng, budget,
        cfg.general.max_tokens, stats,
        lambda ins: Example(ins.messages, "general", None, ins.corpus, f"{ins.corpus}#{ins.id}"))
    if total < budget:
        raise UserError(f"the general corpora hold only {total} usable tokens, fewer than the "
                        f"{budget} asked for; lower general.ratio or add corpora to general.corpora")
    return out


def mono_examples(cfg: RecipeConfig, budget: int, count_tokens: TokenCounter, guard: ContaminationGuard,
                  rng: random.Random, stats: dict[str, CorpusStats]) -> list[tuple[Example, int]]:
    """Monolingual texts as answer-only examples (every token learned) until `budget` tokens;
    texts of a protected dev/test set are dropped like contaminated pairs."""
    if not cfg.mono.corpora:
        raise UserError("mono.ratio is above 0 but mono.corpora is empty; name monolingual sets or set "
                        "mono.ratio=0")
    pool: list[Text] = []
    for ref in cfg.mono.corpora:
        records, entry = load_counted(ref, Text, "mono.corpora", "monolingual texts", stats)
        for text in records:
            if guard.contains(text.text):
                entry.contaminated += 1
            else:
                pool.append(text)
    out, total = fill_budget(
        pool, lambda t: t.text, count_tokens, rng, budget, cfg.mono.max_tokens, stats,
        lambda t: Example((Message("assistant", t.text),), "mono", None, t.corpus, f"{t.corpus}#{t.id}"))
    if total < budget:
        raise UserError(f"the monolingual corpora hold only {total} usable tokens, fewer than the "
                        f"{budget} asked for; lower mono.ratio or add sets to mono.corpora")
    return out


def dev_examples(cfg: RecipeConfig, method: str, rng: random.Random, evidence=None) -> list[Example]:
    """A seeded sample of the dev set, `dev_size` pairs per direction, prompted like training."""
    if not cfg.task.dev:
        return []
    from lowres_mt.corpora import load_set

    check_pair_languages(cfg.task.dev, "task.dev", cfg.languages)
    pairs = [p for p in load_set(cfg.task.dev) if isinstance(p, Pair)]
    if not pairs or cfg.task.dev_size == 0:
        raise UserError(f"task.dev '{cfg.task.dev}' gives 0 dev examples ({len(pairs)} pairs, "
                        f"task.dev_size={cfg.task.dev_size}); name a dev set with pairs, or task.dev=null")
    style = style_for(method)
    out = []
    for direction in cfg.directions:
        oriented = [o for o in (p.towards(direction) for p in pairs) if o is not None]
        for pair in rng.sample(oriented, min(cfg.task.dev_size, len(oriented))):
            context = evidence.block(pair.src, pair.src_lang, pair.tgt_lang, exclude=pair) if evidence else ""
            messages = example_messages(pair, style, cfg.anchor, cfg.language_names, context)
            out.append(Example(messages, "task", direction, cfg.task.dev, f"{cfg.task.dev}#{pair.id}",
                               pair.src, pair.tgt, context))
    return out


def tally(mixed: list[tuple[Example, int]]) -> tuple[dict[str, int], dict[str, int]]:
    tokens: dict[str, int] = defaultdict(int)
    counts: Counter[str] = Counter()
    for example, cost in mixed:
        key = f"{example.role}/{example.direction}" if example.direction else example.role
        tokens[key] += cost
        counts[key] += 1
    return dict(sorted(tokens.items())), dict(sorted(counts.items()))


def write_outputs(cfg: RecipeConfig, report: BuildReport, train: list[Example], dev: list[Example]) -> None:
    with atomic_dir(report.out_dir, marker=OUTPUT_MARKER) as tmp:
        write_jsonl(tmp / "train.jsonl", (ex.to_json() for ex in train))
        write_jsonl(tmp / "dev.jsonl", (ex.to_json() for ex in dev))
        write_json(tmp / "manifest.json", {"recipe": cfg.name, "seed": cfg.seed, **report.to_json(),
                                           "files": recipe_files(cfg)})
        (tmp / "config.yaml").write_text(dump_recipe(cfg), encoding="utf-8")


def recipe_files(cfg: RecipeConfig) -> dict[str, list[dict]]:
    """Every file of every set the recipe names, with its sha256 and size: what the run was built
    from (a user's edited file shows here as a changed digest)."""
    from lowres_mt.corpora import set_info
    from lowres_mt.corpora.local import REF_KEYS

    refs: list[str] = []
    for section, key in REF_KEYS:
        value = getattr(getattr(cfg, section), key)
        refs += [value] if isinstance(value, str) else list(value or ())
    return {ref: [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in set_info(ref).files]
            for ref in dict.fromkeys(refs)}
