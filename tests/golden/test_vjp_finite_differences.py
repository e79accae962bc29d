"""The golden VJPs are checked independently of the code that produced them: central finite differences of the
golden value programs (float64), at every smooth case.  Cases at a kink or a tie (their subgradient convention is
a choice, not a derivative) are listed and skipped."""

import numpy as np
import pytest

import refnsm.golden as G
from refnsm.golden._runner import run_program
from refnsm.golden.backend import refnsm_backend

# subgradient conventions (sign(0), ties, clamps) and saturated outputs whose differences are below float64 noise
# (a silent row is the norm's kink at 0 for the cosine-normalised linear kernel)
NONSMOOTH = ("ties", "tied", "equal-rows", "l1-", "sign-t", "bce", "saturated", "p1", "pinf", "pminf", "pm1",
             "silent", "linear-mse-multihot", "zeros-negatives")


def _pairs():
    by = {c.name: c for c in G.cases()}
    out = []
    for c in G.cases():
        fam, fn, var = c.name.split(".", 2)
        if not fn.endswith("_vjp"):
            continue
        v = by.get(f"{fam}.{fn[:-4]}.{var}")
        if v is None or any(s in var for s in NONSMOOTH):
            continue
        out.append(pytest.param(v, c, id=c.name))
    return out


@pytest.mark.parametrize("value_case, vjp_case", _pairs())
def test_vjp_matches_central_differences(value_case, vjp_case):
    be = refnsm_backend("cpu")
    outs = value_case.outputs()
    key = "value" if "value" in outs else ("outputs" if "outputs" in outs else outs[0])
    step = next(st for st in vjp_case.program if st.get("call", "").endswith("_vjp"))
    g = step["args"][0]
    cot = 1.0 if g is None else (g if isinstance(g, float) else vjp_case.inputs[g["input"]])

    def f(inputs):
        return float(np.sum(np.asarray(run_program(value_case, be, "float64", inputs=inputs)[key]) * cot))

    checked = 0
    for out in vjp_case.outputs():
        name = out[2:]
        if name not in value_case.inputs or value_case.inputs[name].dtype.kind != "f":
            continue
        x0 = value_case.inputs[name]
        fd = np.zeros(x0.size)
        h = 1e-6 * max(1.0, float(np.max(np.abs(x0))))
        for i in range(x0.size):
            xp, xm = x0.copy().ravel(), x0.copy().ravel()
            xp[i] += h
            xm[i] -= h
            fd[i] = (f({**value_case.inputs, name: xp.reshape(x0.shape)})
                     - f({**value_case.inputs, name: xm.reshape(x0.shape)})) / (2 * h)
        exp = np.asarray(vjp_case.expected[out]).ravel()
        scale = max(float(np.max(np.abs(exp))), 1e-12)
        assert np.max(np.abs(fd - exp)) <= 1e-5 * scale, (out, np.max(np.abs(fd - exp)) / scale)
        checked += 1
    assert checked
