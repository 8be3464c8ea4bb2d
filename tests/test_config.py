import dataclasses
import textwrap

import pytest

from lowres_mt.config import dump_recipe, list_recipes, load_recipe
from lowres_mt.errors import UserError


@pytest.fixture
def recipe_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LOWRES_MT_RECIPES", str(tmp_path))
    (tmp_path / "_base.yaml").write_text("seed: 3\ntask:\n  tokens: 500\n")
    return tmp_path


def write(recipe_dir, name, body):
    path = recipe_dir / f"{name}.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def test_shipped_recipes_load():
    assert "en-is" in list_recipes()
    cfg = load_recipe("en-is")
    assert cfg.languages == ("en", "is")
    assert cfg.directions == ("en-is", "is-en")
    assert cfg.task.train and cfg.general.corpora
    assert "flores200:devtest" in cfg.task.guard


def test_extends_merges_and_child_wins(recipe_dir):
    write(recipe_dir, "xx", "extends: _base\nname: xx\nlanguages: [en, fo]\ntask:\n  dev_size: 7\n")
    cfg = load_recipe("xx")
    assert (cfg.seed, cfg.task.tokens, cfg.task.dev_size) == (3, 500, 7)
    assert "_base" not in list_recipes()


@pytest.mark.parametrize(
    ("override", "check"),
    [
        ("task.tokens=20000", lambda c: c.task.tokens == 20000),
        ("train.lr=1e-4", lambda c: c.train.lr == pytest.approx(1e-4)),
        ("train.epochs=2", lambda c: c.train.epochs == 2.0 and isinstance(c.train.epochs, float)),
        ("general.ratio=0", lambda c: c.general.ratio == 0.0),
        ("lora.r=4", lambda c: c.lora == {"r": 4}),  # en-is says lora: null; a dotted key starts a block
        ("lora=null", lambda c: c.lora is None),
        ("eval.alphabet=auto", lambda c: c.eval.alphabet == "auto"),
        ("eval.alphabet=false", lambda c: c.eval.alphabet is False),
    ],
)
def test_dotted_overrides(override, check):
    assert check(load_recipe("en-is", [override]))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("name: b\nlanguages: [en, is]\ntask:\n  tokenz: 5\n", "unknown key 'task.tokenz'"),
        ("name: b\nlanguages: [en, is]\ntask:\n  tokens: many\n", "'task.tokens' must be int"),
        ("name: b\nlanguages: [en]\n", "'languages' must have 2 items"),
        ("name: b\nlanguages: [en, is]\ngeneral:\n  select: magic\n", "'general.select' must be one of"),
        ("languages: [en, is]\n", "missing required key 'name'"),
        ("name: b\nlanguages: [en, is]\ntask: [1, 2]\n", "'task' must be a mapping"),
        ("name: b\n  languages: [en\n", "invalid YAML"),
        ("name: b\nlanguages: [en, is]\neval:\n  alphabet: Auto\n", "'eval.alphabet' must be bool or 'auto', got str"),
    ],
)
def test_validation_errors_name_key_and_file(recipe_dir, body, message):
    path = write(recipe_dir, "b", body)
    with pytest.raises(UserError) as err:
        load_recipe("b")
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_bad_override_and_unknown_recipe(recipe_dir):
    write(recipe_dir, "c", "name: c\nlanguages: [en, is]\n")
    with pytest.raises(UserError, match="KEY=VALUE"):
        load_recipe("c", ["task.tokens"])
    with pytest.raises(UserError, match="unknown key 'task.nope'"):
        load_recipe("c", ["task.nope=1"])
    with pytest.raises(UserError, match="unknown recipe 'zz'"):
        load_recipe("zz")


def test_extends_cycle_is_an_error(recipe_dir):
    write(recipe_dir, "p", "extends: q\nname: p\nlanguages: [en, is]\n")
    write(recipe_dir, "q", "extends: p\n")
    with pytest.raises(UserError, match="cycle"):
        load_recipe("p")


def test_config_is_frozen_and_dump_round_trips(tmp_path):
    cfg = load_recipe("en-is")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1
    path = tmp_path / "resolved.yaml"
    path.write_text(dump_recipe(cfg))
    assert load_recipe(str(path)) == cfg
