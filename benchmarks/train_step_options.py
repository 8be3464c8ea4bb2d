"""Training-step options side by side: packed vs one-example rows, foreach vs fused AdamW, fp32 vs
bf16 autocast.

Full fine-tuning (the en-is default, `lora: null`) of the base model on a run's train.jsonl, in
one process: the model is prepared once (`lowres_mt.train.loop.prepare`: trimmed vocabulary,
target-only chunked loss) and the options take turns step by step over the same stream
positions, so drift in the machine's speed hits all of them alike:
  (i)   packed rows (`train.pack=true`), torch's default (foreach) AdamW — the trainer before;
  (ii)  one example per row, grouped by length (`train.pack=false`), foreach AdamW;
  (iii) one example per row, fused AdamW — the trainer in float32 (today's where bf16 is slow);
  (iv)  the same with the forward pass under bf16 autocast (`train.mixed_precision=bf16`), weights
        and AdamW state in float32 — today's trainer where the CPU has AMX (or on a GPU).
Ratios are against (iii), the fastest float32 trainer.
Tokens/s counts real (not padding) tokens over forward, backward, clipping and the optimizer
step, after `--warmup` untimed turns. Writes benchmarks/results/train_step_options[-<model>].{json,md}.

    .venv/bin/python benchmarks/train_step_options.py --run runs/en-is-tell-e2
    .venv/bin/python benchmarks/train_step_options.py --model tiny    # smoke run, random tiny model
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from train_throughput import load_rows, tiny_model  # noqa: E402

from lowres_mt.io import write_json, write_text  # noqa: E402
from lowres_mt.precision import cpu_model, native_bf16  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
OPTIONS = {  # name: (packed rows, fused AdamW, bf16 autocast)
    "packed rows, foreach AdamW": (True, False, False),
    "one example per row, foreach AdamW": (False, False, False),
    "one example per row, fused AdamW (float32)": (False, True, False),
    "one example per row, fused AdamW, bf16 autocast": (False, True, True),
}
BASELINE = "one example per row, fused AdamW (float32)"


def measure(model: str, rows: list[dict], steps: int, warmup: int, threads: int, scratch: Path) -> dict:
    from lowres_mt.config import RecipeConfig, TrainConfig
    from lowres_mt.train.batching import BatchStream
    from lowres_mt.train.loop import prepare
    from lowres_mt.train.loss import TargetOnlyLoss

    torch.set_num_threads(threads)
    run_dir = scratch / "run"
    (run_dir / "data").mkdir(parents=True)
    write_text(run_dir / "data" / "train.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    write_text(run_dir / "data" / "dev.jsonl", "")
    cfg = RecipeConfig(name="bench", languages=("en", "is"), base_model=model, lora=None,
                       train=TrainConfig(lr=1e-5, threads=threads, pack=True))
    prep = prepare(cfg, run_dir)
    if not prep.pack:
        raise SystemExit(f"{model}: packed rows would not keep examples apart; nothing to compare")
    tc = cfg.train
    streams = {pack: BatchStream(prep.train_examples, seed=cfg.seed, batch_tokens=tc.batch_tokens,
                                 row_tokens=tc.max_length, pad_id=prep.pad_id, pack=pack) for pack in (True, False)}
    params = [p for p in prep.model.parameters() if p.requires_grad]
    optimizers = {fused: torch.optim.AdamW(params, lr=tc.lr, fused=fused) for fused in (False, True)}
    module = TargetOnlyLoss(prep.model)
    totals = {name: {"tokens": 0, "padded": 0, "seconds": 0.0} for name in OPTIONS}
    for turn in range(warmup + steps):
        for name, (pack, fused, bf16) in OPTIONS.items():
            batch = streams[pack].batch(turn % len(streams[pack].plan(0)))
            began = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss, labels = module(batch.input_ids, batch.position_ids, batch.labels)
            (loss / labels).backward()
            torch.nn.utils.clip_grad_norm_(params, tc.max_grad_norm)
            optimizers[fused].step()
            optimizers[fused].zero_grad(set_to_none=True)
            seconds = time.perf_counter() - began
            if turn >= warmup:
                t = totals[name]
                t["tokens"] += batch.n_tokens
                t["padded"] += batch.input_ids.numel()
                t["seconds"] += seconds
    for t in totals.values():
        t["tokens_per_s"] = round(t["tokens"] / t["seconds"], 1)
        t["padding"] = round(1 - t["tokens"] / t["padded"], 4)
        t["seconds"] = round(t["seconds"], 1)
    for t in totals.values():
        t["ratio"] = round(t["tokens_per_s"] / totals[BASELINE]["tokens_per_s"], 3)
    return {"native_bf16": native_bf16("cpu"), "micro_batches_per_epoch": {"packed": len(streams[True].plan(0)), "unpacked": len(streams[False].plan(0))},
            "trainable_parameters": sum(p.numel() for p in params), "options": totals}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma-3-270m", help="registry name, folder, or 'tiny'")
    parser.add_argument("--run", type=Path, default=None, help="run folder whose data/train.jsonl is trained on "
                                                              "(default: runs/en-is-tell)")
    parser.add_argument("--steps", type=int, default=16, help="timed micro-batches per option")
    parser.add_argument("--warmup", type=int, default=2, help="untimed micro-batches per option first")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    rows = load_rows(args.run / "data" / "train.jsonl" if args.run else None)
    with tempfile.TemporaryDirectory() as tmp:
        model = tiny_model(Path(tmp)) if args.model == "tiny" else args.model
        result = measure(model, rows, args.steps, args.warmup, args.threads, Path(tmp))
    command = "python benchmarks/train_step_options.py " + " ".join(sys.argv[1:])
    result = {"command": command.strip(), "model": args.model, "threads": args.threads, "cpu": cpu_model(),
              "torch": torch.__version__, "load_avg_1m": round(os.getloadavg()[0], 2), **result}
    stem = "train_step_options" + ("" if args.model == "gemma-3-270m" else f"-{args.model}")
    write_json(RESULTS / f"{stem}.json", result)
    write_text(RESULTS / f"{stem}.md", render(result))
    print(render(result))
    return 0


def render(r: dict) -> str:
    lines = [f"# Training-step options: {r['model']}", "",
             f"`{r['command']}` — full fine-tuning ({r['trainable_parameters'] / 1e6:.1f}M trainable parameters), "
             f"{r['threads']} torch threads, on {r['cpu']}, torch {r['torch']} (1-min load average at the end: "
             f"{r['load_avg_1m']}; bf16 faster (native_bf16): {'yes' if r.get('native_bf16') else 'no'}); micro-batches per epoch: {r['micro_batches_per_epoch']['packed']} packed, "
             f"{r['micro_batches_per_epoch']['unpacked']} with one example per row.", "",
             "| option | tokens | padding | seconds | tokens/s | against the float32 trainer |",
             "|---|---|---|---|---|---|"]
    for name, t in r["options"].items():
        lines.append(f"| {name} | {t['tokens']} | {t['padding']:.1%} | {t['seconds']} | {t['tokens_per_s']} "
                     f"| {t['ratio']:.2f}× |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
