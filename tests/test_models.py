"""Base-model registry, loading, LoRA attach and run loading (tiny models; the real one is `slow`)."""

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_tiny_model

from lowres_mt import conversion
from lowres_mt.config import RecipeConfig, dump_recipe
from lowres_mt.errors import UserError
from lowres_mt.models import (
    DEFAULT_TARGET_MODULES,
    REGISTRY,
    TEXT_TEMPLATE,
    BundledModel,
    attach_lora,
    load_base,
    load_run,
    load_tokenizer,
    resolve_base,
    resolve_prompt_format,
    save_adapter,
)

CHATML = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
MESSAGES = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Halló"}]


def test_unknown_base_model_is_a_user_error():
    with pytest.raises(UserError) as err:
        resolve_base("no-such-model-x")
    assert str(err.value) == ("unknown base model 'no-such-model-x': use one of gemma-3-270m, "
                              "smollm2-135m, a local folder or a Hugging Face id (needs network)")


def test_folder_without_config_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="without config.json"):
        resolve_base(str(tmp_path))


def test_registry_names_and_bundled_gguf_found_without_importing_package(tmp_path):
    assert list(REGISTRY) == ["gemma-3-270m", "smollm2-135m"]
    gguf = REGISTRY["smollm2-135m"].gguf(tmp_path)
    assert gguf.suffix == ".gguf" and gguf.stat().st_size > 10_000_000
    assert not list(tmp_path.iterdir())  # located in place, nothing copied


def test_load_base_from_local_folder(tiny_model_dir):
    model, tokenizer = load_base(str(tiny_model_dir))
    assert not model.training
    assert next(model.parameters()).dtype == torch.float32
    assert model.lm_head.weight is model.model.embed_tokens.weight  # Gemma ties the head
    assert "<start_of_turn>" in tokenizer.apply_chat_template(MESSAGES, tokenize=False)
    assert model.config.pad_token_id == tokenizer.pad_token_id
    bf16, _ = load_base(str(tiny_model_dir), dtype="bfloat16")
    assert next(bf16.parameters()).dtype == torch.bfloat16


def test_tokenizer_without_chat_template_gets_the_text_format(tiny_model_dir):
    config = json.loads((tiny_model_dir / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (tiny_model_dir / "tokenizer_config.json").write_text(json.dumps(config))
    (tiny_model_dir / "chat_template.jinja").unlink(missing_ok=True)
    tokenizer = load_tokenizer(str(tiny_model_dir))
    assert tokenizer.chat_template == TEXT_TEMPLATE
    with pytest.raises(UserError, match="no chat template"):
        load_tokenizer(str(tiny_model_dir), prompt_format="chat")


def test_text_format_renders_plain_turns_that_end_in_eos(tiny_model_dir):
    tokenizer = load_tokenizer(str(tiny_model_dir), prompt_format="text")
    turns = [{"role": "user", "content": "Translate.\n\nEnglish: Hi."},
             {"role": "assistant", "content": "Icelandic: Hæ."}]
    full = tokenizer.apply_chat_template(turns, tokenize=False)
    assert full == f"{tokenizer.bos_token}Translate.\n\nEnglish: Hi.\nIcelandic: Hæ.{tokenizer.eos_token}\n\n"
    prompt = tokenizer.apply_chat_template(turns[:1], tokenize=False, add_generation_prompt=True)
    assert full.startswith(prompt) and "<start_of_turn>" not in full


def test_prompt_format_auto_follows_the_registry_then_the_tokenizer(tiny_tokenizer):
    assert resolve_prompt_format("gemma-3-270m", tiny_tokenizer) == "text"  # a base model
    assert resolve_prompt_format("smollm2-135m", tiny_tokenizer) == "chat"
    assert resolve_prompt_format("some/folder", tiny_tokenizer) == "chat"  # it ships a template
    assert resolve_prompt_format("some/folder", tiny_tokenizer, "text") == "text"
    with pytest.raises(UserError, match="prompt_format 'html'"):
        resolve_prompt_format("some/folder", tiny_tokenizer, "html")


def test_attach_lora_trains_only_lora_weights(tiny_tokenizer, tiny_model):
    model = attach_lora(tiny_model, {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0})
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    assert all("lora_" not in n for n in frozen)
    targeted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trainable}
    assert targeted == set(DEFAULT_TARGET_MODULES)
    assert len(trainable) == 2 * len(DEFAULT_TARGET_MODULES) * model.config.num_hidden_layers

    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ids = torch.tensor([tiny_tokenizer.apply_chat_template(MESSAGES, tokenize=True)])
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):  # lora_B starts at zero, so lora_A only moves from the second step
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad()
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name]) != (name in trainable), name


