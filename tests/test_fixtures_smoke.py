import torch
from conftest import make_tiny_model


def test_tiny_model_runs_chat_template(tiny_tokenizer):
    model = make_tiny_model(tiny_tokenizer)
    ids = tiny_tokenizer.apply_chat_template([{"role": "user", "content": "Hello"}], add_generation_prompt=True)
    out = model(torch.tensor([ids]))
    assert out.logits.shape == (1, len(ids), len(tiny_tokenizer))
