"""Full fine-tuning (`lora: null`) on a tiny random model: every weight trains, the run folder holds
float32 safetensors that load onto the untrimmed base with the same outputs, checkpoints resume, and
settings that cannot work are one-line errors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from test_train_loop import write_toy_run
from test_train_resume import sigterm_self_after_checkpoint

from lowres_mt import models
from lowres_mt.config import load_recipe
from lowres_mt.errors import UserError
from lowres_mt.run import Run
from lowres_mt.train import loop
from lowres_mt.train.loop import train


@pytest.fixture
def prepared(monkeypatch):
    """The model each training run trains, with a copy of its weights from before training."""
    seen = []
    original = loop.prepare

    def prepare_and_record(*args, **kwargs):
        prep = original(*args, **kwargs)
        seen.append((prep.model, {n: p.detach().clone() for n, p in prep.model.named_parameters()}))
        return prep

    monkeypatch.setattr(loop, "prepare", prepare_and_record)
    return seen


def test_full_fine_tuning_trains_every_weight_and_loads_on_the_untrimmed_base(tmp_path, tiny_model_dir,
                                                                              tiny_tokenizer, prepared):
    from conftest import make_tiny_model

    recipe, run_dir = write_toy_run(tmp_path, tiny_model_dir, full=True, train={"keep": "last"})
    train(load_recipe(str(recipe)), run_dir=run_dir, progress=False)
    (trimmed, before), = prepared
    assert not hasattr(trimmed, "peft_config")
    for name, param in trimmed.named_parameters():
        assert param.requires_grad and not torch.equal(param.detach(), before[name]), name

    run = Run.open(run_dir)
    assert run.full and not (run_dir / "adapter" / "adapter_config.json").exists()
    saved = load_file(run.adapter_weights)
    assert all(t.dtype == torch.float32 for t in saved.values())
    assert json.loads((run_dir / "run.json").read_text())["dtype"] == "float32"

    model, _, _ = models.load_run(run)
    vmap = trimmed.vocab_map
    assert run.vocabulary == vmap.new_to_old.tolist()
    ids = vmap.new_to_old[torch.tensor([[2, 5, 9, 14, 20, 31, 40]]) % len(vmap)]
    with torch.no_grad():
        full_logits = model(input_ids=ids).logits[..., vmap.new_to_old]
        trimmed_logits = trimmed.eval()(input_ids=vmap.to_new(ids)).logits
        base_logits = make_tiny_model(tiny_tokenizer)(input_ids=ids).logits[..., vmap.new_to_old]
    torch.testing.assert_close(full_logits, trimmed_logits, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(full_logits, base_logits)
    # rows the run never trained keep the base's values
    dropped = torch.ones(model.get_input_embeddings().num_embeddings, dtype=torch.bool)
    dropped[vmap.new_to_old] = False
    base = make_tiny_model(tiny_tokenizer)
    assert torch.equal(model.get_input_embeddings().weight[dropped], base.get_input_embeddings().weight[dropped])


def test_a_full_fine_tuning_run_resumes_to_the_same_weights(tmp_path, tiny_model_dir):
    settings = {"max_steps": 12, "save_every": 2, "eval_every": 0, "dev_chrf_size": 1}
    recipe, reference_dir = write_toy_run(tmp_path, tiny_model_dir, full=True, train=settings, name="reference")
    train(load_recipe(str(recipe)), run_dir=reference_dir, progress=False)
    expected = load_file(Run.open(reference_dir).adapter_weights)

    _, run_dir = write_toy_run(tmp_path, tiny_model_dir, full=True, train=settings, name="toy-tell")
    cfg = load_recipe(str(recipe))
    watcher = sigterm_self_after_checkpoint(run_dir / "checkpoints", after=0)
    with pytest.raises(KeyboardInterrupt):  # SIGTERM stops the run like Ctrl-C
        train(cfg, run_dir=run_dir, progress=False)
    watcher.join()
    assert (run_dir / "checkpoints").is_dir() and not (run_dir / "adapter").exists()
    train(cfg, run_dir=run_dir, resume=True, progress=False)
    got = load_file(Run.open(run_dir).adapter_weights)
    assert got.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], atol=1e-5, rtol=1e-4, msg=key)


def test_bf16_or_a_lora_checkpoint_with_lora_null_is_a_user_error(tmp_path, tiny_model_dir):
    recipe, run_dir = write_toy_run(tmp_path, tiny_model_dir, full=True, train={"dtype": "bfloat16"})
    with pytest.raises(UserError, match="float32"):
        train(load_recipe(str(recipe)), run_dir=run_dir, progress=False)
    assert not (run_dir / "adapter").exists()

    (tmp_path / "lora").mkdir()
    recipe, run_dir = write_toy_run(tmp_path / "lora", tiny_model_dir, train={"max_steps": 4, "eval_every": 0})
    train(load_recipe(str(recipe)), run_dir=run_dir, progress=False)
    with pytest.raises(UserError, match="lora"):
        train(load_recipe(str(recipe), ["lora=null"]), run_dir=run_dir, resume=True, progress=False)