def test_attach_lora_explicit_targets_and_bad_keys(tiny_tokenizer):
    model = attach_lora(make_tiny_model(tiny_tokenizer), {"r": 2, "target_modules": ["q_proj"]})
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n, p in model.named_parameters()
            if p.requires_grad} == {"q_proj"}
    with pytest.raises(UserError, match="lora: .*rank"):
        attach_lora(make_tiny_model(tiny_tokenizer), {"rank": 8})
    with pytest.raises(UserError, match="lora: "):
        attach_lora(make_tiny_model(tiny_tokenizer), {"r": 2, "target_modules": ["no_such_proj"]})


def _write_tiny_llama_gguf(path: Path) -> np.ndarray:
    """A 1-layer float32 Llama GGUF with a byte-level BPE tokenizer; returns its embedding matrix."""
    import gguf
    from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    merges = ["\u0120 t", "h e", "\u0120t he"]
    tokens = specials + sorted(set(bytes_to_unicode().values())) + [m.replace(" ", "") for m in merges]
    hidden, ffn = 32, 64
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(64)
    writer.add_embedding_length(hidden)
    writer.add_block_count(1)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([3] * len(specials) + [1] * (len(tokens) - len(specials)))
    writer.add_token_merges(merges)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_pad_token_id(2)
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHATML)
    rng = np.random.default_rng(0)
    embedding = rng.standard_normal((len(tokens), hidden), dtype=np.float32)
    writer.add_tensor("token_embd.weight", embedding)
    writer.add_tensor("output_norm.weight", np.ones(hidden, dtype=np.float32))
    shapes = {"attn_norm": (hidden,), "ffn_norm": (hidden,), "attn_q": (hidden, hidden),
              "attn_k": (16, hidden), "attn_v": (16, hidden), "attn_output": (hidden, hidden),
              "ffn_gate": (ffn, hidden), "ffn_up": (ffn, hidden), "ffn_down": (hidden, ffn)}
    for name, shape in shapes.items():
        writer.add_tensor(f"blk.0.{name}.weight", rng.standard_normal(shape, dtype=np.float32) * 0.1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return embedding


def test_bundled_gguf_converts_once_into_a_hf_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LOWRES_MT_CACHE", str(tmp_path / "cache"))
    embedding = _write_tiny_llama_gguf(tmp_path / "tiny.gguf")
    monkeypatch.setitem(REGISTRY, "tiny-gguf", BundledModel("tiny-gguf", "gguf", "pip install gguf",
                                                            lambda scratch: tmp_path / "tiny.gguf"))
    model, tokenizer = load_base("tiny-gguf")
    folder = tmp_path / "cache" / "models" / "tiny-gguf"
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "lowres_mt_conversion.json"} <= names
    assert "tokenizer.model" not in names  # the GGUF itself is never copied in
    assert [p.name for p in folder.parent.iterdir() if p.name != ".tiny-gguf.lock"] == ["tiny-gguf"]
    assert torch.equal(model.model.embed_tokens.weight, torch.from_numpy(embedding))
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert tokenizer.eos_token == tokenizer.pad_token == "<|im_end|>"
    assert tokenizer("the cat").input_ids[0] != tokenizer.bos_token_id  # GGUF says: no bos
    assert tokenizer.apply_chat_template(MESSAGES[:1], tokenize=False) == "<|im_start|>user\nHello<|im_end|>\n"
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id

    monkeypatch.setattr(conversion, "_convert", lambda *a: pytest.fail("converted twice"))
    assert resolve_base("tiny-gguf") == folder


