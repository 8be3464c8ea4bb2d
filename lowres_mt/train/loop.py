"""The training loop, top to bottom: recipe + run folder in, LoRA adapter (or full weights) + log out.

The same code runs as one process, as N CPU processes (gloo) or on N GPUs (NCCL) when started by
`accelerate launch` or `torchrun`; accelerate picks the device and wraps the model for
distributed data parallel. Each optimizer step consumes `processes × grad_accum` micro-batches of
the deterministic batch stream (see `batching`), and the loss is normalised by the labelled
positions of the whole step, so the run's result does not depend on how the step is split.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list, gather_object, set_seed
from transformers import get_scheduler

from lowres_mt.config import RecipeConfig
from lowres_mt.errors import UserError
from lowres_mt.models import save_adapter
from lowres_mt.precision import mixed_precision, resolve_dtype
from lowres_mt.progress import bar as progress_bar
from lowres_mt.train import rundir
from lowres_mt.train.batching import BatchStream
from lowres_mt.train.checkpoint import load_checkpoint, remove_partial, rng_state, save_checkpoint
from lowres_mt.train.devset import DevSample, DevTranslator, dev_chrf, dev_loss, dev_sample
from lowres_mt.train.loss import TargetOnlyLoss, packing_isolated
from lowres_mt.train.metrics import MetricsLog, plot_loss
from lowres_mt.train.tokenize import TokenizedExample, TokenizeStats, remap_examples, tokenize_rows

SCHEDULES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    loss: float | None  # last training step's loss
    dev_loss: float | None
    dev_chrf: float | None
    tokens_per_s: float
    adapter_dir: Path


def train(cfg: RecipeConfig, *, run_dir: Path, resume: bool = False, progress: bool = True) -> TrainResult:
    """Train `cfg`'s LoRA adapter into `run_dir` (building its data first when missing)."""
    tc = cfg.train
    acc = Accelerator(cpu=not _has_accelerator())  # cpu=True lets torchrun's N CPU processes use gloo
    # bf16 autocast around each training forward (torch.autocast, not Accelerator(mixed_precision=…):
    # accelerate's process-wide state could not change it between the runs of one process)
    _set_threads(tc.threads, acc)  # first: `auto` precision is a speed probe at this thread count
    amp = mixed_precision(tc.mixed_precision, acc.device, full=cfg.lora is None)
    main = acc.is_main_process

    # -- the run folder: refuse another run's folder before anything is written
    checkpoint = rundir.check_run_dir(cfg, run_dir, resume=resume)
    # full fine-tuning (lora: null) keeps its weights, and so their updates, in float32
    dtype = resolve_dtype("float32" if cfg.lora is None and tc.dtype == "auto" else tc.dtype, acc.device)
    if acc.num_processes > 1:  # every process takes the main one's probe result
        amp, dtype = broadcast_object_list([amp, dtype])
    if cfg.lora is None and dtype != torch.float32:
        raise UserError(f"lora: null trains every weight, which needs float32 weights; set train.dtype=auto "
                        f"or float32 (not {tc.dtype})")
    acc.wait_for_everyone()
    if main:
        remove_partial(run_dir / "checkpoints")
        rundir.ensure_data(cfg, run_dir)
        rundir.write_config(cfg, run_dir)
        rundir.update_run_info(run_dir, recipe=cfg.name, method=tc.method, base_model=cfg.base_model,
                               directions=list(cfg.directions), status="running", started=rundir.now(),
                               dtype=str(dtype).removeprefix("torch."), mixed_precision=amp,
                               # a fresh start forgets the best step of an earlier, abandoned attempt
                               **({} if checkpoint else {"best_step": None, "best_dev_chrf": None}))
    acc.wait_for_everyone()
    prep = prepare(cfg, run_dir, dtype=dtype)
    model, tokenizer, translator, samples = prep.model, prep.tokenizer, prep.translator, prep.samples
    train_stats, dev_ex, pad_id = prep.train_stats, prep.dev_examples, prep.pad_id

    # -- batches, optimizer, schedule
    stream = BatchStream(prep.train_examples, seed=cfg.seed, batch_tokens=tc.batch_tokens, row_tokens=tc.max_length,
                         pad_id=pad_id, pack=prep.pack)
    group = acc.num_processes * tc.grad_accum
    total = tc.max_steps if tc.max_steps > 0 else max(1, math.ceil(tc.epochs * len(stream.plan(0)) / group))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay, fused=fused_adamw(params, acc.device))
    scheduler = get_scheduler(SCHEDULES[tc.scheduler], optimizer,
                              num_warmup_steps=round(tc.warmup_ratio * total), num_training_steps=total)
    module = acc.prepare(TargetOnlyLoss(model))

    start = 0
    if checkpoint is not None:
        state = load_checkpoint(checkpoint, model=model, optimizer=optimizer, scheduler=scheduler,
                                rank=acc.process_index)
        if state.get("group") != group:
            raise UserError(f"{checkpoint} was trained with {state.get('group')} micro-batches per step; "
                            f"resume with processes × train.grad_accum = {state.get('group')}")
        start = state["step"]
    log = MetricsLog(run_dir / "metrics.jsonl", resume_step=start if checkpoint else None)
    translations = MetricsLog(run_dir / "dev_translations.jsonl", resume_step=start if checkpoint else None)
    if main and checkpoint is None:
        log.append({"event": "start", "step": 0, "total_steps": total, "processes": acc.num_processes,
                    "packing": prep.pack, "mixed_precision": amp, "vocab": prep.vocab_size, "full_vocab": len(tokenizer),
                    "micro_batches_per_epoch": len(stream.plan(0)),
                    "train": train_stats.as_dict(), "dev": prep.dev_stats.as_dict()})

    # seconds spent, counting the steps, evaluations and checkpoints a resumed run kept from before
    spent = {"steps": sum(e["tokens"] / e["tokens_per_s"] for e in log.of("train") if e.get("tokens_per_s")),
             "evaluations": sum(e.get("seconds", 0.0) for e in log.of("eval")),
             "checkpoints": sum(e.get("seconds", 0.0) for e in log.of("checkpoint"))}
    steps_before = spent["steps"]

    def evaluate(step: int, chrf: bool = True) -> dict:
        began = time.perf_counter()
        total_loss, count = dev_loss(acc.unwrap_model(module), dev_ex, batch_tokens=tc.batch_tokens,
                                     row_tokens=tc.max_length, pad_id=pad_id, rank=acc.process_index,
                                     processes=acc.num_processes, device=acc.device)
        sums = acc.reduce(torch.tensor([total_loss, count], dtype=torch.float64, device=acc.device), "sum")
        event = {"event": "eval", "step": step,
                 "dev_loss": round(sums[0].item() / sums[1].item(), 4) if sums[1] > 0 else None}
        if main and samples and chrf:
            max_new = min(cfg.eval.max_new_tokens, 8 + 2 * max(len(tokenizer(s.tgt)["input_ids"]) for s in samples))
            scores = dev_chrf(translator, samples, max_new)
            for row in scores.pop("translations"):
                translations.append({"step": step, **row}, write=False)
            translations.flush()
            event.update(scores)
            best = rundir.read_run_info(run_dir).get("best_dev_chrf")
            if tc.keep == "best" and (best is None or event["dev_chrf"] > best):
                save_adapter(acc.unwrap_model(module).model, run_dir / "adapter", vocabulary=translator.new_to_old)
                rundir.update_run_info(run_dir, best_step=step, best_dev_chrf=event["dev_chrf"])
                event["best"] = True
        acc.wait_for_everyone()
        seconds = time.perf_counter() - began  # dev loss, dev chrF, a best adapter saved
        event["seconds"] = round(seconds, 2)
        spent["evaluations"] += seconds
        if main:
            log.append(event)
            plot_loss(log.events, run_dir / "loss.png", title=run_dir.name)
        return event

    def save(step: int) -> None:
        began = time.perf_counter()
        states = gather_object([rng_state()])
        if main:
            save_checkpoint(run_dir / "checkpoints", step, model=model, optimizer=optimizer, scheduler=scheduler,
                            rng_states=states, state={"group": group, "total_steps": total},
                            keep=tc.keep_checkpoints)
            rundir.update_run_info(run_dir, steps=step)
        acc.wait_for_everyone()
        seconds = time.perf_counter() - began
        spent["checkpoints"] += seconds
        if main:
            log.append({"event": "checkpoint", "step": step, "seconds": round(seconds, 2)})

    # -- the loop
    last: dict = {}
    train_time, train_tokens = 0.0, 0
    with progress_bar("loss", "speed", enabled=main and progress) as bar, _sigterm_as_interrupt():
        task = bar.add_task(f"training {run_dir.name}", total=total, completed=start, loss="-", speed="-")
        try:
            for step in range(start, total):
                began = time.perf_counter()
                loss, tokens, norm = _train_step(acc, module, stream, step, group, optimizer, scheduler,
                                                 params, tc.max_grad_norm, bf16=amp == "bf16")
                seconds = time.perf_counter() - began
                train_time, train_tokens = train_time + seconds, train_tokens + tokens
                spent["steps"] = steps_before + train_time
                done = step + 1
                if main:
                    log.append({"event": "train", "step": done, "loss": round(loss, 4),
                                "lr": scheduler.get_last_lr()[0], "tokens": tokens,
                                "tokens_per_s": round(tokens / seconds, 1),
                                "grad_norm": round(norm, 4) if norm is not None else None})
                bar.update(task, completed=done, loss=f"{loss:.3f}", speed=f"{train_tokens / train_time:.0f} tok/s")
                if (tc.eval_every > 0 and done % tc.eval_every == 0) or done == total:
                    last = evaluate(done, chrf=tc.eval_every > 0)  # 0: dev loss at the end, no dev chrF
                if tc.save_every > 0 and done % tc.save_every == 0 and done < total:
                    save(done)
        except KeyboardInterrupt:
            if main:
                rundir.update_run_info(run_dir, status="interrupted")
            raise

    # -- the adapters (LoRA weights, or every trained weight for lora: null: they load on the untrimmed base). adapter/ is the best
    # dev-chrF step's (saved as each best came) unless train.keep=last or no dev chrF was measured
    adapter_dir = run_dir / "adapter"
    if main:
        chose_best = tc.keep == "best" and rundir.read_run_info(run_dir).get("best_step") is not None
        final_dir = run_dir / "adapter-last" if chose_best else adapter_dir
        save_adapter(acc.unwrap_model(module).model, final_dir, vocabulary=prep.translator.new_to_old)
        tokens_per_s = train_tokens / train_time if train_time else 0.0
        rundir.update_run_info(run_dir, status="done", steps=total, finished=rundir.now(),
                               tokens_per_s=round(tokens_per_s, 1), dev_loss=last.get("dev_loss"),
                               dev_chrf=last.get("dev_chrf"), train_examples=train_stats.as_dict(),
                               seconds={k: round(v, 2) for k, v in spent.items()})
    acc.wait_for_everyone()
    train_events = log.of("train")
    return TrainResult(run_dir, total, train_events[-1]["loss"] if train_events else None,
                       last.get("dev_loss"), last.get("dev_chrf"),
                       train_tokens / train_time if train_time else 0.0, adapter_dir)


