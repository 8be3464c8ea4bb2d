"""Generation speed: lowres-mt's batched engine against `model.generate`, batched (the fair
baseline: the same length-sorted batches, left-padded) and one sentence at a time, and (with
`--llama-cpp`) against llama.cpp running the bundled GGUF file itself.

Same model, same prompts (FLORES-200 devtest, English→Icelandic), same stop rules (end of turn /
eos / first newline after text / a 4-token loop seen 3 times), greedy, in one process. Records
sentences/s of all three, the speed-ups, whether the translations are identical, and the CPU, to
benchmarks/results/generate_speed-<model>[-tell]-t<threads>.{json,md}. Exits 1 if any output differs.

    .venv/bin/python benchmarks/generate_speed.py                   # bundled Gemma-3-270M, plain prompt
    .venv/bin/python benchmarks/generate_speed.py --style tell      # TELL prompt: full-length answers
    .venv/bin/python benchmarks/generate_speed.py --run runs/en-is-tell  # a trained run, LoRA merged
    .venv/bin/python benchmarks/generate_speed.py --model tiny      # smoke mode, random tiny model
    .venv/bin/python benchmarks/generate_speed.py --style tell --llama-cpp  # also llama.cpp, same GGUF

llama.cpp comes from `pip install llama-cpp-python` (PyPI has only its source distribution, so
pip compiles it: about 5 minutes on 2 cores; not a lowres-mt dependency). It decodes the GGUF's
4-bit weights directly, one sequence at a time, with the same prompt token ids, greedy, and the
same stop rules checked after every token; lowres-mt decodes the same weights dequantized to
float32. Their outputs are compared by chrF, since the arithmetic differs. Answer tokens/s counts
the tokens of each decoder's answers (the first line, as evaluation keeps it) per second.

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
from lowres_mt.translate import AnswerEnd, DecodeSettings, Engine, build_prompt  # noqa: E402
from lowres_mt.translate.engine import length_sorted_batches  # noqa: E402

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
        out.append(engine._answer(gen[0, ids.shape[1]:].tolist()))  # the engine's answer rule
    return out


@torch.inference_mode()
def batched(model, tokenizer, prompts: list[str], engine: Engine, max_new_tokens: int, batch_size: int) -> list[str]:
    """`model.generate` on the engine's own batches: longest first, left-padded, per-row stops."""
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    out = [""] * len(prompts)
    for rows in length_sorted_batches(encoded, batch_size):
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
            out[i] = engine._answer(engine._until_stop(gen[j, width:].tolist()))
    return out


def llama_cpp_decode(gguf: Path, encoded: list[list[int]], engine: Engine, max_new_tokens: int,
                     threads: int) -> tuple[list[str], float, str]:
    """llama.cpp over the same prompt ids, one sequence at a time: (texts, seconds, build info)."""
    try:
        import llama_cpp
    except ImportError as err:
        raise SystemExit(f"--llama-cpp needs llama.cpp's Python binding ({err}): pip install llama-cpp-python "
                         "(builds from source, about 5 minutes)") from None
    width = max(len(ids) for ids in encoded) + max_new_tokens
    llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=width, n_batch=512, n_threads=threads,
                          n_threads_batch=threads, verbose=False, seed=0)
    stops = set(engine.stop_ids) | {engine.pad_id}

    def one(ids: list[int], limit: int) -> list[int]:
        end = AnswerEnd(engine.tables, engine.settings.stop_repeats)
        end.prompt_width = len(ids)
        out: list[int] = []
        for token in llm.generate(ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, reset=True):
            if token in stops:
                break
            out.append(token)
            if len(out) >= limit or end(torch.tensor([ids + out]))[0]:
                break
        return out

    one(encoded[0], 4)  # warm-up
    t0 = time.perf_counter()
    outs = [one(ids, max_new_tokens) for ids in encoded]
    seconds = time.perf_counter() - t0
    texts = [engine._answer(o) for o in outs]
    info = f"llama-cpp-python {llama_cpp.__version__}; {llama_cpp.llama_print_system_info().decode().strip()}"
    return texts, seconds, info


