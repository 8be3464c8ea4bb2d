"""Fetch corpus files: local mirror first, then the upstream URL; always verify sha256; cache.

The verified copy of every file lives in `<cache>/corpora/<corpus>/<path>` (env LOWRES_MT_CACHE,
default ~/.cache/lowres-mt). The mirror is env LOWRES_MT_MIRROR, default `<repo>/../shared/corpora`
when that folder exists. A cached copy is hashed once per process and then trusted while its size
and modification time stay the same. A copy whose checksum does not match is never cached.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lowres_mt import __version__
from lowres_mt.config import PROJECT_ROOT
from lowres_mt.corpora.manifest import FileEntry, Manifest
from lowres_mt.errors import UserError
from lowres_mt.io import atomic_path, sha256_file

_CHUNK = 1 << 20
_verified: dict[Path, tuple[str, int, int]] = {}  # cached path -> (sha256, size, mtime_ns)


@dataclass(frozen=True)
class FetchResult:
    corpus: str
    entry: FileEntry
    path: Path  # the verified copy in the cache
    source: str  # "cache" | "mirror" | "download"
    origin: str  # where the bytes came from (a path or a URL)


def mirror_dir() -> Path | None:
    """The local mirror root, or None when there is none."""
    env = os.environ.get("LOWRES_MT_MIRROR")
    if env:
        return Path(env).expanduser()
    default = PROJECT_ROOT.parent / "shared" / "corpora"
    return default if default.is_dir() else None


def cache_dir() -> Path:
    return Path(os.environ.get("LOWRES_MT_CACHE") or Path.home() / ".cache" / "lowres-mt").expanduser()


def cached_path(manifest: Manifest, entry: FileEntry) -> Path:
    return cache_dir() / "corpora" / manifest.name / entry.path


def mirror_path(entry: FileEntry) -> Path | None:
    root = mirror_dir()
    return root / entry.mirror / entry.path if root is not None else None


def is_fetched(manifest: Manifest, entry: FileEntry) -> bool:
    """Whether a cached copy of the right size exists (cheap: no hashing)."""
    path = cached_path(manifest, entry)
    return path.is_file() and path.stat().st_size == entry.size


def fetch_file(manifest: Manifest, entry: FileEntry, *, refresh: bool = False) -> Path:
    """A verified local copy of `entry`; `refresh` re-reads the source even when cached."""
    return fetch_entry(manifest, entry, refresh=refresh).path


def fetch_entry(manifest: Manifest, entry: FileEntry, *, refresh: bool = False) -> FetchResult:
    target = cached_path(manifest, entry)
    if not refresh and _cache_is_valid(target, entry):
        return FetchResult(manifest.name, entry, target, "cache", str(target))
    local = mirror_path(entry)
    if local is not None and local.is_file():
        _verify(local, manifest, entry, origin=str(local))
        _store(local, target, entry)
        return FetchResult(manifest.name, entry, target, "mirror", str(local))
    with tempfile.TemporaryDirectory(prefix="lowres-mt-") as tmp:
        downloaded = Path(tmp) / Path(entry.path).name
        _download_or_explain(manifest, entry, downloaded)
        _verify(downloaded, manifest, entry, origin=entry.url or "")
        _store(downloaded, target, entry)
    return FetchResult(manifest.name, entry, target, "download", entry.url or "")


def fetch_corpus(manifest: Manifest, *, refresh: bool = True,
                 on_file: Callable[[FetchResult], None] | None = None) -> list[FetchResult]:
    """Fetch and verify every file of a corpus (from the source by default), reporting each one."""
    results = []
    for entry in manifest.files:
        result = fetch_entry(manifest, entry, refresh=refresh)
        results.append(result)
        if on_file is not None:
            on_file(result)
    return results


def download(url: str, dest: Path) -> None:
    """Stream `url` into `dest` (no retries; callers explain failures)."""
    request = urllib.request.Request(url, headers={"User-Agent": f"lowres-mt/{__version__}"})
    with urllib.request.urlopen(request, timeout=60) as response, dest.open("wb") as out:
        shutil.copyfileobj(response, out, _CHUNK)


def _download_or_explain(manifest: Manifest, entry: FileEntry, dest: Path) -> None:
    root = mirror_dir()
    where = str(root / entry.mirror) if root is not None else "(none found)"
    if entry.url is None:
        reason = f"it has no upstream URL, being derived from {entry.derived_from}"
    else:
        try:
            download(entry.url, dest)
            return
        except urllib.error.HTTPError as err:
            reason = f"HTTP {err.code} {err.reason} from {entry.url}"
        except (urllib.error.URLError, OSError, ValueError) as err:
            detail = getattr(err, "reason", None) or err
            reason = f"{detail} for {entry.url}"
    raise UserError(f"cannot fetch {manifest.name}/{entry.path}: not in mirror {where} and download failed "
                    f"({reason}); set LOWRES_MT_MIRROR or connect")


def _verify(path: Path, manifest: Manifest, entry: FileEntry, *, origin: str) -> None:
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise UserError(f"checksum mismatch for {manifest.name}/{entry.path} from {origin}: expected sha256 "
                        f"{entry.sha256}, got {actual}; the copy is corrupt or changed, so it was not used")


def _store(source: Path, target: Path, entry: FileEntry) -> None:
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    _remember(target, entry.sha256)


def _remember(target: Path, sha256: str) -> None:
    stat = target.stat()
    _verified[target] = (sha256, stat.st_size, stat.st_mtime_ns)


def _cache_is_valid(target: Path, entry: FileEntry) -> bool:
    try:
        stat = target.stat()
    except FileNotFoundError:
        return False
    if _verified.get(target) == (entry.sha256, stat.st_size, stat.st_mtime_ns):
        return True
    if stat.st_size != entry.size or sha256_file(target) != entry.sha256:
        return False
    _remember(target, entry.sha256)
    return True
