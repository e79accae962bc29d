"""``make fuzz``: the long boundary-fuzz sweep; writes tests/fuzz/results.json (read by make_reliability_doc.py).

Sections (each counted by outcome):

* boundary: every spec of fuzz_tables.py, every bad input one argument at a time and every legitimate variant;
* random: ``--random N`` calls per spec with random finite values in the array arguments;
* boundscheck: the boundary section replayed in a subprocess under ``NUMBA_BOUNDSCHECK=1`` with a fresh
  ``NUMBA_CACHE_DIR`` (every kernel recompiled with bounds checks: an out-of-bounds access raises IndexError
  there instead of corrupting memory);
* hypothesis: the hypothesis layer (hypothesis_layer.py) over every spec under its ``fuzz`` profile (drawn shapes,
  dtypes and awkward values), in a child process (a crash is reported, not fatal to the sweep);
* determinism: determinism_cases.py across 1 and 2 BLAS threads.

``--only boundary --json-out PATH`` is what the subprocess runs.  ``--baseline-from PATH`` copies the figures of
another results file (e.g. a run on an older commit) into ``baseline`` so the document can show before/after.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))


def boundary_rows(labels=None):
    import fuzz_tables as F

    table = F.specs()
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, sps in table.items():
            for sp in sps:
                if labels is None or sp.label in labels:
                    for r in F.run_spec(sp):
                        rows.append({**r, "name": name})
    return rows, F.coverage_gaps(table), sorted(table), sorted(F.NOT_CALLED)


def random_rows(n):
    import fuzz_tables as F

    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, sps in F.specs().items():
            for k, sp in enumerate(sps):
                rows += [{**r, "name": name} for r in F.random_calls(sp, n, seed=k)]
    return rows


def boundscheck(labels=None, timeout=1800):
    """Replay the boundary section in a child with NUMBA_BOUNDSCHECK=1 and an empty Numba cache."""
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": cache,
               "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        cmd = [sys.executable, str(HERE / "run_fuzz.py"), "--only", "boundary", "--json-out", str(out)]
        if labels:
            cmd += ["--labels", ",".join(labels)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        rows = json.loads(out.read_text())["rows"] if out.exists() else []
        return {"returncode": proc.returncode, "seconds": round(time.perf_counter() - t0, 1), "rows": rows,
                "stderr_tail": proc.stderr[-2000:]}


def hypothesis_rows(labels=None):
    """One row per spec: the outcome counts of its drawn examples, or the (shrunk) violation."""
    import collections

    import fuzz_tables as F
    import hypothesis_layer as HL

    rows = []
    for name, sps in F.specs().items():
        for sp in sps:
            if (labels is not None and sp.label not in labels) or not (HL._float_arrays(sp) or HL._index_arrays(sp)):
                continue
            c = collections.Counter()
            try:
                HL.make_test(sp, "fuzz", c)()
                rows.append({"name": name, "spec": sp.label, "outcome": "kept", "examples": dict(c), "detail": ""})
            except Exception as exc:  # noqa: BLE001 - a violation (or the error hypothesis re-raises) is the finding
                rows.append({"name": name, "spec": sp.label, "outcome": "violation", "examples": dict(c),
                             "detail": f"{type(exc).__name__}: {exc}"[:600]})
    return rows


def hypothesis_child(labels=None, timeout=1800):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        cmd = [sys.executable, str(HERE / "run_fuzz.py"), "--only", "hypothesis", "--json-out", str(out)]
        if labels:
            cmd += ["--labels", ",".join(labels)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        rows = json.loads(out.read_text())["rows"] if out.exists() else []
        return {"returncode": proc.returncode, "seconds": round(time.perf_counter() - t0, 1), "rows": rows,
                "stderr_tail": proc.stderr[-2000:]}


def counts(rows):
    return dict(collections.Counter(r["outcome"] for r in rows))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["boundary", "hypothesis"], default=None)
    ap.add_argument("--labels", default=None, help="comma-separated spec labels (default: all)")
    ap.add_argument("--json-out", default=str(HERE / "results.json"))
    ap.add_argument("--random", type=int, default=40, help="random valid calls per spec")
    ap.add_argument("--baseline-from", default=None)
    ap.add_argument("--no-boundscheck", action="store_true", help="skip the NUMBA_BOUNDSCHECK replay")
    ap.add_argument("--no-determinism", action="store_true")
    ap.add_argument("--no-hypothesis", action="store_true", help="skip the hypothesis layer")
    args = ap.parse_args(argv)
    labels = set(args.labels.split(",")) if args.labels else None

    if args.only == "boundary":
        rows, gaps, names, not_called = boundary_rows(labels)
        Path(args.json_out).write_text(json.dumps({"rows": rows}))
        return 0
    if args.only == "hypothesis":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            rows = hypothesis_rows(labels)
        Path(args.json_out).write_text(json.dumps({"rows": rows}))
        return 0

    import numba
    import numpy as np

    import fuzz_tables as F
    from determinism_cases import BLAS_NORMWISE_RTOL, run as run_determinism

    t0 = time.perf_counter()
    b_rows, gaps, names, not_called = boundary_rows(labels)
    t_boundary = time.perf_counter() - t0
    t0 = time.perf_counter()
    r_rows = random_rows(args.random)
    t_random = time.perf_counter() - t0
    bc = {"returncode": None, "seconds": 0, "rows": [], "stderr_tail": "skipped"} if args.no_boundscheck else \
        boundscheck(labels)
    hy = {"returncode": None, "seconds": 0, "rows": [], "stderr_tail": "skipped"} if args.no_hypothesis else \
        hypothesis_child(labels)
    t0 = time.perf_counter()
    try:
        det = {"skipped": "--no-determinism"} if args.no_determinism else run_determinism((1, 2))
    except ImportError as exc:  # threadpoolctl missing
        det = {"skipped": str(exc)}
    t_det = time.perf_counter() - t0

    bad_boundary = [r for r in b_rows if r["outcome"] not in F.GOOD]
    bad_random = [r for r in r_rows if r["outcome"] not in F.RANDOM_GOOD]
    bc_bad = [r for r in bc["rows"] if r["outcome"] not in F.GOOD]
    hy_bad = [r for r in hy["rows"] if r["outcome"] != "kept"]
    hy_examples = collections.Counter()
    for r in hy["rows"]:
        hy_examples.update(r["examples"])
    per_family = collections.defaultdict(collections.Counter)
    for r in b_rows:
        per_family[r["name"].split(".")[0]][r["outcome"]] += 1
    result = {
        "generated_by": "make fuzz (tests/fuzz/run_fuzz.py)",
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "machine": {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
                    "platform": platform.platform(), "cpus": os.cpu_count()},
        "public_names": len(names) + len(not_called), "fuzzed_names": len(names), "not_entry_points": not_called,
        "coverage_gaps": gaps,
        "specs": len({r["spec"] for r in b_rows}),
        "boundary": {"counts": counts(b_rows), "per_family": {k: dict(v) for k, v in per_family.items()},
                     "bad_inputs": sum(1 for r in b_rows if not r["case"].startswith("variant")
                                       and r["case"] != "valid" and r["outcome"] not in ("input written",
                                                                                         "state changed by a failed call")),
                     "variants": sum(1 for r in b_rows if r["case"].startswith("variant")),
                     "failures": bad_boundary[:200], "seconds": round(t_boundary, 1)},
        "random": {"per_spec": args.random, "counts": counts(r_rows), "failures": bad_random[:200],
                   "seconds": round(t_random, 1)},
        "boundscheck": {"returncode": bc["returncode"], "counts": counts(bc["rows"]), "failures": bc_bad[:200],
                        "seconds": bc["seconds"], "stderr_tail": bc["stderr_tail"] if bc["returncode"] else ""},
        "hypothesis": {"profile": "fuzz", "specs": len(hy["rows"]), "returncode": hy["returncode"],
                       "counts": counts(hy["rows"]), "examples": dict(hy_examples), "failures": hy_bad[:200],
                       "seconds": hy["seconds"], "stderr_tail": hy["stderr_tail"] if hy["returncode"] else ""},
        "determinism": {"thread_counts": [1, 2], "normwise_rtol": BLAS_NORMWISE_RTOL, "rows": det,
                        "seconds": round(t_det, 1)},
    }
    if args.baseline_from:
        base = json.loads(Path(args.baseline_from).read_text())
        result["baseline"] = base.get("baseline_of", base)
    Path(args.json_out).write_text(json.dumps(result, indent=1, sort_keys=True, default=str) + "\n")
    ok = (not gaps and not bad_boundary and not bad_random and not bc_bad and bc["returncode"] in (0, None)
          and not hy_bad and hy["returncode"] in (0, None))
    print(f"fuzz: {result['boundary']['counts']} | random {result['random']['counts']} | boundscheck "
          f"{result['boundscheck']['counts']} rc={bc['returncode']} | hypothesis {result['hypothesis']['counts']} "
          f"rc={hy['returncode']} | wrote {args.json_out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