def test_failed_conversion_leaves_no_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LOWRES_MT_CACHE", str(tmp_path))
    (tmp_path / "broken.gguf").write_bytes(b"not a gguf file")
    monkeypatch.setitem(REGISTRY, "broken", BundledModel("broken", "gguf", "pip install gguf",
                                                         lambda scratch: tmp_path / "broken.gguf"))
    with pytest.raises(UserError, match="not a readable GGUF file"):
        resolve_base("broken")
    assert [p.name for p in (tmp_path / "models").iterdir()] == [".broken.lock"]


def _make_run(root: Path, base: Path, adapter_model) -> Path:
    run = root / "runs" / "tiny"
    cfg = RecipeConfig(name="tiny", languages=("en", "is"), base_model=str(base), lora={"r": 4})
    (run / "data").mkdir(parents=True)
    (run / "config.yaml").write_text(dump_recipe(cfg))
    (run / "run.json").write_text(json.dumps({"recipe": "tiny", "method": "tell", "base_model": str(base),
                                              "directions": ["en-is", "is-en"], "status": "done"}))
    if adapter_model is not None:
        save_adapter(adapter_model, run / "adapter")
    return run


def _trained_adapter(tokenizer, seed=0, **config_changes):
    model = make_tiny_model(tokenizer, seed=seed)
    for key, value in config_changes.items():
        setattr(model.config, key, value)
    peft_model = attach_lora(model, {"r": 4})
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5, generator=torch.Generator().manual_seed(len(name)))
    return peft_model.eval()


def test_load_run_round_trip(tiny_tokenizer, tiny_model_dir, tmp_path):
    trained = _trained_adapter(tiny_tokenizer)
    run = _make_run(tmp_path, tiny_model_dir, trained)
    model, tokenizer, cfg = load_run(run)
    assert not model.training and cfg.name == "tiny" and cfg.lora == {"r": 4}
    assert tokenizer.chat_template
    ids = torch.tensor([tiny_tokenizer.apply_chat_template(MESSAGES, tokenize=True)])
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, trained(input_ids=ids).logits,
                                   atol=1e-5, rtol=0)
        with model.disable_adapter():
            plain = model(input_ids=ids).logits
        assert not torch.allclose(model(input_ids=ids).logits, plain, atol=1e-3)


def test_load_run_rejects_adapter_of_another_base(tiny_tokenizer, tiny_model_dir, tmp_path):
    from transformers import Gemma3ForCausalLM

    other_config = make_tiny_model(tiny_tokenizer).config
    other_config.hidden_size, other_config.intermediate_size = 32, 64
    other = attach_lora(Gemma3ForCausalLM(other_config), {"r": 4})
    run = _make_run(tmp_path, tiny_model_dir, other)
    with pytest.raises(UserError, match="does not fit base model"):
        load_run(run)


def test_load_run_needs_run_folder_and_adapter(tiny_model_dir, tmp_path):
    with pytest.raises(UserError, match="not a run folder"):
        load_run(tmp_path)
    with pytest.raises(UserError, match="no adapter yet"):
        load_run(_make_run(tmp_path, tiny_model_dir, None))


@pytest.mark.slow
def test_real_gemma_converts_and_continues_text():
    """Converts (once) and loads the bundled Gemma-3-270M; greedy text must be non-empty."""
    start = time.monotonic()
    model, tokenizer = load_base("gemma-3-270m")
    load_s = time.monotonic() - start
    assert model.config.vocab_size == 262144 and model.lm_head.weight is model.model.embed_tokens.weight
    assert tokenizer("The capital of France is").input_ids == [2, 818, 5279, 529, 7001, 563]
    chat = tokenizer.apply_chat_template(MESSAGES[:1], tokenize=False, add_generation_prompt=True)
    assert chat == "<bos><start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n"
    assert 106 in model.generation_config.eos_token_id  # <end_of_turn> stops generation
    ids = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    text = tokenizer.decode(out[0, ids.input_ids.shape[1]:], skip_special_tokens=True)
    print(f"load {load_s:.1f}s; greedy continuation: {text!r}")
    assert text.strip()


