"""Data parallel through accelerate: 2 CPU processes (gloo, started by torchrun) train exactly what
1 process with twice the gradient accumulation trains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_train_loop import adapter_weights, write_toy_run

from lowres_mt.config import load_recipe
from lowres_mt.train.loop import train

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {"max_steps": 4, "save_every": 0, "eval_every": 2, "dev_chrf_size": 1}


def step_losses(run_dir: Path) -> list[float]:
    events = map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
    return [e["loss"] for e in events if e["event"] == "train"]


def test_two_cpu_processes_match_one_process(tmp_path, tiny_model_dir):
    _, one_dir = write_toy_run(tmp_path, tiny_model_dir, train=SETTINGS, name="one")
    recipe, two_dir = write_toy_run(tmp_path, tiny_model_dir, train=SETTINGS, name="two")

    env = {**os.environ, "LOWRES_MT_RUNS": str(tmp_path / "runs"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
              "-m", "lowres_mt", "train", str(recipe), "--name", "two", "--no-progress", "train.grad_accum=1"]
    done = subprocess.run(launch, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    train(load_recipe(str(recipe), ["train.grad_accum=2"]), run_dir=one_dir, progress=False)

    start = json.loads((two_dir / "metrics.jsonl").read_text().splitlines()[0])
    assert start["processes"] == 2
    assert step_losses(two_dir) == pytest.approx(step_losses(one_dir), abs=2e-4)
    one, two = adapter_weights(one_dir), adapter_weights(two_dir)
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(two[key], one[key], atol=1e-4, rtol=1e-3, msg=key)
