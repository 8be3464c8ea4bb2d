import json

import pytest
import torch
from safetensors.torch import load_file
from test_train_loop import adapter_weights, write_toy_run

from lowres_mt import precision
from lowres_mt.config import load_recipe
from lowres_mt.run import Run
from lowres_mt.train.loop import train

# bfloat16 over float32 as measured: AMX Xeon ~7×, Zen 5 4.5×, Zen 4 and Xeon without AMX 0.55×
AMX, ZEN5, ZEN4 = 7.0, 4.5, 0.55


@pytest.mark.parametrize(("speedup", "expected"), [(AMX, torch.bfloat16), (ZEN5, torch.bfloat16),
                                                   (ZEN4, torch.float32), (1.2, torch.float32)])
def test_auto_uses_bf16_only_where_the_cpu_is_faster_in_it(monkeypatch, speedup, expected):
    monkeypatch.setattr(precision, "bf16_matmul_speedup", lambda threads: speedup)
    assert precision.resolve_dtype("auto", "cpu") == expected
    assert precision.resolve_dtype("float32", "cpu") == torch.float32  # explicit choices stand
    assert precision.resolve_dtype("bfloat16", "cpu") == torch.bfloat16


def test_cpu_flags_reads_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512_bf16 sse\n\nprocessor\t: 1\n")
    assert precision.cpu_flags(info) == {"fpu", "avx512_bf16", "sse"}
    assert precision.cpu_flags(tmp_path / "missing") == set()


@pytest.mark.parametrize("without_bf16", [False, True])
def test_auto_training_runs_in_the_detected_precision(tmp_path, tiny_model_dir, monkeypatch, without_bf16):
    monkeypatch.setattr(precision, "bf16_matmul_speedup", lambda threads: ZEN4 if without_bf16 else ZEN5)
    recipe, run_dir = write_toy_run(tmp_path, tiny_model_dir, train={"dtype": "auto", "max_steps": 2})
    train(load_recipe(str(recipe)), run_dir=run_dir, progress=False)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["dtype"] == ("float32" if without_bf16 else "bfloat16")
    assert all(t.dtype == torch.float32 for t in adapter_weights(run_dir).values())  # LoRA stays fp32


def test_bf16_and_fp32_training_losses_agree(tmp_path, tiny_model_dir):
    losses = {}
    for dtype in ("float32", "bfloat16"):
        (tmp_path / dtype).mkdir()
        recipe, run_dir = write_toy_run(tmp_path / dtype, tiny_model_dir, train={"dtype": dtype})
        train(load_recipe(str(recipe)), run_dir=run_dir, progress=False)
        events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        losses[dtype] = [e["loss"] for e in events if e["event"] == "train"]
    assert len(losses["float32"]) == 4
    for fp32, bf16 in zip(losses["float32"], losses["bfloat16"], strict=True):
        assert bf16 == pytest.approx(fp32, rel=0.03)  # bf16 keeps ~3 significant digits


@pytest.mark.parametrize(("speedup", "lora", "setting", "expected"), [
    (AMX, False, "auto", "bf16"), (ZEN5, False, "auto", "bf16"), (0.3, False, "auto", "fp32"),
    (ZEN4, False, "auto", "fp32"),
    (AMX, True, "auto", "fp32"),  # LoRA keeps its frozen base in bf16 there instead
    (0.3, False, "bf16", "bf16"), (AMX, False, "fp32", "fp32")])
def test_full_fine_tuning_computes_in_bf16_where_the_cpu_is_faster(tmp_path, tiny_model_dir, monkeypatch,
                                                                   speedup, lora, setting, expected):
    from lowres_mt.train import loss

    monkeypatch.setattr(precision, "bf16_matmul_speedup", lambda threads: speedup)
    autocast = []
    original = loss.linear_cross_entropy

    def recording(*args, **kwargs):
        if torch.is_grad_enabled():  # training steps, not dev loss
            autocast.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16)
        return original(*args, **kwargs)

    monkeypatch.setattr(loss, "linear_cross_entropy", recording)
    recipe, run_dir = write_toy_run(tmp_path, tiny_model_dir, full=not lora,
                                    train={"mixed_precision": setting, "max_steps": 2, "eval_every": 0})
    train(load_recipe(str(recipe)), run_dir=run_dir, progress=False)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["mixed_precision"] == expected
    assert autocast and set(autocast) == {expected == "bf16"}
    saved = load_file(Run.open(run_dir).adapter_weights)
    assert all(t.dtype == torch.float32 for t in saved.values())  # weights stay fp32


def test_bf16_autocast_and_fp32_full_fine_tuning_losses_agree(tmp_path, tiny_model_dir):
    losses = {}
    for setting in ("fp32", "bf16"):
        (tmp_path / setting).mkdir()
        recipe, run_dir = write_toy_run(tmp_path / setting, tiny_model_dir, full=True,
                                        train={"mixed_precision": setting})
        train(load_recipe(str(recipe)), run_dir=run_dir, progress=False)
        events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        losses[setting] = [e["loss"] for e in events if e["event"] == "train"]
    assert len(losses["fp32"]) == 4 and losses["fp32"] != losses["bf16"]
    for fp32, bf16 in zip(losses["fp32"], losses["bf16"], strict=True):
        assert bf16 == pytest.approx(fp32, rel=0.03)
