"""A user's own language pair, end to end: the README's commands, verbatim, in a folder outside the
checkout, on plain files (tests/fixtures/own_pair) and a tiny random model."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import FIXTURES, make_tiny_model

from lowres_mt.config import deep_merge

README = Path(__file__).parent.parent / "README.md"
SECTION = "## Your own language pair in five commands"
# what the test changes in the recipe `init` wrote: the tiny model, 2 steps, no general data
# (TELL's instruction corpora are the shipped ones; the tiny model has no use for them)
TINY_SETTINGS = {
    "general": {"ratio": 0},
    "train": {"max_steps": 2, "batch_tokens": 256, "max_length": 128, "eval_every": 1, "save_every": 0,
              "dev_chrf_size": 2, "threads": 1, "dtype": "float32"},
    "eval": {"max_new_tokens": 8, "batch_size": 4, "bootstrap": 10},
}


def readme_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README lost its section '{SECTION}'"
    block = re.search(r"```bash\n(.*?)```", text.split(SECTION, 1)[1], re.DOTALL)
    assert block, "no ```bash block under the own-pair section"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", "LOWRES_MT_RUNS": str(cwd / "runs")}
    env.pop("LOWRES_MT_RECIPES", None)
    env.pop("LOWRES_MT_CORPORA", None)
    return subprocess.run([sys.executable, "-m", "lowres_mt", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


def assert_one_line_error(result, *needles):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_tokenizer):
    """A user's folder: data/ holds their files; runs the README's commands one by one."""
    root = tmp_path_factory.mktemp("own-pair")
    shutil.copytree(FIXTURES / "own_pair", root / "data")
    base = root / "tiny-base"
    make_tiny_model(tiny_tokenizer).save_pretrained(base)
    tiny_tokenizer.save_pretrained(base)
    outputs = {}
    for line in readme_commands():
        args = shlex.split(line)
        assert args[0] == "lowres-mt", line
        result = run_cli(args[1:], root)
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
        outputs[args[1]] = result
        if args[1] == "init":
            recipe = root / "en-fo.yaml"
            outputs["recipe"] = recipe.read_text(encoding="utf-8")
            data = deep_merge(yaml.safe_load(outputs["recipe"]), {**TINY_SETTINGS, "base_model": str(base)})
            recipe.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return root, outputs


def test_init_writes_a_recipe_over_the_files(project):
    root, outputs = project
    recipe = outputs["recipe"]
    assert "extends: _base" in recipe and "train: [data/train.tsv]" in recipe
    assert "alphabet: auto" in recipe and yaml.safe_load((root / "en-fo.yaml").read_text())["eval"]["alphabet"] == "auto"
    assert "lowres-mt train en-fo.yaml" in outputs["init"].stdout


def test_data_manifest_records_each_files_digest(project):
    root, _ = project
    manifest = json.loads((root / "runs/en-fo-tell/data/manifest.json").read_text(encoding="utf-8"))
    train = str(root / "data" / "train.tsv")
    digest = __import__("hashlib").sha256((root / "data/train.tsv").read_bytes()).hexdigest()
    assert manifest["files"][train][0]["sha256"] == digest
    assert manifest["corpora"][train]["used"] == 30
    assert manifest["dev_examples"] == 10  # 5 dev pairs, both directions


def test_train_eval_translate_score(project):
    root, outputs = project
    assert (root / "runs/en-fo-tell/adapter").is_dir()
    results = json.loads(next((root / "results/en-fo").rglob("*.json")).read_text(encoding="utf-8"))
    assert results  # eval --test wrote scored results
    report = (root / "results/en-fo/REPORT.md").read_text(encoding="utf-8")
    assert "test.tsv" in report and "en-fo" in report and "fo-en" in report
    assert "lowres-mt train en-fo.yaml --method sft" in outputs["eval"].stdout  # hint as the user named it
    translations = (root / "new.fo.txt").read_text(encoding="utf-8").splitlines()
    assert len(translations) == 2
    assert "chrF" in outputs["score"].stdout


def test_wordlist_in_context(project):
    root, _ = project
    result = run_cli(["train", "en-fo.yaml", "--method", "sft+context"], root)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (root / "runs/en-fo-sft+context/data/train.jsonl").open(encoding="utf-8")]
    prompts = "\n".join(row["messages"][0]["content"] for row in rows)
    assert "hús" in prompts or "bátur" in prompts  # wordlist entries in the evidence blocks


@pytest.mark.parametrize(("train", "needle"), [
    ("en\tde\nGood morning.\tGuten Morgen.\n", "recipe translates en-fo"),
    ("", "holds no sentence pairs"),
])
def test_bad_own_files_are_one_line_errors(tmp_path, train, needle):
    (tmp_path / "train.tsv").write_text(train, encoding="utf-8")
    assert_one_line_error(run_cli(["init", "en-fo", "--train", "train.tsv"], tmp_path), needle)
    assert not (tmp_path / "en-fo.yaml").exists()


def test_mismatched_recipe_code_is_an_error(tmp_path):
    shutil.copytree(FIXTURES / "own_pair", tmp_path / "data")
    (tmp_path / "fo.yaml").write_text("extends: _base\nname: en-fa\nlanguages: [en, fa]\n"
                                      "task: {train: [data/train.tsv]}\n", encoding="utf-8")
    assert_one_line_error(run_cli(["data", "fo.yaml"], tmp_path), "data/train.tsv", "en and fo", "en-fa")


def test_shipped_set_in_other_languages_is_an_error(tmp_path):
    (tmp_path / "fo.yaml").write_text("extends: _base\nname: en-fo\nlanguages: [en, fo]\n"
                                      "task: {train: [parice:tatoeba]}\n", encoding="utf-8")
    assert_one_line_error(run_cli(["data", "fo.yaml"], tmp_path), "parice:tatoeba", "en-is", "en-fo")


def test_unknown_language_code_without_a_name(tmp_path):
    shutil.copytree(FIXTURES / "own_pair", tmp_path / "data")
    assert_one_line_error(run_cli(["init", "en-qqa", "--train", "data/train.tsv"], tmp_path), "qqa")


def test_names_give_an_unknown_code_its_name(tmp_path):
    shutil.copytree(FIXTURES / "own_pair", tmp_path / "data")
    (tmp_path / "data" / "train.tsv").write_text("Good morning.\tMorning qqa.\n", encoding="utf-8")
    result = run_cli(["init", "en-qqa", "--train", "data/train.tsv", "--names", "qqa=Qqaish"], tmp_path)
    assert result.returncode == 0, result.stderr
    recipe = yaml.safe_load((tmp_path / "en-qqa.yaml").read_text(encoding="utf-8"))
    assert recipe["language_names"] == {"qqa": "Qqaish"} and recipe["task"]["train"] == ["data/train.tsv"]
    assert_one_line_error(run_cli(["init", "en-qqa", "--train", "data/train.tsv", "--names", "qqa=Qqaish"],
                                  tmp_path), "exists", "--force")
