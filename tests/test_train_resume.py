"""Checkpoints and resume: a run killed (SIGKILL in a subprocess, then SIGTERM) and resumed ends with the same adapter
as an uninterrupted run; an interrupted checkpoint write never harms the last good one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from test_train_loop import adapter_weights, write_toy_run

from lowres_mt.config import load_recipe
from lowres_mt.errors import UserError
from lowres_mt.train import checkpoint as ckpt
from lowres_mt.train.checkpoint import latest_checkpoint, list_checkpoints
from lowres_mt.train.loop import train

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {"max_steps": 24, "save_every": 2, "eval_every": 0, "dev_chrf_size": 1}


def start_training(recipe: Path, runs: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "LOWRES_MT_RUNS": str(runs), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "lowres_mt", "train", str(recipe), "--no-progress", *extra],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def stop_after_checkpoint(proc: subprocess.Popen, folder: Path, sig: int, after: int = 0) -> int:
    """Send `sig` as soon as a checkpoint newer than step `after` exists; returns that step."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        found = list_checkpoints(folder)
        if found and found[-1][0] > after:
            proc.send_signal(sig)
            proc.wait(timeout=60)
            return found[-1][0]
        time.sleep(0.005)
    out, err = proc.communicate()
    pytest.fail(f"training ended before it could be stopped: {err.decode()[-2000:]}")


def sigterm_self_after_checkpoint(folder: Path, after: int) -> threading.Thread:
    """Send this process SIGTERM once a checkpoint newer than step `after` exists."""
    def watch():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = list_checkpoints(folder)
            if found and found[-1][0] > after:
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_killed_and_resumed_run_matches_an_uninterrupted_one(tmp_path, tiny_model_dir):
    # lora_dropout > 0: the random states must be restored for the results to match
    recipe, reference_dir = write_toy_run(tmp_path, tiny_model_dir, train=SETTINGS, lora_dropout=0.1,
                                          name="reference")
    train(load_recipe(str(recipe)), run_dir=reference_dir, progress=False)
    expected = adapter_weights(reference_dir)

    _, run_dir = write_toy_run(tmp_path, tiny_model_dir, train=SETTINGS, lora_dropout=0.1, name="toy-tell")
    checkpoints = run_dir / "checkpoints"
    proc = start_training(recipe, tmp_path / "runs")
    killed_after = stop_after_checkpoint(proc, checkpoints, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert latest_checkpoint(checkpoints) is not None and not (run_dir / "adapter").exists()

    cfg = load_recipe(str(recipe))
    watcher = sigterm_self_after_checkpoint(checkpoints, after=killed_after)
    with pytest.raises(KeyboardInterrupt):  # SIGTERM stops the run like Ctrl-C
        train(cfg, run_dir=run_dir, resume=True, progress=False)
    watcher.join()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    assert latest_checkpoint(checkpoints).name != f"step-{killed_after}"

    train(cfg, run_dir=run_dir, resume=True, progress=False)
    got = adapter_weights(run_dir)
    assert got.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], atol=1e-5, rtol=1e-4, msg=key)
    steps = [e["step"] for e in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
             if e["event"] == "train"]
    assert steps == list(range(1, 25))  # each step logged once, the lost ones trained again
    events = list(map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()))
    spent = json.loads((run_dir / "run.json").read_text())["seconds"]  # the whole run's, not the last process's
    assert spent["steps"] == pytest.approx(sum(e["tokens"] / e["tokens_per_s"] for e in events if e["event"] == "train"), rel=0.05)
    assert spent["checkpoints"] == pytest.approx(sum(e["seconds"] for e in events if e["event"] == "checkpoint"), abs=0.1)


def test_a_failed_checkpoint_write_leaves_the_previous_one_intact(tmp_path, tiny_model_dir, monkeypatch):
    recipe, run_dir = write_toy_run(tmp_path, tiny_model_dir, train={"max_steps": 4, "save_every": 2,
                                                                      "eval_every": 0})
    train(load_recipe(str(recipe)), run_dir=run_dir, progress=False)
    folder = run_dir / "checkpoints"
    good = latest_checkpoint(folder)
    before = {p.name: p.read_bytes() for p in good.rglob("*") if p.is_file()}

    real_save = torch.save

    def crash_midway(obj, path, *args, **kwargs):
        if str(path).endswith("scheduler.pt"):
            raise OSError("disk full")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(ckpt.torch, "save", crash_midway)
    from conftest import make_tiny_model
    from peft import PeftModel

    from lowres_mt.models import load_tokenizer

    model = PeftModel.from_pretrained(make_tiny_model(load_tokenizer(str(tiny_model_dir))), good / "adapter",
                                      is_trainable=True)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(folder, 99, model=model, optimizer=optimizer, scheduler=scheduler,
                             rng_states=[ckpt.rng_state()], state={})
    assert latest_checkpoint(folder) == good
    assert {p.name: p.read_bytes() for p in good.rglob("*") if p.is_file()} == before
    assert [p.name for p in folder.iterdir()] == [p.name for _, p in list_checkpoints(folder)]


def test_a_checkpoint_from_another_adapter_shape_is_a_user_error(tmp_path, tiny_model_dir, tiny_tokenizer):
    from conftest import make_tiny_model
    from peft import LoraConfig, get_peft_model

    recipe, run_dir = write_toy_run(tmp_path, tiny_model_dir, train={"max_steps": 2, "save_every": 1,
                                                                      "eval_every": 0})
    train(load_recipe(str(recipe)), run_dir=run_dir, progress=False)
    other = get_peft_model(make_tiny_model(tiny_tokenizer), LoraConfig(r=8, target_modules=["q_proj", "v_proj"]))
    optimizer = torch.optim.AdamW([p for p in other.parameters() if p.requires_grad])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    with pytest.raises(UserError, match="does not fit"):
        ckpt.load_checkpoint(latest_checkpoint(run_dir / "checkpoints"), model=other, optimizer=optimizer,
                             scheduler=scheduler, rank=0)


def test_random_states_round_trip_through_weights_only_loading(tmp_path):
    import random

    import numpy as np

    torch.save([ckpt.rng_state()], tmp_path / "rng.pt")
    expected = (random.random(), float(np.random.rand()), float(torch.rand(())))
    (state,) = torch.load(tmp_path / "rng.pt", weights_only=True)
    ckpt.set_rng_state(state)
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == expected
