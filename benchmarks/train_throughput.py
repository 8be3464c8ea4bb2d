"""Training throughput and memory: a plain Hugging Face `Trainer` + peft LoRA vs lowres-mt's trainer.

Both train the same base model with the same LoRA config on the same chat examples (the start of a
run's train.jsonl), the loss on the answers only, the same number of examples per optimizer step:
  (i)  baseline — what LLaMA-Factory / axolotl do by default: `transformers.Trainer`, batches of
       `--batch-size` examples padded to the longest, the model's own loss over full-vocabulary
       logits at every position;
  (ii) lowres-mt — `lowres_mt.train.loop.train`: trimmed vocabulary, length-grouped batches,
       logits only at labelled positions, chunked cross-entropy, `train.dtype=auto`.
The baseline runs twice, in float32 and with `bf16=True` (`use_cpu=True`), and the faster is the
one compared against: its best precision on this CPU. lowres-mt runs with `train.dtype=auto` (what
`lowres-mt train` does on this CPU) and, for the record, with bfloat16 base weights forced. A matrix-product calibration in the same
run gives the machine's fp32 and bf16 peak, and each trainer's model FLOPs utilisation is
4 × body parameters × tokens/s over the peak of its precision (frozen weights: forward plus the
backward pass to the activations; the output layer is left out).
Each runs in its own subprocess; its peak RSS comes from `os.wait4`. Tokens/s counts real (not
padding) tokens over the training steps only; wall seconds include loading and preparing. Results go
to benchmarks/results/train_throughput[-<model>].{json,md}.

    .venv/bin/python benchmarks/train_throughput.py                  # bundled Gemma-3-270M
    .venv/bin/python benchmarks/train_throughput.py --model tiny     # smoke run, random tiny model
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
WORKERS = ("baseline", "baseline-bf16", "ours", "ours-bf16")
LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma-3-270m", help="registry name, folder, or 'tiny'")
    parser.add_argument("--data", type=Path, default=None, help="train.jsonl (default: runs/en-is-tell/data)")
    parser.add_argument("--examples", type=int, default=128, help="examples trained on (one epoch)")
    parser.add_argument("--batch-size", type=int, default=8, help="examples per optimizer step")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(args.spec.read_text(encoding="utf-8"))
        work = {"baseline": lambda: run_baseline(spec), "baseline-bf16": lambda: run_baseline(spec, bf16=True),
                "ours": lambda: run_ours(spec), "ours-bf16": lambda: run_ours(spec, "bfloat16")}[args.worker]
        print("RESULT " + json.dumps(work()))
        return
    compare(args)


# ----------------------------------------------------------------------------- orchestration


def compare(args) -> None:
    from lowres_mt.precision import cpu_model

    with tempfile.TemporaryDirectory(prefix="train-throughput-") as scratch:
        scratch = Path(scratch)
        model = tiny_model(scratch) if args.model == "tiny" else args.model
        rows = load_rows(args.data)[: args.examples]
        data = scratch / "train.jsonl"
        data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        spec = {"model": model, "data": str(data), "batch_size": args.batch_size, "lora": LORA,
                "max_length": args.max_length, "threads": args.threads or os.cpu_count(),
                "scratch": str(scratch)}
        (scratch / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        peaks = calibrate(spec["threads"])
        results = {name: run_worker(name, scratch / "spec.json") for name in WORKERS}
    best = max(("baseline", "baseline-bf16"), key=lambda n: results[n]["tokens_per_s"])
    base, ours = results[best], results["ours"]
    for r in results.values():
        r["mfu"] = round(4 * r["body_params"] * r["tokens_per_s"] / (peaks[r["dtype"]] * 1e9), 4)
    report = {
        "command": " ".join(["python benchmarks/train_throughput.py", *sys.argv[1:]]),
        "model": args.model, "examples": len(rows), "batch_size": args.batch_size, "lora": LORA,
        "threads": spec["threads"], "cpu": cpu_model(), "matmul_gflops": peaks,
        "load_average_1min": round(os.getloadavg()[0], 2), "baseline_precision": results[best]["dtype"],
        "baseline_runs": {n: results[n] for n in ("baseline", "baseline-bf16")}, "baseline": base, "ours": ours,
        "ours_bf16": results["ours-bf16"],
        "speedup_tokens_per_s": round(ours["tokens_per_s"] / base["tokens_per_s"], 2),
        "peak_rss_ratio": round(ours["peak_rss_mb"] / base["peak_rss_mb"], 3),
        "wall_speedup": round(base["wall_s"] / ours["wall_s"], 2),
    }
    suffix = "" if args.model == "gemma-3-270m" else f"-{Path(args.model).name}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    from lowres_mt.io import write_json, write_text

    write_json(RESULTS / f"train_throughput{suffix}.json", report)
    write_text(RESULTS / f"train_throughput{suffix}.md", markdown(report))
    print(markdown(report))


def calibrate(threads: int, size: tuple[int, int, int] = (1024, 640, 2048), repeats: int = 20) -> dict[str, float]:
    """GFLOP/s of a (m×k)@(k×n) matrix product in float32 and bfloat16 on this CPU."""
    import torch

    torch.set_num_threads(threads)
    m, k, n = size
    out = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        for _ in range(3):
            a @ b
        started = time.perf_counter()
        for _ in range(repeats):
            a @ b
        out[name] = round(2 * m * k * n * repeats / (time.perf_counter() - started) / 1e9, 1)
    return out


def body_params(model) -> int:
    """Parameters outside the embedding and output layers (tied or not), LoRA's own excluded."""
    skip = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    return sum(p.numel() for n, p in model.named_parameters() if id(p) not in skip and "lora_" not in n)


