"""Generation speed: lowres-mt's batched engine against `model.generate`, batched (the fair
baseline: the same length-sorted batches, left-padded) and one sentence at a time.

Same model, same prompts (FLORES-200 devtest, English→Icelandic), same stop rules (end of turn /
eos / first newline after text / a 4-token loop seen 3 times), greedy, in one process. Records
sentences/s of all three, the speed-ups, whether the translations are identical, and the CPU, to
benchmarks/results/generate_speed-<model>[-tell]-t<threads>.{json,md}. Exits 1 if any output differs.

    .venv/bin/python benchmarks/generate_speed.py                   # bundled Gemma-3-270M, plain prompt
    .venv/bin/python benchmarks/generate_speed.py --style tell      # TELL prompt: full-length answers
    .venv/bin/python benchmarks/generate_speed.py --run runs/en-is-tell  # a trained run, LoRA merged
    .venv/bin/python benchmarks/generate_speed.py --model tiny      # smoke mode, random tiny model

Prompt processing costs the same per token batched or not (it is compute-bound either way), so
the speed-up grows with the answer length: the untrained base model with the plain prompt
mostly echoes a few tokens, a TELL prompt or a trained run writes whole translations. Measure
on an otherwise idle CPU: with other processes competing for the cores, every multi-threaded
matrix product waits for a preempted OpenMP thread and the timings mean little.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from tiny_gemma import tiny_gemma  # noqa: E402
from transformers import StoppingCriteriaList  # noqa: E402

from lowres_mt.config import AnchorConfig  # noqa: E402
from lowres_mt.data.prompts import parse_response, prompt_messages, style_for  # noqa: E402
from lowres_mt.io import write_json, write_text  # noqa: E402
from lowres_mt.precision import cpu_model  # noqa: E402
from lowres_mt.translate import AnswerEnd, DecodeSettings, Engine, build_prompt, first_line  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def load_model(name: str, run: str | None = None):
    if run is not None:
        from lowres_mt.models import load_run
        from lowres_mt.translate import merge_lora

        model, tokenizer, _ = load_run(Path(run))
        return merge_lora(model), tokenizer
    if name != "tiny":
        from lowres_mt.models import load_base

        return load_base(name)
    return tiny_gemma()


def load_sources(n: int) -> list[str]:
    from lowres_mt.corpora import load_set

    return [p.src for p in load_set("flores200:devtest")[:n]]


@torch.inference_mode()
def naive(model, tokenizer, prompts: list[str], engine: Engine, max_new_tokens: int) -> list[str]:
    """What a straightforward script does: one prompt at a time through model.generate."""
    out = []
    for prompt in prompts:
        ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        stop = AnswerEnd(engine.tables, engine.settings.stop_repeats)
        stop.prompt_width = ids.shape[1]
        gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=max_new_tokens, eos_token_id=engine.stop_ids,
                             pad_token_id=engine.pad_id, stopping_criteria=StoppingCriteriaList([stop]))
        out.append(first_line(tokenizer.decode(gen[0, ids.shape[1]:], skip_special_tokens=True)))
    return out


@torch.inference_mode()
def batched(model, tokenizer, prompts: list[str], engine: Engine, max_new_tokens: int, batch_size: int) -> list[str]:
    """`model.generate` on the engine's own batches: longest first, left-padded, per-row stops."""
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: (-len(encoded[i]), i))
    out = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        width = max(len(encoded[i]) for i in rows)
        ids = torch.full((len(rows), width), engine.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for j, i in enumerate(rows):
            ids[j, width - len(encoded[i]):] = torch.tensor(encoded[i])
            mask[j, width - len(encoded[i]):] = 1
        stop = AnswerEnd(engine.tables, engine.settings.stop_repeats)
        stop.prompt_width = width
        gen = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=max_new_tokens,
                             eos_token_id=engine.stop_ids, pad_token_id=engine.pad_id,
                             stopping_criteria=StoppingCriteriaList([stop]))
        for j, i in enumerate(rows):
            out[i] = first_line(tokenizer.decode(engine._until_stop(gen[j, width:].tolist()), skip_special_tokens=True))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma-3-270m", help="registry name, folder, or 'tiny'")
    parser.add_argument("--run", default=None, help="a trained run folder (adapter merged into its base)")
    parser.add_argument("--style", choices=("plain", "tell"), default="plain",
                        help="prompt style for a base model (a run uses its own)")
    parser.add_argument("--sentences", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=DecodeSettings.batch_size)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--stop-repeats", type=int, default=DecodeSettings.stop_repeats,
                        help="loop stop for both decoders (0 = off)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model, tokenizer = load_model(args.model, args.run)
    style, anchor, label = args.style, AnchorConfig(), args.model
    if args.run is not None:
        from lowres_mt.run import Run

        run = Run.open(args.run)
        style, anchor, label = style_for(run.method), run.cfg.anchor, run.name
    sources = load_sources(args.sentences)
    prompts = [build_prompt(tokenizer, *prompt_messages(s, "en", "is", style, anchor)) for s in sources]
    # pure argmax (no repetition controls), so its outputs can equal model.generate's
    engine = Engine(model, tokenizer, DecodeSettings(args.batch_size, args.max_new_tokens, stop_repeats=args.stop_repeats,
                                                     no_repeat_ngram=0, repetition_penalty=1.0),
                    progress=sys.stderr.isatty())
    engine.complete(prompts[:2])  # warm-up: first-call allocations and kernel selection
    naive(model, tokenizer, prompts[:1], engine, 4)

    batched(model, tokenizer, prompts[:2], engine, 4, args.batch_size)

    t0 = time.perf_counter()
    slow = naive(model, tokenizer, prompts, engine, args.max_new_tokens)
    naive_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    grouped = batched(model, tokenizer, prompts, engine, args.max_new_tokens, args.batch_size)
    batched_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast = engine.complete(prompts, "engine")
    engine_s = time.perf_counter() - t0

    def parsed(texts):
        return [parse_response(t, style, anchor, "en", "is") for t in texts]

    slow_t, grouped_t, fast_t = parsed(slow), parsed(grouped), parsed(fast)
    mismatches = [i for i, (a, b) in enumerate(zip(slow_t, fast_t, strict=True)) if a != b]
    batched_mismatches = [i for i, (a, b) in enumerate(zip(grouped_t, fast_t, strict=True)) if a != b]
    record = {
        "model": label, "prompt_style": style, "sentences": len(prompts), "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens, "threads": args.threads, "decoding": "greedy",
        "stop_repeats": args.stop_repeats,
        "naive_s": round(naive_s, 2), "batched_s": round(batched_s, 2), "engine_s": round(engine_s, 2),
        "naive_sentences_per_s": round(len(prompts) / naive_s, 3),
        "batched_sentences_per_s": round(len(prompts) / batched_s, 3),
        "engine_sentences_per_s": round(len(prompts) / engine_s, 3),
        "speedup": round(naive_s / engine_s, 2), "speedup_vs_batched": round(batched_s / engine_s, 2),
        "identical_outputs": len(prompts) - len(mismatches), "mismatch_rate": len(mismatches) / len(prompts),
        "mismatched_indices": mismatches,
        "identical_to_batched": len(prompts) - len(batched_mismatches), "batched_mismatched_indices": batched_mismatches,
        "generated_tokens": sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in fast),
        "torch": torch.__version__, "cpu": cpu_model(),
        "cpu_count": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
        "command": "python benchmarks/generate_speed.py " + " ".join(sys.argv[1:]),
        "examples": [{"src": s, "naive": a, "engine": b} for s, a, b in list(zip(sources, slow_t, fast_t))[:3]],
    }
    tell = "-tell" if args.run is None and style == "tell" else ""
    stem = RESULTS / f"generate_speed-{Path(label).name}{tell}-t{args.threads}"
    write_json(stem.with_suffix(".json"), record)
    write_text(stem.with_suffix(".md"), render(record))
    print(render(record))
    if mismatches or batched_mismatches:
        print(f"outputs differ for {len(mismatches)} (one at a time) and {len(batched_mismatches)} (batched) of "
              f"{len(prompts)} sentences", file=sys.stderr)
        return 1
    return 0


