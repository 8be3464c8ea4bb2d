"""The eval runner end to end on a tiny model and in-memory corpora: files, report, cache, notes."""

import json
from types import SimpleNamespace

import pytest
from conftest import make_tiny_model

from lowres_mt.config import EvalConfig, RecipeConfig, TaskConfig, dump_recipe, load_recipe
from lowres_mt.errors import UserError
from lowres_mt.evaluate.generate import HypothesisMaker
from lowres_mt.evaluate.runner import run_eval
from lowres_mt.records import Pair, SystemOutput
from lowres_mt.translate import DecodeSettings

pytestmark = pytest.mark.usefixtures("one_thread")



TEST = [("Good morning.", "Góðan daginn."), ("Where is the station?", "Hvar er stöðin?"),
        ("The cat sat.", "Kötturinn sat."), ("It is raining.", "Það rignir."),
        ("Thank you.", "Takk fyrir."), ("I am tired.", "Ég er þreyttur.")]
WMT = [("He left early.", "Hann fór snemma."), ("The news is good.", "Fréttirnar eru góðar."),
       ("We won.", "Við unnum."), ("Rain today.", "Rigning í dag."), ("No.", "Nei.")]
POOL = [("Good morning.", "Góðan daginn.")] + [(f"The dog number {i} runs.", f"Hundur númer {i} hleypur.")
                                               for i in range(20)]


def _pairs(rows, ref):
    return [Pair(s, t, "en", "is", ref, str(i)) for i, (s, t) in enumerate(rows)]


SETS = {
    "toy:test": (_pairs(TEST, "toy:test"), ("en-is", "is-en")),
    "toy:wmt": (_pairs(WMT, "toy:wmt"), ("en-is",)),
    "toy:wmt-systems": ([SystemOutput(name, f"{name} {t}", "en", "is", "toy:wmt-systems", str(i))
                         for name in ("SysA", "SysB") for i, (_, t) in enumerate(WMT)], ("en-is",)),
    "toy:train": (_pairs(POOL, "toy:train"), ("en-is", "is-en")),
    "toy:learn": (_pairs([("The sun shines.", "Sólin skín."), ("She is tired.", "Hún er þreytt."),
                          ("We go home.", "Við förum heim."), ("The house is big.", "Húsið er stórt."),
                          ("Good day.", "Góðan dag."), ("A small bird.", "Lítill fugl."),
                          ("The ship sails.", "Skipið siglir.")], "toy:learn"), ("en-is", "is-en")),
    "toy:fo": ([Pair(s, t, "en", "fo", "toy:fo", str(i)) for i, (s, t) in enumerate(
        [("Good morning.", "Góðan morgun."), ("Thank you.", "Takk fyri."), ("Yes.", "Ja.")])], ("en-fo", "fo-en")),
}


@pytest.fixture
def fake_corpora(monkeypatch):
    import lowres_mt.corpora as corpora

    def set_info(ref):
        if ref not in SETS:
            raise UserError(f"no set {ref}")
        return SimpleNamespace(ref=ref, directions=SETS[ref][1], languages=tuple(SETS[ref][1][0].split("-")))

    monkeypatch.setattr(corpora, "set_info", set_info)
    monkeypatch.setattr(corpora, "load_set", lambda ref: list(SETS[ref][0]))


def _cfg(**eval_fields):
    fields = dict(testsets=("toy:test", "toy:wmt"), sample=4, max_new_tokens=6, bootstrap=50,
                  systems=("tell", "sft", "zero-shot", "icl", "external"), icl_k=2)
    fields.update(eval_fields)
    return RecipeConfig(name="toy", languages=("en", "is"), task=TaskConfig(train=("toy:train",)),
                        eval=EvalConfig(**fields))


