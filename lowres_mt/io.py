"""Atomic file and folder writes: a crash or kill never leaves a half-written result behind, and
nothing is replaced that lowres-mt did not write. Text is read as UTF-8; a byte that is not is an
error naming the file and line."""

from __future__ import annotations

import codecs
import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from lowres_mt.errors import UserError

try:
    import fcntl
except ImportError:  # no advisory locks on this platform: stale temporaries are then left alone
    fcntl = None


def portable_path(path: Path | str) -> str:
    """`path` relative to the working directory when it lies inside it (as recorded in results that
    are committed), else as given."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp_path = Path(tmp)
    try:
        _lock(fd)  # held while writing, so that another process's cleanup leaves it alone
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp_path, path)
    finally:
        os.close(fd)
        tmp_path.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: Path | str, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path | str, obj) -> None:
    write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def write_jsonl(path: Path | str, rows: Iterable[dict]) -> int:
    count = 0
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: Path | str) -> list[dict]:
    return [json.loads(line) for line in iter_lines(path) if line.strip()]


OUTPUT_RECORD = ".lowres-mt-output.json"  # in every folder atomic_dir writes: the names it put there


def check_replaceable(path: Path | str, marker: str) -> Path:
    """The real path (links resolved) of an output that may be (re)written: missing, an empty
    folder, or a previous output holding nothing but what lowres-mt wrote there. (A folder
    written before outputs kept a record is recognised by `marker`, a file only its writer
    creates.) Anything else is refused before any work starts."""
    real = Path(os.path.realpath(path))
    if real.is_dir():
        others = _unwritten(real, marker)
        if others:
            raise UserError(f"{path} is a folder with files that lowres-mt did not write ({others[0]}); "
                            "nothing was changed: choose a new or empty folder")
    elif real.exists():
        raise UserError(f"{path} is a file, not a folder; nothing was changed: choose a folder path")
    return real


def _unwritten(folder: Path, marker: str) -> list[str]:
    names = sorted(set(os.listdir(folder)) - {OUTPUT_RECORD})
    record = folder / OUTPUT_RECORD
    if record.is_file() and not record.is_symlink():
        try:
            written = set(json.loads(record.read_text(encoding="utf-8")))
        except (ValueError, TypeError):
            written = set()
        return [name for name in names if name not in written]
    return names if names and marker not in names else []


@contextlib.contextmanager
def atomic_dir(path: Path | str, *, marker: str) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it replaces `path` (old copy removed).

    `path` must pass `check_replaceable(path, marker)`; a link is written through (the folder it
    points to is replaced, the link stays). The new folder records what it holds (OUTPUT_RECORD)."""
    path = check_replaceable(path, marker)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    fd = os.open(tmp, os.O_RDONLY)
    try:
        _lock(fd)
        yield tmp
        write_json(tmp / OUTPUT_RECORD, sorted(os.listdir(tmp)))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the usual folder mode
        if path.exists():
            # a fresh name for the old copy: a stale or planted `.name.old` can never be in the way
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        os.close(fd)
        shutil.rmtree(tmp, ignore_errors=True)


def _lock(fd: int, *, wait: bool = True) -> bool:
    if fcntl is None:
        return wait
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def remove_stale(path: Path) -> None:
    """Delete the temporaries a killed write of `path` left beside it (`.name.XXXXXXXX.tmp`, `.old`):
    real files and folders only (a link is never followed or removed), and only when no live
    process holds them."""
    if fcntl is None or not path.parent.is_dir():
        return
    pattern = re.compile(re.escape(f".{path.name}.") + r"[a-z0-9_]{8}\.(tmp|old)")
    for entry in os.scandir(path.parent):
        if not pattern.fullmatch(entry.name) or entry.is_symlink():
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            if _lock(fd, wait=False):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
        finally:
            os.close(fd)


# --- reading text -------------------------------------------------------------------------------

def _not_utf8(name: str | Path, line: int, byte: int, position: int) -> UserError:
    return UserError(f"{name}: line {line} is not valid UTF-8 (byte 0x{byte:02x} at position {position}); "
                     "lowres-mt reads UTF-8 text only: convert the file (or fix that line) and retry")


def decode_text(raw: bytes, name: str | Path) -> str:
    """`raw` as UTF-8 text (a leading byte-order mark dropped); invalid bytes name their line."""
    raw = raw.removeprefix(codecs.BOM_UTF8)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line_start = raw.rfind(b"\n", 0, err.start) + 1
        raise _not_utf8(name, raw.count(b"\n", 0, err.start) + 1, raw[err.start],
                        err.start - line_start + 1) from None


def read_text(path: Path | str) -> str:
    """A UTF-8 text file's content; invalid UTF-8 is a one-line error naming the file and line."""
    return decode_text(Path(path).read_bytes(), path)


def iter_lines(path: Path | str) -> Iterator[str]:
    """A UTF-8 file's lines, split on '\\n' only (U+2028 and lone '\\r' stay inside a line), without
    the line ending; invalid UTF-8 is a one-line error naming the file and line."""
    with Path(path).open("rb") as f:
        for number, raw in enumerate(f, 1):
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise _not_utf8(path, number, raw[err.start], err.start + 1) from None
            yield text.rstrip("\n").rstrip("\r")


# --- errors the environment causes ------------------------------------------------------------

_ENVIRONMENT_ERRORS = {
    errno.EROFS: "choose a writable place (--out, --results, $LOWRES_MT_RUNS, $LOWRES_MT_CACHE)",
    errno.EACCES: "check its permissions or choose another place (--out, --results, $LOWRES_MT_RUNS, "
                  "$LOWRES_MT_CACHE)",
    errno.ENOSPC: "free some space and run the command again (no half-written result was kept)",
    errno.EDQUOT: "free some space and run the command again (no half-written result was kept)",
}


def environment_error(err: OSError) -> str | None:
    """One line for an OSError the user fixes outside lowres-mt (read-only, no permission, disk
    full), or None for any other."""
    advice = _ENVIRONMENT_ERRORS.get(err.errno)
    if advice is None:
        return None
    where = f"{err.filename}: " if err.filename else ""
    return f"{where}{err.strerror or os.strerror(err.errno)}; {advice}"


def sha256_file(path: Path) -> str:
    """The file's sha256 (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
