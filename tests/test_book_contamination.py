"""On the real mirror: MTOB's test sentences never reach any training source of en-kgv — task
pairs, book-derived auxiliary examples, in-context material — and the dictionaria dev/test split
shares no sentence with anything trained on. Only counts and booleans are asserted: the test set
carries a canary and its text must never appear in logs."""

import os
import random
import re
from pathlib import Path

import pytest

from lowres_mt.config import PROJECT_ROOT

MIRROR = Path(os.environ.get("LOWRES_MT_MIRROR") or PROJECT_ROOT.parent / "shared" / "corpora")
pytestmark = pytest.mark.skipif(not (MIRROR / "mtob_xri_derived").is_dir(), reason="no corpora mirror")


def count_words(texts):
    return [len(t.split()) for t in texts]


@pytest.fixture(scope="module")
def kgv(tmp_path_factory):
    from lowres_mt.config import load_recipe
    from lowres_mt.corpora import fetch, load_set
    from lowres_mt.corpora.book.readers import record_texts
    from lowres_mt.data.guard import guard_from_sets, protected_sets
    from lowres_mt.text import normalize

    patch = pytest.MonkeyPatch()
    patch.setenv("LOWRES_MT_MIRROR", str(MIRROR))
    patch.setenv("LOWRES_MT_CACHE", str(tmp_path_factory.mktemp("cache")))
    patch.delenv("LOWRES_MT_CORPORA", raising=False)
    patch.setattr(fetch, "_verified", {})
    cfg = load_recipe("en-kgv")
    test = load_set("mtob:kgv-test")
    sentences = {normalize(t) for pair in test for t in (pair.src, pair.tgt)}
    yield {"cfg": cfg, "guard": guard_from_sets(protected_sets(cfg)), "test": test, "sentences": sentences,
           "load_set": load_set, "normalize": normalize, "record_texts": record_texts}
    patch.undo()


def leaks(texts, sentences: set[str], normalize) -> int:
    """How many protected sentences occur in `texts`: as whole words anywhere (three words or
    more), or as a whole line or quotation (shorter ones)."""
    lines = {normalize(line) for text in texts for line in re.split(r"[\n‘’]", text)}
    corpus = " " + " | ".join(normalize(text) for text in texts) + " "
    return sum((len(s.split()) >= 3 and f" {s} " in corpus) or s in lines for s in sentences)


def test_split_sizes_and_the_overlap_the_issue_describes(kgv):
    load_set, normalize = kgv["load_set"], kgv["normalize"]
    assert len(kgv["test"]) == 50 and len(load_set("mtob:kgv-train")) == 375
    dictionary = {normalize(p.src) for p in load_set("dictionaria:examples")}
    assert sum(normalize(p.tgt) in dictionary for p in kgv["test"]) == 49
    assert (len(load_set("dictionaria:dev")), len(load_set("dictionaria:test"))) == (150, 400)


def test_task_pool_holds_no_test_sentence(kgv):
    from lowres_mt.data.pools import load_task_pool

    stats = {}
    pool = load_task_pool(kgv["cfg"], kgv["guard"], stats)
    norm = kgv["normalize"]
    assert pool
    assert sum(norm(p.src) in kgv["sentences"] or norm(p.tgt) in kgv["sentences"] for p in pool) == 0
    assert stats["mtob:kgv-train"].contaminated == 0


def test_dictionaria_dev_and_test_share_nothing_with_training_or_mtob(kgv):
    load_set, norm, texts = kgv["load_set"], kgv["normalize"], kgv["record_texts"]
    held = {norm(t) for ref in ("dictionaria:dev", "dictionaria:test") for p in load_set(ref) for t in (p.src, p.tgt)}
    used = set(kgv["sentences"])
    for ref in (*kgv["cfg"].task.train, "kalamang_grammar:examples"):
        used |= {norm(t) for record in load_set(ref) for t in texts(record)}
    assert len(held & used) == 0


def test_book_examples_hold_no_test_sentence(kgv):
    from lowres_mt.book.aux_tasks import book_examples

    made = book_examples(kgv["cfg"], kgv["guard"], random.Random(0), 10**9, count_words)  # every candidate
    kinds = {ex.id.split("/")[1] for ex, _ in made}
    assert kinds == {"words", "gloss", "unglossed", "gloss-translation", "passage"}
    contents = [m.content for ex, _ in made for m in ex.messages]
    assert leaks(contents, kgv["sentences"], kgv["normalize"]) == 0


def test_in_context_material_holds_no_test_sentence(kgv):
    from lowres_mt.book.context import BookContext

    context = BookContext.from_config(kgv["cfg"], kgv["guard"])
    materials = [context.material(src, src_lang, tgt_lang, "W+S+G", 2048, count_words)
                 for pair in kgv["test"]
                 for src, src_lang, tgt_lang in ((pair.src, "en", "kgv"), (pair.tgt, "kgv", "en"))]
    assert sum(bool(m) for m in materials) >= 90  # ints only: a failure must not print the material
    assert leaks(materials, kgv["sentences"], kgv["normalize"]) == 0
