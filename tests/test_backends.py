"""One way from a loaded model to an engine: backend choice, fallback notices, conversion cache,
and cache keys that never mix backends."""

import dataclasses
import io

import pytest
from conftest import make_tiny_model
from rich.console import Console

from lowres_mt.config import RecipeConfig
from lowres_mt.errors import UserError
from lowres_mt.evaluate import cache, systems
from lowres_mt.precision import bf16_matmul_speedup as MEASURED_SPEEDUP
from lowres_mt.records import Pair
from lowres_mt.translate import DecodeSettings, Engine, backends
from lowres_mt.translate.backends import Choice, choose, open_engine

SOURCES = ["The cat sat on the mat.", "Hi", "Where is the station?", "He added that it was early."]


@pytest.mark.parametrize(("settings", "expected"), [
    (DecodeSettings(), "torch"),
    (DecodeSettings(backend="auto"), "torch"),  # CPU: torch, where CTranslate2 measured slower
    (DecodeSettings(backend="ctranslate2"), "ctranslate2-float32"),
    (DecodeSettings(backend="ctranslate2", quantization="int8"), "ctranslate2-int8"),
    (DecodeSettings(backend="ctranslate2", num_beams=3), "torch"),  # would answer differently
    (DecodeSettings(backend="ctranslate2", quantization="float16"), "torch"),  # needs a GPU
])
def test_choice(settings, expected):
    choice = choose(settings)
    assert choice.label == expected
    assert bool(choice.reason) == (settings.backend == "ctranslate2" and expected == "torch")


@pytest.mark.parametrize(("settings", "faster", "expected"), [
    (DecodeSettings(backend="auto"), True, "torch-bfloat16"),
    (DecodeSettings(backend="auto"), False, "torch"),
    (DecodeSettings(backend="auto", quantization="float32"), True, "torch"),  # asked for
    (DecodeSettings(backend="torch"), True, "torch"),  # the reference: float32 unless asked
    (DecodeSettings(backend="torch", quantization="bfloat16"), False, "torch-bfloat16"),
    (DecodeSettings(backend="ctranslate2"), True, "ctranslate2-float32"),  # auto: float32
    (DecodeSettings(backend="auto", device="cuda"), True, "ctranslate2-float32"),
    # CUDA, where CTranslate2 cannot decode alike: torch, in bfloat16 where the GPU has it
    (DecodeSettings(backend="auto", device="cuda", num_beams=2), True, "torch-bfloat16"),
])
def test_auto_decodes_in_bfloat16_where_the_device_measures_it_faster(monkeypatch, settings, faster, expected):
    monkeypatch.setattr(backends, "native_bf16", lambda device: faster)
    assert choose(settings).label == expected


def test_a_bfloat16_engine_keeps_the_float32_model_and_answers(model, tiny_tokenizer):
    import torch

    settings = DecodeSettings(batch_size=4, max_new_tokens=8, quantization="bfloat16")
    engine = open_engine(model, tiny_tokenizer, settings, weights=lambda: "x", progress=False)
    assert engine.model.dtype == torch.bfloat16 and model.dtype == torch.float32
    assert engine.fallback.model is model
    assert engine.model.config._attn_implementation == backends.FP32_ATTENTION
    answers = engine.translate(SOURCES, "en", "is")
    assert len(answers) == len(SOURCES) and any(answers)


def test_a_float32_engine_decodes_a_packed_copy_as_the_model_does(model, tiny_tokenizer):
    from lowres_mt.translate import Engine, packed

    settings = DecodeSettings(batch_size=4, max_new_tokens=8, backend="torch")
    engine = open_engine(model, tiny_tokenizer, settings, weights=lambda: "x", progress=False)
    if not packed.supported(model.dtype):
        pytest.skip("no oneDNN packing in this torch build")
    assert engine.model is not model and engine.fallback is None
    assert any(isinstance(m, packed.PackedLinear) for m in engine.model.modules())
    assert not any(isinstance(m, packed.PackedLinear) for m in model.modules())
    reference = Engine(model, tiny_tokenizer, settings, progress=False)
    assert engine.translate(SOURCES, "en", "is") == reference.translate(SOURCES, "en", "is")


def test_fp32_attention_matches_sdpa_on_bfloat16_inputs():
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    torch.manual_seed(0)
    module = torch.nn.Module()
    module.is_causal, module.num_key_value_groups = True, 1
    q, k, v = (torch.randn(2, 4, 5, 8) for _ in range(3))
    mask = torch.zeros(2, 1, 5, 5, dtype=torch.bfloat16)
    mask[0, :, :, 0] = torch.finfo(torch.bfloat16).min  # the first row's first position is padding
    expected, _ = sdpa_attention_forward(module, q, k, v, mask.float(), scaling=0.5)
    out, _ = backends.fp32_attention(module, q.bfloat16(), k.bfloat16(), v.bfloat16(), mask, scaling=0.5)
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), expected, atol=3e-2)


