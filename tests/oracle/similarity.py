r"""Oracle of the similarity-matching functions (``refnsm.similarity``): the cost, the Hebbian/anti-Hebbian update
and the linear SM solve.

* ``similarity_matching_cost`` :math:`\|XX^\top - YY^\top\|_F^2/T^2`, whose terms are the squared entries of the
  Gram difference, each with the scale of its own terms: :math:`a_{st}^2 + 2|a_{st}|(|x_s|\cdot|x_t| +
  |y_s|\cdot|y_t|)`.
* ``hebbian_update``: :math:`W' = W + \frac{4\eta}{m}(Y^\top X/B - W)`, :math:`M' = M + \frac{2\eta}{\tau m}(Y^\top Y/B -
  M)` (sums of products; scales from their absolute values).
* ``solve_sm`` :math:`y = M^{-1} b`: the scale is Skeel's componentwise condition estimate,
  :math:`|M^{-1}|(|M||y| + |b|)`, what a backward-stable solver can promise.

pynsm has no functional form of these (its models are cross-checked in ``tests/crosscheck/test_similarity.py``),
so there is no upstream column.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np

from refnsm import similarity as sim

from ._mp import absa, exact, mpa, vmap
from .cases import Case

FAMILY = "similarity"
#: the public names of refnsm.similarity this oracle evaluates (docs/accuracy.md lists the others)
COVERS = ("similarity_matching_cost", "hebbian_update", "solve_sm")


@exact
def cost_exact(x, y):
    X, Y = mpa(x), mpa(y)
    T = X.shape[0]
    A = X @ X.T - Y @ Y.T
    sA = absa(X) @ absa(X).T + absa(Y) @ absa(Y).T
    v = vmap(lambda t: t * t, A).sum() / T ** 2
    s = (vmap(lambda t: t * t, A) + 2 * absa(A) * sA).sum() / T ** 2
    return {"value": (v, s)}


@exact
def hebbian_exact(W, M, x, y, lr, tau):
    Wm, Mm, X, Y = mpa(W), mpa(M), mpa(x), mpa(y)
    m = Wm.shape[0]
    B = X.shape[0]
    lr, tau = mp.mpf(float(lr)), mp.mpf(float(tau))
    cw, cm = 4 * lr / m, 2 * lr / (tau * m)
    Wn = Wm + cw * (Y.T @ X / B - Wm)
    sWn = absa(Wm) + cw * (absa(Y).T @ absa(X) / B + absa(Wm))
    Mn = Mm + cm * (Y.T @ Y / B - Mm)
    sMn = absa(Mm) + cm * (absa(Y).T @ absa(Y) / B + absa(Mm))
    return {"W": (Wn, sWn), "M": (Mn, sMn)}


@exact
def solve_exact(M, b):
    Mm = mp.matrix(M.tolist())
    Minv = Mm ** -1
    n = M.shape[0]
    Mi = np.array([[Minv[i, j] for j in range(n)] for i in range(n)], dtype=object)
    B = mpa(b)  # [batch, m]
    Y = B @ Mi.T
    scale = (absa(Y) @ absa(mpa(M)).T + absa(B)) @ absa(Mi).T
    return {"y": (Y, scale)}


def cases():
    def mk_cost(kind):
        def f(rng, dt):
            x = rng.standard_normal((6, 4))
            if kind == "at the optimum (Y = X Q)":
                q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
                y = x @ q
            elif kind == "near the optimum":
                q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
                y = x @ q + 1e-6 * rng.standard_normal((6, 4))
            else:
                y = rng.standard_normal((6, 3))
            return {"x": x, "y": y}
        return f

    def run_cost(inp):
        return {"value": np.asarray(sim.similarity_matching_cost(inp["x"], inp["y"]))}

    cost_regimes = {k: mk_cost(k) for k in ("random", "near the optimum", "at the optimum (Y = X Q)")}
    out = [Case(FAMILY, "similarity_matching_cost", cost_regimes, run_cost,
                lambda inp: cost_exact(inp["x"], inp["y"]), dtypes=(np.float64,))]

    def mk_heb(scale):
        def f(rng, dt):
            return {"W": rng.standard_normal((3, 5)).astype(dt), "M": np.eye(3, dtype=dt) + 0.1 * rng.random((3, 3)).astype(dt),
                    "x": (rng.standard_normal((4, 5)) * scale).astype(dt), "y": rng.random((4, 3)).astype(dt)}
        return f

    def run_heb(inp):
        W, M = sim.hebbian_update(inp["W"], inp["M"], inp["x"], inp["y"], 0.05, 0.5)
        return {"W": W, "M": M}

    out.append(Case(FAMILY, "hebbian_update", {"normal": mk_heb(1.0), "large inputs (x1e6)": mk_heb(1e6)}, run_heb,
                    lambda inp: hebbian_exact(inp["W"], inp["M"], inp["x"], inp["y"], 0.05, 0.5)))

    def mk_solve(cond):
        def f(rng, dt):
            q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
            M = (q * np.geomspace(1.0, cond, 4)) @ q.T
            return {"M": M.astype(dt), "b": rng.standard_normal((3, 4)).astype(dt)}
        return f

    def run_solve(inp):
        return {"y": sim.solve_sm(inp["M"], inp["b"])}

    out.append(Case(FAMILY, "solve_sm", {"well conditioned": mk_solve(10.0), "ill conditioned (1e8)": mk_solve(1e8)},
                    run_solve, lambda inp: solve_exact(inp["M"].astype(np.float64), inp["b"])))
    return out
