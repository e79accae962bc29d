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

from ._mp import absa, exact, mpa, vmap, zeros
from .cases import Case

FAMILY = "similarity"
#: the public names of refnsm.similarity this oracle evaluates (docs/accuracy.md lists the others)
COVERS = ("similarity_matching_cost", "hebbian_update", "solve_sm", "solve_nsm", "kkt_residual", "SimilarityMatching",
          "SupervisedSimilarityMatching", "MultiSimilarityMatching", "Linear", "Diagnostics")


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


# ----------------------------------------------------------------------------------------------------------------
# The circuits' steps (refnsm.similarity.models): ``train_step`` of SimilarityMatching (SM: P = identity, NSM:
# P = ReLU) and SupervisedSimilarityMatching with Linear encoders on flat inputs, K fast updates from y = 0 (tol 0),
# the slow loss, its gradients and the update, all written from the module docstring of refnsm.similarity.models:
#
#   b = x W^T + beta (+ z L^T + lbeta),  y <- P(y - eta (y M^T - b)),
#   L = (2 sum y.My - 4 sum y.b)/N - |M|_F^2/m + (2/m) sum |theta|^2,  N = m B,
#   dL/du = -4y/N,  dL/dM = (2/N) y^T y - (2/m) M,  dL/dtheta += (4/m) theta,
#   theta <- theta - lr dL/dtheta,  M <- M + (lr/tau) dL/dM.
#
# Term scale of y: the first-order propagation of every update's rounding, s^{t+1} = |I - eta M| s^t + r^t with
# r^t = |y^t| + eta (|M||y^t| + s_b) (the ReLU is 1-Lipschitz); every later quantity carries its terms' absolute
# values plus the first-order effect of s_y.

def _circuit_exact_impl(x, W, bias, M, eta, K, relu, lr, tau, z=None, LW=None):
    X, Wm, Bm, Mm = mpa(x), mpa(W), mpa(bias), mpa(M)
    B, n = X.shape
    m = Wm.shape[0]
    N = m * B
    eta, lr, tau = mp.mpf(float(eta)), mp.mpf(float(lr)), mp.mpf(float(tau))
    U = X @ Wm.T + Bm.reshape(1, -1)
    sU = absa(X) @ absa(Wm).T + absa(Bm).reshape(1, -1)
    D, sD = U, sU
    if z is not None:
        Z, LWm = mpa(z), mpa(LW)
        D, sD = U + Z @ LWm.T, sU + absa(Z) @ absa(LWm).T
    A = np.array([[(1 if i == j else 0) - eta * Mm[i, j] for j in range(m)] for i in range(m)], dtype=object)
    aA = absa(A)
    Y = zeros((B, m))
    sY = zeros((B, m))
    for _ in range(K):
        V = Y - eta * (Y @ Mm.T - D)
        r = absa(Y) + eta * (absa(Y) @ absa(Mm).T + sD)
        Y = vmap(lambda v: v if v > 0 else mp.mpf(0), V) if relu else V
        sY = sY @ aA.T + r
    aY = absa(Y)
    MY = Y @ Mm.T
    L = (2 * (Y * MY).sum() - 4 * (Y * D).sum()) / N - (Mm * Mm).sum() / m + 2 * (Wm * Wm).sum() / m \
        + 2 * (Bm * Bm).sum() / m
    dLdy = (2 * (Y @ Mm.T + Y @ Mm) - 4 * D) / N
    sL = (2 * (aY * (aY @ absa(Mm).T)).sum() + 4 * (aY * sD).sum()) / N + (Mm * Mm).sum() / m \
        + 2 * ((Wm * Wm).sum() + (Bm * Bm).sum()) / m + (absa(dLdy) * sY).sum()
    if z is not None:
        L += 2 * (LWm * LWm).sum() / m
        sL += 2 * (LWm * LWm).sum() / m
    gW = -4 * (Y.T @ X) / N + 4 * Wm / m
    sgW = 4 * ((aY + sY).T @ absa(X)) / N + 4 * absa(Wm) / m
    gb = -4 * Y.sum(axis=0) / N + 4 * Bm / m
    sgb = 4 * (aY + sY).sum(axis=0) / N + 4 * absa(Bm) / m
    gM = 2 * (Y.T @ Y) / N - 2 * Mm / m
    sgM = 2 * (aY.T @ aY + sY.T @ aY + aY.T @ sY) / N + 2 * absa(Mm) / m
    out = {"y": (Y, sY), "loss": (L, sL), "grad_weight": (gW, sgW), "grad_bias": (gb, sgb), "grad_M": (gM, sgM),
           "new_weight": (Wm - lr * gW, absa(Wm) + lr * sgW), "new_bias": (Bm - lr * gb, absa(Bm) + lr * sgb),
           "new_M": (Mm + lr / tau * gM, absa(Mm) + lr / tau * sgM)}
    if z is not None:
        gL = -4 * (Y.T @ Z) / N + 4 * LWm / m
        out["grad_label_weight"] = (gL, 4 * ((aY + sY).T @ absa(Z)) / N + 4 * absa(LWm) / m)
    return out


