"""Where the time goes: torch.profiler over lowres-mt training steps and over batched decoding.

Training: `lowres_mt.train.loop.train` on the first `--examples` rows of a run's train.jsonl
(loading the model included, a few per cent of the total). Decoding: the engine translating
`--sentences` FLORES-200 devtest sentences en→is with the TELL prompt, greedy. Both with the
bundled Gemma-3-270M and `--threads` torch threads. Writes the operators with the most self CPU
time, their share, and the CPU, to benchmarks/results/profile.{json,md}.

    .venv/bin/python benchmarks/profile_steps.py --data runs/en-is-tell/data/train.jsonl
    .venv/bin/python benchmarks/profile_steps.py --model tiny    # smoke run, random tiny model
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402
from train_throughput import LORA, load_rows, tiny_model  # noqa: E402

from lowres_mt.io import write_json, write_text  # noqa: E402
from lowres_mt.precision import cpu_model  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def top_ops(prof, limit: int) -> list[dict]:
    """The operators with the most self CPU time: name, milliseconds, share of the total, calls."""
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return [{"op": e.key, "self_ms": round(e.self_cpu_time_total / 1000, 1),
             "share": round(e.self_cpu_time_total / total, 4), "calls": e.count} for e in events[:limit]]


def profile_training(model: str, rows: list[dict], threads: int, scratch: Path) -> tuple[list[dict], dict]:
    from lowres_mt.config import RecipeConfig, TrainConfig
    from lowres_mt.train.loop import train

    run_dir = scratch / "run"
    (run_dir / "data").mkdir(parents=True)
    (run_dir / "data" / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                                  encoding="utf-8")
    (run_dir / "data" / "dev.jsonl").write_text("", encoding="utf-8")
    cfg = RecipeConfig(name="profile", languages=("en", "is"), base_model=model, lora=dict(LORA),
                       train=TrainConfig(epochs=1.0, eval_every=0, save_every=0, threads=threads))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        result = train(cfg, run_dir=run_dir, progress=False)
    return top_ops(prof, 15), {"steps": result.steps, "tokens_per_s": round(result.tokens_per_s, 1)}


def profile_decoding(model_name: str, sentences: int, threads: int) -> tuple[list[dict], dict]:
    from lowres_mt.config import AnchorConfig
    from lowres_mt.corpora import load_set
    from lowres_mt.data.prompts import prompt_messages
    from lowres_mt.models import load_base
    from lowres_mt.translate import DecodeSettings, Engine, build_prompt

    torch.set_num_threads(threads)
    model, tokenizer = load_base(model_name)
    sources = [p.src for p in load_set("flores200:devtest")[:sentences]]
    prompts = [build_prompt(tokenizer, *prompt_messages(s, "en", "is", "tell", AnchorConfig())) for s in sources]
    engine = Engine(model, tokenizer, DecodeSettings(max_new_tokens=64), progress=False)
    engine.complete(prompts[:2])  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        engine.complete(prompts)
    return top_ops(prof, 15), {"sentences": sentences}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma-3-270m", help="registry name, folder, or 'tiny'")
    parser.add_argument("--data", type=Path, default=None, help="train.jsonl (default: runs/en-is-tell/data)")
    parser.add_argument("--examples", type=int, default=48, help="training examples profiled (one epoch)")
    parser.add_argument("--sentences", type=int, default=32, help="sentences decoded")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="profile-") as scratch:
        scratch = Path(scratch)
        model = tiny_model(scratch) if args.model == "tiny" else args.model
        train_ops, train_info = profile_training(model, load_rows(args.data)[: args.examples], args.threads, scratch)
        decode_ops, decode_info = profile_decoding(model, args.sentences, args.threads)
    record = {"command": "python benchmarks/profile_steps.py " + " ".join(sys.argv[1:]), "model": args.model,
              "threads": args.threads, "cpu": cpu_model(), "torch": torch.__version__,
              "load_avg_1m": round(os.getloadavg()[0], 2), "training": {**train_info, "top_ops": train_ops},
              "decoding": {**decode_info, "top_ops": decode_ops}}
    suffix = "" if args.model == "gemma-3-270m" else f"-{Path(args.model).name}"
    write_json(RESULTS / f"profile{suffix}.json", record)
    write_text(RESULTS / f"profile{suffix}.md", render(record))
    print(render(record))
    return 0


def render(r: dict) -> str:
    def table(ops: list[dict]) -> list[str]:
        return ["| operator | self ms | share | calls |", "|---|---|---|---|",
                *(f"| `{o['op']}` | {o['self_ms']} | {o['share']:.1%} | {o['calls']} |" for o in ops)]

    t, d = r["training"], r["decoding"]
    return "\n".join([
        f"# Profile: {r['model']}", "",
        f"`{r['command']}` — {r['threads']} torch threads on {r['cpu']}, torch {r['torch']} "
        f"(1-min load average at the end: {r['load_avg_1m']}).", "",
        f"## Training ({t['steps']} optimizer steps, {t['tokens_per_s']} tokens/s, model loading included)", "",
        *table(t["top_ops"]), "",
        f"## Decoding ({d['sentences']} sentences en→is, TELL prompt, batched engine, greedy)", "",
        *table(d["top_ops"]), "",
    ])


if __name__ == "__main__":
    sys.exit(main())
