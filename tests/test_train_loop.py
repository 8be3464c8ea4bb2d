"""The training loop end to end on a tiny random model: outputs, which weights change, the adapter on
the untrimmed base, and bad input (one-line errors, nothing lost)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from lowres_mt import models
from lowres_mt.config import load_recipe
from lowres_mt.errors import UserError
from lowres_mt.run import Run
from lowres_mt.train.loop import fused_adamw, train

WORDS = "the cat dog house sun moon red blue big small old new river stone".split()


def toy_row(rng: random.Random, i: int, words: int | None = None) -> dict:
    direction = "en-is" if i % 2 else "is-en"
    src = " ".join(rng.choice(WORDS) for _ in range(words or rng.randint(2, 8)))
    tgt = src[::-1]
    return {"messages": [{"role": "user", "content": f"Translate this ({direction}).\n\n{src}"},
                         {"role": "assistant", "content": f"Sure, here it is:\n\n{tgt}"}],
            "role": "task", "direction": direction, "corpus": "toy:x", "id": str(i), "src": src, "tgt": tgt}


TOY_LORA = {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj", "gate_proj", "down_proj"]}


def write_toy_run(root: Path, base: Path, *, train: dict | None = None, rows: int = 48,
                  name: str = "toy-tell", lora_dropout: float = 0.0, full: bool = False) -> tuple[Path, Path]:
    """A recipe file and runs/<name>/data/{train,dev}.jsonl for a tiny model (every weight trained
    when `full`, else a small LoRA); returns (recipe, run_dir)."""
    settings = {"max_steps": 4, "batch_tokens": 192, "max_length": 96, "eval_every": 2, "save_every": 2,
                "dev_chrf_size": 2, "lr": 5e-3, "threads": 1, "warmup_ratio": 0.0, "dtype": "float32",
                **(train or {})}
    recipe = root / "toy.yaml"
    recipe.write_text(json.dumps({
        "name": "toy", "languages": ["en", "is"], "base_model": str(base), "seed": 3, "train": settings,
        "lora": None if full else {**TOY_LORA, "lora_dropout": lora_dropout},
        "eval": {"max_new_tokens": 8, "batch_size": 4}}), encoding="utf-8")
    run_dir = root / "runs" / name
    data = run_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    # one row is cut to max_length, one has no answer left within it
    lines = [toy_row(rng, i) for i in range(rows)] + [toy_row(rng, rows, words=25), toy_row(rng, rows, words=60)]
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    dev = [toy_row(rng, i) for i in range(6)]
    (data / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in dev), encoding="utf-8")
    return recipe, run_dir


def adapter_weights(run_dir: Path, sub: str = "adapter") -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(run_dir / sub / "adapter_model.safetensors")


@pytest.fixture
def recorded_models(monkeypatch):
    """Every model the loop wraps with LoRA, with a copy of its weights before training."""
    seen = []
    original = models.attach_lora

    def attach_and_record(model, lora):
        peft_model = original(model, lora)
        seen.append((peft_model, {n: p.detach().clone() for n, p in peft_model.named_parameters()}))
        return peft_model

    monkeypatch.setattr(models, "attach_lora", attach_and_record)
    return seen


def test_training_updates_every_lora_weight_and_no_base_weight(tmp_path, tiny_model_dir, recorded_models):
    recipe, run_dir = write_toy_run(tmp_path, tiny_model_dir)
    result = train(load_recipe(str(recipe)), run_dir=run_dir, progress=False)

    (model, before), = recorded_models
    lora = {n: p for n, p in model.named_parameters() if "lora_" in n}
    assert lora and all(p.requires_grad for p in lora.values())
    for name, param in model.named_parameters():
        changed = not torch.equal(param.detach(), before[name])
        assert changed == ("lora_" in name), name

    assert result.steps == 4 and result.dev_loss is not None and result.dev_chrf is not None
    for path in ("config.yaml", "run.json", "metrics.jsonl", "loss.png", "adapter/adapter_config.json",
                 "checkpoints/step-2/state.json"):
        assert (run_dir / path).is_file(), path
    assert (run_dir / "loss.png").read_bytes()[:4] == b"\x89PNG"
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    start = events[0]
    assert start["event"] == "start" and start["train"]["truncated"] == 1 and start["train"]["dropped"] == 1
    assert start["vocab"] < start["full_vocab"]  # trained on a trimmed vocabulary
    assert [e["step"] for e in events if e["event"] == "train"] == [1, 2, 3, 4]
    assert [e["step"] for e in events if e["event"] == "eval"] == [2, 4]
    translated = [json.loads(line) for line in (run_dir / "dev_translations.jsonl").read_text().splitlines()]
    assert [r["step"] for r in translated] == [2] * 4 + [4] * 4  # 2 dev sentences per direction
    assert {r["direction"] for r in translated} == {"en-is", "is-en"} and all("hyp" in r for r in translated)
    assert all(e["tokens_per_s"] > 0 and e["lr"] >= 0 for e in events if e["event"] == "train")
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "done"
    # where the time went: optimizer steps, dev evaluations and checkpoints, each event timed
    assert [e["step"] for e in events if e["event"] == "checkpoint"] == [2]
    timed = [e["seconds"] for e in events if e["event"] in ("eval", "checkpoint")]
    assert len(timed) == 3 and all(t > 0 for t in timed)
    assert info["seconds"]["steps"] > 0
    assert info["seconds"]["evaluations"] == pytest.approx(sum(e["seconds"] for e in events if e["event"] == "eval"), abs=0.2)
    trained = {n.replace(".default", ""): p for n, p in lora.items()}
    saved = adapter_weights(run_dir, "adapter-last")  # adapter/ holds the best dev-chrF step's
    assert saved.keys() == trained.keys()
    assert all(torch.equal(saved[k], trained[k].detach()) for k in saved)


@pytest.mark.parametrize("pack", [False, True])
def test_rows_hold_one_example_each_unless_train_pack(tmp_path, tiny_model_dir, monkeypatch, pack):
    import lowres_mt.train.loop as loop

    seen = []
    original = loop.BatchStream

    def recording_stream(*args, **kwargs):
        seen.append(original(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(loop, "BatchStream", recording_stream)
    settings = {"pack": pack, "max_steps": 2, "eval_every": 0, "save_every": 0, "max_length": 512, "batch_tokens": 1024}
    recipe, run_dir = write_toy_run(tmp_path, tiny_model_dir, train=settings)
    train(load_recipe(str(recipe)), run_dir=run_dir, progress=False)
    start = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])
    assert start["packing"] is pack
    rows = [row for batch in seen[0].plan(0) for row in batch]
    assert max(len(row) for row in rows) > 1 if pack else all(len(row) == 1 for row in rows)


def test_fused_adamw_only_where_torch_has_the_kernel():
    cpu = torch.device("cpu")
    assert fused_adamw([torch.nn.Parameter(torch.zeros(3))], cpu)
    assert fused_adamw([torch.nn.Parameter(torch.zeros(3))], torch.device("cuda"))
    assert not fused_adamw([torch.nn.Parameter(torch.zeros(3))], torch.device("mps"))
    assert not fused_adamw([torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))], cpu)
    assert not fused_adamw([], cpu)


def test_adapter_is_the_best_dev_chrf_step_and_keep_last_keeps_the_last(tmp_path, tiny_model_dir):
    recipe, run_dir = write_toy_run(tmp_path, tiny_model_dir)
    train(load_recipe(str(recipe)), run_dir=run_dir, progress=False)
    info = json.loads((run_dir / "run.json").read_text())
    evals = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [e for e in evals if e["event"] == "eval"]
    best = max(evals, key=lambda e: (e["dev_chrf"], -e["step"]))  # the first of equal scores wins
    assert info["best_step"] == best["step"] and info["best_dev_chrf"] == best["dev_chrf"]
    assert [e["step"] for e in evals if e.get("best")][-1] == best["step"]
    assert adapter_weights(run_dir).keys() == adapter_weights(run_dir, "adapter-last").keys()

    # an abandoned attempt's best score in run.json must not outrank the new run's evaluations
    (tmp_path / "again").mkdir()
    recipe, again = write_toy_run(tmp_path / "again", tiny_model_dir)
    (again / "run.json").write_text(json.dumps({"status": "interrupted", "best_step": 2, "best_dev_chrf": 1e9}))
    train(load_recipe(str(recipe)), run_dir=again, progress=False)
    assert json.loads((again / "run.json").read_text())["best_dev_chrf"] < 1e9

    (tmp_path / "last").mkdir()
    recipe, last_dir = write_toy_run(tmp_path / "last", tiny_model_dir, train={"keep": "last"})
    train(load_recipe(str(recipe)), run_dir=last_dir, progress=False)
    assert not (last_dir / "adapter-last").exists()
    assert json.loads((last_dir / "run.json").read_text()).get("best_step") is None


def test_adapter_loads_on_the_untrimmed_base_and_gives_the_same_outputs(tmp_path, tiny_model_dir,
                                                                        tiny_tokenizer, recorded_models):
    from conftest import make_tiny_model
    from peft import PeftModel

    recipe, run_dir = write_toy_run(tmp_path, tiny_model_dir)
    train(load_recipe(str(recipe)), run_dir=run_dir, progress=False)
    (trimmed, _), = recorded_models
    vmap = trimmed.get_base_model().vocab_map

    full = PeftModel.from_pretrained(make_tiny_model(tiny_tokenizer), run_dir / "adapter-last").eval()
    ids = vmap.new_to_old[torch.tensor([[2, 5, 9, 14, 20, 31, 40]]) % len(vmap)]
    with torch.no_grad():
        full_logits = full(input_ids=ids).logits[..., vmap.new_to_old]
        trimmed_logits = trimmed.eval()(input_ids=vmap.to_new(ids)).logits
    torch.testing.assert_close(trimmed_logits, full_logits, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(full_logits, make_tiny_model(tiny_tokenizer)(input_ids=ids).logits[..., vmap.new_to_old])
    # the ids the head was trained over travel with the adapter; decoding is limited to them
    assert Run.open(run_dir).vocabulary == vmap.new_to_old.tolist()


def test_untrimmed_training_also_works(tmp_path, tiny_model_dir):
    recipe, run_dir = write_toy_run(tmp_path, tiny_model_dir, train={"trim_vocab": False, "max_steps": 2,
                                                                      "save_every": 0, "eval_every": 0})
    result = train(load_recipe(str(recipe)), run_dir=run_dir, progress=False)
    start = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])
    assert start["vocab"] == start["full_vocab"] and result.steps == 2 and result.loss > 0
    assert Run.open(run_dir).vocabulary is None


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_folder_holding_another_run_is_refused_untouched(tmp_path, tiny_model_dir):
    recipe, run_dir = write_toy_run(tmp_path, tiny_model_dir, train={"max_steps": 2, "eval_every": 0})
    train(load_recipe(str(recipe)), run_dir=run_dir, progress=False)
    before = snapshot(run_dir)
    with pytest.raises(UserError, match=r"different run \(train.lr"):
        train(load_recipe(str(recipe), ["train.lr=0.1"]), run_dir=run_dir, progress=False)
    with pytest.raises(UserError, match="already trained"):
        train(load_recipe(str(recipe)), run_dir=run_dir, progress=False)
    assert snapshot(run_dir) == before


def test_restart_without_resume_is_refused_when_checkpoints_exist(tmp_path, tiny_model_dir):
    recipe, run_dir = write_toy_run(tmp_path, tiny_model_dir, train={"max_steps": 3, "eval_every": 0})
    cfg = load_recipe(str(recipe))
    train(cfg, run_dir=run_dir, progress=False)
    info = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))
    with pytest.raises(UserError, match="--resume"):
        train(cfg, run_dir=run_dir, progress=False)
    with pytest.raises(UserError, match="no run to resume"):
        train(cfg, run_dir=tmp_path / "runs" / "nothing", resume=True, progress=False)


def test_empty_or_unusable_data_is_a_user_error(tmp_path, tiny_model_dir):
    recipe, run_dir = write_toy_run(tmp_path, tiny_model_dir)
    (run_dir / "data" / "train.jsonl").write_text("")
    with pytest.raises(UserError, match="holds no examples"):
        train(load_recipe(str(recipe)), run_dir=run_dir, progress=False)
    recipe, run_dir = write_toy_run(tmp_path, tiny_model_dir, name="short", train={"max_length": 8})
    with pytest.raises(UserError, match="max_length"):
        train(load_recipe(str(recipe)), run_dir=run_dir, progress=False)


def test_cli_trains_and_reports_bad_input_in_one_line(tmp_path, tiny_model_dir, monkeypatch, capsys):
    from lowres_mt.cli import main

    recipe, run_dir = write_toy_run(tmp_path, tiny_model_dir, train={"max_steps": 1, "eval_every": 0})
    monkeypatch.setenv("LOWRES_MT_RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr("sys.argv", ["lowres-mt", "train", str(recipe), "--no-progress"])
    with pytest.raises(SystemExit) as exit_info:
        main()  # default run name: <recipe>-<method> = toy-tell
    assert exit_info.value.code == 0
    assert json.loads((run_dir / "run.json").read_text())["status"] == "done"
    assert "trained toy-tell" in capsys.readouterr().out

    monkeypatch.setattr("sys.argv", ["lowres-mt", "train", str(recipe), "--no-progress", "--method", "sft",
                                     "--name", "toy-tell"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2
    assert err.startswith("error:") and "different run (train.method" in err and "Traceback" not in err


def test_config_comparison_names_the_first_differing_key():
    from lowres_mt.train.rundir import first_difference

    old = {"seed": 0, "train": {"lr": 2e-4, "epochs": 1.0}, "lora": {"r": 16}}
    assert first_difference(old, {**old, "added_later": 1}) is None  # fields one version lacks
    assert first_difference(old, {**old, "train": {"lr": 1e-4, "epochs": 1.0}}) == "train.lr"
    assert first_difference(old, {**old, "lora": {"r": 8}}) == "lora.r"
