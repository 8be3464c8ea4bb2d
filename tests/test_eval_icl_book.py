"""The `icl-book` system (MTOB's in-context track) end to end on the real en-kgv resources."""

import pytest
from conftest import make_tiny_model

from lowres_mt.config import load_recipe
from lowres_mt.corpora import load_set, mirror_dir
from lowres_mt.evaluate.generate import HypothesisMaker
from lowres_mt.evaluate.systems import resolve_systems
from lowres_mt.text import normalize
from lowres_mt.translate import DecodeSettings

pytestmark = [pytest.mark.skipif(mirror_dir() is None, reason="no corpora mirror here"),
              pytest.mark.usefixtures("one_thread")]


class PromptRecordingMaker(HypothesisMaker):
    def _engine_for(self, key):
        engine = super()._engine_for(key)
        original = engine.complete
        self.prompts = []

        def complete(prompts, description="generating", tgt_lang=None):
            self.prompts.extend(prompts)
            return original(prompts, description, tgt_lang)

        engine.complete = complete
        return engine


def test_icl_book_translates_with_book_material_and_no_test_sentence(tmp_path, tiny_tokenizer):
    cfg = load_recipe("en-kgv", ["eval.max_new_tokens=4", "book.context_tokens=300"])
    systems, notes = resolve_systems(cfg, ["icl-book"], tmp_path)
    assert [s.kind for s in systems] == ["icl-book"] and not notes
    maker = PromptRecordingMaker(cfg, DecodeSettings(4, 4, 1), progress=False,
                                 load_base=lambda name, *_: (make_tiny_model(tiny_tokenizer), tiny_tokenizer))
    test = load_set("mtob:kgv-test")
    pairs = [p.reversed() for p in test[:3]]  # kgv→en
    hyps = maker.make(systems[0], pairs, "kgv-en", "mtob:kgv-test")
    assert len(hyps) == 3 and all(isinstance(h, str) for h in hyps)
    assert len(maker.prompts) == 3
    # book material sits before the instruction, and no other test sentence is shown in context
    for prompt, pair in zip(maker.prompts, pairs):
        user_turn = prompt.split("<start_of_turn>user\n", 1)[1]
        material = user_turn.split("Translate from Kalamang to English.", 1)[0]
        assert len(material.strip()) > 50
        assert user_turn.index(pair.src) > len(material)
        others = [normalize(t) for p in test if p.tgt != pair.src for t in (p.src, p.tgt)]
        shown = normalize(material)
        assert not any(len(o) > 20 and o in shown for o in others)