def run_worker(name: str, spec: Path) -> dict:
    """Run one trainer in a subprocess; its own peak RSS comes from wait4."""
    started = time.perf_counter()
    logs = spec.parent / f"{name}.out", spec.parent / f"{name}.err"
    with logs[0].open("w") as out, logs[1].open("w") as err:
        proc = subprocess.Popen([sys.executable, __file__, "--worker", name, "--spec", str(spec)], cwd=ROOT,
                                stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = [line for line in logs[0].read_text().splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"{name} failed:\n{logs[1].read_text()[-4000:]}")
    result = json.loads(lines[-1][len("RESULT "):])
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    result["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 1)  # whole process, loading included
    result["wall_s"] = round(time.perf_counter() - started, 1)
    print(f"{name}: {result}", file=sys.stderr)
    return result


def markdown(r: dict) -> str:
    o = r["ours"]
    return "\n".join([
        f"# Training throughput: {r['model']}", "",
        f"`{r['command']}` — {r['examples']} examples of en-is TELL training data, "
        f"{r['batch_size']} examples per optimizer step, LoRA r={r['lora']['r']} on "
        f"{len(r['lora']['target_modules'])} projections, {r['threads']} torch threads, on {r['cpu']} "
        f"(1-min load average at the end: {r['load_average_1min']}; matrix-product peak "
        f"{r['matmul_gflops']['float32']} GFLOP/s fp32, {r['matmul_gflops']['bfloat16']} bf16).", "",
        "| trainer | precision | steps | tokens | train s | tokens/s | MFU | wall s | CPU s | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(f"| HF `Trainer` + peft (padded, full-vocab loss) | {x['dtype']} | {x['steps']} | {x['tokens']} | "
          f"{x['train_s']} | {x['tokens_per_s']} | {x['mfu']:.1%} | {x['wall_s']} | {x['cpu_s']} | {x['peak_rss_mb']} |"
          for x in r["baseline_runs"].values()),
        f"| lowres-mt (trimmed vocab, length-grouped, target-only chunked loss) | {o['dtype']} | {o['steps']} | {o['tokens']} | "
        f"{o['train_s']} | {o['tokens_per_s']} | {o['mfu']:.1%} | {o['wall_s']} | {o['cpu_s']} | {o['peak_rss_mb']} |",
        *(f"| lowres-mt, bfloat16 base weights forced (`train.dtype=bfloat16`) | {b['dtype']} | {b['steps']} | "
          f"{b['tokens']} | {b['train_s']} | {b['tokens_per_s']} | {b['mfu']:.1%} | {b['wall_s']} | {b['cpu_s']} | "
          f"{b['peak_rss_mb']} |" for b in [r["ours_bf16"]] if "ours_bf16" in r), "",
        f"Against the baseline at its best precision ({r['baseline_precision']}): **{r['speedup_tokens_per_s']}×** "
        f"tokens/s ({r['wall_speedup']}× wall time); peak memory **{r['peak_rss_ratio']}×** its.", "",
    ])


# ----------------------------------------------------------------------------- data and models


def load_rows(path: Path | None) -> list[dict]:
    from lowres_mt.io import read_jsonl

    if path is None:
        from lowres_mt.config import load_recipe, runs_dir

        path = runs_dir() / "en-is-tell" / "data" / "train.jsonl"
        if not path.is_file():
            from lowres_mt.dataset import build_dataset

            build_dataset(load_recipe("en-is"), method="tell", out_dir=path.parent)
    return read_jsonl(path)


def tiny_model(scratch: Path) -> str:
    """A random 2-layer Gemma-3 with the test tokenizer, saved as a Hugging Face folder."""
    from tiny_gemma import tiny_gemma

    model, tokenizer = tiny_gemma()
    path = scratch / "tiny-base"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


# ----------------------------------------------------------------------------- the two trainers


def run_baseline(spec: dict, bf16: bool = False) -> dict:
    """transformers.Trainer + peft: padded batches, full logits, the model's loss (bf16 autocast
    when `bf16`)."""
    import torch
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from lowres_mt.io import read_jsonl
    from lowres_mt.models import attach_lora, load_base
    from lowres_mt.train.tokenize import tokenize_rows

    torch.set_num_threads(spec["threads"])
    model, tokenizer = load_base(spec["model"])
    tokenizer.padding_side = "right"
    examples, _ = tokenize_rows(tokenizer, read_jsonl(spec["data"]), spec["max_length"])
    dataset = [{"input_ids": list(e.input_ids), "labels": list(e.labels),
                "attention_mask": [1] * len(e)} for e in examples]
    model = attach_lora(model, dict(spec["lora"]))
    args = TrainingArguments(output_dir=str(Path(spec["scratch"]) / "hf-trainer"),
                             per_device_train_batch_size=spec["batch_size"], num_train_epochs=1,
                             learning_rate=2e-4, warmup_ratio=0.05, lr_scheduler_type="cosine",
                             logging_strategy="no", save_strategy="no", report_to=[],
                             remove_unused_columns=False, dataloader_num_workers=0, use_cpu=True, seed=0,
                             bf16=bf16)
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator)
    output = trainer.train()
    seconds = output.metrics["train_runtime"]
    tokens = sum(len(e) for e in examples)
    return {"steps": output.global_step, "tokens": tokens, "train_s": round(seconds, 1),
            "tokens_per_s": round(tokens / seconds, 1), "loss": round(output.training_loss, 4),
            "dtype": "bfloat16" if bf16 else "float32", "body_params": body_params(model)}


