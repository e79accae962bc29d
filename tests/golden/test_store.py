"""Published vectors never change silently: regenerate, compare with the shipped data; export and its manifest."""

import hashlib
import json

import numpy as np

import refnsm
import refnsm.golden as G
from refnsm.golden import _store
from refnsm.golden.regenerate import compare


def test_regenerated_cases_match_the_shipped_vectors():
    doc, shipped = _store.load()
    assert doc["suite_version"] == G.SUITE_VERSION, "bump the suite version in refnsm/golden/__init__.py and CHANGELOG"
    problems = compare(G.generate(), shipped)
    assert not problems, "\n".join(problems[:20]) + "\n(deliberate? bump the suite version, regenerate, CHANGELOG)"


def test_compare_detects_a_moved_value():
    _, shipped = _store.load()
    c = shipped[0]
    moved = G.Case(**{**c.__dict__, "expected": {k: np.asarray(v) * (1 + 1e-6) + 1e-6 for k, v in c.expected.items()}})
    assert compare([moved] + shipped[1:], shipped)


def test_export_writes_a_manifest_readable_without_refnsm(tmp_path):
    path = G.export(tmp_path / "golden")
    man = json.loads(path.read_text())
    assert man["suite_version"] == G.SUITE_VERSION and man["refnsm_version"] == refnsm.__version__
    assert len(man["cases"]) == len(G.cases())
    for rel, sha in man["files"].items():
        assert hashlib.sha256((tmp_path / "golden" / rel).read_bytes()).hexdigest() == sha, rel
    # read back with plain json + numpy, and the export is byte-for-byte reproducible
    name = man["cases"][0]
    meta = json.loads((tmp_path / "golden" / name / "case.json").read_text())
    with np.load(tmp_path / "golden" / name / "arrays.npz") as z:
        for k in meta["inputs"]:
            assert f"inputs/{k}" in z.files
        for k in meta["outputs"]:
            assert z[f"expected/{k}"].shape == tuple(meta["outputs"][k]["shape"])
    again = json.loads(G.export(tmp_path / "again").read_text())
    assert again["files"] == man["files"]


def test_shipped_data_is_small():
    size = sum(p.stat().st_size for p in _store.DATA.iterdir())
    assert size < 3_000_000, size
