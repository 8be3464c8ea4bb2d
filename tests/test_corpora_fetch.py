"""Fetching: mirror -> verified cache copy, trusted cache, checksum and offline errors, the CLI."""

import hashlib
import os
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lowres_mt.cli.corpora import app as corpora_app
from lowres_mt.corpora import fetch, load_manifest, load_set
from lowres_mt.errors import UserError
from lowres_mt.records import Pair

FILES = {"toy.en": "Hello.\nThank you.\n", "toy.is": "Halló.\nTakk fyrir.\n"}


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A one-corpus world: manifest dir, mirror and cache under tmp_path, wired through env vars."""
    mirror, manifests, cache = tmp_path / "mirror", tmp_path / "corpora", tmp_path / "cache"
    (mirror / "toy_folder").mkdir(parents=True)
    manifests.mkdir()
    entries = []
    for name, text in FILES.items():
        data = text.encode("utf-8")
        (mirror / "toy_folder" / name).write_bytes(data)
        entries.append({"path": name, "url": f"https://example.org/toy/{name}",
                        "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
    manifest = {
        "name": "toy", "description": "toy corpus", "license": "CC0-1.0", "languages": ["en", "is"],
        "mirror": "toy_folder", "upstream": {"repo": "example/toy", "commit": "0000000"}, "files": entries,
        "sets": {"test": {"role": "test", "format": "aligned", "files": list(FILES), "languages": ["en", "is"]}},
    }
    (manifests / "toy.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    env = {"LOWRES_MT_MIRROR": str(mirror), "LOWRES_MT_CORPORA": str(manifests), "LOWRES_MT_CACHE": str(cache)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(fetch, "_verified", {})  # a fresh "process"
    monkeypatch.setattr(fetch, "download", _no_network)
    return {"mirror": mirror / "toy_folder", "cache": cache, "env": env, "manifest": load_manifest("toy")}


def _no_network(url, dest):
    raise urllib.error.URLError("network is unreachable")


def test_fetch_copies_verified_file_into_the_cache(toy):
    manifest = toy["manifest"]
    result = fetch.fetch_entry(manifest, manifest.files[0])
    assert result.source == "mirror"
    assert result.path == toy["cache"] / "corpora" / "toy" / "toy.en"
    assert result.path.read_bytes() == (toy["mirror"] / "toy.en").read_bytes()


def test_cached_copy_is_hashed_once_per_process(toy, monkeypatch):
    manifest, entry = toy["manifest"], toy["manifest"].files[0]
    fetch.fetch_file(manifest, entry)
    calls = []
    real_hash = fetch.sha256_file
    monkeypatch.setattr(fetch, "sha256_file", lambda p: calls.append(p) or real_hash(p))
    assert fetch.fetch_entry(manifest, entry).source == "cache"
    assert calls == []  # verified when stored: trusted without re-hashing
    monkeypatch.setattr(fetch, "_verified", {})  # a new process hashes its cached copy once
    (toy["mirror"] / "toy.en").unlink()  # ... and no longer needs the mirror
    assert fetch.fetch_entry(manifest, entry).source == "cache"
    assert fetch.fetch_entry(manifest, entry).source == "cache"
    assert len(calls) == 1


def test_tampered_cache_copy_is_replaced_from_the_mirror(toy):
    manifest, entry = toy["manifest"], toy["manifest"].files[0]
    cached = fetch.fetch_file(manifest, entry)
    cached.write_text("Hellp.\nThank you.\n", encoding="utf-8")  # same size, one byte off
    result = fetch.fetch_entry(manifest, entry)
    assert result.source == "mirror" and cached.read_text(encoding="utf-8") == FILES["toy.en"]


def test_checksum_mismatch_is_one_line_and_caches_nothing(toy):
    manifest, entry = toy["manifest"], toy["manifest"].files[0]
    bad = toy["mirror"] / "toy.en"
    bad.write_text("Hellp.\nThank you.\n", encoding="utf-8")
    actual = hashlib.sha256(bad.read_bytes()).hexdigest()
    with pytest.raises(UserError) as err:
        fetch.fetch_file(manifest, entry)
    message = str(err.value)
    assert "\n" not in message and "toy/toy.en" in message
    assert entry.sha256 in message and actual in message
    assert not toy["cache"].exists() or not any(p.is_file() for p in toy["cache"].rglob("*"))


def test_missing_file_without_network_is_one_clear_line(toy):
    (toy["mirror"] / "toy.is").unlink()
    manifest = toy["manifest"]
    with pytest.raises(UserError) as err:
        fetch.fetch_file(manifest, manifest.files[1])
    message = str(err.value)
    assert message.startswith(f"cannot fetch toy/toy.is: not in mirror {toy['mirror']} and download failed (")
    assert "network is unreachable" in message and message.endswith("; set LOWRES_MT_MIRROR or connect")
    assert "\n" not in message


def test_download_is_used_when_the_mirror_lacks_the_file(toy, monkeypatch):
    (toy["mirror"] / "toy.is").unlink()
    urls = []

    def fake_download(url, dest):
        urls.append(url)
        Path(dest).write_text(FILES["toy.is"], encoding="utf-8")

    monkeypatch.setattr(fetch, "download", fake_download)
    result = fetch.fetch_entry(toy["manifest"], toy["manifest"].files[1])
    assert result.source == "download" and urls == ["https://example.org/toy/toy.is"]
    assert result.path.read_text(encoding="utf-8") == FILES["toy.is"]


def test_load_set_reads_through_the_cache(toy):
    pairs = load_set("toy:test")
    assert pairs == [Pair("Hello.", "Halló.", "en", "is", "toy:test", "0"),
                     Pair("Thank you.", "Takk fyrir.", "en", "is", "toy:test", "1")]
    assert (toy["cache"] / "corpora" / "toy" / "toy.is").is_file()


def test_cli_list_shows_fetched_state(toy):
    runner = CliRunner()
    before = runner.invoke(corpora_app, ["list"], env={"COLUMNS": "200"})
    assert before.exit_code == 0 and "toy" in before.output and " no " in before.output
    load_set("toy:test")
    after = runner.invoke(corpora_app, ["list"], env={"COLUMNS": "200"})
    assert " yes " in after.output and "CC0-1.0" in after.output


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "lowres-mt"  # console script: lowres_mt.cli:main
    command = [str(script)] if script.exists() else [sys.executable, "-c", "from lowres_mt.cli import main; main()"]
    return subprocess.run([*command, *args], env={**os.environ, **env, "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=120)


def test_cli_fetch_verifies_and_fails_on_one_changed_byte(toy):
    ok = _cli(toy["env"], "corpora", "fetch", "toy")
    assert ok.returncode == 0, ok.stderr
    assert "verified toy/toy.en" in ok.stdout and "verified toy/toy.is" in ok.stdout
    bad = toy["mirror"] / "toy.is"
    data = bytearray(bad.read_bytes())
    data[0] ^= 0x01
    bad.write_bytes(bytes(data))
    failed = _cli(toy["env"], "corpora", "fetch", "toy")  # re-reads the mirror even though cached
    assert failed.returncode != 0
    lines = [line for line in failed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, failed.stderr
    expected = toy["manifest"].files[1].sha256
    assert "toy/toy.is" in lines[0] and expected in lines[0] and hashlib.sha256(data).hexdigest() in lines[0]
