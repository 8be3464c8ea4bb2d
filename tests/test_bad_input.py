"""Bad input and faults through the real CLI on tiny fixtures: one line on stderr, exit 2, no
traceback, and a user's files byte-identical afterwards."""

import errno
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import cli
from test_models import _write_tiny_llama_gguf
from test_train_loop import write_toy_run
from test_translate_cli import tiny_run  # noqa: F401  (a fixture)

from lowres_mt import models
from lowres_mt.config import load_recipe
from lowres_mt.corpora import fetch
from lowres_mt.io import atomic_dir, remove_stale
from lowres_mt.train import rundir

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parent.parent
PAIRS = [(f"The dog number {i} runs home.", f"Hundur númer {i} hleypur heim.") for i in range(40)]


def one_line(result, *needles):
    code, _, err = result
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert "Traceback" not in err and all(n in lines[0] for n in needles), lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict:
    """Every entry under `folder` (links not followed) with its bytes or link target."""
    out = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        out[key] = f"-> {os.readlink(path)}" if path.is_symlink() else path.read_bytes() if path.is_file() else "dir"
    return out


@pytest.fixture
def world(tmp_path, monkeypatch, tiny_model_dir):
    """A one-corpus world (manifest, mirror, cache) and recipe `toy` on the tiny base model."""
    mirror, manifests, recipes = tmp_path / "mirror" / "toy", tmp_path / "corpora", tmp_path / "recipes"
    for folder in (mirror, manifests, recipes):
        folder.mkdir(parents=True)
    files = {"train.tsv": "".join(f"{s}\t{t}\n" for s, t in PAIRS[:30]),
             "test.tsv": "".join(f"{s}\t{t}\n" for s, t in PAIRS[30:])}
    set_file(mirror, manifests, files)
    (recipes / "toy.yaml").write_text(yaml.safe_dump({
        "name": "toy", "languages": ["en", "is"], "base_model": str(tiny_model_dir),
        "task": {"train": ["toy:train"], "tokens": 200, "dev_size": 0},
        "eval": {"testsets": ["toy:test"], "systems": ["tell"]}}), encoding="utf-8")
    env = {"LOWRES_MT_MIRROR": str(mirror.parent), "LOWRES_MT_CORPORA": str(manifests),
           "LOWRES_MT_CACHE": str(tmp_path / "cache"), "LOWRES_MT_RECIPES": str(recipes),
           "LOWRES_MT_RUNS": str(tmp_path / "runs"), "LOWRES_MT_RESULTS": str(tmp_path / "results")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(fetch, "_verified", {})
    return tmp_path


def set_file(mirror: Path, manifests: Path, files: dict[str, str | bytes]) -> None:
    """Write the corpus files into the mirror and a manifest whose checksums match them."""
    entries = []
    for name, text in files.items():
        data = text if isinstance(text, bytes) else text.encode("utf-8")
        (mirror / name).write_bytes(data)
        entries.append({"path": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                        "url": f"https://example.org/{name}"})
    sets = {"train": {"role": "train", "format": "tsv-pairs", "files": ["train.tsv"], "languages": ["en", "is"]},
            "test": {"role": "test", "format": "tsv-pairs", "files": ["test.tsv"], "languages": ["en", "is"]}}
    (manifests / "toy.yaml").write_text(yaml.safe_dump({
        "name": "toy", "description": "toy", "license": "CC0-1.0", "languages": ["en", "is"], "mirror": "toy",
        "upstream": {"repo": "example/toy", "commit": "0"}, "files": entries, "sets": sets}), encoding="utf-8")


def data(monkeypatch, capsys, out):
    return cli(monkeypatch, capsys, "data", "toy", "--method", "sft", "--out", out)


# --- data loss: --out and atomic_dir ---------------------------------------------------------

def test_out_refuses_a_folder_of_other_files(world, monkeypatch, capsys):
    mine = world / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_bytes(b"four years of work\n")
    before = snapshot(world)
    one_line(data(monkeypatch, capsys, mine), str(mine), "did not write")
    assert snapshot(world) == before


def test_out_refuses_a_file(world, monkeypatch, capsys):
    (world / "notes").write_bytes(b"not a folder\n")
    before = snapshot(world)
    one_line(data(monkeypatch, capsys, world / "notes"), "is a file")
    assert snapshot(world) == before


def test_out_replaces_only_its_own_output(world, monkeypatch, capsys):
    out = world / "data"
    assert data(monkeypatch, capsys, out)[0] == 0 and (out / "train.jsonl").is_file()
    (world / "precious.txt").write_bytes(b"keep me\n")
    (out / "train.jsonl").unlink()
    (out / "train.jsonl").symlink_to(world / "precious.txt")  # planted in place of one of our files
    assert data(monkeypatch, capsys, out)[0] == 0  # a previous output is rebuilt, the link not followed
    assert (world / "precious.txt").read_bytes() == b"keep me\n" and not (out / "train.jsonl").is_symlink()
    (out / "thesis.txt").write_bytes(b"mine\n")  # a user's file inside it: refused from now on
    before = snapshot(world)
    one_line(data(monkeypatch, capsys, out), "did not write (thesis.txt)")
    assert snapshot(world) == before


def test_out_through_a_link_writes_where_it_points_and_survives_stale_leftovers(world, monkeypatch, capsys):
    target, link = world / "elsewhere", world / "data"
    target.mkdir()
    link.symlink_to(target)
    (world / "user").mkdir()
    (world / "user" / "file.txt").write_bytes(b"user data\n")
    for _ in range(2):
        assert data(monkeypatch, capsys, link)[0] == 0
        assert link.is_symlink() and (target / "train.jsonl").is_file()
    # a stale or planted `.name.old` (a link to the user's folder, or a file) is never in the way
    (world / ".elsewhere.old").symlink_to(world / "user")
    (world / ".data.old").write_bytes(b"stale\n")
    assert data(monkeypatch, capsys, link)[0] == 0
    assert (world / "user" / "file.txt").read_bytes() == b"user data\n"
    assert sorted(p.name for p in world.iterdir() if p.name.startswith(".")) == [".data.old", ".elsewhere.old"]


def test_stale_temporaries_of_a_killed_write_are_removed_but_live_ones_kept(tmp_path):
    import fcntl

    stale = tmp_path / ".out.abcd1234.tmp"
    live = tmp_path / ".out.live0000.tmp"
    for folder in (stale, live):
        folder.mkdir()
        (folder / "part.bin").write_bytes(b"x")
    (tmp_path / ".out.link1234.tmp").symlink_to(tmp_path / "live-target")
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another process is writing this one right now
    try:
        remove_stale(tmp_path / "out")
    finally:
        os.close(fd)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.link1234.tmp", ".out.live0000.tmp"]
    with atomic_dir(tmp_path / "out", marker="done") as tmp:
        (tmp / "done").write_text("ok")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.link1234.tmp", "out"]


@pytest.mark.parametrize(("code", "needle"), [(errno.EROFS, "writable"), (errno.ENOSPC, "free some space")])
def test_unwritable_output_is_one_line_and_leaves_nothing(world, monkeypatch, capsys, code, needle):
    def fail(path, rows):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr("lowres_mt.dataset.write_jsonl", fail)
    one_line(data(monkeypatch, capsys, world / "out"), "train.jsonl", needle)
    assert not [p.name for p in world.iterdir() if "out" in p.name]  # nothing half-written


# --- text that is not UTF-8 ------------------------------------------------------------------

def test_recipe_with_invalid_utf8(tmp_path, monkeypatch, capsys):
    (tmp_path / "bad.yaml").write_bytes(b"name: bad\nlanguages: [en, is]\ndescription: caf\xe9\n")
    monkeypatch.setenv("LOWRES_MT_RECIPES", str(tmp_path))
    one_line(cli(monkeypatch, capsys, "recipes", "show", "bad"), "bad.yaml: line 3 is not valid UTF-8")


def test_corpus_file_with_invalid_utf8_and_a_correct_checksum(world, monkeypatch, capsys):
    train = "".join(f"{s}\t{t}\n" for s, t in PAIRS[:30]).encode()
    set_file(world / "mirror" / "toy", world / "corpora", {"train.tsv": train + b"caf\xe9\tkaffi\n",
                                                          "test.tsv": "a\tb\n"})
    one_line(data(monkeypatch, capsys, world / "out"), "train.tsv: line 31 is not valid UTF-8")
    assert not (world / "out").exists()


def test_translate_input_with_invalid_utf8(tiny_run, tmp_path, monkeypatch, capsys):  # noqa: F811
    (tmp_path / "in.txt").write_bytes(b"Good morning.\nThe caf\xe9.\n")
    monkeypatch.setattr(models, "load_base", lambda *a, **k: pytest.fail("loaded a model"))
    one_line(cli(monkeypatch, capsys, "translate", "--run", tiny_run, "--from", "en", "--to", "is",
                 "--input", tmp_path / "in.txt"), "in.txt: line 2 is not valid UTF-8")
    piped = subprocess.run([sys.executable, "-m", "lowres_mt", "translate", "--run", str(tiny_run), "--from",
                            "en", "--to", "is"], input=b"ok\n\xff\xfe bad\n", capture_output=True, cwd=ROOT,
                           env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}, timeout=120)
    one_line((piped.returncode, "", piped.stderr.decode()), "stdin: line 2 is not valid UTF-8")