def render(r: dict) -> str:
    return (
        f"# Generation speed: {r['model']}\n\n"
        f"`{r['command']}` — {r['sentences']} FLORES-200 devtest sentences, en→is, "
        f"{r['prompt_style']} prompt, greedy, "
        f"≤ {r['max_new_tokens']} new tokens, {r['threads']} torch threads "
        f"on {r.get('cpu', '?')} (1-min load average at the end: {r['load_avg_1m']}).\n\n"
        "| decoder | seconds | sentences/s |\n|---|---|---|\n"
        f"| `model.generate`, one sentence at a time | {r['naive_s']} | {r['naive_sentences_per_s']} |\n"
        f"| `model.generate`, batch {r['batch_size']}, length-sorted (the fair baseline) | {r.get('batched_s', '–')} | "
        f"{r.get('batched_sentences_per_s', '–')} |\n"
        f"| lowres-mt engine, batch {r['batch_size']}, length-sorted | {r['engine_s']} | "
        f"{r['engine_sentences_per_s']} |\n\n"
        f"Engine against batched `generate`: **{r.get('speedup_vs_batched', '–')}×**; against one at a time: "
        f"{r['speedup']}×. Identical translations: {r.get('identical_to_batched', '–')}/{r['sentences']} with "
        f"batched `generate`, {r['identical_outputs']}/{r['sentences']} with one at a time.\n"
    )


if __name__ == "__main__":
    sys.exit(main())
