"""Decoding backends side by side: the torch engine as it decoded before the output layer was
sliced to the allowed ids (`torch-full-head`, the baseline), the torch engine as it decodes now
(`torch`: logits for the allowed ids only, linear weights packed for oneDNN; `torch-unpacked`
without the packing), the same in bfloat16 (`torch-bfloat16`, what the default `auto` picks where
the CPU measures bfloat16 faster; `torch-bfloat16-unpacked`) and CTranslate2 at float32, int8_float32
and int8 (with an output layer converted to the allowed ids; `-suppress`: the full output layer
with the other ids suppressed, as before), each opened through `lowres_mt.translate.backends.open_engine` as `translate`, `serve` and
`eval` open them.

Same model, prompts and decoding settings (the recipe's defaults: greedy, repetition penalty 1.1,
no repeated 3-gram, loop stop, the alphabet rule), FLORES-200 devtest, one direction per file:
sentences/s, answer tokens/s, outputs identical to the baseline, chrF of each backend's outputs
against the baseline's and against the references, and the CPU. Writes
benchmarks/results/generate_backends-<model>-<direction>-t<threads>.{json,md}.

    .venv/bin/python benchmarks/generate_backends.py --direction en-is             # bundled Gemma-3-270M
    .venv/bin/python benchmarks/generate_backends.py --run runs/en-is-tell --direction is-en
    .venv/bin/python benchmarks/generate_backends.py --model tiny --sentences 8    # smoke mode

Measure on an otherwise idle CPU (see generate_speed.py); CTranslate2 converts each quantization
once into the cache first (not timed).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import sacrebleu  # noqa: E402
import torch  # noqa: E402
from generate_speed import RESULTS, load_model, token_count  # noqa: E402

from lowres_mt import precision  # noqa: E402
from lowres_mt.config import AnchorConfig  # noqa: E402
from lowres_mt.data.prompts import parse_response, prompt_messages, style_for  # noqa: E402
from lowres_mt.io import write_json, write_text  # noqa: E402
from lowres_mt.precision import bf16_matmul_speedup, cpu_model  # noqa: E402
from lowres_mt.run import Run  # noqa: E402
from lowres_mt.translate import DecodeSettings, build_prompt, greedy, packed  # noqa: E402
from lowres_mt.translate import engine as engine_module  # noqa: E402
from lowres_mt.translate.backends import choose, open_engine  # noqa: E402

BASELINE = "torch-full-head"
CONFIGS = {  # name -> DecodeSettings overrides
    # the engine before this work: float32, logits over every id, plain `F.linear` weights
    "torch-full-head": {"backend": "torch"},
    # logits for the allowed ids only, weights not packed
    "torch-unpacked": {"backend": "torch"},
    # the same with linear weights packed for oneDNN (`lowres_mt.translate.packed`): float32 `torch`
    "torch": {"backend": "torch"},
    # bfloat16 weights, attention in float32 (`backends.decoding_copy`), packed or not: `torch-bfloat16`
    # is what `auto` decodes with where the CPU measures bfloat16 faster
    "torch-bfloat16-unpacked": {"backend": "torch", "quantization": "bfloat16"},
    "torch-bfloat16": {"backend": "torch", "quantization": "bfloat16"},
    # answers limited to the ids the run's output layer was trained over (`eval.train_vocabulary`)
    "torch-train-vocab": {"backend": "torch", "train_vocabulary": True},
    # the transformer body's linear layers in dynamic int8 (torch.ao), the output layer in float32
    "torch-int8-body": {"backend": "torch"},
    "ctranslate2-float32": {"backend": "ctranslate2", "quantization": "float32"},
    "ctranslate2-int8_float32": {"backend": "ctranslate2", "quantization": "int8_float32"},
    "ctranslate2-int8": {"backend": "ctranslate2", "quantization": "int8"},
    # the restriction as `suppress_sequences` over the full output layer (no converted head)
    "ctranslate2-int8-suppress": {"backend": "ctranslate2", "quantization": "int8"},
    "ctranslate2-int8-train-vocab": {"backend": "ctranslate2", "quantization": "int8", "train_vocabulary": True},
}
UNPACKED = {"torch-full-head", "torch-unpacked", "torch-bfloat16-unpacked"}


def default_config() -> str:
    """The configuration the default settings (`auto`) decode with on this machine."""
    return choose(DecodeSettings(backend="auto")).label  # "torch" or "torch-bfloat16" on CPU


def cpu_flags() -> str:
    """The CPU's vector and matrix flags, for the record."""
    flags = precision.cpu_flags()
    return " ".join(sorted(f for f in flags if f.startswith(("avx", "amx")) or f in ("fma", "f16c"))) or "?"


