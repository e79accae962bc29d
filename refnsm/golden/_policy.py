r"""Tolerance policy and error measures of the golden suite (the reasoning is in ``docs/golden.md``).

For an output with expected value :math:`e` (float64, refnsm's answer), a backend's value :math:`g`, and a scale
:math:`s` (``max|e|`` by default; for an output whose terms cancel, the magnitude of those terms), the error is the
*scaled* normwise error

.. math::  \mathrm{err} = \frac{\max_i |g_i - e_i|}{s},

and the case passes in dtype :math:`d` when :math:`\mathrm{err} \le \mathrm{rtol}_d`, with

.. math::  \mathrm{rtol}_d = \max\big(F_d,\; c\,u_d\,\max(\kappa, 1)\big),

:math:`u_d` the unit roundoff (:math:`2^{-53}`, :math:`2^{-24}`), :math:`\kappa` the case's condition number for
that output (relative to :math:`s`), :math:`c` = :data:`SAFETY` (room for different but correct summation orders
and algorithms) and :math:`F_d` = :data:`FLOOR` a floor.  Outputs for which :math:`c\,u_{32}\,\kappa` exceeds
:data:`MAX_RTOL32` are not meaningful in float32: such cases run in float64 only, and say so.

The condition number is estimated, not assumed: the float inputs are perturbed relatively,
:math:`x_i(1 + \delta r_i)` with :math:`r_i \sim U(-1, 1)`, :math:`\delta` = :data:`DELTA` (zeros and signs stay as
they are), and :math:`\kappa = \max_\text{trials} \max|f(\tilde x) - f(x)| / (s\,\delta)`.
"""

from __future__ import annotations

import numpy as np

UNIT_ROUNDOFF = {"float64": 2.0 ** -53, "float32": 2.0 ** -24}
SAFETY = 128.0
FLOOR = {"float64": 1e-13, "float32": 1e-6}
MAX_RTOL32 = 1e-2
DELTA = 1e-7
TRIALS = 3


def rtol(dtype: str, kappa: float) -> float:
    return max(FLOOR[dtype], SAFETY * UNIT_ROUNDOFF[dtype] * max(float(kappa), 1.0))


def scale_of(expected, term_scale=None) -> float:
    e = np.asarray(expected, dtype=np.float64)
    s = float(np.max(np.abs(e))) if e.size else 0.0
    if term_scale is not None:
        s = max(s, float(term_scale))
    return s if s > 0 and np.isfinite(s) else 1.0


def ulp_distance(got: np.ndarray, exp: np.ndarray, dtype: str) -> float:
    """Largest distance in units of the last place of ``dtype`` (measured at the expected value)."""
    spacing = np.abs(np.spacing(exp.astype(dtype))).astype(np.float64)
    tiny = float(np.finfo(dtype).tiny)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return float(np.max(np.abs(got - exp) / np.maximum(spacing, tiny))) if exp.size else 0.0


def compare(got, exp, scale: float, tol: float, dtype: str) -> dict:
    """Error measures of one output; ``got`` already has ``exp``'s shape and is finite where ``exp`` is."""
    g = np.asarray(got, dtype=np.float64)
    e = np.asarray(exp, dtype=np.float64)
    if e.size == 0:
        return {"passed": True, "max_abs": 0.0, "rel": 0.0, "normwise_rel": 0.0, "ulps": 0.0, "tol": tol}
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(g - e)
    # same non-finite pattern (e.g. an expected +inf) counts as equal there
    same_nonfinite = ~np.isfinite(e) & (g == e)
    diff = np.where(same_nonfinite, 0.0, diff)
    diff = np.where(np.isnan(diff), np.inf, diff)
    k = int(np.argmax(diff))
    max_abs = float(diff.flat[k])
    ne = float(np.linalg.norm(e[np.isfinite(e)])) if np.isfinite(e).any() else 0.0
    finite = np.isfinite(diff)
    with np.errstate(over="ignore"):
        normwise = (float(np.linalg.norm(diff[finite]) / ne) if ne > 0 and finite.all()
                    else (0.0 if max_abs == 0 else np.inf))
    rel = max_abs / scale
    idx = tuple(int(i) for i in np.unravel_index(k, e.shape)) if e.ndim else ()
    return {
        "passed": bool(rel <= tol),
        "max_abs": max_abs,
        "rel": rel,
        "normwise_rel": normwise,
        "ulps": ulp_distance(g, e, dtype),
        "tol": tol,
        "scale": scale,
        "worst_index": list(idx),
        "got": repr(float(g[idx] if e.ndim else g)),
        "expected": repr(float(e[idx] if e.ndim else e)),
    }
