"""Linear weights packed for oneDNN compute what `F.linear` computes, and only decoding copies are packed."""

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_TOKENIZER, make_tiny_model
from transformers import AutoTokenizer

from lowres_mt.translate import greedy, packed
from lowres_mt.translate.backends import decoding_copy
from lowres_mt.translate.greedy import OutputHead

needs_packing = pytest.mark.skipif(not packed.supported(torch.float32), reason="no oneDNN packing in this torch build")


@needs_packing
@pytest.mark.parametrize("bias", [False, True])
def test_packed_linear_gives_f_linear(bias):
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(48, 32, generator=generator)
    b = torch.randn(48, generator=generator) if bias else None
    for rows in (1, 5, 32):
        x = torch.randn(rows, 32, generator=generator)
        torch.testing.assert_close(packed.PackedLinear(weight, b)(x), F.linear(x, weight, b))
        x3 = x[:, None, :]  # (batch, positions, features), as the transformer body calls it
        assert packed.PackedLinear(weight, b)(x3).shape == (rows, 1, 48)
    if packed.supported(torch.bfloat16):  # the same kernel as F.linear's: equal bit for bit
        x, w16 = torch.randn(32, 32, generator=generator).bfloat16(), weight.bfloat16()
        assert torch.equal(packed.PackedLinear(w16)(x), F.linear(x, w16))


def test_projection_falls_back_to_f_linear_where_packing_is_unsupported(monkeypatch):
    monkeypatch.setattr(packed, "supported", lambda dtype=None: False)
    weight, x = torch.randn(6, 4), torch.randn(2, 4)
    project = packed.projection(weight)
    assert not isinstance(project, packed.PackedLinear)
    torch.testing.assert_close(project(x), F.linear(x, weight))
    model = tiny()
    assert decoding_copy(model, "cpu", torch.float32) is model  # nothing to gain from a copy


def tiny():
    return make_tiny_model(AutoTokenizer.from_pretrained(TINY_TOKENIZER), seed=3)


@needs_packing
def test_decoding_copy_packs_the_body_and_leaves_the_model_alone():
    model = tiny()
    ids = torch.tensor([[2, 10, 11, 12, 13]])
    expected = model(input_ids=ids).logits
    copied = decoding_copy(model, "cpu", torch.float32)
    assert copied is not model
    layers = [m for m in copied.get_decoder().modules() if isinstance(m, packed.PackedLinear)]
    assert len(layers) == 7 * model.config.num_hidden_layers  # q k v o, gate up down
    assert not any(isinstance(m, packed.PackedLinear) for m in model.modules())
    assert isinstance(copied.get_output_embeddings(), torch.nn.Linear)  # tied to the embedding: left as it is
    torch.testing.assert_close(copied(input_ids=ids).logits, expected, rtol=1e-4, atol=1e-4)


@needs_packing
def test_every_id_allowed_still_packs_the_output_layer_on_cpu():
    model = tiny()
    greedy._slices.clear()
    head = OutputHead(model, None)
    assert head.own and not head.sliced
    assert isinstance(head.project, packed.PackedLinear)
    ids = torch.tensor([[2, 10, 11, 12, 13], [2, 20, 21, 22, 23]])
    torch.testing.assert_close(head(input_ids=ids), model(input_ids=ids).logits[:, -1, :], rtol=1e-4, atol=1e-4)
    assert torch.equal(head.choose(head(input_ids=ids)), model(input_ids=ids).logits[:, -1, :].argmax(-1))