circuit_exact = exact(_circuit_exact_impl)

_ETA, _K, _LR, _TAU = 0.5, 6, 0.05, 0.5


def _circuit_regimes(supervised=False):
    def mk(kind):
        def f(rng, dt):
            B, n, m = 5, 6, 3
            x = rng.standard_normal((B, n))
            if kind == "duplicate and silent samples":
                x[1] = x[0]
                x[2] = 0.0
            q, _ = np.linalg.qr(rng.standard_normal((m, m)))
            ev = [1.0, 0.7, 0.2] if kind != "slow dynamics (M near singular)" else [1.0, 0.5, 1e-3]
            d = {"x": x.astype(dt), "W": (rng.standard_normal((m, n)) * 0.5).astype(dt),
                 "bias": (rng.standard_normal(m) * 0.1).astype(dt), "M": ((q * ev) @ q.T).astype(dt)}
            if supervised:
                d["z"] = np.eye(2)[rng.integers(0, 2, B)].astype(dt)
                d["LW"] = (rng.standard_normal((m, 2)) * 0.5).astype(dt)
            return d
        return f
    return {k: mk(k) for k in ("random", "duplicate and silent samples", "slow dynamics (M near singular)")}


def _circuit_run(relu, fused, supervised=False):
    def run(inp):
        dt = inp["x"].dtype
        m, n = inp["W"].shape
        enc = sim.Linear(n, m, bias=True, rng=0, dtype=dt)
        kw = dict(tau=_TAU, tol=0.0, max_iterations=_K, iteration_lr=_ETA,
                  iteration_projection="relu" if relu else None)
        if supervised:
            model = sim.SupervisedSimilarityMatching(enc, 2, m, label_bias=False, regularization="weight",
                                                     label_weight=inp["LW"], rng=0, **kw)
        else:
            model = sim.SimilarityMatching(enc, m, regularization="weight", **kw)
        model.use_fused_step = fused
        model.params["encoders.0.weight"][...] = inp["W"]
        model.params["encoders.0.bias"][...] = inp["bias"]
        model.params["competitor.weight"][...] = inp["M"]
        xs = (inp["x"], inp["z"]) if supervised else (inp["x"],)
        y, L = model.train_step(*xs, lr=_LR)
        out = {"y": y, "loss": np.asarray(L), "grad_weight": model.grads["encoders.0.weight"],
               "grad_bias": model.grads["encoders.0.bias"], "grad_M": model.grads["competitor.weight"],
               "new_weight": model.params["encoders.0.weight"], "new_bias": model.params["encoders.0.bias"],
               "new_M": model.params["competitor.weight"]}
        if supervised:
            out["grad_label_weight"] = model.grads["encoders.1.weight"]
        return out
    return run


def _circuit_cases():
    out = []
    for relu in (False, True):
        for fused in (True, False):
            name = f"SimilarityMatching.train_step[{'NSM' if relu else 'SM'}, {'fused' if fused else 'general path'}]"
            out.append(Case(FAMILY, name, _circuit_regimes(), _circuit_run(relu, fused),
                            lambda inp, relu=relu: circuit_exact(inp["x"], inp["W"], inp["bias"], inp["M"], _ETA, _K,
                                                                 relu, _LR, _TAU)))
    out.append(Case(FAMILY, "SupervisedSimilarityMatching.train_step[NSM]", _circuit_regimes(True),
                    _circuit_run(True, False, True),
                    lambda inp: circuit_exact(inp["x"], inp["W"], inp["bias"], inp["M"], _ETA, _K, True, _LR, _TAU,
                                              inp["z"], inp["LW"])))
    return out