def _sentencepiece_like(fields, tmp_path):
    """A SentencePiece processor over the same pieces (whitespace runs written with '▁' as in
    Gemma's tokenizer.model): the reference the rebuilt fast tokenizer must agree with."""
    import sentencepiece
    from transformers.utils import sentencepiece_model_pb2_new as spm

    proto = spm.ModelProto()
    proto.trainer_spec.model_type = spm.TrainerSpec.BPE
    proto.trainer_spec.byte_fallback = any(t.startswith("<0x") for t in fields["tokenizer.ggml.tokens"])
    proto.trainer_spec.unk_id, proto.trainer_spec.bos_id, proto.trainer_spec.eos_id = 3, 2, 1
    proto.trainer_spec.pad_id = 0
    spec = proto.normalizer_spec
    spec.name, spec.add_dummy_prefix, spec.remove_extra_whitespaces = "identity", False, False
    for i, (piece, score, kind) in enumerate(zip(fields["tokenizer.ggml.tokens"], fields["tokenizer.ggml.scores"],
                                                 fields["tokenizer.ggml.token_type"])):
        entry = proto.pieces.add()
        entry.piece = "\u2581" * len(piece) if piece.strip(" ") == "" else piece
        entry.score, entry.type = score, 2 if i == 3 else kind
    path = tmp_path / "sp.model"
    path.write_bytes(proto.SerializeToString())
    return sentencepiece.SentencePieceProcessor(model_file=str(path))


def test_gemma_tokenizer_from_gguf_fields_matches_sentencepiece(tmp_path):
    from lowres_mt.conversion import _gemma_tokenizer

    pieces = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "\n", "  ",
              "\u2581", "a", "b", "c", "\u2581a", "ab", "\u2581ab", "bc", "\u2581abc", "ca"]
    kinds = [3, 3, 3, 3, 3, 3, 4, 4] + [1] * 10
    fields = {"tokenizer.ggml.tokens": pieces, "tokenizer.ggml.token_type": kinds,
              "tokenizer.ggml.scores": [-1000.0] * 8 + [-float(i) for i in range(10)],
              "tokenizer.ggml.unknown_token_id": 3}
    tokenizer = _gemma_tokenizer(fields)
    reference = _sentencepiece_like(fields, tmp_path)
    for text in ["abc ab", "a  abc\nca", "cab bca   a", "ab\n\nc"]:
        assert tokenizer(text, add_special_tokens=False).input_ids == reference.encode(text), text
    assert tokenizer("ab").input_ids == [2, 13]  # <bos> prepended
    assert tokenizer("<start_of_turn>a<end_of_turn>", add_special_tokens=False).input_ids == [4, 9, 5]
    assert tokenizer.decode(tokenizer("a  abc\nca").input_ids, skip_special_tokens=True) == "a  abc\nca"


@pytest.mark.slow
def test_real_gemma_tokenizer_matches_sentencepiece(tmp_path):
    from lowres_mt.conversion import _gguf_fields
    from lowres_mt.models import REGISTRY, load_tokenizer

    tokenizer = load_tokenizer("gemma-3-270m")
    reference = _sentencepiece_like(_gguf_fields(REGISTRY["gemma-3-270m"].gguf(tmp_path)), tmp_path)
    texts = ["The capital of France is Paris.", "Hún sagði að þetta væri ágætt, 12.345 kr.",
             "Þjóðminjasafn Íslands  opnaði\tárið 1863.\n\nNý lína — “gæsalappir” 😀",
             "   leading spaces and trailing  ", "ǅ ﬁ ß Ærøskøbing"]
    for text in texts:
        assert tokenizer(text, add_special_tokens=False).input_ids == reference.encode(text), text


@pytest.mark.slow
def test_real_smollm2_converts_and_answers_in_chat():
    model, tokenizer = load_base("smollm2-135m")
    assert tokenizer("The capital of France is").input_ids == [504, 3575, 282, 4649, 314]  # no bos
    assert tokenizer.eos_token == "<|im_end|>" and model.lm_head.weight is model.model.embed_tokens.weight
    text = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                         tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=16, do_sample=False)
    answer = tokenizer.decode(out[0, ids.input_ids.shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer
