"""Manifests: every corpora/*.yaml validates, names the contract's sets, and matches the mirror."""

import collections

import pytest
import yaml

from lowres_mt.corpora import list_manifests, load_manifest, load_set, read_set, set_info
from lowres_mt.corpora.fetch import mirror_dir, sha256_file
from lowres_mt.errors import UserError
from lowres_mt.records import Instruction, Pair, SystemOutput, Text

PARICE = ("tatoeba", "eso", "hagstofan", "ees34", "ema08", "ubuntu", "baekur", "kde4", "fornritin")
EXPECTED_SETS = {  # corpus -> {set: role}, fixed by the cross-module contract
    "parice": dict.fromkeys(PARICE, "train"),
    "ud_pud": {"pud": "train"},
    "flores200": {"dev": "dev", "devtest": "test"},
    "wmt21": {"en-is": "test", "is-en": "test", "en-is-systems": "reference-outputs",
              "is-en-systems": "reference-outputs"},
    "tatoeba_test": {"v2021-08-07": "test", "v2021-03-30": "test"},
    "icepahc": {"sentences": "monolingual", "modern": "monolingual"},
    "ud_modern": {"dev": "monolingual", "test": "monolingual"},
    "ud_gc": {"dev": "monolingual", "test": "monolingual"},
    "greynir_gold": {"devset": "monolingual", "testset": "monolingual"},
    "dolly": {"train": "general"},
    "gsm8k": {"train": "general", "test": "general"},
    "alpaca_libre": {"ok-dedup": "general"},
    "oasst1": {"best-threads": "general"},
    "selfinstruct": {"seed": "general"},
}
RECORD_FOR_ROLE = {"train": Pair, "dev": Pair, "test": Pair, "reference-outputs": SystemOutput,
                   "monolingual": Text, "general": Instruction}
# documented set sizes (corpora/README.md)
COUNTS = {
    "flores200:dev": 997, "flores200:devtest": 1012, "wmt21:en-is": 1000, "wmt21:is-en": 1000,
    "wmt21:en-is-systems": 11 * 1000, "wmt21:is-en-systems": 10 * 1000, "ud_pud:pud": 1000,
    "tatoeba_test:v2021-08-07": 2503, "tatoeba_test:v2021-03-30": 4994, "parice:tatoeba": 8263,
    "parice:eso": 12633, "parice:hagstofan": 2288, "parice:ees34": 1172, "parice:ema08": 4333,
    "parice:ubuntu": 10572, "parice:baekur": 12416, "parice:kde4": 49912, "parice:fornritin": 17597,
    "icepahc:sentences": 40848, "icepahc:modern": 8199, "ud_modern:dev": 394, "ud_modern:test": 438, "ud_gc:dev": 500,
    "ud_gc:test": 540, "greynir_gold:devset": 4363, "greynir_gold:testset": 500, "dolly:train": 15015, "gsm8k:train": 7473, "gsm8k:test": 1319,
    "alpaca_libre:ok-dedup": 3097, "oasst1:best-threads": 188, "selfinstruct:seed": 175,
}
MIRROR = mirror_dir()
needs_mirror = pytest.mark.skipif(MIRROR is None or not (MIRROR / "MANIFEST.sha256").is_file(),
                                  reason="no corpora mirror here (set LOWRES_MT_MIRROR)")


@pytest.fixture(scope="module")
def private_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOWRES_MT_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


def test_every_manifest_validates_with_the_contract_sets():
    manifests = {m.name: m for m in list_manifests()}
    for corpus, sets in EXPECTED_SETS.items():
        assert corpus in manifests, corpus
        assert {name: spec.role for name, spec in manifests[corpus].sets.items()} == sets
    for manifest in manifests.values():
        assert manifest.license and manifest.description and manifest.files
        for entry in manifest.files:
            assert entry.mirror and (entry.url or entry.derived_from)


def test_set_info_directions_languages_and_files():
    info = set_info("wmt21:is-en")
    assert (info.corpus, info.name, info.role, info.format) == ("wmt21", "is-en", "test", "aligned")
    assert info.languages == ("is", "en") and info.directions == ("is-en",)
    assert [f.path for f in info.files] == ["sources/newstest2021.is-en.src.is", "references/newstest2021.is-en.ref.A.en"]
    assert set_info("wmt21:en-is").directions == ("en-is",)
    assert set_info("flores200:dev").directions == ("en-is", "is-en")  # default: both ways
    assert set_info("dolly:train").directions == ()
    assert set_info("tatoeba_test:v2021-08-07").license == "CC-BY-2.0-FR"
    url = set_info("flores200:devtest").files[0].url
    assert url.startswith("https://raw.githubusercontent.com/Helsinki-NLP/OPUS-MT-testsets/ac0f19c0b/")


