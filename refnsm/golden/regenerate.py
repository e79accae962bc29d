"""Regenerate the shipped vectors, or compare a fresh generation with them (``--check``).

The comparison is numeric, not bitwise: inputs must be identical (they are seeded and rounded to float32), the
metadata identical, and each expected output equal to the shipped one within a small fraction of the float64
tolerance (refnsm's float64 bits may differ across CPUs and BLAS builds; the vectors must not move beyond that).
"""

from __future__ import annotations

import numpy as np

#: a regenerated expected value may differ from the shipped one by this fraction of the case's float64 tolerance
DRIFT_FRACTION = 0.1


def compare(fresh, shipped) -> list:
    """Human-readable differences between two lists of cases (empty when they agree)."""
    problems = []
    fn = {c.name: c for c in fresh}
    sn = {c.name: c for c in shipped}
    for n in sorted(set(fn) - set(sn)):
        problems.append(f"{n}: new case, not in the shipped data")
    for n in sorted(set(sn) - set(fn)):
        problems.append(f"{n}: shipped case no longer generated")
    for n in sorted(set(fn) & set(sn)):
        a, b = fn[n], sn[n]
        if a.program != b.program or tuple(a.dtypes) != tuple(b.dtypes):
            problems.append(f"{n}: program or dtypes changed")
        if set(a.inputs) != set(b.inputs):
            problems.append(f"{n}: input names changed")
            continue
        for k in a.inputs:
            x, y = np.asarray(a.inputs[k]), np.asarray(b.inputs[k])
            if x.dtype != y.dtype or x.shape != y.shape or not np.array_equal(x, y):
                problems.append(f"{n}: input {k!r} changed")
        for k in b.expected:
            if k not in a.expected:
                problems.append(f"{n}: output {k!r} no longer produced")
                continue
            tol = DRIFT_FRACTION * b.tolerance["float64"][k] if "float64" in b.tolerance else 1e-14
            x, y = np.asarray(a.expected[k]), np.asarray(b.expected[k])
            if x.shape != y.shape:
                problems.append(f"{n}: output {k!r} changed shape {y.shape} -> {x.shape}")
                continue
            err = float(np.max(np.abs(x - y))) / b.scales[k] if x.size else 0.0
            if not err <= tol:
                problems.append(f"{n}: output {k!r} moved by {err:.2e} of its scale (allowed {tol:.1e})")
    return problems


def main(check: bool = False) -> int:
    import refnsm

    from . import SUITE_VERSION, generate
    from ._store import DATA, load, save

    fresh = generate()
    if check:
        doc, shipped = load()
        problems = compare(fresh, shipped)
        for p in problems:
            print(p)
        print(f"{len(fresh)} generated, {len(shipped)} shipped (suite {doc['suite_version']}): "
              f"{'identical within drift' if not problems else f'{len(problems)} differences'}")
        return 1 if problems else 0
    save(fresh, SUITE_VERSION, refnsm.__version__)
    print(f"wrote {len(fresh)} cases to {DATA}")
    return 0