@dataclass
class Prepared:
    """Everything the loop trains with: the model and the tokenized, id-remapped data."""

    model: torch.nn.Module  # peft model (the base itself for lora: null), trimmed when train.trim_vocab
    tokenizer: object
    train_examples: list[TokenizedExample]
    dev_examples: list[TokenizedExample]
    train_stats: TokenizeStats
    dev_stats: TokenizeStats
    samples: list[DevSample]  # dev chrF sample
    translator: DevTranslator
    pad_id: int  # in the model's vocabulary
    vocab_size: int
    pack: bool  # rows hold several examples: train.pack, where this model keeps packed examples apart


def prepare(cfg: RecipeConfig, run_dir: Path, dtype: torch.dtype = torch.float32) -> Prepared:
    """Read the run's data, load the base model, tokenize, trim the vocabulary, attach LoRA (or, for
    `lora: null`, make every weight trainable)."""
    from lowres_mt.models import attach_lora, keep_ids_for, load_base, trim_vocab

    tc = cfg.train
    train_rows = rundir.read_rows(run_dir / "data" / "train.jsonl", required=True)
    dev_rows = rundir.read_rows(run_dir / "data" / "dev.jsonl", required=False)
    if not train_rows:
        raise UserError(f"{run_dir / 'data' / 'train.jsonl'} holds no examples; check the recipe's "
                        "task.train corpora, then delete that data folder to rebuild it")
    set_seed(cfg.seed)
    model, tokenizer = load_base(cfg.base_model, dtype=dtype, prompt_format=cfg.prompt_format)
    train_ex, train_stats = tokenize_rows(tokenizer, train_rows, tc.max_length)
    if not train_ex:
        raise UserError(f"no training example keeps a response within train.max_length={tc.max_length}; "
                        "raise train.max_length")
    dev_ex, dev_stats = tokenize_rows(tokenizer, dev_rows, tc.max_length)
    samples = dev_sample(dev_rows, tc.dev_chrf_size)
    translator = DevTranslator(model, tokenizer, cfg, batch_size=cfg.eval.batch_size)
    vocab_size = len(tokenizer)
    if tc.trim_vocab:
        seen = [train_stats.ids, dev_stats.ids, translator.stops, *(translator.prompt_ids(s) for s in samples)]
        vmap = trim_vocab(model, keep_ids_for(tokenizer, seen))
        old_to_new, new_to_old = vmap.old_to_new.tolist(), vmap.new_to_old.tolist()
        train_ex, dev_ex = remap_examples(train_ex, old_to_new), remap_examples(dev_ex, old_to_new)
        translator.use_vocab(old_to_new, new_to_old)
        vocab_size = len(vmap)
    model = attach_lora(model, dict(cfg.lora)) if cfg.lora is not None else model.requires_grad_(True)
    translator.model = model
    model.train()
    return Prepared(model, tokenizer, train_ex, dev_ex, train_stats, dev_stats, samples, translator,
                    translator.pad_id(), vocab_size, tc.pack and packing_isolated(model))


