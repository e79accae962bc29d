"""The shipped vectors (``refnsm/golden/data/``) and ``golden export DIR``.

Shipped: ``data/suite.json`` (every case's metadata, the suite version, refnsm's version) and ``data/suite.npz``
(every array, keys ``<case>/inputs/<name>`` and ``<case>/expected/<name>``).  The published vectors are these
files: the runner reads them, it does not regenerate them, so a change of refnsm's float64 bits on another machine
cannot move the goal posts.  ``tests/golden/test_store.py`` regenerates the suite and compares it with them.

Export (readable without refnsm: JSON and NumPy's documented ``.npz`` = zip of ``.npy``)::

    DIR/manifest.json            {"suite_version", "refnsm_version", "cases": [...], "files": {path: sha256}}
    DIR/<case name>/case.json    the metadata (program, tolerances, conditioning, ...)
    DIR/<case name>/arrays.npz   inputs as "inputs/<name>", expected outputs as "expected/<name>"
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from ._case import Case

DATA = Path(__file__).resolve().parent / "data"


def _case_from(meta: dict, arrays: dict) -> Case:
    name = meta["name"]
    inputs = {k: arrays[f"{name}/inputs/{k}"] for k in meta["inputs"]}
    expected = {k: arrays[f"{name}/expected/{k}"] for k in meta["outputs"]}
    return Case(name=name, program=meta["program"], inputs=inputs, expected=expected, dtypes=tuple(meta["dtypes"]),
                difficulty=meta["difficulty"], targets=meta["targets"],
                scales={k: v["scale"] for k, v in meta["outputs"].items()},
                conditioning={k: v["conditioning"] for k, v in meta["outputs"].items()},
                tolerance=meta["tolerance"], tolerance_reason=meta["tolerance_reason"], compat=meta["compat"])


def save(cases, version: str, refnsm_version: str, data=DATA):
    data = Path(data)
    data.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for c in cases:
        arrays.update({f"{c.name}/inputs/{k}": np.asarray(v) for k, v in c.inputs.items()})
        arrays.update({f"{c.name}/expected/{k}": np.asarray(v, dtype=np.float64) for k, v in c.expected.items()})
    np.savez_compressed(data / "suite.npz", **arrays)
    doc = {"suite_version": version, "refnsm_version": refnsm_version, "cases": [c.metadata() for c in cases]}
    (data / "suite.json").write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")


def load(data=DATA):
    data = Path(data)
    doc = json.loads((data / "suite.json").read_text())
    with np.load(data / "suite.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return doc, [_case_from(m, arrays) for m in doc["cases"]]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _npz_bytes(arrays: dict) -> bytes:
    """Deterministic .npz bytes (fixed zip timestamps), so a sha256 depends on the arrays only."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for k in sorted(arrays):
            b = io.BytesIO()
            np.lib.format.write_array(b, np.ascontiguousarray(arrays[k]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{k}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, b.getvalue())
    return buf.getvalue()


def export(directory, cases=None, data=DATA) -> Path:
    """Write one folder per case and ``manifest.json``; returns the manifest's path."""
    doc, shipped = load(data)
    cases = shipped if cases is None else cases
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    files = {}
    for c in cases:
        d = root / c.name
        d.mkdir(exist_ok=True)
        (d / "case.json").write_text(json.dumps(c.metadata(), indent=1) + "\n")
        arrays = {f"inputs/{k}": np.asarray(v) for k, v in c.inputs.items()}
        arrays.update({f"expected/{k}": np.asarray(v, dtype=np.float64) for k, v in c.expected.items()})
        (d / "arrays.npz").write_bytes(_npz_bytes(arrays))
        for f in ("case.json", "arrays.npz"):
            files[f"{c.name}/{f}"] = _sha256(d / f)
    manifest = {
        "suite_version": doc["suite_version"],
        "refnsm_version": doc["refnsm_version"],
        "format": "one folder per case: case.json (metadata, program, tolerances) and arrays.npz "
                  "(inputs/<name>, expected/<name>, float64 expected values)",
        "cases": [c.name for c in cases],
        "files": files,
    }
    path = root / "manifest.json"
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return path
