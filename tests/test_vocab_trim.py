"""Vocabulary trimming: same logits on kept ids, adapters portable to the untrimmed base."""

import json

import pytest
import torch
from conftest import make_tiny_model
from peft import PeftModel
from safetensors import safe_open

from lowres_mt.errors import UserError
from lowres_mt.models import attach_lora, save_adapter
from lowres_mt.vocab import IGNORE_INDEX, keep_ids_for, trim_vocab

TEXTS = ["Hello world", "Halló heimur", "the cat"]


def _data_ids(tokenizer):
    turns = [[{"role": "user", "content": t}, {"role": "assistant", "content": t[::-1]}] for t in TEXTS]
    return [tokenizer.apply_chat_template(m, tokenize=True) for m in turns]


def _keep(tokenizer):
    return keep_ids_for(tokenizer, _data_ids(tokenizer))


def _batch(tokenizer):
    ids = torch.tensor([_data_ids(tokenizer)[0]])
    return ids, torch.ones_like(ids)


def test_keep_ids_cover_data_specials_and_turn_markers(tiny_tokenizer):
    keep = set(_keep(tiny_tokenizer))
    markers = tiny_tokenizer.convert_tokens_to_ids(["<start_of_turn>", "<end_of_turn>"])
    specials = [tiny_tokenizer.pad_token_id, tiny_tokenizer.eos_token_id, tiny_tokenizer.bos_token_id]
    assert set(markers + specials) <= keep
    assert all(set(ids) <= keep for ids in _data_ids(tiny_tokenizer))
    assert len(keep) < len(tiny_tokenizer) // 2


def _model(tokenizer, tied):
    model = make_tiny_model(tokenizer, seed=1)
    if not tied:
        model.config.tie_word_embeddings = False
        weight = torch.randn(model.lm_head.weight.shape, generator=torch.Generator().manual_seed(7))
        model.lm_head.weight = torch.nn.Parameter(weight)
    return model


@pytest.mark.parametrize("tied", [True, False])
def test_trimmed_logits_equal_full_logits_on_kept_ids(tiny_tokenizer, tied):
    full, trimmed = _model(tiny_tokenizer, tied), _model(tiny_tokenizer, tied)
    vmap = trim_vocab(trimmed, _keep(tiny_tokenizer))
    ids, mask = _batch(tiny_tokenizer)
    with torch.no_grad():
        want = full(input_ids=ids, attention_mask=mask).logits[..., vmap.new_to_old]
        got = trimmed(input_ids=vmap.to_new(ids), attention_mask=mask).logits
    assert got.shape[-1] == len(vmap) == trimmed.config.vocab_size
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert (trimmed.lm_head.weight is trimmed.model.embed_tokens.weight) == tied
    assert trimmed.config.pad_token_id == vmap.to_new([tiny_tokenizer.pad_token_id]).item()
    assert trimmed.generation_config.eos_token_id == vmap.to_new([tiny_tokenizer.eos_token_id]).item()
    out = trimmed.generate(vmap.to_new(ids), attention_mask=mask, max_new_tokens=4, do_sample=False)
    first = want[0, -1].argmax()  # greedy over kept ids = argmax of the restricted full logits
    assert out[0, ids.shape[1]] == first and out.max() < len(vmap)


def test_trimmed_loss_equals_full_loss_restricted_to_kept_ids(tiny_tokenizer, tiny_model):
    full = make_tiny_model(tiny_tokenizer)
    vmap = trim_vocab(tiny_model, _keep(tiny_tokenizer))
    ids, mask = _batch(tiny_tokenizer)
    labels = ids.clone()
    labels[:, :3] = IGNORE_INDEX
    batch = vmap.remap_batch({"input_ids": ids, "attention_mask": mask, "labels": labels})
    with torch.no_grad():
        loss = tiny_model(**batch).loss
        logits = full(input_ids=ids, attention_mask=mask).logits[..., vmap.new_to_old]
    want = torch.nn.functional.cross_entropy(logits[0, :-1], batch["labels"][0, 1:], ignore_index=IGNORE_INDEX)
    torch.testing.assert_close(loss, want, atol=1e-5, rtol=0)


