"""Encrypted-archive handling: path-traversal refusal, cache-only decryption, private file modes."""

import stat
import zipfile
from pathlib import Path

import pytest

from lowres_mt.corpora.book.archive import (
    extract_member,
    read_member_text,
    safe_members,
    unsafe_reason,
)
from lowres_mt.errors import UserError

MIRROR_ZIP = (Path(__file__).resolve().parents[2] / "shared" / "corpora" / "mtob_xri_derived"
              / "dataset-encrypted-with-password-xri.zip")


def make_zip(path: Path, members: dict[str, bytes], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


@pytest.mark.parametrize("name, reason", [
    ("/etc/cron.d/evil", "absolute"),
    ("data/../../evil.txt", ".."),
    ("../evil.txt", ".."),
    ("C:/evil.txt", "absolute"),
    ("data\\..\\evil.txt", "backslash"),
])
def test_crafted_member_names_are_refused(tmp_path, name, reason):
    archive = make_zip(tmp_path / "bad.zip", {"data/ok.txt": b"fine", name: b"evil"})
    dest = tmp_path / "out"
    with pytest.raises(UserError, match=reason):
        extract_member(archive, "data/ok.txt", dest)
    assert not dest.exists()  # nothing extracted, not even the safe member
    assert not (tmp_path / "evil.txt").exists()


def test_symlink_members_are_refused(tmp_path):
    archive = make_zip(tmp_path / "link.zip", {"data/ok.txt": b"fine"}, symlink="data/link")
    with zipfile.ZipFile(archive) as zf:
        assert unsafe_reason(zf.getinfo("data/link")) == "is a symbolic link"
        with pytest.raises(UserError, match="symbolic link"):
            safe_members(zf, "link.zip")


def test_extracts_once_into_a_private_cache_folder(tmp_path):
    archive = make_zip(tmp_path / "ok.zip", {"data/kalamang/test.tsv": b"sid\tenglish\tkalamang\n", "data/": b""})
    dest = tmp_path / "cache" / "decrypted" / "abc"
    path = extract_member(archive, "data/kalamang/test.tsv", dest)
    assert path == dest / "data" / "kalamang" / "test.tsv"
    assert path.read_bytes() == b"sid\tenglish\tkalamang\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o700 for p in (dest, dest / "data", dest / "data" / "kalamang"))
    mtime = path.stat().st_mtime_ns
    assert extract_member(archive, "data/kalamang/test.tsv", dest).stat().st_mtime_ns == mtime  # kept


def test_missing_member_and_non_zip_are_user_errors(tmp_path):
    archive = make_zip(tmp_path / "ok.zip", {"a.txt": b"x"})
    with pytest.raises(UserError, match="no member 'b.txt'"):
        extract_member(archive, "b.txt", tmp_path / "out")
    (tmp_path / "not.zip").write_bytes(b"plain text")
    with pytest.raises(UserError, match="not a zip archive"):
        extract_member(tmp_path / "not.zip", "a.txt", tmp_path / "out")


def test_read_member_text_goes_through_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LOWRES_MT_CACHE", str(tmp_path / "cache"))
    archive = make_zip(tmp_path / "ok.zip", {"data/x.txt": "\ufeffKalamang: kewe\n".encode()})
    assert read_member_text(archive, "data/x.txt") == "Kalamang: kewe\n"
    copies = list((tmp_path / "cache" / "decrypted").rglob("x.txt"))
    assert len(copies) == 1


@pytest.mark.skipif(not MIRROR_ZIP.is_file(), reason="the MTOB archive mirror is not present")
def test_real_archive_is_encrypted_and_decrypts_with_its_password(tmp_path):
    with zipfile.ZipFile(MIRROR_ZIP) as zf:
        members = safe_members(zf, MIRROR_ZIP.name)
        assert all(info.flag_bits & 0x1 for info in members.values())  # every file is encrypted
    with pytest.raises(UserError, match="encrypted; give options.password"):
        extract_member(MIRROR_ZIP, "data/kalamang/test.tsv", tmp_path / "a")
    with pytest.raises(UserError, match="wrong password"):
        extract_member(MIRROR_ZIP, "data/kalamang/test.tsv", tmp_path / "b", password="not-it")
    path = extract_member(MIRROR_ZIP, "data/kalamang/test.tsv", tmp_path / "c", password="xri")
    assert len(path.read_text(encoding="utf-8").strip().split("\n")) == 51  # header + 50 rows