def test_the_speed_probe_measures_a_ratio():
    assert 0 < MEASURED_SPEEDUP(1) < 100  # the real probe (conftest patches the module's name)


@pytest.mark.parametrize("bad", [{"backend": "onnx"}, {"quantization": "int4"}])
def test_unknown_backend_or_quantization_is_a_user_error(bad):
    with pytest.raises(UserError, match="unknown"):
        choose(DecodeSettings(**bad))


def test_missing_package_falls_back(monkeypatch):
    monkeypatch.setattr(backends.importlib.util, "find_spec", lambda name: None)
    assert choose(DecodeSettings(backend="ctranslate2")) == Choice(
        "torch", reason="the ctranslate2 package is not installed (pip install ctranslate2)")


@pytest.fixture(scope="module")
def model(tiny_tokenizer):
    return make_tiny_model(tiny_tokenizer, seed=4)


def test_ctranslate2_engine_is_converted_once_and_answers_as_torch(model, tiny_tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("LOWRES_MT_CACHE", str(tmp_path))
    settings = DecodeSettings(batch_size=4, max_new_tokens=8, backend="ctranslate2")
    out = io.StringIO()
    console = Console(file=out, width=200)
    ct2 = open_engine(model, tiny_tokenizer, settings, weights=lambda: "tiny" * 16, progress=False, console=console)
    torch_engine = open_engine(model, tiny_tokenizer, dataclasses.replace(settings, backend="torch"),
                               weights=lambda: pytest.fail("torch needs no digest"), progress=False)
    assert type(torch_engine) is Engine and type(ct2).__name__ == "Ct2Engine"
    assert ct2.translate(SOURCES, "en", "is") == torch_engine.translate(SOURCES, "en", "is")
    assert "converting the model for CTranslate2" in out.getvalue()
    converted = list((tmp_path / "ct2").iterdir())
    assert len(converted) == 1 and "float32" in converted[0].name
    # answers limited to some ids: a second conversion, with an output layer of those ids only
    vocabulary = list(range(len(tiny_tokenizer) // 2))
    limited = open_engine(model, tiny_tokenizer, settings, weights=lambda: "tiny" * 16, progress=False,
                          console=console, vocabulary=vocabulary)
    reference = Engine(model, tiny_tokenizer, settings, progress=False, vocabulary=vocabulary)
    assert limited.translate(SOURCES, "en", "is") == reference.translate(SOURCES, "en", "is")
    heads = [p.name for p in (tmp_path / "ct2").iterdir() if p not in converted]
    assert len(heads) == 1 and "-float32-h" in heads[0] and len(limited._heads) == 1
    out.truncate(0)
    open_engine(model, tiny_tokenizer, settings, weights=lambda: "tiny" * 16, progress=False, console=console)
    assert "converting" not in out.getvalue()  # reused


def test_a_named_backend_that_cannot_decode_alike_says_so(model, tiny_tokenizer):
    out = io.StringIO()
    engine = open_engine(model, tiny_tokenizer, DecodeSettings(backend="ctranslate2", num_beams=2),
                         weights=lambda: "x", progress=False, console=Console(file=out, width=300))
    assert type(engine) is Engine
    assert out.getvalue().startswith("note: decoding with torch: beam search")


def test_cache_keys_differ_by_backend_and_quantization_not_by_batch_size():
    cfg = RecipeConfig(name="toy", languages=("en", "is"))
    system = systems.builtin_system(cfg, "zero-shot")
    pairs = [Pair("Hello.", "Halló.", "en", "is", "toy", "0")]

    def key(**kw):
        return cache.generation_key(system.signature(cfg, DecodeSettings(**kw), "is"), "toy:test", "en-is", pairs)

    torch_key = key()
    assert key(backend="auto") == torch_key  # auto decodes with torch on CPU: same outputs, same key
    assert key(quantization="int8") == torch_key  # torch does not quantize
    assert key(batch_size=1) == key(batch_size=64) == torch_key  # speed only
    assert key(backend="ctranslate2", batch_size=1) == key(backend="ctranslate2", batch_size=64)
    # what decodes, not what was asked
    assert key(backend="auto", device="cuda") == key(backend="ctranslate2")
    assert key(backend="ctranslate2", quantization="float32") == key(backend="ctranslate2")  # auto: float32
    keys = {torch_key, key(backend="ctranslate2"), key(backend="ctranslate2", quantization="int8_float32"),
            key(backend="ctranslate2", quantization="int8"), key(quantization="bfloat16")}
    assert len(keys) == 5