def _make_run(root, tokenizer, name, method):
    from peft import LoraConfig, get_peft_model

    run = root / name
    model = get_peft_model(make_tiny_model(tokenizer, seed=1),
                           LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.save_pretrained(run / "adapter")
    (run / "config.yaml").write_text(dump_recipe(_cfg()))
    (run / "run.json").write_text(json.dumps({"recipe": "toy", "method": method, "base_model": "tiny",
                                              "directions": ["en-is", "is-en"], "status": "done"}))
    return run


class CountingMaker(HypothesisMaker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def make(self, system, pairs, direction, testset):
        self.calls.append((system.name, testset, direction))
        return super().make(system, pairs, direction, testset)


def _maker(cfg, tokenizer):
    from peft import PeftModel

    def load_base(name, prompt_format="auto"):
        return make_tiny_model(tokenizer), tokenizer

    def load_run(run):
        model = PeftModel.from_pretrained(make_tiny_model(tokenizer, seed=1), run / "adapter")
        return model.eval(), tokenizer, load_recipe(str(run / "config.yaml"))

    settings = DecodeSettings(8, cfg.eval.max_new_tokens, cfg.eval.num_beams,
                              train_vocabulary=cfg.eval.train_vocabulary)
    return CountingMaker(cfg, settings, load_base=load_base, load_run=load_run, progress=False)


def test_eval_writes_results_report_and_reuses_cache(tmp_path, fake_corpora, tiny_tokenizer):
    runs, results = tmp_path / "runs", tmp_path / "results"
    _make_run(runs, tiny_tokenizer, "toy-sft", "sft")
    cfg = _cfg()
    maker = _maker(cfg, tiny_tokenizer)
    first = run_eval(cfg, results_root=results, runs_root=runs, maker=maker, progress=False)
    root = results / "toy"

    # tell has no run: skipped with a note, not a crash
    assert any(n.startswith("tell: skipped") for n in first.notes)
    systems = {(r.system, r.testset, r.direction) for r in first.results}
    assert ("zero-shot", "toy:test", "is-en") in systems and ("icl", "toy:wmt", "en-is") in systems
    assert ("toy:SysA", "toy:wmt", "en-is") in systems and ("toy:SysA", "toy:test", "en-is") not in systems
    assert not any(s == "tell" for s, _, _ in systems)

    result = json.loads((root / "zero-shot" / "toy-test.en-is.json").read_text())
    hyps = (root / "zero-shot" / "toy-test.en-is.txt").read_text().split("\n")[:-1]
    assert result["n"] == 4 == len(hyps) == len(result["ids"])
    assert {"BLEU", "chrF", "chrF++", "COMET"} <= set(result["scores"])
    assert result["scores"]["COMET"]["note"] == "n/a (no COMET model)"
    assert "nrefs:1" in result["scores"]["chrF"]["signature"]
    assert result["significance"]["baseline"] == "sft" and "chrF" in result["significance"]["p"]
    assert result["timings"]["sentences_per_s"] > 0 and result["config_hash"]
    # the decoding identity of the cache key, and the batch size the speed was measured with
    assert result["decode"]["batch_size"] == cfg.eval.batch_size and result["decode"]["backend"] == "torch"
    assert result["decode"]["max_new_tokens"] == cfg.eval.max_new_tokens
    sysa = json.loads((root / "toy-SysA" / "toy-wmt.en-is.json").read_text())
    ids = sysa["ids"]
    assert (root / "toy-SysA" / "toy-wmt.en-is.txt").read_text().split("\n")[:-1] == [
        f"SysA {WMT[int(i)][1]}" for i in ids]
    assert maker.guard_dropped["en-is"] == 1  # the pool pair that is also a test sentence

    icl = json.loads((root / "icl" / "toy-test.en-is.json").read_text())
    assert set(icl["shot_copies"]) == {"rate", "count"}
    assert result["shot_copies"] is None  # zero-shot has no examples to copy

    report = (root / "REPORT.md").read_text()
    assert "## toy:test en→is (n=4)" in report and "tell: skipped" in report
    assert f"icl toy:test en-is: {icl['shot_copies']['count']} of 4 hypotheses" in report
    assert (root / "plots" / "chrf.png").stat().st_size > 1000

    # nothing changed: no generation, same files
    again = _maker(cfg, tiny_tokenizer)
    second = run_eval(cfg, results_root=results, runs_root=runs, maker=again, progress=False)
    assert again.calls == [] and second.generated == 0 and second.reused == len(first.results)
    assert json.loads((root / "zero-shot" / "toy-test.en-is.json").read_text()) == result
    assert (root / "REPORT.md").read_text() == report

    # a decoding change invalidates the model systems only
    changed = _cfg(max_new_tokens=5, systems=("zero-shot", "external"), testsets=("toy:wmt",))
    third = _maker(changed, tiny_tokenizer)
    outcome = run_eval(changed, results_root=results, runs_root=runs, maker=third, progress=False)
    assert third.calls == [("zero-shot", "toy:wmt", "en-is")] and outcome.reused == 2
    # the report still holds the first evaluation's other results
    merged = (root / "REPORT.md").read_text()
    assert "## toy:test en→is (n=4)" in merged and "| icl |" in merged


def test_same_sample_in_both_directions(tmp_path, fake_corpora, tiny_tokenizer):
    cfg = _cfg(systems=("zero-shot",), testsets=("toy:test",), sample=3)
    out = run_eval(cfg, results_root=tmp_path, runs_root=tmp_path, maker=_maker(cfg, tiny_tokenizer),
                   progress=False)
    by_dir = {r.direction: r.ids for r in out.results}
    assert by_dir["en-is"] == by_dir["is-en"] and len(by_dir["en-is"]) == 3
    assert out.results[0].significance is None  # no sft baseline in this evaluation


def test_eval_command_end_to_end(tmp_path, fake_corpora, tiny_model_dir, monkeypatch, capsys):
    """`lowres-mt eval` in-process: recipe file, the real base-model loader on a tiny folder."""
    import sys

    from lowres_mt.cli import main

    recipe = tmp_path / "toy.yaml"
    recipe.write_text(dump_recipe(_cfg(systems=("zero-shot", "sft"), testsets=("toy:wmt",), sample=3)))
    monkeypatch.setenv("LOWRES_MT_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("LOWRES_MT_RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr(sys, "argv", ["lowres-mt", "eval", str(recipe), f"base_model={tiny_model_dir}",
                                      "eval.max_new_tokens=4"])
    with pytest.raises(SystemExit) as done:
        main()
    out = capsys.readouterr().out
    assert done.value.code in (0, None)
    assert "zero-shot" in out and "sft: skipped" in out and "1 generated" in out
    assert (tmp_path / "results" / "toy" / "zero-shot" / "toy-wmt.en-is.json").is_file()


def test_copy_system_scores_the_sources_themselves(tmp_path, fake_corpora, tiny_tokenizer):
    cfg = _cfg(systems=("copy",), testsets=("toy:test",), sample=4)
    out = run_eval(cfg, results_root=tmp_path, runs_root=tmp_path, maker=_maker(cfg, tiny_tokenizer),
                   progress=False)
    en_is = next(r for r in out.results if r.direction == "en-is")
    hyps = (tmp_path / "toy" / "copy" / en_is.hypotheses).read_text(encoding="utf-8").splitlines()
    sources = {s for s, _ in TEST}
    assert len(hyps) == 4 and set(hyps) <= sources
    assert en_is.kind == "copy" and 0 < en_is.scores["chrF"]["score"] < 100
    assert en_is.copies == {"rate": 1.0, "count": 4}
    assert en_is.off_target["rate"] == 1.0  # English sources are no Icelandic
    assert "| copy |" in (tmp_path / "toy" / "REPORT.md").read_text(encoding="utf-8")
    # a result stored before the rates existed gets them on a rerun that reuses its hypotheses
    path = tmp_path / "toy" / en_is.path
    stored = json.loads(path.read_text(encoding="utf-8"))
    del stored["off_target"], stored["copies"]
    path.write_text(json.dumps(stored), encoding="utf-8")
    again = run_eval(cfg, results_root=tmp_path, runs_root=tmp_path, maker=_maker(cfg, tiny_tokenizer),
                     progress=False)
    assert again.generated == 0
    refilled = json.loads(path.read_text(encoding="utf-8"))
    assert refilled["copies"] == en_is.copies and refilled["off_target"] == en_is.off_target


@pytest.mark.parametrize(("languages", "testset", "note"), [
    (("en", "fo"), "toy:fo", "language ID not available for fo: answers into it get no off-target rate"),
    (("en", "is"), "toy:test", None),
])
def test_a_target_language_without_language_id_is_a_note(tmp_path, fake_corpora, tiny_tokenizer,
                                                         languages, testset, note):
    cfg = RecipeConfig(name="toy", languages=languages, eval=EvalConfig(
        systems=("copy",), testsets=(testset,), sample=3, bootstrap=50))
    out = run_eval(cfg, results_root=tmp_path, runs_root=tmp_path, maker=_maker(cfg, tiny_tokenizer),
                   progress=False)
    found = [n for n in out.notes if "language ID" in n]
    assert found == ([note] if note else [])
    report = (tmp_path / "toy" / "REPORT.md").read_text(encoding="utf-8")
    assert (f"- {note}" in report) if note else "language ID not available" not in report
    assert {r.direction: r.off_target is None for r in out.results} == {
        f"{languages[0]}-{languages[1]}": note is not None, f"{languages[1]}-{languages[0]}": False}


def test_auto_alphabet_is_learned_from_task_train_and_reported(tmp_path, fake_corpora, tiny_tokenizer):
    cfg = RecipeConfig(name="toy", languages=("en", "is"), task=TaskConfig(train=("toy:learn",)),
                       eval=EvalConfig(systems=("zero-shot", "copy"), testsets=("toy:test",), sample=3,
                                       bootstrap=50, max_new_tokens=4, alphabet="auto"))
    out = run_eval(cfg, results_root=tmp_path, runs_root=tmp_path, maker=_maker(cfg, tiny_tokenizer),
                   progress=False)
    # ð and ó are in 3+ words of the Icelandic side; ú, í in 2, þ, ö in 1; English has none of its
    # own, but answers into it may write the pair's names. Copies are no decoding: no alphabet
    assert {(r.system, r.direction): r.decode.get("alphabet") for r in out.results} == {
        ("zero-shot", "en-is"): "ðó", ("zero-shot", "is-en"): "ðó", ("copy", "en-is"): None, ("copy", "is-en"): None}
    report = (tmp_path / "toy" / "REPORT.md").read_text(encoding="utf-8")
    assert "answers into en written with a–z and ðó only, answers into is written with a–z and ðó only" in report


def test_a_new_baseline_output_refreshes_the_stored_p_values_of_the_others(tmp_path, fake_corpora,
                                                                          tiny_tokenizer):
    runs, results = tmp_path / "runs", tmp_path / "results"
    run = _make_run(runs, tiny_tokenizer, "toy-sft", "sft")
    cfg = _cfg(systems=("sft", "copy"), testsets=("toy:test",))
    run_eval(cfg, results_root=results, runs_root=runs, maker=_maker(cfg, tiny_tokenizer), progress=False)
    stored = results / "toy" / "copy" / "toy-test.en-is.json"
    before = json.loads(stored.read_text())["cache"]["significance"]
    first_sft = json.loads((results / "toy" / "sft" / "toy-test.en-is.json").read_text())["hyp_sha256"]

    # sft retrained (other adapter bytes, other outputs) and evaluated alone
    import shutil
    shutil.rmtree(run)
    from peft import LoraConfig, get_peft_model
    model = get_peft_model(make_tiny_model(tiny_tokenizer, seed=2),  # other LoRA init
                           LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.save_pretrained(run / "adapter")
    (run / "config.yaml").write_text(dump_recipe(_cfg()))
    (run / "run.json").write_text(json.dumps({"recipe": "toy", "method": "sft", "base_model": "tiny",
                                              "directions": ["en-is", "is-en"], "status": "done"}))
    only_sft = _cfg(systems=("sft",), testsets=("toy:test",))
    run_eval(only_sft, results_root=results, runs_root=runs, maker=_maker(only_sft, tiny_tokenizer),
             progress=False)
    after = json.loads(stored.read_text())
    sft = json.loads((results / "toy" / "sft" / "toy-test.en-is.json").read_text())
    assert sft["hyp_sha256"] != first_sft  # the baseline's output really changed
    assert after["significance"]["baseline"] == "sft" and after["cache"]["significance"] != before


def test_training_vocabulary_decoding_is_opt_in_and_keyed(tmp_path, fake_corpora, tiny_tokenizer):
    runs, results = tmp_path / "runs", tmp_path / "results"
    run = _make_run(runs, tiny_tokenizer, "toy-sft", "sft")
    (run / "adapter" / "train_vocabulary.json").write_text(json.dumps({"token_ids": list(range(40))}))
    free = _cfg(systems=("sft",), testsets=("toy:test",))
    limited = _cfg(systems=("sft",), testsets=("toy:test",), train_vocabulary=True)
    for cfg in (free, limited):
        maker = _maker(cfg, tiny_tokenizer)
        outcome = run_eval(cfg, results_root=results, runs_root=runs, maker=maker, progress=False)
        assert outcome.generated == 2  # the setting is part of the generation key
        engine = maker._engine_for(("run", str(run)))
        assert (engine.allowed() is None) is (cfg is free)  # the engine test checks what it allows
    assert json.loads((results / "toy" / "sft" / "toy-test.en-is.json").read_text())["decode"]["train_vocabulary"]


def test_an_icl_answer_that_repeats_a_shot_target_is_counted(tmp_path, fake_corpora, tiny_tokenizer):
    cfg = _cfg(systems=("icl",), testsets=("toy:test",))
    maker = _maker(cfg, tiny_tokenizer)
    maker.make = lambda system, pairs, direction, testset: [  # answers: each sentence's closest shot target
        row[-1].tgt for row in HypothesisMaker._shots(maker, system, testset, direction, [p.src for p in pairs], 2)]
    outcome = run_eval(cfg, results_root=tmp_path / "results", maker=maker, progress=False)
    for result in outcome.results:
        assert result.shot_copies == {"rate": 1.0, "count": 4}
    report = (tmp_path / "results" / "toy" / "REPORT.md").read_text()
    assert "icl toy:test en-is: 4 of 4 hypotheses (100.0%) repeat a retrieved example's translation" in report