def _train_step(acc: Accelerator, module, stream: BatchStream, step: int, group: int, optimizer, scheduler,
                params, max_grad_norm: float, bf16: bool = False) -> tuple[float, int, float | None]:
    """One optimizer step; returns (mean loss per labelled token, tokens, gradient norm), all processes."""
    indices = stream.step_indices(step, group, acc.process_index, acc.num_processes)
    labels = stream.step_labels(step, group)
    scale = acc.num_processes / labels  # data parallel averages gradients over processes
    loss_sum, tokens = 0.0, 0
    for j, index in enumerate(indices):
        batch = stream.batch(index).to(acc.device)
        syncing = j == len(indices) - 1
        with contextlib.nullcontext() if syncing else acc.no_sync(module):
            with torch.autocast(acc.device.type, dtype=torch.bfloat16, enabled=bf16):
                loss, _ = module(batch.input_ids, batch.position_ids, batch.labels)
            acc.backward(loss * scale)
        loss_sum += loss.item()
        tokens += batch.n_tokens
    norm = acc.clip_grad_norm_(params, max_grad_norm) if max_grad_norm > 0 else None
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    sums = acc.reduce(torch.tensor([loss_sum, tokens], dtype=torch.float64, device=acc.device), "sum")
    return sums[0].item() / labels, int(sums[1].item()), float(norm) if norm is not None else None


def fused_adamw(params: list[torch.nn.Parameter], device: torch.device) -> bool:
    """Whether torch's fused AdamW kernel can update `params` on `device` (one kernel for all of them
    instead of a dozen element-wise passes: the optimizer step of full fine-tuning took half the
    time on CPU)."""
    return (bool(params) and device.type in ("cpu", "cuda")
            and all(p.dtype in (torch.float32, torch.bfloat16) for p in params))


def _has_accelerator() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return torch.cuda.is_available() or bool(mps and mps.is_available())


def _set_threads(threads: int, acc: Accelerator) -> None:
    if acc.device.type == "cpu":
        local = int(os.environ.get("LOCAL_WORLD_SIZE", acc.num_processes))
        torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // max(1, local)))


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM ends the run like Ctrl-C (status 'interrupted'); checkpoints stay as they are."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
