"""The answer alphabet: the shipped table (`eval.alphabet: true`) and letters learned from the
training pairs (`auto`)."""

import unicodedata

import pytest

from lowres_mt.config import EvalConfig, RecipeConfig, TaskConfig
from lowres_mt.errors import UserError
from lowres_mt.records import Pair
from lowres_mt.text import EXTRA_LETTERS, alphabet_letters, learn_alphabets, learn_letters
from lowres_mt.translate.engine import DecodeSettings, recipe_alphabet

# Faroese-like: á í ó ú ý æ ø ð, each in three or more words; one Swedish loanword (å, ä once)
FAROESE = ["Góðan morgun, hvussu hevur tú tað?", "Eg eri føddur í Havn og búgvi á Sandoy.",
           "Tað er ein stórur dagur í dag, sigur hann.", "Hon hevði ikki sæð tað áðrenn.",
           "Ærligt talt: tey eru ósamd um tað sum ávikavist skal gerast.", "Ýtan gav ørindi í ærlingi.",
           "Blíður er mýrin, og fýra ýgjur eru føddar á ørindi bæði nú og ýmsan tíð.",
           "Hann át smörgåsbord."]
FAROESE_LETTERS = "áæíðóøúý"


@pytest.mark.parametrize(("texts", "letters"), [
    (FAROESE, FAROESE_LETTERS),  # å and ö, from one loanword, stay out
    (["Góðan daginn", "góðan daginn", "GÓÐAN daginn"], ""),  # one word three times is one word
    (["góðan", "ferð", "þórður", "jörð"], "ð"),  # ó in 2 words, ð in 4
    (["fara", "vera", "gera"], ""),  # nothing beyond a-z
    ([unicodedata.normalize("NFD", "ó ós ósk")], "ó"),  # decomposed letters count as composed
    (["Москва мост мосты"], "мос"),  # another script: its letters in 3 words (т in 2)
])
def test_learn_letters(texts, letters):
    assert learn_letters(texts) == letters


def test_learn_letters_threshold_is_a_parameter():
    assert learn_letters(["Hann át smörgåsbord."], min_words=1) == "áåö"


def test_learn_alphabets_reads_each_language_side():
    pairs = [Pair(f"Good morning {i}.", text, "en", "fo") for i, text in enumerate(FAROESE)]
    pairs += [Pair(text, "Back.", "fo", "en") for text in FAROESE[:2]]
    # English learns none of its own, but answers into it may write the pair's names ("Jón")
    assert learn_alphabets(pairs, ("en", "fo")) == {"en": FAROESE_LETTERS, "fo": FAROESE_LETTERS}
    english_only = [Pair("Good morning.", "Góðan morgun.", "en", "fo")]
    assert learn_alphabets(english_only, ("en", "fo")) == {"en": "", "fo": ""}  # below 3 words: a-z
    assert learn_alphabets(pairs, ("kl",)) == {}  # a language no pair is written in limits nothing


@pytest.mark.parametrize(("lang", "table", "letters"), [
    ("is", True, EXTRA_LETTERS["is"]), ("is", True, "áðéíóúýþæö"), ("en", True, None), ("fo", True, None),
    ("is", False, None), (None, True, None),
    ("fo", {"fo": FAROESE_LETTERS, "en": ""}, FAROESE_LETTERS), ("en", {"fo": FAROESE_LETTERS, "en": ""}, ""),
    ("is", {"fo": FAROESE_LETTERS}, None),
])
def test_alphabet_letters(lang, table, letters):
    assert alphabet_letters(lang, table) == letters


def _recipe(alphabet, train=("toy:train",)):
    return RecipeConfig(name="toy", languages=("en", "fo"), task=TaskConfig(train=train),
                        eval=EvalConfig(alphabet=alphabet))


@pytest.fixture
def toy_corpus(monkeypatch):
    import lowres_mt.corpora as corpora

    pairs = [Pair(f"Good morning {i}.", text, "en", "fo", "toy:train", str(i)) for i, text in enumerate(FAROESE)]
    monkeypatch.setattr(corpora, "load_set", lambda ref: list(pairs))


@pytest.mark.parametrize(("alphabet", "expected"), [
    (True, True), (False, False), ("auto", {"en": FAROESE_LETTERS, "fo": FAROESE_LETTERS})])
def test_recipe_alphabet(toy_corpus, alphabet, expected):
    assert recipe_alphabet(_recipe(alphabet)) == expected
    assert DecodeSettings.for_recipe(_recipe(alphabet)).alphabet == expected


def test_auto_without_training_pairs_is_a_user_error():
    with pytest.raises(UserError, match="eval.alphabet: auto learns .* from task.train"):
        recipe_alphabet(_recipe("auto", train=()))


def test_from_config_keeps_true_and_refuses_an_unlearned_auto():
    assert DecodeSettings.from_config(EvalConfig()).alphabet is True
    assert DecodeSettings.from_config(EvalConfig(alphabet="auto"), alphabet={"fo": "ð"}).alphabet == {"fo": "ð"}
    with pytest.raises(ValueError, match="for_recipe"):
        DecodeSettings.from_config(EvalConfig(alphabet="auto"))
