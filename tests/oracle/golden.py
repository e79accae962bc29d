"""Certify golden cases (``refnsm.golden``) with the oracle: each covered case's expected float64 values against the
exact answer, in eps of the term scale (``measure.py``).  Used by ``ledger.py``; golden cases of functions the
oracle does not cover, or whose program is more than one call, are counted as not certified.
"""

from __future__ import annotations

import numpy as np

from .measure import error_in_eps


def _args(call, inputs):
    return [inputs[a["input"]] if isinstance(a, dict) and "input" in a else a for a in call["args"]]


def _exact_for(call, inputs):
    """{saved name: (exact, scale)} for one call, or None when the oracle does not cover it."""
    from . import regularization as org
    from . import spiking as osp

    f, a = call["call"], _args(call, inputs)
    if call.get("kwargs"):
        return None
    if f in ("spike_similar_loss", "spike_similar_loss_vjp"):
        g = 1.0 if f == "spike_similar_loss" else (1.0 if a[0] is None else float(a[0]))
        if f == "spike_similar_loss_vjp":
            a = a[1:]
        X, lab, kernel, loss, rest = a[0], a[1], a[2], a[3], tuple(a[4:])
        ex = osp.ssl_exact(np.asarray(X, dtype=np.float64), lab, kernel, loss, rest)
        key = "value" if f == "spike_similar_loss" else "grad"
        v, s = ex[key]
        return [(v * g, s * abs(g))]
    if f in ("kernel_dot_product", "kernel_dot_product_vjp"):
        if f == "kernel_dot_product_vjp":
            A, x, y, kernel, rest = a[0], a[1], a[2], a[3], tuple(a[4:])
        else:
            x, y, kernel, rest = a[0], a[1], a[2], tuple(a[3:])
            A = np.zeros((np.shape(x)[0], np.shape(y)[0]))
        if kernel == "gaussian" and np.shape(x)[0] != np.shape(y)[0]:
            return None
        ex = osp.kdp_exact(x, y, kernel, rest[0] if rest else 0.0, A)
        return [ex["K"]] if f == "kernel_dot_product" else [ex["dx"], ex["dy"]]
    if f in ("lp_norm", "lp_norm_vjp"):
        g = 1.0
        if f == "lp_norm_vjp":
            g = 1.0 if a[0] is None else float(a[0])
            a = a[1:]
        x, p = np.asarray(a[0], dtype=np.float64), (a[1] if len(a) > 1 else 1)
        if x.ndim == 1 and p in (1, 2, np.inf, -1, -2, float("inf")):
            ex = org.vector_norm_exact(x, p)
        elif x.ndim == 2 and p in (1, np.inf, float("inf"), "fro"):
            ex = org.matrix_norm_exact(x, p)
        else:
            return None
        v, s = ex["value" if f == "lp_norm" else "grad"]
        return [(v * g, s * abs(g))]
    return None


def certify(cases):
    """[(case name, worst error of its expected float64 values in eps, or None when not covered)]."""
    out = []
    for c in cases:
        if len(c.program) != 1:
            out.append((c.name, None))
            continue
        call = c.program[0]
        try:
            ex = _exact_for(call, c.inputs)
        except (ValueError, TypeError, KeyError, IndexError):
            ex = None
        if ex is None:
            out.append((c.name, None))
            continue
        names = list(call["save"])
        worst = 0.0
        for name, (y, s) in zip(names, ex):
            got = np.asarray(c.expected[name], dtype=np.float64)
            worst = max(worst, error_in_eps(got.reshape(np.shape(y)), y, s, np.float64)[0])
        out.append((c.name, worst))
    return out