def run_ours(spec: dict, dtype: str = "auto") -> dict:
    """lowres-mt's loop on a throwaway run folder (no dev set, no checkpoints)."""
    import torch  # noqa: F401  (imported before lowres_mt for the same start-up as the baseline)

    from lowres_mt.config import RecipeConfig, TrainConfig
    from lowres_mt.io import read_jsonl
    from lowres_mt.models import load_tokenizer
    from lowres_mt.train.loop import train
    from lowres_mt.train.tokenize import tokenize_rows

    rows = read_jsonl(spec["data"])
    lengths = [len(e) for e in tokenize_rows(load_tokenizer(spec["model"]), rows, spec["max_length"])[0]]
    batch_tokens = round(spec["batch_size"] * sum(lengths) / len(lengths))  # same examples per step
    run_dir = Path(spec["scratch"]) / f"ours-{dtype}"
    (run_dir / "data").mkdir(parents=True)
    (run_dir / "data" / "train.jsonl").write_text(Path(spec["data"]).read_text(encoding="utf-8"), encoding="utf-8")
    (run_dir / "data" / "dev.jsonl").write_text("", encoding="utf-8")
    cfg = RecipeConfig(name="bench", languages=("en", "is"), base_model=spec["model"], lora=dict(spec["lora"]),
                       train=TrainConfig(epochs=1.0, batch_tokens=max(batch_tokens, spec["max_length"]),
                                         max_length=spec["max_length"], eval_every=0, save_every=0,
                                         threads=spec["threads"], scheduler="cosine", dtype=dtype))
    result = train(cfg, run_dir=run_dir, progress=False)
    tokens = sum(lengths)
    from lowres_mt.models import load_base

    info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    return {"steps": result.steps, "tokens": tokens, "train_s": round(tokens / result.tokens_per_s, 1),
            "tokens_per_s": round(result.tokens_per_s, 1), "loss": result.loss,
            "batch_tokens": cfg.train.batch_tokens, "dtype": info.get("dtype", "float32"),
            "body_params": body_params(load_base(spec["model"])[0])}


if __name__ == "__main__":
    main()
