import pytest

from lowres_mt.config import AnchorConfig, RecipeConfig
from lowres_mt.data.prompts import prompt_messages
from lowres_mt.errors import UserError
from lowres_mt.languages import has_name, language_name, parse_names
from lowres_mt.typed import build


@pytest.mark.parametrize(("code", "name"), [
    # the names trained runs' prompts have always used: these must never change
    ("en", "English"), ("is", "Icelandic"), ("kgv", "Kalamang"), ("kau", "Kanuri"), ("id", "Indonesian"),
    # from langcodes' ISO 639 data
    ("fo", "Faroese"), ("kl", "Kalaallisut"), ("se", "Northern Sami"), ("fao", "Faroese"),
])
def test_language_name(code, name):
    assert language_name(code) == name


@pytest.mark.parametrize(("code", "names", "name"), [
    ("fo", {"fo": "Føroyskt"}, "Føroyskt"),
    ("kgv", {"kgv": "Karas"}, "Karas"),  # the recipe wins over the override table
    ("xq", {"xq": "Xq-ish"}, "Xq-ish"),
    ("en", {"fo": "Faroese"}, "English"),
])
def test_recipe_names_come_first(code, names, name):
    assert language_name(code, names) == name


@pytest.mark.parametrize("code", ["xq", "qaa", "und", "zz", "", "not a code"])
def test_unknown_code_is_one_line(code):
    with pytest.raises(UserError) as err:
        language_name(code)
    message = str(err.value)
    assert "\n" not in message and f"no language name for '{code}'" in message
    assert f"language_names: {{{code}: Name}}" in message and f"--names {code}=Name" in message
    assert not has_name(code)


def test_prompt_strings_unchanged():
    messages, prefix = prompt_messages("Hello.", "en", "kgv", "plain", AnchorConfig())
    assert messages[-1].content == "Translate from English to Kalamang.\n\nEnglish: Hello."
    assert prefix == "Kalamang:"


@pytest.mark.parametrize(("text", "names"), [
    ("en=English,fo=Faroese", {"en": "English", "fo": "Faroese"}),
    (" fo = Faroese , ", {"fo": "Faroese"}),
    ("se=Northern Sami", {"se": "Northern Sami"}),
    ("", {}),
])
def test_parse_names(text, names):
    assert parse_names(text) == names


@pytest.mark.parametrize("text", ["fo", "fo=", "=Faroese", "en=English,fo", "f o=Faroese"])
def test_parse_names_refuses_malformed_items(text):
    with pytest.raises(UserError, match="CODE=Name"):
        parse_names(text)


@pytest.mark.parametrize(("data", "ok"), [
    ({"name": "fo-en", "languages": ["en", "fo"]}, True),
    ({"name": "xq-en", "languages": ["en", "xq"], "language_names": {"xq": "Xq-ish"}}, True),
    ({"name": "xq-en", "languages": ["en", "xq"]}, False),
])
def test_recipe_load_checks_every_language_has_a_name(data, ok):
    if ok:
        assert build(RecipeConfig, data, where="r.yaml").languages == tuple(data["languages"])
    else:
        with pytest.raises(UserError, match="no language name for 'xq'"):
            build(RecipeConfig, data, where="r.yaml")


@pytest.mark.parametrize(("src", "tgt", "error"), [
    ("fo", "en", None), ("en", "kgv", None), ("xq", "en", "no language name for 'xq'"),
])
def test_base_model_translates_any_named_language(src, tgt, error):
    from lowres_mt.translate.session import Translator

    translator = Translator("plain", AnchorConfig(), {}, None, None, label="base model 'tiny'")
    if error is None:
        translator.check(src, tgt)
    else:
        with pytest.raises(UserError, match=error):
            translator.check(src, tgt)
