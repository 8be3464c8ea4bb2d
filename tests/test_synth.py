"""`lowres-mt synth` on a tiny run: provenance on every line, resume after a kill, refusals."""

import json

import pytest
from conftest import cli, make_tiny_model

from lowres_mt.config import EvalConfig, RecipeConfig, dump_recipe
from lowres_mt.errors import UserError
from lowres_mt.run import Run
from lowres_mt.synth import synthesize

pytestmark = pytest.mark.usefixtures("one_thread")

SENTENCES = ["Góðan daginn.", "Hvar er stöðin?", "Kötturinn sat á mottunni.", "Ég heiti Jón.",
             "Það rignir í dag.", "Hundurinn geltir.", "Bókin er á borðinu."]


@pytest.fixture
def tiny_run(tmp_path, tiny_model_dir, tiny_tokenizer, monkeypatch):
    """runs/tiny-tell: an en-is recipe (answers of at most 4 tokens) and a random LoRA adapter."""
    from peft import LoraConfig, get_peft_model

    monkeypatch.setenv("LOWRES_MT_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "runs" / "tiny-tell"
    model = get_peft_model(make_tiny_model(tiny_tokenizer),
                           LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.save_pretrained(run / "adapter")
    cfg = RecipeConfig(name="tiny", languages=("en", "is"), base_model=str(tiny_model_dir),
                       eval=EvalConfig(max_new_tokens=4))
    (run / "config.yaml").write_text(dump_recipe(cfg))
    (run / "run.json").write_text(json.dumps({"recipe": "tiny", "method": "tell", "status": "done",
                                              "base_model": str(tiny_model_dir),
                                              "directions": ["en-is", "is-en"]}))
    return run


@pytest.fixture
def mono(tmp_path):
    """Seven Icelandic sentences, one a line, with a blank line (skipped) after the second."""
    path = tmp_path / "news.is.txt"
    path.write_text("\n".join(SENTENCES[:2] + [""] + SENTENCES[2:]) + "\n", encoding="utf-8")
    return path


def _cli(monkeypatch, capsys, *args):
    return cli(monkeypatch, capsys, "synth", *args)


def _rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_line_is_a_pair_with_its_provenance(tiny_run, mono, monkeypatch, capsys):
    code, _, err = _cli(monkeypatch, capsys, "--run", str(tiny_run), "--mono", str(mono),
                        "--from", "is", "--to", "en", "--batch-size", "3")
    assert code == 0, err
    assert "7 pairs written" in err and "sentences/s" in err
    out = tiny_run / "synth" / "news.is.is-en.jsonl"
    rows = _rows(out)
    assert [r["target"] for r in rows] == SENTENCES  # the real side is the monolingual text
    assert [r["line"] for r in rows] == ["0", "1", "3", "4", "5", "6", "7"]  # file line numbers
    first = rows[0]
    assert set(first) - {"source_gain"} == {"source", "target", "direction", "run", "adapter_digest",
                                            "decoding", "mono", "line"}
    # every translation is scored by the run in the direction the pair trains (empty ones cannot be)
    assert all(isinstance(r["source_gain"], float) for r in rows if r["source"].strip())
    assert any(r["source"].strip() for r in rows)
    assert first["direction"] == "en-is"  # synthetic English source, real Icelandic target
    assert first["run"] == "tiny-tell" and first["adapter_digest"] == Run.open(tiny_run).digest
    assert first["mono"] == str(mono.resolve())
    assert first["decoding"]["num_beams"] == 1 and first["decoding"]["max_new_tokens"] == 4
    assert first["decoding"]["batch_size"] == 3 and first["decoding"]["backend"] == "torch"
    assert first["decoding"]["alphabet"] is None  # the letters answers into English may use: not limited
    assert all(isinstance(r["source"], str) and "\n" not in r["source"] for r in rows)

    # the same command again: the file is the product's, but never replaced without --resume
    before = out.read_bytes()
    code, _, err = _cli(monkeypatch, capsys, "--run", str(tiny_run), "--mono", str(mono),
                        "--from", "is", "--to", "en")
    assert code == 2 and "exists; pass --resume to continue it" in err and len(err.strip().splitlines()) == 1
    assert out.read_bytes() == before


def test_resume_after_a_kill_completes_the_file_without_duplicates(tiny_run, mono, tmp_path, monkeypatch):
    from lowres_mt.translate.session import Translator

    reference = tmp_path / "reference.jsonl"
    synthesize(tiny_run, str(mono), "is", "en", reference, batch_size=2, progress=False)

    calls = []
    translate = Translator.translate

    def dies_on_the_third_batch(self, segments, src, tgt):
        calls.append(len(segments))
        if len(calls) == 3:
            raise RuntimeError("killed")
        return translate(self, segments, src, tgt)

    killed = tmp_path / "killed.jsonl"
    with monkeypatch.context() as patch:
        patch.setattr(Translator, "translate", dies_on_the_third_batch)
        with pytest.raises(RuntimeError, match="killed"):
            synthesize(tiny_run, str(mono), "is", "en", killed, batch_size=2, progress=False)
    assert len(_rows(killed)) == 4  # two whole batches survived
    # and a kill in the middle of writing the third batch left half a line
    third = reference.read_text(encoding="utf-8").splitlines()[4]
    with open(killed, "a", encoding="utf-8") as f:
        f.write(third[:len(third) // 2])

    report = synthesize(tiny_run, str(mono), "is", "en", killed, resume=True, batch_size=2, progress=False)
    assert (report.already, report.written) == (4, 3)
    assert killed.read_bytes() == reference.read_bytes()  # same ids, same translations, once each

    # a finished file resumes to nothing, without loading the model (another batch size is fine)
    report = synthesize(tiny_run, str(mono), "is", "en", killed, resume=True, batch_size=5, progress=False)
    assert (report.already, report.written) == (7, 0)


def test_resume_refuses_another_adapter_or_decoding(tiny_run, mono, tmp_path):
    rows = [{"source": "Good morning.", "target": SENTENCES[0], "direction": "en-is", "run": "tiny-tell",
             "adapter_digest": Run.open(tiny_run).digest, "mono": str(mono.resolve()), "line": "0",
             "decoding": synth_decoding(tiny_run)}]
    out = tmp_path / "synth.jsonl"

    def write(**changes):
        out.write_text(json.dumps({**rows[0], **changes}, ensure_ascii=False) + "\n", encoding="utf-8")
        return out.read_bytes()

    for changes, why in [({"adapter_digest": "0" * 64}, "another adapter"),
                         ({"decoding": {**rows[0]["decoding"], "max_new_tokens": 9}},
                          "other decoding settings (max_new_tokens: 9 → 4)"),
                         ({"decoding": {**rows[0]["decoding"], "backend": "ctranslate2", "quantization": "int8"}},
                          "other decoding settings (backend: 'ctranslate2' → 'torch', quantization: 'int8' → '')"),
                         ({"direction": "is-en"}, "as is-en pairs")]:
        before = write(**changes)
        with pytest.raises(UserError, match="cannot resume") as refused:
            synthesize(tiny_run, str(mono), "is", "en", out, resume=True, progress=False)
        assert why in str(refused.value) and "\n" not in str(refused.value)
        assert out.read_bytes() == before

    # a file synth did not write is left alone, with or without a half line at its end
    for text in ("Góðan daginn.\tGood morning.\n", "just some text"):
        out.write_text(text, encoding="utf-8")
        with pytest.raises(UserError, match="is not a file `lowres-mt synth` wrote"):
            synthesize(tiny_run, str(mono), "is", "en", out, resume=True, progress=False)
        assert out.read_text(encoding="utf-8") == text


def test_a_file_written_with_the_settings_as_given_still_resumes(tiny_run, mono, tmp_path):
    """Lines written before the decoding identity resolved the backend and the alphabet hold the
    settings as given (`backend: auto`, `alphabet: true`, sampling fields): the same decoding."""
    import dataclasses

    from lowres_mt.translate import DecodeSettings

    settings = DecodeSettings.for_recipe(Run.open(tiny_run).cfg, num_beams=1)
    out = tmp_path / "synth.jsonl"
    out.write_text(json.dumps({"source": "Good morning.", "target": SENTENCES[0], "direction": "en-is",
                               "run": "tiny-tell", "adapter_digest": Run.open(tiny_run).digest,
                               "mono": str(mono.resolve()), "line": "0",
                               "decoding": dataclasses.asdict(settings)}, ensure_ascii=False) + "\n")
    report = synthesize(tiny_run, str(mono), "is", "en", out, resume=True, progress=False)
    assert report.written == len(SENTENCES) - 1


def synth_decoding(run):
    from lowres_mt.synth import decoding_record
    from lowres_mt.translate import DecodeSettings

    return decoding_record(DecodeSettings.for_recipe(Run.open(run).cfg, num_beams=1), "en")


@pytest.mark.parametrize("overrides", [
    {}, {"batch_size": 3, "num_beams": 2}, {"backend": "ctranslate2", "quantization": "int8"}, {"mbr_samples": 4},
    {"alphabet": False},
])
def test_synth_lines_and_eval_results_carry_one_decoding_identity(overrides):
    from lowres_mt.evaluate.systems import builtin_system
    from lowres_mt.synth import decoding_record
    from lowres_mt.translate import DecodeSettings
    from lowres_mt.translate.signature import NOT_IDENTITY, decoding_identity

    cfg = RecipeConfig(name="toy", languages=("en", "is"))
    settings = DecodeSettings.for_recipe(cfg, **overrides)
    synth = {k: v for k, v in decoding_record(settings, "is").items() if k not in NOT_IDENTITY}
    evaluated = builtin_system(cfg, "zero-shot").signature(cfg, settings, "is")["decode"]
    assert synth == evaluated == decoding_identity(settings, "is")
    assert decoding_record(settings, "is")["batch_size"] == settings.batch_size  # recorded, not compared


@pytest.mark.parametrize(("mono_ref", "src", "tgt", "kwargs", "message"), [
    ("empty.is.txt", "is", "en", {}, "holds no sentences"),
    ("news.en.txt", "is", "en", {}, "is en text, not 'is'"),
    ("news.is.txt", "is", "en", {"limit": 0}, "--limit 0"),
    ("news.is.txt", "is", "fo", {}, "unknown language 'fo'"),
    ("missing.txt", "is", "en", {}, "no such file"),
    ("icepahc:modern", "en", "is", {}, "is is text, not 'en'"),
    ("flores200:devtest", "is", "en", {}, "not monolingual text"),
])
def test_mistakes_are_one_line(tiny_run, tmp_path, mono_ref, src, tgt, kwargs, message):
    (tmp_path / "empty.is.txt").write_text("\n\n", encoding="utf-8")
    (tmp_path / "news.en.txt").write_text("Good morning.\n", encoding="utf-8")
    (tmp_path / "news.is.txt").write_text("Góðan daginn.\n", encoding="utf-8")
    ref = mono_ref if ":" in mono_ref else str(tmp_path / mono_ref)
    with pytest.raises(UserError) as refused:
        synthesize(tiny_run, ref, src, tgt, tmp_path / "out.jsonl", progress=False, **kwargs)
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert not (tmp_path / "out.jsonl").exists()


def test_unknown_run_is_one_line(tmp_path, mono):
    with pytest.raises(UserError, match="is not a run folder"):
        synthesize(tmp_path / "runs" / "nope", str(mono), "is", "en", progress=False)


def test_the_identity_names_the_backend_that_decodes_and_only_the_fields_the_search_uses():
    import importlib.util

    from transformers import Gemma3TextConfig, LlamaConfig

    from lowres_mt.translate import DecodeSettings
    from lowres_mt.translate.signature import decoding_identity

    asked = DecodeSettings(backend="ctranslate2", quantization="int8")
    # an architecture CTranslate2 does not convert is decoded by torch, and its identity says so
    assert decoding_identity(asked, "is", model_config=LlamaConfig)["backend"] == "torch"
    if importlib.util.find_spec("ctranslate2") is not None:
        assert decoding_identity(asked, "is", model_config=Gemma3TextConfig)["backend"] == "ctranslate2"
    greedy = decoding_identity(DecodeSettings(), "is")
    assert "epsilon" not in greedy and "seed" not in greedy  # an MBR setting leaves greedy caches valid
    assert greedy == decoding_identity(DecodeSettings(epsilon=0.5, seed=7), "is")
    sampled = decoding_identity(DecodeSettings(mbr_samples=4), "is")
    assert sampled["epsilon"] == 0.02 and sampled != decoding_identity(DecodeSettings(mbr_samples=4, epsilon=0.5), "is")


def test_resume_scores_lines_written_without_a_source_gain(tiny_run, mono, tmp_path):
    out = tmp_path / "old.jsonl"
    synthesize(tiny_run, str(mono), "is", "en", out, limit=4, batch_size=2, progress=False)
    scored = _rows(out)
    out.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "source_gain"}, ensure_ascii=False) + "\n"
                           for r in scored), encoding="utf-8")
    report = synthesize(tiny_run, str(mono), "is", "en", out, resume=True, batch_size=2, progress=False)
    assert (report.already, report.written) == (4, 3)
    rows = _rows(out)
    assert [r["line"] for r in rows] == ["0", "1", "3", "4", "5", "6", "7"]
    # the old lines get the score they would have been written with
    assert report.scored == sum(bool(r["source"].strip()) for r in scored)
    assert [r.get("source_gain") for r in rows[:4]] == pytest.approx([r.get("source_gain") for r in scored], abs=1e-3)
    assert all(isinstance(r["source_gain"], float) for r in rows if r["source"].strip())


def test_a_kill_while_scoring_keeps_the_scores_already_saved(tmp_path):
    from lowres_mt.synth import backfill_scores

    out = tmp_path / "old.jsonl"
    out.write_text("".join(json.dumps({"source": f"s{i}", "target": f"t{i}", "line": str(i)}) + "\n"
                           for i in range(5)), encoding="utf-8")
    calls = []

    def scorer(sources, targets):
        calls.append(sources)
        if len(calls) == 3:
            raise RuntimeError("killed")
        return [float(len(calls))] * len(sources)

    with pytest.raises(RuntimeError, match="killed"):
        backfill_scores(out, scorer, batch=1, save_every=2, progress=False)
    assert [r.get("source_gain") for r in _rows(out)] == [1.0, 2.0, None, None, None]  # saved after two
    assert backfill_scores(out, lambda s, t: [9.0] * len(s), batch=2, progress=False) == 3
    assert [r["source_gain"] for r in _rows(out)] == [1.0, 2.0, 9.0, 9.0, 9.0]
