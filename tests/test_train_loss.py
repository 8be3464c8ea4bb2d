"""Target-only chunked loss: same value and gradients as the full-logit loss; packing keeps
examples apart; prompt positions get no gradient."""

import pytest
import torch
import torch.nn.functional as F
from conftest import make_tiny_model
from peft import LoraConfig, get_peft_model

from lowres_mt.train.batching import collate
from lowres_mt.train.loss import TargetOnlyLoss, linear_cross_entropy, packing_isolated
from lowres_mt.train.tokenize import tokenize_example

CHATS = [
    [{"role": "user", "content": "Translate to Icelandic.\n\nGood morning."},
     {"role": "assistant", "content": "Góðan daginn."}],
    [{"role": "user", "content": "Translate to English.\n\nTakk fyrir."},
     {"role": "assistant", "content": "Thank you."}],
    [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."},
     {"role": "user", "content": "Another?"}, {"role": "assistant", "content": "Red."}],
]


def lora_model(tokenizer):
    model = make_tiny_model(tokenizer)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                        init_lora_weights=False)  # random B: every LoRA weight gets a gradient
    model = get_peft_model(model, config)
    model.eval()  # no dropout: runs are comparable
    return model


def lora_grads(model) -> dict[str, torch.Tensor]:
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad(set_to_none=True)
    return grads


def assert_same_grads(a: dict, b: dict, tol: float = 1e-5):
    assert a.keys() == b.keys() and a
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=tol, rtol=1e-4, msg=name)


@pytest.fixture
def examples(tiny_tokenizer):
    return [tokenize_example(tiny_tokenizer, chat, max_length=256)[0] for chat in CHATS]


@pytest.mark.parametrize("softcap", [None, 30.0])
@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_linear_cross_entropy_matches_torch(softcap, chunk):
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(23, 16, generator=gen, requires_grad=True)
    weight = torch.randn(50, 16, generator=gen, requires_grad=True)
    targets = torch.randint(0, 50, (23,), generator=gen)
    logits = hidden @ weight.T
    if softcap:
        logits = softcap * torch.tanh(logits / softcap)
    ref = F.cross_entropy(logits, targets, reduction="sum")
    (ref * 0.5).backward()
    ref_h, ref_w = hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None
    ours = linear_cross_entropy(hidden, weight, targets, chunk=chunk, softcap=softcap)
    (ours * 0.5).backward()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(hidden.grad, ref_h)
    torch.testing.assert_close(weight.grad, ref_w)


def test_target_only_loss_equals_full_logit_loss(tiny_tokenizer, examples):
    model = lora_model(tiny_tokenizer)
    batch = collate(examples, [[0], [1], [2]], pad_id=tiny_tokenizer.pad_token_id)
    full = model(input_ids=batch.input_ids, position_ids=batch.position_ids, labels=batch.labels).loss
    full.backward()
    full_grads = lora_grads(model)

    head_calls = []
    model.get_output_embeddings().register_forward_hook(lambda *a: head_calls.append(1))
    loss_sum, count = TargetOnlyLoss(model, chunk=8)(batch.input_ids, batch.position_ids, batch.labels)
    (loss_sum / count).backward()
    assert head_calls == []  # no full-vocabulary logits from the output layer
    assert count == batch.n_labels
    torch.testing.assert_close(loss_sum / count, full, atol=1e-5, rtol=1e-5)
    assert_same_grads(lora_grads(model), full_grads)


def test_packed_rows_give_the_same_loss_and_gradients_as_separate_examples(tiny_tokenizer, examples):
    model = lora_model(tiny_tokenizer)
    module = TargetOnlyLoss(model)
    assert packing_isolated(model)
    separate = 0.0
    for i in range(3):
        batch = collate(examples, [[i]], pad_id=tiny_tokenizer.pad_token_id)
        loss, _ = module(batch.input_ids, batch.position_ids, batch.labels)
        loss.backward()
        separate += loss.item()
    separate_grads = lora_grads(model)

    packed = collate(examples, [[0, 1, 2]], pad_id=tiny_tokenizer.pad_token_id)
    assert packed.input_ids.shape[0] == 1
    loss, _ = module(packed.input_ids, packed.position_ids, packed.labels)
    loss.backward()
    assert loss.item() == pytest.approx(separate, rel=1e-5)
    assert_same_grads(lora_grads(model), separate_grads)

    # a row with the wrong (continuing) positions would mix the examples: the test can fail
    mixed = torch.arange(packed.input_ids.shape[1])[None]
    wrong, _ = module(packed.input_ids, mixed, packed.labels)
    assert abs(wrong.item() - separate) > 1e-3


def test_prompt_and_padding_positions_get_no_gradient(tiny_tokenizer, examples):
    model = lora_model(tiny_tokenizer)
    captured = {}

    def keep_hidden(module, args, output):
        output.last_hidden_state.retain_grad()
        captured["hidden"] = output.last_hidden_state

    model.get_base_model().get_decoder().register_forward_hook(keep_hidden)
    batch = collate(examples, [[0, 1], [2]], pad_id=tiny_tokenizer.pad_token_id)
    loss, _ = TargetOnlyLoss(model)(batch.input_ids, batch.position_ids, batch.labels)
    loss.backward()
    grad = captured["hidden"].grad.abs().sum(-1)  # [rows, length]
    predicts_label = torch.zeros_like(batch.labels, dtype=torch.bool)
    predicts_label[:, :-1] = batch.labels[:, 1:] != -100
    assert (grad[~predicts_label] == 0).all()
    assert (grad[predicts_label] > 0).all()
