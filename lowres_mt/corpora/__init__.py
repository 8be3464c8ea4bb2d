"""Corpora: declarative manifests (corpora/*.yaml), verified fetching, and readers into records.

A set is named by a ref "corpus:set" (e.g. "flores200:devtest"), or by a path to a user's own
file that a recipe declared (`lowres_mt.corpora.local`). `load_set(ref)` fetches and verifies the
set's files as needed and returns its records; `set_info(ref)` describes it without reading any
data (a local file is hashed, not read).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from lowres_mt.corpora import local
from lowres_mt.corpora.fetch import cache_dir, fetch_file, mirror_dir
from lowres_mt.corpora.manifest import FileEntry, Manifest, SetSpec, list_manifests, load_manifest
from lowres_mt.corpora.readers import READERS, Source
from lowres_mt.errors import UserError
from lowres_mt.records import Instruction, Pair, SystemOutput, Text

__all__ = [
    "FileEntry", "Manifest", "SetData", "SetInfo", "cache_dir", "fetch_file", "list_manifests",
    "load_manifest", "load_set", "mirror_dir", "parse_ref", "read_set", "set_info",
]

log = logging.getLogger(__name__)
Records = list[Pair] | list[Instruction] | list[Text] | list[SystemOutput]


@dataclass(frozen=True)
class SetInfo:
    ref: str
    corpus: str
    name: str
    role: str
    format: str
    languages: tuple[str, ...]
    directions: tuple[str, ...]
    license: str
    files: tuple[FileEntry, ...]
    options: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class SetData:
    """A loaded set: its description, its records, and how many lines each reason skipped."""

    info: SetInfo
    records: list
    skipped: dict[str, int]


def parse_ref(ref: str) -> tuple[str, str]:
    corpus, sep, name = ref.partition(":")
    if not sep or not corpus or not name:
        raise UserError(f"'{ref}' is not a corpus set ref; write CORPUS:SET, e.g. flores200:devtest "
                        "(see `lowres-mt corpora list`)")
    return corpus, name


def set_info(ref: str) -> SetInfo:
    """Describe a set (role, format, languages, directions, license, files) without reading it."""
    if local.is_path_ref(ref):
        return _local_info(ref)
    corpus, name = parse_ref(ref)
    manifest = load_manifest(corpus)
    return _info(manifest, name, manifest.set_spec(name))


def read_set(ref: str) -> SetData:
    """Fetch (and verify) a set's files and read them, keeping the reader's skip counts."""
    if local.is_path_ref(ref):
        info = _local_info(ref)
        records, skipped = local.read(ref)
        return SetData(info, records, skipped)
    corpus, name = parse_ref(ref)
    manifest = load_manifest(corpus)
    spec = manifest.set_spec(name)
    paths = tuple(fetch_file(manifest, manifest.file(path)) for path in spec.files)
    source = Source(ref, paths, spec.languages, dict(spec.options))
    records = READERS[spec.format].read(source)
    if source.skipped.get("malformed"):
        log.warning("%s: skipped %d malformed line(s)", ref, source.skipped["malformed"])
    return SetData(_info(manifest, name, spec), records, dict(source.skipped))


def load_set(ref: str) -> Records:
    """The records of a set: list[Pair] | list[Instruction] | list[Text] | list[SystemOutput]."""
    return read_set(ref).records


def _info(manifest: Manifest, name: str, spec: SetSpec) -> SetInfo:
    return SetInfo(
        ref=f"{manifest.name}:{name}",
        corpus=manifest.name,
        name=name,
        role=spec.role,
        format=spec.format,
        languages=spec.languages,
        directions=spec.directions,
        license=manifest.license,
        files=tuple(manifest.file(path) for path in spec.files),
        options=dict(spec.options),
    )


def _local_info(ref: str) -> SetInfo:
    languages = local.languages_of(ref)
    a, b = (languages * 2)[:2]
    directions = (f"{a}-{b}", f"{b}-{a}") if len(languages) == 2 else ()
    return SetInfo(ref=ref, corpus=ref, name=ref, role=local.role_of(ref), format=local.format_of(ref),
                   languages=languages, directions=directions, license="local",
                   files=local.file_entries(ref))