_base_cases = cases


def cases():  # noqa: F811 -- the functions above, then the circuits' steps
    return _base_cases() + _circuit_cases()


@exact
def nsm_exact(M, b):
    """min_{y >= 0} y^T S y / 2 - y^T b, S = (M + M^T)/2, by its active set: the support F with y_F = S_FF^{-1} b_F > 0
    and (S y - b)_i >= 0 off F (unique for S positive definite).  Scale: Skeel's estimate on the support."""
    Mm = mpa(M)
    m = Mm.shape[0]
    S = (Mm + Mm.T) / 2
    Bm = mpa(b)
    Y, sY = zeros(Bm.shape), zeros(Bm.shape)
    for r in range(Bm.shape[0]):
        for mask in range(1 << m):
            F = [i for i in range(m) if mask >> i & 1]
            y = [mp.mpf(0)] * m
            sy = [mp.mpf(0)] * m
            if F:
                SF = mp.matrix([[S[i, j] for j in F] for i in F])
                Si = SF ** -1
                yF = Si * mp.matrix([Bm[r, i] for i in F])
                if any(v <= 0 for v in yF):
                    continue
                t = [mp.fsum(abs(S[i, j]) * abs(yF[c]) for c, j in enumerate(F)) + abs(Bm[r, i]) for i in F]
                for a, i in enumerate(F):
                    y[i] = yF[a]
                    sy[i] = mp.fsum(abs(Si[a, c]) * t[c] for c in range(len(F)))
            grad = [mp.fsum(S[i, j] * y[j] for j in range(m)) - Bm[r, i] for i in range(m)]
            if all(grad[i] >= -mp.mpf(10) ** -40 for i in range(m) if i not in F):
                break
        else:
            raise ValueError("no active set satisfies the KKT conditions")
        for i in range(m):
            Y[r, i], sY[r, i] = y[i], sy[i]
    return {"y": (Y, sY)}


@exact
def kkt_exact(M, b, y, nonnegative):
    Mm, Bm, Ym = mpa(M), mpa(b), mpa(y)
    G = Ym @ Mm.T - Bm
    sG = absa(Ym) @ absa(Mm).T + absa(Bm)
    if nonnegative:
        R = Ym - vmap(lambda v: v if v > 0 else mp.mpf(0), Ym - G)
    else:
        R = G
    k = max(range(R.size), key=lambda i: abs(R.reshape(-1)[i]))
    return {"value": (abs(R.reshape(-1)[k]), absa(Ym).reshape(-1)[k] + sG.reshape(-1)[k])}


def _nsm_cases():
    def mk(cond):
        def f(rng, dt):
            q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
            M = (q * np.geomspace(1.0, 1.0 / cond, 4)) @ q.T
            b = rng.standard_normal((5, 4))
            return {"M": M.astype(dt), "b": b.astype(dt), "y": np.abs(rng.standard_normal((5, 4))).astype(dt)}
        return f
    reg = {"well conditioned": mk(10.0), "ill conditioned (1e6)": mk(1e6)}
    return [Case(FAMILY, "solve_nsm", reg, lambda inp: {"y": sim.solve_nsm(inp["M"], inp["b"])},
                 lambda inp: nsm_exact(inp["M"], inp["b"])),
            Case(FAMILY, "kkt_residual[nonnegative, and not]", reg,
                 lambda inp: {"value": np.asarray(sim.kkt_residual(inp["M"], inp["b"], inp["y"])),
                              "value_lin": np.asarray(sim.kkt_residual(inp["M"], inp["b"], inp["y"], False))},
                 lambda inp: {**kkt_exact(inp["M"], inp["b"], inp["y"], True),
                              "value_lin": kkt_exact(inp["M"], inp["b"], inp["y"], False)["value"]})]


_circuit_only = cases


def cases():  # noqa: F811
    return _circuit_only() + _nsm_cases()
