"""Encrypted benchmark archives (MTOB's zip): members decrypted into the cache only when read.

Benchmark text must stay out of the repository and out of logs, so a member is written once to
`<cache>/decrypted/<archive sha256 prefix>/<member>` (folder mode 0700, files 0600) and read from
there; nothing here prints member contents. Every member name of an archive is checked before
anything is extracted: absolute paths, drive letters, `..` parts, backslashes and symbolic links
make the whole archive refused.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
from pathlib import Path, PurePosixPath

from lowres_mt.corpora.fetch import cache_dir
from lowres_mt.errors import UserError
from lowres_mt.io import atomic_path, read_text


def unsafe_reason(info: zipfile.ZipInfo) -> str | None:
    """Why a member may not be extracted (None when it is safe)."""
    name = info.filename
    if not name or "\x00" in name:
        return "has an empty or NUL-containing name"
    if "\\" in name:
        return "uses backslashes"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "is an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "climbs out of the archive with '..'"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    return None


def safe_members(zf: zipfile.ZipFile, where: str) -> dict[str, zipfile.ZipInfo]:
    """Every file member by name, after checking all member names of the archive."""
    members = {}
    for info in zf.infolist():
        reason = unsafe_reason(info)
        if reason:
            raise UserError(f"{where}: archive member {info.filename!r} {reason}; refusing to extract "
                            "from this archive (re-fetch it from its upstream source)")
        if not info.is_dir():
            members[info.filename] = info
    return members


def extract_member(archive: Path, member: str, dest_root: Path, password: str | None = None) -> Path:
    """Decrypt one member to `dest_root/<member>` (kept when already there) and return its path."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise UserError(f"{archive} is not a zip archive; re-fetch the corpus") from None
    with zf:
        members = safe_members(zf, str(archive))
        if member not in members:
            raise UserError(f"{archive.name} has no member '{member}' (it has {len(members)} files); "
                            "fix the manifest's options.member")
        info = members[member]
        target = dest_root.joinpath(*PurePosixPath(member).parts)
        if not target.resolve().is_relative_to(dest_root.resolve()):
            raise UserError(f"{archive.name}: member '{member}' would be written outside {dest_root}")
        if target.is_file() and target.stat().st_size == info.file_size:
            return target
        _private_dirs(dest_root, target.parent)
        data = _read(zf, info, password, archive)
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
        os.chmod(target, 0o600)  # the folder is private already; the file is too
    return target


def decrypted_member(archive: Path, member: str, password: str | None = None) -> Path:
    """The cached decrypted copy of `member`, keyed by the archive's checksum."""
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    return extract_member(archive, member, cache_dir() / "decrypted" / digest, password)


def read_member_text(archive: Path, member: str, password: str | None = None) -> str:
    """A member's text (UTF-8, BOM dropped), through the decrypted cache copy."""
    path = decrypted_member(archive, member, password)
    return read_text(path)


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, password: str | None, archive: Path) -> bytes:
    encrypted = bool(info.flag_bits & 0x1)
    if encrypted and not password:
        raise UserError(f"{archive.name}: member '{info.filename}' is encrypted; give options.password")
    try:
        return zf.read(info, pwd=password.encode() if encrypted and password else None)
    except RuntimeError:  # zipfile's "Bad password for file"
        raise UserError(f"{archive.name}: wrong password for '{info.filename}'; check options.password") from None
    except (zipfile.BadZipFile, NotImplementedError) as err:
        raise UserError(f"{archive.name}: cannot read '{info.filename}' ({err}); re-fetch the corpus") from None


def _private_dirs(root: Path, folder: Path) -> None:
    """Create `folder` below `root`, every level readable by the owner only."""
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    current = root
    for part in folder.relative_to(root).parts:
        current = current / part
        current.mkdir(exist_ok=True)
        os.chmod(current, 0o700)