def cpu_times() -> list[int]:
    """The machine's CPU time counters (/proc/stat's first line: user … steal), or [] elsewhere."""
    try:
        return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return []


def steal_share(before: list[int], after: list[int]) -> float | None:
    """The share of CPU time the hypervisor gave to other machines between two `cpu_times`: on
    a shared host it varies during a run, and timings with it."""
    if len(before) < 8 or len(after) < 8:
        return None
    spent = [b - a for a, b in zip(before, after, strict=True)]
    return round(spent[7] / max(sum(spent), 1), 3)


def int8_body(model):
    """A copy of `model` whose transformer body's linear layers run in dynamic int8
    (`torch.ao.quantization.quantize_dynamic`: int8 weights, activations quantized per call); the
    output layer stays float32, so the sliced head still applies."""
    import copy
    import warnings

    from torch.ao.quantization import quantize_dynamic

    quantized = copy.deepcopy(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice
        quantize_dynamic(quantized.get_decoder(), {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    return quantized


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma-3-270m", help="registry name, folder, or 'tiny'")
    parser.add_argument("--run", default=None, help="a trained run folder (adapter merged into its base)")
    parser.add_argument("--direction", default="en-is")
    parser.add_argument("--sentences", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32, help="prompts decoded together (eval.batch_size)")
    parser.add_argument("--plain", action="store_true",
                        help="no repetition controls (CTranslate2 then batches prompts of mixed lengths)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="time each configuration this many times and keep the fastest (a shared host's noise)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of " + ", ".join(CONFIGS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    src, tgt = args.direction.split("-")

    model, tokenizer = load_model(args.model, args.run)
    style, anchor, label, weights = "tell", AnchorConfig(), args.model, f"tiny-{args.model}"
    if args.run is None and args.model != "tiny":
        from lowres_mt.models import resolve_base
        from lowres_mt.translate.backends import base_digest

        weights = base_digest(resolve_base(args.model))
    if args.run is not None:
        run = Run.open(args.run)
        style, anchor, label, weights = style_for(run.method), run.cfg.anchor, run.name, run.digest
    from lowres_mt.corpora import load_set

    pairs = [p.towards(args.direction) for p in load_set("flores200:devtest")[:args.sentences]]
    prompts = [build_prompt(tokenizer, *prompt_messages(p.src, src, tgt, style, anchor)) for p in pairs]
    refs = [p.tgt for p in pairs]
    base = DecodeSettings(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    if args.plain:
        base = dataclasses.replace(base, repetition_penalty=1.0, no_repeat_ngram=0)
    entries, outputs = {}, {}
    counters = cpu_times()
    vocabulary = run.vocabulary if args.run is not None else None
    for name in args.configs.split(","):
        settings = dataclasses.replace(base, **CONFIGS[name])
        if settings.train_vocabulary and vocabulary is None:
            print(f"{name}: skipped (needs --run with a trimmed training vocabulary)", file=sys.stderr)
            continue
        decoder = int8_body(model) if name == "torch-int8-body" else model
        greedy._slices.clear()  # an output layer sliced (and packed or not) for another configuration
        supported, decode = packed.supported, engine_module.greedy_decode
        if name in UNPACKED:
            packed.supported = lambda dtype=None: False
        engine = open_engine(decoder, tokenizer, settings, weights=lambda: weights, progress=False,
                             vocabulary=vocabulary if settings.train_vocabulary else None)
        if name.endswith("-suppress"):
            engine.heads = None
        if name == "torch-full-head":  # the engine before the sliced output layer
            engine_module.greedy_decode = functools.partial(decode, slice_head=False)
        try:
            engine.complete(prompts[:2], "warm-up", tgt)
            seconds = float("inf")
            for _ in range(max(args.repeat, 1)):
                started = time.perf_counter()
                answers = engine.complete(prompts, name, tgt)
                seconds = min(seconds, time.perf_counter() - started)
        finally:
            engine_module.greedy_decode, packed.supported = decode, supported
        hyps = [parse_response(a, style, anchor, src, tgt) for a in answers]
        outputs[name] = hyps
        entries[name] = {"backend": type(engine).__name__, "seconds": round(seconds, 2),
                         "sentences_per_s": round(len(prompts) / seconds, 3),
                         "tokens_per_s": round(token_count(tokenizer, answers) / seconds, 1),
                         "chrf": round(sacrebleu.corpus_chrf(hyps, [refs]).score, 2)}
        print(f"{name}: {entries[name]}", file=sys.stderr, flush=True)
        del engine, decoder
    reference = outputs.get(BASELINE) or next(iter(outputs.values()))
    speed = entries.get(BASELINE, next(iter(entries.values())))["sentences_per_s"]
    for name, hyps in outputs.items():
        entries[name]["identical_to_baseline"] = sum(a == b for a, b in zip(hyps, reference, strict=True))
        entries[name]["chrf_vs_baseline"] = round(sacrebleu.corpus_chrf(hyps, [reference]).score, 1)
        entries[name]["speedup"] = round(entries[name]["sentences_per_s"] / speed, 2)
    record = {
        "model": label, "direction": args.direction, "prompt_style": style, "sentences": len(prompts),
        "max_new_tokens": args.max_new_tokens, "threads": args.threads, "repetition_controls": not args.plain, "batch_size": base.batch_size,
        "baseline": BASELINE, "default": default_config(), "backends": entries,
        "bf16_matmul_speedup": round(bf16_matmul_speedup(args.threads), 2),
        "cpu": cpu_model(), "cpu_flags": cpu_flags(), "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2), "steal": steal_share(counters, cpu_times()),
        "repeat": args.repeat, "torch": torch.__version__,
        "command": "python benchmarks/generate_backends.py " + " ".join(sys.argv[1:]),
        "examples": [{"src": p.src, **{n: outputs[n][i] for n in outputs}} for i, p in enumerate(pairs[:3])],
    }
    plain = "-plain" if args.plain else ""
    batch = "" if args.batch_size == 32 else f"-b{args.batch_size}"
    n = "" if args.sentences == 64 else f"-n{args.sentences}"
    stem = RESULTS / f"generate_backends-{Path(label).name}-{args.direction}{plain}{n}{batch}-t{args.threads}"
    write_json(stem.with_suffix(".json"), record)
    write_text(stem.with_suffix(".md"), render(record))
    print(render(record))
    return 0


def render(r: dict) -> str:
    rows = "".join(
        f"| `{name}`{' (default)' if name == r['default'] else ''}{' (baseline)' if name == r['baseline'] else ''} "
        f"| {e['seconds']} | {e['sentences_per_s']} | {e['tokens_per_s']} | **{e['speedup']}×** | "
        f"{e['identical_to_baseline']}/{r['sentences']} | {e['chrf_vs_baseline']} | {e['chrf']} |\n"
        for name, e in r["backends"].items())
    controls = "the recipe's" if r.get("repetition_controls", True) else "no"
    steal = "" if r.get("steal") is None else f"; CPU time stolen by the host during the run: {r['steal']:.1%}"
    fastest = f"; each time the fastest of {r['repeat']} runs" if r.get("repeat", 1) > 1 else ""
    return (f"# Decoding backends: {r['model']}, {r['direction']}\n\n"
            f"`{r['command']}` — {r['sentences']} FLORES-200 devtest sentences, {r['prompt_style']} prompt, "
            f"greedy with {controls} repetition controls, "
            f"the loop stop and alphabet rule, ≤ {r['max_new_tokens']} new "
            f"tokens, batch {r['batch_size']}, {r['threads']} threads on {r['cpu']} ({r['cpu_flags']}; 1-min load "
            f"average at the end: {r['load_avg_1m']}{steal}){fastest}.\n\n"
            "| configuration | seconds | sentences/s | answer tokens/s | vs baseline | identical to baseline "
            "| chrF vs baseline | chrF vs references |\n|---|---|---|---|---|---|---|---|\n" + rows)


if __name__ == "__main__":
    sys.exit(main())