def token_count(tokenizer, texts: list[str]) -> int:
    return sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)


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
    parser.add_argument("--llama-cpp", action="store_true",
                        help="also decode with llama.cpp on the bundled GGUF (base model only)")
    args = parser.parse_args()
    if args.llama_cpp and (args.run is not None or args.model not in ("gemma-3-270m", "smollm2-135m")):
        parser.error("--llama-cpp runs the bundled GGUF file: use it with --model gemma-3-270m or smollm2-135m, no --run")
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
    llama = None
    if args.llama_cpp:
        import tempfile

        from lowres_mt.models import REGISTRY

        with tempfile.TemporaryDirectory() as scratch:
            gguf = REGISTRY[args.model].gguf(Path(scratch))
            encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
            llama = llama_cpp_decode(gguf, encoded, engine, args.max_new_tokens, args.threads)

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
        "generated_tokens": token_count(tokenizer, fast),
        "batched_generated_tokens": token_count(tokenizer, grouped),
        "engine_tokens_per_s": round(token_count(tokenizer, fast) / engine_s, 1),
        "batched_tokens_per_s": round(token_count(tokenizer, grouped) / batched_s, 1),
        "torch": torch.__version__, "cpu": cpu_model(),
        "cpu_count": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
        "command": "python benchmarks/generate_speed.py " + " ".join(sys.argv[1:]),
        "examples": [{"src": s, "naive": a, "engine": b} for s, a, b in list(zip(sources, slow_t, fast_t))[:3]],
    }
    if llama is not None:
        import sacrebleu

        llama_t = parsed(llama[0])
        record.update({
            "llama_cpp_s": round(llama[1], 2), "llama_cpp_sentences_per_s": round(len(prompts) / llama[1], 3),
            "llama_cpp_generated_tokens": token_count(tokenizer, llama[0]),
            "llama_cpp_tokens_per_s": round(token_count(tokenizer, llama[0]) / llama[1], 1),
            "speedup_vs_llama_cpp": round(llama[1] / engine_s, 2), "llama_cpp_build": llama[2],
            "identical_to_llama_cpp": sum(a == b for a, b in zip(llama_t, fast_t, strict=True)),
            "chrf_engine_vs_llama_cpp": round(sacrebleu.corpus_chrf(fast_t, [llama_t]).score, 1),
        })
        record["examples"] = [{**e, "llama_cpp": t} for e, t in zip(record["examples"], llama_t, strict=False)]
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
        "| decoder | seconds | sentences/s | answer tokens/s |\n|---|---|---|---|\n"
        f"| `model.generate`, one sentence at a time | {r['naive_s']} | {r['naive_sentences_per_s']} | – |\n"
        f"| `model.generate`, batch {r['batch_size']}, length-sorted (the fair baseline) | {r.get('batched_s', '–')} | "
        f"{r.get('batched_sentences_per_s', '–')} | {r.get('batched_tokens_per_s', '–')} |\n"
        + (f"| llama.cpp on the GGUF (Q4_K_M), one sequence at a time | {r['llama_cpp_s']} | "
           f"{r['llama_cpp_sentences_per_s']} | {r['llama_cpp_tokens_per_s']} |\n" if "llama_cpp_s" in r else "")
        + f"| lowres-mt engine, batch {r['batch_size']}, length-sorted | {r['engine_s']} | "
        f"{r['engine_sentences_per_s']} | {r.get('engine_tokens_per_s', '–')} |\n\n"
        f"Engine against batched `generate`: **{r.get('speedup_vs_batched', '–')}×**; against one at a time: "
        f"{r['speedup']}×. Identical translations: {r.get('identical_to_batched', '–')}/{r['sentences']} with "
        f"batched `generate`, {r['identical_outputs']}/{r['sentences']} with one at a time.\n"
        + (f"\nEngine against llama.cpp: **{r['speedup_vs_llama_cpp']}×** sentences/s. Outputs identical to "
           f"llama.cpp's: {r['identical_to_llama_cpp']}/{r['sentences']}; chrF of the engine's outputs against "
           f"llama.cpp's: {r['chrf_engine_vs_llama_cpp']} (4-bit against float32 arithmetic). "
           f"Build: {r['llama_cpp_build']}.\n" if "llama_cpp_s" in r else "")
    )


if __name__ == "__main__":
    sys.exit(main())