@pytest.mark.parametrize(("ref", "message"), [
    ("nope:dev", "unknown corpus 'nope' (known: alpaca_libre,"),
    ("flores200:nope", "corpus 'flores200' has no set 'nope' (known: dev, devtest)"),
    ("flores200", "'flores200' is not a corpus set ref; write CORPUS:SET"),
])
def test_unknown_refs_list_the_known_ones(ref, message):
    with pytest.raises(UserError) as err:
        set_info(ref)
    assert message in str(err.value)


def _write_manifest(tmp_path, monkeypatch, **changes):
    data = yaml.safe_load(load_manifest_yaml("flores200"))
    for key, value in changes.items():
        node, *path = key.split(".")
        target = data
        for part in [node, *path][:-1]:
            target = target[int(part)] if isinstance(target, list) else target[part]
        last = [node, *path][-1]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    (tmp_path / "flores200.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    monkeypatch.setenv("LOWRES_MT_CORPORA", str(tmp_path))


def load_manifest_yaml(name):
    from lowres_mt.corpora.manifest import corpora_dir

    return (corpora_dir() / f"{name}.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(("changes", "message"), [
    ({"licence": "MIT"}, "unknown key 'licence'"),
    ({"files.0.sha": "00"}, "unknown key 'files[0].sha'"),
    ({"files.0.size": "big"}, "'files[0].size' must be int"),
    ({"sets.dev.role": "training"}, "'sets.dev.role' must be one of"),
    ({"sets.dev.format": "xml"}, "'sets.dev.format' is 'xml' (known formats: tsv-pairs, aligned,"),
    ({"sets.dev.files": ["eng_Latn.dev", "missing.txt"]}, "'sets.dev.files' names 'missing.txt'"),
    ({"sets.dev.files": ["eng_Latn.dev"]}, "'sets.dev' needs exactly 2 file(s)"),
    ({"sets.dev.directions": ["en-fr"]}, "'sets.dev.directions' holds 'en-fr'"),
    ({"files.0.sha256": "ABC"}, "'files[0].sha256' must be 64 lowercase hex digits"),
    ({"files.0.path": "../escape.txt"}, "'files[0].path' must be a relative path"),
    ({"name": "flores"}, "'name' is 'flores' but the file is named flores200.yaml"),
])
def test_invalid_manifests_name_the_key_and_file(tmp_path, monkeypatch, changes, message):
    _write_manifest(tmp_path, monkeypatch, **changes)
    with pytest.raises(UserError) as err:
        load_manifest("flores200")
    assert str(tmp_path / "flores200.yaml") in str(err.value)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@needs_mirror
def test_every_file_matches_the_mirror_checksums():
    listed = {}
    for line in (MIRROR / "MANIFEST.sha256").read_text(encoding="utf-8").splitlines():
        sha, path = line.split(None, 1)
        listed[path.removeprefix("./")] = sha
    for manifest in list_manifests():
        for entry in manifest.files:
            path = MIRROR / entry.mirror / entry.path
            assert listed[f"{entry.mirror}/{entry.path}"] == entry.sha256, path
            assert path.stat().st_size == entry.size, path
            assert sha256_file(path) == entry.sha256, path


@needs_mirror
def test_every_declared_set_loads_from_the_mirror_with_documented_counts(private_cache):
    for manifest in list_manifests():
        if manifest.name not in EXPECTED_SETS:  # grammar-book sources: tests/test_book_*.py
            continue
        for name, spec in manifest.sets.items():
            ref = f"{manifest.name}:{name}"
            data = read_set(ref)
            assert len(data.records) == COUNTS[ref], ref
            assert all(isinstance(r, RECORD_FOR_ROLE[spec.role]) for r in data.records), ref
            assert data.skipped.get("malformed", 0) == 0, ref


@needs_mirror
def test_real_sets_have_the_right_shape(private_cache):
    devtest = load_set("flores200:devtest")
    assert devtest[0].id == "0" and devtest[-1].id == "1011" and devtest[0].corpus == "flores200:devtest"
    assert {p.direction for p in load_set("wmt21:is-en")} == {"is-en"}
    systems = load_set("wmt21:en-is-systems")
    per_system = collections.Counter(o.system for o in systems)
    assert len(per_system) == 11 and set(per_system.values()) == {1000} and "Mideind" in per_system
    gsm = load_set("gsm8k:train")
    assert all("<<" not in r.messages[1].content and "\n#### " in r.messages[1].content for r in gsm)