# --- damaged models, adapters, checkpoints ---------------------------------------------------

def test_damaged_bundled_conversion_is_converted_again(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOWRES_MT_CACHE", str(tmp_path / "cache"))
    _write_tiny_llama_gguf(tmp_path / "tiny.gguf")
    monkeypatch.setitem(models.REGISTRY, "tiny-gguf", models.BundledModel(
        "tiny-gguf", "gguf", "pip install gguf", lambda scratch: tmp_path / "tiny.gguf"))
    folder = models.resolve_base("tiny-gguf")
    args = ("translate", "--base-model", "tiny-gguf", "--from", "en", "--to", "is", "--max-new-tokens", 2, "hi")
    weights = folder / "model.safetensors"
    with weights.open("r+b") as f:
        f.truncate(weights.stat().st_size // 2)
    assert cli(monkeypatch, capsys, *args)[0] == 0
    (folder / "tokenizer.json").write_text('{"version": "1.0", "trunc')
    assert cli(monkeypatch, capsys, *args)[0] == 0
    models.load_base("tiny-gguf")  # whole again


def test_base_model_that_needs_remote_code(tiny_model_dir, monkeypatch, capsys):
    config = json.loads((tiny_model_dir / "config.json").read_text())
    config.update(model_type="my_own_model", auto_map={"AutoConfig": "configuration_mine.MineConfig",
                                                        "AutoModelForCausalLM": "modeling_mine.Mine"})
    (tiny_model_dir / "config.json").write_text(json.dumps(config))
    one_line(cli(monkeypatch, capsys, "translate", "--base-model", tiny_model_dir, "--from", "en", "--to", "is",
                 "hi"), "trust_remote_code", "never runs")


@pytest.mark.parametrize(("damage", "needle"), [
    ("truncate", "is damaged"), ("garble-config", "not a JSON object"), ("pickle-only", "safetensors only")])
def test_damaged_adapter(tiny_run, monkeypatch, capsys, damage, needle):  # noqa: F811
    weights = tiny_run / "adapter" / "adapter_model.safetensors"
    if damage == "truncate":
        with weights.open("r+b") as f:
            f.truncate(weights.stat().st_size - 100)
    elif damage == "garble-config":
        (tiny_run / "adapter" / "adapter_config.json").write_text("\x00garbage")
    else:
        weights.rename(weights.with_name("adapter_model.bin"))
    line = one_line(cli(monkeypatch, capsys, "translate", "--run", tiny_run, "--from", "en", "--to", "is", "hi"),
                    needle)
    assert "another base" not in line


@pytest.fixture
def interrupted_run(tmp_path, tiny_model_dir, monkeypatch):
    """runs/toy-tell as an interrupted run left it: config, data, run.json, two checkpoint folders."""
    recipe, run_dir = write_toy_run(tmp_path, tiny_model_dir)
    rundir.write_config(load_recipe(str(recipe)), run_dir)
    rundir.update_run_info(run_dir, recipe="toy", method="tell", status="interrupted")
    monkeypatch.setenv("LOWRES_MT_RUNS", str(tmp_path / "runs"))
    return recipe, run_dir


def _fake_checkpoint(folder: Path, files=("state.json", "optimizer.pt")) -> None:
    folder.mkdir(parents=True)
    for name in files:
        (folder / name).write_text(json.dumps({"step": 2}))


@pytest.mark.parametrize("earlier", [False, True])
def test_resume_from_an_incomplete_checkpoint(interrupted_run, monkeypatch, capsys, earlier):
    recipe, run_dir = interrupted_run
    if earlier:
        _fake_checkpoint(run_dir / "checkpoints" / "step-2")
    _fake_checkpoint(run_dir / "checkpoints" / "step-4")  # no adapter, scheduler or rng states
    before = snapshot(run_dir)
    line = one_line(cli(monkeypatch, capsys, "train", recipe, "--resume", "--no-progress"),
                    "step-4", "incomplete or damaged", "missing")
    assert ("from step-2" in line) == earlier
    assert snapshot(run_dir) == before  # run.json still says "interrupted"


def test_resume_without_any_checkpoint(interrupted_run, monkeypatch, capsys):
    recipe, run_dir = interrupted_run
    before = snapshot(run_dir)
    one_line(cli(monkeypatch, capsys, "train", recipe, "--resume"), "no checkpoint to resume from",
             "without --resume")
    assert snapshot(run_dir) == before


# --- options and recipe values out of range --------------------------------------------------

@pytest.mark.parametrize(("option", "value"), [("--max-new-tokens", -5), ("--num-beams", 0), ("--batch-size", 0)])
def test_translate_options_are_checked_before_loading(tiny_model_dir, monkeypatch, capsys, option, value):
    monkeypatch.setattr(models, "load_base", lambda *a, **k: pytest.fail("loaded a model"))
    one_line(cli(monkeypatch, capsys, "translate", "--base-model", tiny_model_dir, "--from", "en", "--to", "is",
                 option, value, "hi"), option, "greater than or equal to 1")


def test_every_numeric_option_shows_its_range_in_help(monkeypatch, capsys):
    code, out, _ = cli(monkeypatch, capsys, "translate", "--help")
    assert code == 0 and out.count("x>=1") == 3


@pytest.mark.parametrize(("args", "needle"), [
    (("eval", "toy", "--sample", -3), "'--sample'"), (("select", "toy", "--epochs", 0), "'--epochs'"),
    (("data", "toy", "task.tokens=-5"), "'task.tokens' must be at least 1"),
    (("eval", "toy", "eval.batch_size=0"), "'eval.batch_size' must be at least 1")])
def test_out_of_range_values_are_refused(world, monkeypatch, capsys, args, needle):
    one_line(cli(monkeypatch, capsys, *args), needle)
    assert not (world / "runs").exists() and not (world / "results").exists()


@pytest.mark.parametrize(("systems", "needle"), [("nosuch-system", "unknown system 'nosuch-system'"),
                                                 ("tell", "nothing was evaluated")])
def test_eval_never_rewrites_the_report_with_nothing(world, monkeypatch, capsys, systems, needle):
    report = world / "results" / "toy" / "REPORT.md"
    report.parent.mkdir(parents=True)
    report.write_text("# earlier results\n")
    one_line(cli(monkeypatch, capsys, "eval", "toy", "--systems", systems), needle)
    assert report.read_text() == "# earlier results\n"


# --- translate: long segments, streaming -----------------------------------------------------

def test_a_segment_too_long_to_translate_is_refused_with_the_limit(tiny_model_dir, monkeypatch, capsys):
    monkeypatch.setattr(models, "load_base", lambda *a, **k: pytest.fail("loaded a model"))
    one_line(cli(monkeypatch, capsys, "translate", "--base-model", tiny_model_dir, "--from", "en", "--to", "is",
                 "ok", "a" * 1_000_000), "input line 2", "1,000,000 characters", "2,000")


def test_translate_writes_each_batch_as_soon_as_it_is_done(tiny_model_dir, tmp_path, monkeypatch, capsys):
    from lowres_mt.translate import Engine

    written, lines = [], [0]

    def fake_translate(self, sources, src, tgt, **kwargs):
        lines[0] += capsys.readouterr().out.count("\n")
        written.append(lines[0])  # lines already on stdout when this batch starts
        return [s.upper() for s in sources]

    monkeypatch.setattr(Engine, "translate", fake_translate)
    (tmp_path / "in.txt").write_text("".join(f"line {i}.\n" for i in range(7)))
    code, out, err = cli(monkeypatch, capsys, "translate", "--base-model", tiny_model_dir, "--from", "en",
                         "--to", "is", "--batch-size", 3, "--input", tmp_path / "in.txt")
    assert code == 0 and written == [0, 3, 6]  # batches of 3, each written before the next one starts
    assert "translating en→is: 7/7" in err  # a log (stderr not a terminal) gets progress lines
