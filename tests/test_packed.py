"""Linear weights packed for oneDNN compute what `F.linear` computes, and only decoding copies are packed."""

import gc
import platform

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
    if packed.supported(torch.bfloat16):  # oneDNN computes both (bit for bit on the CPUs measured)
        x, w16 = torch.randn(32, 32, generator=generator).bfloat16(), weight.bfloat16()
        torch.testing.assert_close(packed.PackedLinear(w16)(x), F.linear(x, w16), rtol=1.6e-2, atol=1e-2)


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64") or not torch.backends.mkldnn.is_available(),
                    reason="oneDNN packing is only expected on x86 builds with mkldnn")
def test_packing_is_supported_on_x86():  # else every test here would skip, and a broken probe pass unseen
    assert packed.supported(torch.float32)


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
def test_a_packed_copy_packs_its_whole_output_layer_and_a_trained_model_does_not():
    model = tiny()
    ids = torch.tensor([[2, 10, 11, 12, 13], [2, 20, 21, 22, 23]])
    expected = model(input_ids=ids).logits[:, -1, :]
    assert not OutputHead(model, None).own  # its weights may change under a fused optimizer step
    head = OutputHead(decoding_copy(model, "cpu", torch.float32), None)
    assert head.own and not head.sliced and isinstance(head.project, packed.PackedLinear)
    torch.testing.assert_close(head(input_ids=ids), expected, rtol=1e-4, atol=1e-4)
    assert torch.equal(head.choose(head(input_ids=ids)), expected.argmax(-1))


@needs_packing
@pytest.mark.parametrize("share", [None, 0.5])
def test_a_packed_output_layer_is_never_reused_for_another_model(share):
    ids = torch.tensor([[2, 10, 11, 12, 13]])
    allowed = None if share is None else torch.arange(0, 200, 2)
    for seed in (3, 4, 5):  # one after the other, as eval opens and closes systems
        model = make_tiny_model(AutoTokenizer.from_pretrained(TINY_TOKENIZER), seed=seed)
        expected = model(input_ids=ids).logits[:, -1, :]
        expected = expected if allowed is None else expected[:, allowed]
        copied = decoding_copy(model, "cpu", torch.float32)
        torch.testing.assert_close(OutputHead(copied, allowed)(input_ids=ids), expected, rtol=1e-4, atol=1e-4)
        del model, copied
        gc.collect()
    assert len(greedy._slices) <= 1


@needs_packing
def test_a_model_that_is_its_own_decoder_keeps_its_output_layer(tiny_tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    from lowres_mt.translate import DecodeSettings, Engine

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tiny_tokenizer), n_embd=32, n_layer=2, n_head=2,
                                       n_positions=256, bos_token_id=tiny_tokenizer.bos_token_id,
                                       eos_token_id=tiny_tokenizer.eos_token_id)).eval()
    copied = decoding_copy(model, "cpu", torch.float32)
    assert isinstance(copied.get_output_embeddings(), torch.nn.Linear)
    settings = DecodeSettings(batch_size=2, max_new_tokens=6)
    sources = ["Where is the station?", "Rain"]
    assert (Engine(copied, tiny_tokenizer, settings, progress=False).translate(sources, "en", "is")
            == Engine(model, tiny_tokenizer, settings, progress=False).translate(sources, "en", "is"))
