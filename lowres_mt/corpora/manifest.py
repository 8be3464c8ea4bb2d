"""Corpus manifests: corpora/<name>.yaml parsed into frozen, validated dataclasses.

A manifest names a corpus's license, languages, upstream (repository @ commit) and every file it
uses (path in the mirror folder, upstream URL, sha256, size), and groups files into named sets,
each read by one reader format (see `lowres_mt.corpora.readers.READERS`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml

from lowres_mt.config import PROJECT_ROOT
from lowres_mt.errors import UserError
from lowres_mt.io import read_text
from lowres_mt.typed import build

Role = Literal["train", "dev", "test", "general", "monolingual", "book", "reference-outputs"]
_SHA256 = re.compile(r"[0-9a-f]{64}")
_LANG = re.compile(r"[a-z]{2,3}")


def corpora_dir() -> Path:
    """Folder holding the manifests (env LOWRES_MT_CORPORA, default <repo>/corpora)."""
    return Path(os.environ.get("LOWRES_MT_CORPORA", PROJECT_ROOT / "corpora"))


@dataclass(frozen=True)
class Upstream:
    repo: str  # "owner/name" on GitHub
    commit: str


@dataclass(frozen=True)
class FileEntry:
    """One file of a corpus, as the fetcher finds, verifies and caches it."""

    path: str  # relative path inside the mirror folder (and inside the cache)
    sha256: str
    size: int  # bytes
    url: str | None = None  # upstream download URL; None for files converted from upstream data
    mirror: str = ""  # mirror folder holding the file; empty = the manifest's `mirror`
    derived_from: str = ""  # provenance of a converted file (what it was made from, and how)


@dataclass(frozen=True)
class SetSpec:
    """A named set: which files, read how, in which role and languages."""

    role: Role
    format: str  # a key of lowres_mt.corpora.readers.READERS
    files: tuple[str, ...]
    languages: tuple[str, ...]  # pair formats: (source, target) as the files hold them
    directions: tuple[str, ...] = ()  # default: both directions of a two-language set
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class Manifest:
    name: str
    description: str
    license: str  # short identifier (SPDX where one exists), shown in tables
    languages: tuple[str, ...]
    mirror: str  # folder under the mirror root
    upstream: Upstream
    files: tuple[FileEntry, ...]
    sets: dict[str, SetSpec]
    license_note: str = ""  # attribution details, per-source terms, caveats

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, path: str) -> FileEntry:
        for entry in self.files:
            if entry.path == path:
                return entry
        raise UserError(f"corpus '{self.name}' has no file '{path}' (files: {', '.join(f.path for f in self.files)})")

    def set_spec(self, name: str) -> SetSpec:
        if name not in self.sets:
            raise UserError(f"corpus '{self.name}' has no set '{name}' (known: {', '.join(self.sets)})")
        return self.sets[name]


def list_manifests() -> list[Manifest]:
    """Every manifest in corpora/, sorted by name (each one validated)."""
    return [_load_path(path) for path in _manifest_paths()]


def manifest_names() -> list[str]:
    return [path.stem for path in _manifest_paths()]


def load_manifest(name: str) -> Manifest:
    """The manifest corpora/<name>.yaml, validated; unknown names list the known ones."""
    path = corpora_dir() / f"{name}.yaml"
    if not name or "/" in name or not path.is_file():
        known = ", ".join(manifest_names()) or "none"
        raise UserError(f"unknown corpus '{name}' (known: {known}); see `lowres-mt corpora list`")
    return _load_path(path)


def parse_manifest(data: Any, *, where: str) -> Manifest:
    """Validate plain data (a parsed YAML mapping) into a Manifest; errors name the key and file."""
    manifest = build(Manifest, data, where=where)
    files = tuple(dataclasses.replace(f, mirror=f.mirror or manifest.mirror) for f in manifest.files)
    sets = {name: _with_default_directions(spec) for name, spec in manifest.sets.items()}
    manifest = dataclasses.replace(manifest, files=files, sets=sets)
    _check_manifest(manifest, where)
    return manifest


def _manifest_paths() -> list[Path]:
    return sorted(p for p in corpora_dir().glob("*.yaml") if not p.stem.startswith("_"))


def _load_path(path: Path) -> Manifest:
    try:
        data = yaml.safe_load(read_text(path))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}: invalid YAML{at}; fix the syntax and retry") from None
    manifest = parse_manifest(data, where=str(path))
    if manifest.name != path.stem:
        raise UserError(f"{path}: 'name' is '{manifest.name}' but the file is named {path.name}; make them agree")
    return manifest


def _with_default_directions(spec: SetSpec) -> SetSpec:
    if spec.directions or len(spec.languages) != 2:
        return spec
    a, b = spec.languages
    return dataclasses.replace(spec, directions=(f"{a}-{b}", f"{b}-{a}"))


def _check_manifest(manifest: Manifest, where: str) -> None:
    for lang in manifest.languages:
        if not _LANG.fullmatch(lang):
            raise UserError(f"{where}: 'languages' holds '{lang}'; use ISO 639 codes such as en, is, kgv")
    seen: set[str] = set()
    for i, entry in enumerate(manifest.files):
        _check_file(entry, f"files[{i}]", where)
        if entry.path in seen:
            raise UserError(f"{where}: 'files[{i}].path' repeats '{entry.path}'; list each file once")
        seen.add(entry.path)
    if not manifest.sets:
        raise UserError(f"{where}: 'sets' is empty; declare at least one set")
    for name, spec in manifest.sets.items():
        _check_set(manifest, name, spec, where)


def _check_file(entry: FileEntry, key: str, where: str) -> None:
    parts = PurePosixPath(entry.path).parts
    if not parts or entry.path.startswith("/") or ".." in parts or "\\" in entry.path:
        raise UserError(f"{where}: '{key}.path' must be a relative path inside the mirror folder, got '{entry.path}'")
    if not _SHA256.fullmatch(entry.sha256):
        raise UserError(f"{where}: '{key}.sha256' must be 64 lowercase hex digits, got '{entry.sha256}'")
    if entry.size < 0:
        raise UserError(f"{where}: '{key}.size' must be a byte count >= 0, got {entry.size}")
    if entry.url is None and not entry.derived_from:
        raise UserError(f"{where}: '{key}' has no 'url'; give the upstream URL, or 'derived_from' for a converted file")
    if entry.url is not None and not entry.url.startswith(("https://", "http://")):
        raise UserError(f"{where}: '{key}.url' must be an http(s) URL, got '{entry.url}'")


def _check_set(manifest: Manifest, name: str, spec: SetSpec, where: str) -> None:
    from lowres_mt.corpora.readers import READERS

    key = f"sets.{name}"
    reader = READERS.get(spec.format)
    if reader is None:
        raise UserError(f"{where}: '{key}.format' is '{spec.format}' (known formats: {', '.join(READERS)})")
    known_files = {f.path for f in manifest.files}
    for path in spec.files:
        if path not in known_files:
            raise UserError(f"{where}: '{key}.files' names '{path}', which is not under 'files'")
    problem = reader.check_set(spec.files, spec.languages, spec.options)
    if problem:
        raise UserError(f"{where}: '{key}' {problem}")
    for lang in spec.languages:
        if lang not in manifest.languages:
            raise UserError(f"{where}: '{key}.languages' holds '{lang}', not among the corpus languages {list(manifest.languages)}")
    for direction in spec.directions:
        src, _, tgt = direction.partition("-")
        if src == tgt or src not in spec.languages or tgt not in spec.languages:
            raise UserError(f"{where}: '{key}.directions' holds '{direction}'; use SRC-TGT with two of the set's languages {list(spec.languages)}")
