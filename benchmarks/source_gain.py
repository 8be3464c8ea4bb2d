"""Does `source_gain` (the synthetic-pair score of `lowres-mt synth`) tell a faithful source from
an unrelated one, and what does it cost?

On n pairs of a parallel set (FLORES dev by default) a trained run scores each pair twice in the
direction the synthetic pairs train: with its real source, and with the source of another pair
(shifted by one: fluent, in the right language, unrelated). Written: the mean gain of each, the
AUC (share of (real, unrelated) pairs ranked the right way round), the share of real pairs above
the best unrelated quartile, and pairs scored per second; CPU model, flags and threads too.

    .venv/bin/python benchmarks/source_gain.py --run runs/en-is-tell-quick --n 200
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from generate_backends import cpu_flags  # noqa: E402
from generate_speed import RESULTS  # noqa: E402

from lowres_mt import corpora  # noqa: E402
from lowres_mt.io import write_json, write_text  # noqa: E402
from lowres_mt.precision import cpu_model  # noqa: E402
from lowres_mt.records import Pair  # noqa: E402
from lowres_mt.run import Run  # noqa: E402
from lowres_mt.synth import gain_scorer  # noqa: E402
from lowres_mt.translate import DecodeSettings, open_translator  # noqa: E402


def auc(good: list[float], bad: list[float]) -> float:
    """P(a good score > a bad score), ties counting half."""
    wins = sum((g > b) + 0.5 * (g == b) for g in good for b in bad)
    return wins / (len(good) * len(bad))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--set", default="flores200:dev")
    parser.add_argument("--direction", default="en-is", help="the direction the scored pairs train")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    src, tgt = args.direction.split("-")
    run = Run.open(args.run)
    pairs = [p.towards(args.direction) for p in corpora.load_set(args.set) if isinstance(p, Pair)]
    pairs = [p for p in pairs if p is not None][:args.n]
    # synth's scorer takes (synthetic sources, real targets) for a file made from `tgt` text
    translator = open_translator(run.path, None, DecodeSettings.for_recipe(run.cfg), direction=(tgt, src),
                                 progress=False)
    score = gain_scorer(translator, tgt, src)
    if score is None:
        sys.exit(f"{run.name} was not trained for {args.direction}")
    targets = [p.tgt for p in pairs]
    started = time.perf_counter()
    real = score([p.src for p in pairs], targets)
    seconds = time.perf_counter() - started
    unrelated = score([pairs[(i + 1) % len(pairs)].src for i in range(len(pairs))], targets)
    quartile = sorted(unrelated)[3 * len(unrelated) // 4]
    result = {
        "run": run.name, "set": args.set, "direction": args.direction, "n": len(pairs),
        "cpu": cpu_model(), "cpu_flags": cpu_flags(), "threads": args.threads, "load_1min": os.getloadavg()[0],
        "pairs_per_s": len(pairs) / seconds,
        "mean_gain_real": statistics.fmean(real), "mean_gain_unrelated": statistics.fmean(unrelated),
        "auc": auc(real, unrelated),
        "real_above_unrelated_q3": sum(g > quartile for g in real) / len(real),
        "real_below_zero": sum(g <= 0 for g in real) / len(real),
        "unrelated_below_zero": sum(g <= 0 for g in unrelated) / len(unrelated),
    }
    stem = f"source_gain-{run.name}-{args.direction}"
    write_json(RESULTS / f"{stem}.json", result)
    lines = [
        f"# source_gain: real sources against unrelated ones ({run.name}, {args.set}, {args.direction})",
        "", "```bash", f".venv/bin/python benchmarks/source_gain.py --run {args.run} --set {args.set} "
        f"--direction {args.direction} --n {args.n} --threads {args.threads}", "```", "",
        f"{result['cpu']} ({result['cpu_flags']}), {args.threads} threads, 1-min load {result['load_1min']:.2f}.", "",
        "| measure | value |", "|---|---|",
        f"| mean gain, real source (nats/token) | {result['mean_gain_real']:+.3f} |",
        f"| mean gain, another pair's source | {result['mean_gain_unrelated']:+.3f} |",
        f"| AUC (real ranked above unrelated) | {result['auc']:.3f} |",
        f"| real pairs above the unrelated upper quartile | {result['real_above_unrelated_q3']:.1%} |",
        f"| gain ≤ 0: real / unrelated | {result['real_below_zero']:.1%} / {result['unrelated_below_zero']:.1%} |",
        f"| pairs scored per second | {result['pairs_per_s']:.2f} |",
    ]
    write_text(RESULTS / f"{stem}.md", "\n".join(lines) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
