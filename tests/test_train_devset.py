"""Dev translation during training uses evaluation's decoder: the same run, sentences and settings
give the same hypotheses, so dev chrF is the chrF `lowres-mt eval` reports. A run trained on a
trimmed vocabulary translates its dev sample over that vocabulary, which is evaluation with
`eval.train_vocabulary=true`."""

import json

from test_train_loop import write_toy_run

from lowres_mt.config import load_recipe
from lowres_mt.data.prompts import style_for
from lowres_mt.models import load_run
from lowres_mt.run import Run
from lowres_mt.train.loop import train
from lowres_mt.translate import DecodeSettings, Engine, merge_lora


def test_dev_translations_equal_the_evaluation_engines(tmp_path, tiny_model_dir):
    recipe, run_dir = write_toy_run(tmp_path, tiny_model_dir, train={"keep": "last"})
    train(load_recipe(str(recipe)), run_dir=run_dir, progress=False)
    rows = [json.loads(line) for line in (run_dir / "dev_translations.jsonl").read_text().splitlines()]
    final = [r for r in rows if r["step"] == 4]
    model, tokenizer, cfg = load_run(run_dir)
    settings = DecodeSettings.from_config(cfg.eval, train_vocabulary=True)
    engine = Engine(merge_lora(model), tokenizer, settings, progress=False, vocabulary=Run.open(run_dir).vocabulary)
    written = []
    for direction in ("en-is", "is-en"):
        mine = [r for r in final if r["direction"] == direction]
        src, tgt = direction.split("-")
        hyps = engine.translate([r["src"] for r in mine], src, tgt, style=style_for(cfg.train.method),
                                anchor=cfg.anchor, names=cfg.language_names)
        assert hyps == [r["hyp"] for r in mine]
        written += hyps
    assert any(written)  # the toy model writes something, so the comparison means something


def test_dev_and_eval_share_the_stop_rule_and_prompt_for_any_chat_format(tiny_tokenizer):
    """A ChatML-style template ends turns with <|im_end|>, not Gemma's <end_of_turn>: dev chrF's
    decoder must stop where evaluation's does, on the prompt evaluation builds."""
    import copy

    from conftest import make_tiny_model

    from lowres_mt.config import RecipeConfig
    from lowres_mt.data.prompts import prompt_messages
    from lowres_mt.train.devset import DevSample, DevTranslator
    from lowres_mt.translate import build_prompt, stop_token_ids

    tokenizer = copy.deepcopy(tiny_tokenizer)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_end|>"]})
    tokenizer.chat_template = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
                               "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    model = make_tiny_model(tokenizer)
    cfg = RecipeConfig(name="toy", languages=("en", "is"))
    dev = DevTranslator(model, tokenizer, cfg)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert im_end in dev.stops and dev.stops == stop_token_ids(model, tokenizer)
    sample = DevSample("Hello.", "Halló.", "en", "is")
    messages, prefix = prompt_messages("Hello.", "en", "is", style_for("tell"), cfg.anchor)
    assert dev.prompt_ids(sample) == tokenizer(build_prompt(tokenizer, messages, prefix),
                                               add_special_tokens=False)["input_ids"]
