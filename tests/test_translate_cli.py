"""`lowres-mt translate` on a tiny run folder: batch mode (subprocess), interactive prompt, error lines."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli, make_tiny_model

from lowres_mt.config import RecipeConfig, dump_recipe

pytestmark = pytest.mark.usefixtures("one_thread")



ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def tiny_run(tmp_path, tiny_model_dir, tiny_tokenizer):
    """runs/tiny-tell: config.yaml, run.json (base_model = the tiny folder) and a random LoRA adapter."""
    from peft import LoraConfig, get_peft_model

    run = tmp_path / "runs" / "tiny-tell"
    model = get_peft_model(make_tiny_model(tiny_tokenizer),
                           LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.save_pretrained(run / "adapter")
    cfg = RecipeConfig(name="tiny", languages=("en", "is"), base_model=str(tiny_model_dir))
    (run / "config.yaml").write_text(dump_recipe(cfg))
    (run / "run.json").write_text(json.dumps({"recipe": "tiny", "method": "tell", "status": "done",
                                              "base_model": str(tiny_model_dir),
                                              "directions": ["en-is", "is-en"]}))
    return run


def _env(tmp_path):
    return {**os.environ, "HF_HUB_OFFLINE": "1", "LOWRES_MT_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}


def test_batch_from_stdin_keeps_order_and_blank_lines(tiny_run, tmp_path, monkeypatch, capsys):
    text = "Good morning.\n\nWhere is the station?\nThe cat sat.\n"
    args = ["--run", str(tiny_run), "--from", "en", "--to", "is", "--max-new-tokens", "8"]
    cmd = [sys.executable, "-m", "lowres_mt", "translate", *args]
    piped = subprocess.run(cmd, input=text, capture_output=True, text=True, env=_env(tmp_path), cwd=ROOT,
                           timeout=300)
    assert piped.returncode == 0, piped.stderr
    lines = piped.stdout.split("\n")
    assert len(lines) == 5 and lines[1] == "" and lines[4] == ""  # 4 segments + final newline

    # the same segments from a file, and one by one as arguments, give the same lines
    (tmp_path / "in.txt").write_text(text)
    code, from_file, _ = _cli(monkeypatch, capsys, *args, "--input", str(tmp_path / "in.txt"))
    assert code in (0, None) and from_file == piped.stdout
    code, one, _ = _cli(monkeypatch, capsys, *args, "The cat sat.")
    assert one == lines[3] + "\n"


def _cli(monkeypatch, capsys, *args):
    return cli(monkeypatch, capsys, "translate", *args)


def test_interactive_prompt_swaps_and_quits(tiny_run, tmp_path, monkeypatch, capsys):
    from lowres_mt.cli import main

    monkeypatch.setenv("LOWRES_MT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    prompts, answers = [], iter(["Good morning.", "/swap", "Góðan daginn.", "/help", "/quit"])

    def fake_input(prompt):
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("builtins.input", fake_input)
    monkeypatch.setattr(sys, "argv", ["lowres-mt", "translate", "--run", str(tiny_run), "--from", "en",
                                      "--to", "is", "--max-new-tokens", "4"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code in (0, None)
    assert prompts == ["en→is> ", "en→is> ", "is→en> ", "is→en> ", "is→en> "]
    assert "/swap" in capsys.readouterr().err


def test_run_without_adapter_is_one_line(tiny_run, monkeypatch, capsys):
    (tiny_run / "adapter" / "adapter_config.json").unlink()
    code, _, err = _cli(monkeypatch, capsys, "--run", str(tiny_run), "--from", "en", "--to", "is", "hi")
    assert code == 2 and err.count("\n") == 1 and "has no adapter" in err


def test_unknown_language_is_one_line(tiny_run, monkeypatch, capsys):
    code, _, err = _cli(monkeypatch, capsys, "--run", str(tiny_run), "--from", "xx", "--to", "is", "hi")
    assert code == 2 and err.count("\n") == 1 and "unknown language 'xx'" in err


def test_untrained_direction_is_one_line(tiny_run, monkeypatch, capsys):
    info = json.loads((tiny_run / "run.json").read_text())
    (tiny_run / "run.json").write_text(json.dumps({**info, "directions": ["en-is"]}))
    code, _, err = _cli(monkeypatch, capsys, "--run", str(tiny_run), "--from", "is", "--to", "en", "hæ")
    assert code == 2 and err.count("\n") == 1 and "trained for en-is, not is-en" in err


def test_neither_run_nor_base_model(monkeypatch, capsys):
    code, _, err = _cli(monkeypatch, capsys, "--from", "en", "--to", "is", "hi")
    assert code == 2 and "--run" in err and "--base-model" in err


def test_base_model_zero_shot_in_process(tiny_model_dir, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("LOWRES_MT_CACHE", str(tmp_path / "cache"))
    code, out, err = _cli(monkeypatch, capsys, "--base-model", str(tiny_model_dir), "--from", "en",
                          "--to", "is", "--max-new-tokens", "4", "Good morning.", "Thanks.")
    assert code in (0, None), err
    assert out.count("\n") == 2