def test_vocab_map_round_trip_and_unknown_ids(tiny_tokenizer, tiny_model):
    vmap = trim_vocab(tiny_model, [5, 9, 40])
    old = torch.tensor([[5, 40, IGNORE_INDEX]])
    new = vmap.to_new(old)
    assert new.max() < len(vmap) and new[0, 2] == IGNORE_INDEX
    assert torch.equal(vmap.to_old(new), old)
    dropped = next(i for i in range(vmap.full_size) if not vmap.kept(i))
    with pytest.raises(ValueError, match="trimmed away"):
        vmap.to_new([dropped])
    unk = tiny_tokenizer.unk_token_id
    if vmap.kept(unk):
        assert vmap.to_old(vmap.to_new([dropped], fallback=unk)).tolist() == [unk]
    with pytest.raises(ValueError, match="outside"):
        trim_vocab(make_tiny_model(tiny_tokenizer), [10**6])


def test_trim_refuses_lora_wrapped_model_and_lora_on_embeddings(tiny_tokenizer, tiny_model):
    with pytest.raises(ValueError, match="trim first"):
        trim_vocab(attach_lora(make_tiny_model(tiny_tokenizer), {"r": 2}), [1, 2, 3])
    trim_vocab(tiny_model, _keep(tiny_tokenizer))
    with pytest.raises(UserError, match="trimmed vocabulary"):
        attach_lora(tiny_model, {"r": 2, "target_modules": ["q_proj", "lm_head"]})


def _train_a_few_steps(model, vmap, tokenizer, steps=4):
    ids, mask = _batch(tokenizer)
    batch = vmap.remap_batch({"input_ids": ids, "attention_mask": mask, "labels": ids})
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    return model.eval()


def test_adapter_trained_on_trimmed_model_works_on_untrimmed_base(tiny_tokenizer, tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    vmap = trim_vocab(base, _keep(tiny_tokenizer))
    trained = _train_a_few_steps(attach_lora(base, {"r": 4, "lora_alpha": 8}), vmap, tiny_tokenizer)
    adapter = save_adapter(trained, tmp_path / "adapter")

    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_model_dir)
    with safe_open(adapter / "adapter_model.safetensors", framework="pt") as f:
        assert f.keys() and all("lora_" in k for k in f.keys())

    untrimmed = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    loaded = PeftModel.from_pretrained(untrimmed, adapter).eval()
    ids, mask = _batch(tiny_tokenizer)
    with torch.no_grad():
        want = trained(input_ids=vmap.to_new(ids), attention_mask=mask).logits
        got = loaded(input_ids=ids, attention_mask=mask).logits[..., vmap.new_to_old]
        plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir)(input_ids=ids).logits
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert not torch.allclose(got, plain[..., vmap.new_to_old], atol=1e-3)  # the adapter matters


def test_load_run_explains_adapter_saved_with_trimmed_embeddings(tiny_tokenizer, tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    from lowres_mt.config import RecipeConfig, dump_recipe
    from lowres_mt.models import load_run

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    trim_vocab(base, _keep(tiny_tokenizer))
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match="save_embedding_layers"):
        attach_lora(base, {"r": 2}).save_pretrained(run / "adapter")  # peft's default keeps embeddings
    cfg = RecipeConfig(name="t", languages=("en", "is"), base_model=str(tiny_model_dir))
    (run / "config.yaml").write_text(dump_recipe(cfg))
    (run / "run.json").write_text(json.dumps({"base_model": str(tiny_model_dir), "status": "done"}))
    with pytest.raises(UserError, match="trimmed vocabulary without lowres_mt.models.save_adapter"):
        load_run(run)
