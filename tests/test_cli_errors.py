"""User mistakes end in one line on stderr, exit status 2 and no traceback."""

import os
import subprocess
import sys

import pytest


def run_cli(*args, env=None, cwd=None):
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "lowres_mt", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=120)


def assert_one_line_error(result, *needles):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_unknown_recipe():
    assert_one_line_error(run_cli("recipes", "show", "xx-yy"), "unknown recipe 'xx-yy'")
    assert_one_line_error(run_cli("data", "xx-yy"), "unknown recipe 'xx-yy'")


@pytest.mark.parametrize(
    ("body", "needle"),
    [("name: bad\n  languages: [en\n", "invalid YAML"), ("name: bad\nlanguages: [en, is]\nwhat: 1\n", "unknown key 'what'")],
)
def test_bad_recipe_file(tmp_path, body, needle):
    (tmp_path / "bad.yaml").write_text(body)
    assert_one_line_error(run_cli("recipes", "show", "bad", env={"LOWRES_MT_RECIPES": str(tmp_path)}), needle, "bad.yaml")


def test_bad_override():
    assert_one_line_error(run_cli("recipes", "show", "en-is", "task.tokens=lots"), "'task.tokens' must be int")


def test_recipes_show_prints_resolved_config():
    result = run_cli("recipes", "show", "en-is", "task.tokens=1234")
    assert result.returncode == 0, result.stderr
    assert "tokens: 1234" in result.stdout
