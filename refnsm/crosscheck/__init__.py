"""Cross-checks: the same inputs through an upstream library and through refnsm, in float64.

Each family has an adapter module ``refnsm.crosscheck.<family>`` exposing

* ``UPSTREAM``: the upstream distribution name (a key of :data:`refnsm.crosscheck._upstream.UPSTREAM`);
* ``cases()``: a list of :class:`Case` (cheap to build: nothing upstream is imported until a case runs).

Running a case returns a :class:`CheckRow` with the worst relative error of the value and of the gradient.
The pytest files in ``tests/crosscheck/`` assert every case; ``python -m refnsm crosscheck`` prints them as a
table.  Errors are *normwise* relative: ``max|a - b| / max|b|`` over the compared array (elementwise relative
error is meaningless where the reference is 0), and a NaN pattern that differs counts as an infinite error.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

FAMILIES = ("spiking", "similarity", "hopfield", "linear", "regularization")


@dataclass
class CheckRow:
    family: str
    function: str
    upstream: str
    value_err: float
    grad_err: float
    tol: float
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.value_err <= self.tol and self.grad_err <= self.tol

    def __str__(self):
        return (
            f"{self.family}.{self.function} vs {self.upstream}: value err {self.value_err:.2e}, "
            f"grad err {self.grad_err:.2e}, tol {self.tol:.0e} {'PASS' if self.passed else 'FAIL'} {self.note}"
        )


@dataclass
class Case:
    family: str
    name: str
    run: Callable[[], CheckRow]


def rel_err(a, b) -> float:
    """Normwise relative error ``max|a - b| / max|b|`` (absolute when ``b`` is all zero).

    Shapes must match; NaN/Inf must occur at the same places with the same values, else the error is inf.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return math.inf
    fa, fb = np.isfinite(a), np.isfinite(b)
    if not np.array_equal(fa, fb) or not np.array_equal(a[~fa], b[~fb], equal_nan=True):
        return math.inf
    if not fa.any():
        return 0.0
    diff = float(np.max(np.abs(a[fa] - b[fb])))
    scale = float(np.max(np.abs(b[fb])))
    return diff / scale if scale > 0 else diff


def adapter(family: str):
    return importlib.import_module(f"{__name__}.{family}")


def available_families() -> list[str]:
    """Families whose adapter module exists (the family may still lack its upstream library)."""
    out = []
    for fam in FAMILIES:
        try:
            adapter(fam)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{fam}":
                raise
            continue
        out.append(fam)
    return out


def format_table(rows: list[CheckRow]) -> str:
    head = ("family", "function", "upstream", "value rel err", "grad rel err", "tol", "result")
    body = [
        (r.family, r.function, r.upstream, f"{r.value_err:.1e}", f"{r.grad_err:.1e}", f"{r.tol:.0e}",
         "pass" if r.passed else "FAIL")
        for r in rows
    ]
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head))]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, body)])
