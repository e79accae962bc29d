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
from .cases import Case, Unavailable
from .measure import DPS

FAMILY = "similarity"
#: the public names of refnsm.similarity this oracle evaluates (docs/accuracy.md lists the others)
COVERS = ("similarity_matching_cost", "hebbian_update", "solve_sm", "solve_nsm", "kkt_residual", "SimilarityMatching",
          "SupervisedSimilarityMatching", "MultiSimilarityMatching", "Linear", "Diagnostics", "ReLU", "Tanh", "Sigmoid", "SGD", "Adam", "StepLR", "ExponentialLR", "principal_angle_cosines", "subspace_error", "Conv2d", "GroupedConv2d", "Sequential")
#: public names with nothing to compute against an oracle, and why (rendered in docs/accuracy.md)
NO_ORACLE = {
    "Encoder": "the abstract protocol of the encoders (no arithmetic of its own)",
    "FunctionalEncoder": "the base class of user encoders written against the protocol (no arithmetic of its own)",
    "Identity": "`u = x`: returns its input unchanged, and its VJP is the cotangent unchanged; nothing is rounded",
    "IterationModule": "a control-flow loop (calls `iteration` until a stopping rule); its numerical content is "
                       "the user's `iteration`",
    "IterationLossModule": "a control-flow loop of optimizer steps on the user's loss (the steps are the optimizers')",
    "extract_embeddings": "data movement: runs a model over a loader and concatenates the outputs and labels",
    "clustering_accuracy": "a count over integer labels after an optimal assignment: exact integer "
                           "arithmetic, no rounding to measure (tests/test_similarity.py checks it on examples)",
    "best_permutation_confusion": "an integer confusion matrix after an assignment (exact counts, "
                                  "no rounding to measure)",
}


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


# ------------------------------------------------------------------ elementwise encoders, optimizers, schedulers
# The elementwise encoders: value and VJP.  Scales are the terms of the plain formulas the derivative is written
# as (tanh: 1 - t^2, terms 1 + t^2; sigmoid: s(1 - s), terms s(1 + s)): for a saturated input the derivative is
# far below those terms, and the ledger's cond column shows by how much (torch forms the same expressions).

def _act_regimes():
    def mk(scale):
        def f(rng, dt):
            x = rng.standard_normal((3, 5)) * scale
            x[0, 0] = 0.0
            return {"x": x.astype(dt), "g": rng.standard_normal((3, 5)).astype(dt)}
        return f
    return {"normal": mk(1.0), "saturated (x12)": mk(12.0)}


def _act_case(name):
    @exact
    def ex(x, g):
        X, G = mpa(x), mpa(g)
        if name == "ReLU":
            Y = vmap(lambda v: v if v > 0 else mp.mpf(0), X)
            D = vmap(lambda v: mp.mpf(1) if v > 0 else mp.mpf(0), X)
            return {"u": (Y, absa(Y)), "grad_x": (G * D, absa(G * D))}
        if name == "Tanh":
            Y = vmap(mp.tanh, X)
            return {"u": (Y, absa(Y)), "grad_x": (G * (1 - Y * Y), absa(G) * (1 + Y * Y))}
        Y = vmap(lambda v: 1 / (1 + mp.exp(-v)), X)
        return {"u": (Y, Y), "grad_x": (G * Y * (1 - Y), absa(G) * Y * (1 + Y))}

    def run(inp):
        enc = getattr(sim, name)(dtype=inp["x"].dtype)
        return {"u": enc(inp["x"]), "grad_x": enc.vjp(inp["g"], inp["x"])[0]}

    return Case(FAMILY, f"{name} (encoder) forward + vjp", _act_regimes(), run, lambda inp: ex(inp["x"], inp["g"]))


def _opt_regimes():
    def f(rng, dt):
        return {"p": rng.standard_normal(6).astype(dt),
                "gs": [rng.standard_normal(6).astype(dt) for _ in range(3)]}
    return {"three steps": f}


@exact
def _sgd_exact(p, gs, lr, momentum, wd, nesterov):
    """torch.optim.SGD, three steps: g += wd p; buf = g (first), momentum buf + g; step g + momentum buf (nesterov)
    or buf; p -= lr step.  Every quantity carries the sum of the |terms| it was formed from."""
    P, sP = mpa(p), absa(mpa(p))
    lr, mom, wd = (mp.mpf(float(v)) for v in (lr, momentum, wd))
    buf = None
    for g in gs:
        G = mpa(g) + wd * P
        sG = absa(mpa(g)) + wd * sP
        if buf is None:
            buf, sbuf = G, sG
        else:
            buf, sbuf = mom * buf + G, mom * sbuf + sG
        st, sst = (G + mom * buf, sG + mom * sbuf) if nesterov else (buf, sbuf)
        P, sP = P - lr * st, sP + lr * sst
    return {"p": (P, sP)}


@exact
def _adam_exact(p, gs, lr, b1, b2, eps):
    """torch.optim.Adam, three steps: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
    p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).  Scale: |p| plus the step formed from |m|'s terms."""
    P, sP = mpa(p), absa(mpa(p))
    lr, b1, b2, eps = (mp.mpf(float(v)) for v in (lr, b1, b2, eps))
    m, sm, v = zeros(P.shape), zeros(P.shape), zeros(P.shape)
    for t, g in enumerate(gs, start=1):
        G = mpa(g)
        m, sm = b1 * m + (1 - b1) * G, b1 * sm + (1 - b1) * absa(G)
        v = b2 * v + (1 - b2) * G * G
        den = vmap(lambda a: mp.sqrt(a / (1 - b2 ** t)) + eps, v)
        P = P - lr * (m / (1 - b1 ** t)) / den
        sP = sP + lr * (sm / (1 - b1 ** t)) / den
    return {"p": (P, sP)}


def _optimizer_cases():
    out = []
    for label, kw in (("SGD[momentum=0.9, weight_decay=0.01]", dict(momentum=0.9, weight_decay=0.01, nesterov=False)),
                      ("SGD[momentum=0.9, nesterov]", dict(momentum=0.9, weight_decay=0.0, nesterov=True))):
        def run(inp, kw=kw):
            P = {"w": inp["p"].copy()}
            opt = sim.SGD(P, lr=0.1, **kw)
            for g in inp["gs"]:
                opt.step({"w": g})
            return {"p": P["w"]}

        out.append(Case(FAMILY, f"{label}.step x3", _opt_regimes(), run,
                        lambda inp, kw=kw: _sgd_exact(inp["p"], inp["gs"], 0.1, kw["momentum"], kw["weight_decay"],
                                                      kw["nesterov"])))

    def run_adam(inp):
        P = {"w": inp["p"].copy()}
        opt = sim.Adam(P, lr=0.01)
        for g in inp["gs"]:
            opt.step({"w": g})
        return {"p": P["w"]}

    out.append(Case(FAMILY, "Adam.step x3", _opt_regimes(), run_adam,
                    lambda inp: _adam_exact(inp["p"], inp["gs"], 0.01, 0.9, 0.999, 1e-8)))

    def sched_reg(rng, dt):
        return {"lr": float(rng.uniform(0.01, 1.0)), "gamma": float(rng.uniform(0.5, 0.99)), "n": 10}

    def run_sched(kind):
        def run(inp):
            opt = sim.SGD({"w": np.zeros(1)}, lr=inp["lr"])
            sched = sim.StepLR(opt, step_size=3, gamma=inp["gamma"]) if kind == "StepLR" else \
                sim.ExponentialLR(opt, gamma=inp["gamma"])
            for _ in range(inp["n"]):
                sched.step()
            return {"lr": np.float64(opt.lr)}
        return run

    def sched_exact(kind):
        def ex(inp):
            with mp.workdps(50):
                k = inp["n"] // 3 if kind == "StepLR" else inp["n"]
                v = mp.mpf(inp["lr"]) * mp.mpf(inp["gamma"]) ** k
                return {"lr": (np.float64(v), np.float64(v))}
        return ex

    for kind in ("StepLR", "ExponentialLR"):
        label = "StepLR[step_size=3]" if kind == "StepLR" else kind
        out.append(Case(FAMILY, f"{label}: lr after 10 steps", {"random lr, gamma": sched_reg}, run_sched(kind),
                        sched_exact(kind), dtypes=(np.float64,)))
    return out


_before_optimizers = cases


def cases():  # noqa: F811
    return _before_optimizers() + [_act_case(n) for n in ("ReLU", "Tanh", "Sigmoid")] + _optimizer_cases()


# ------------------------------------------------------------------------------------- principal angles
def _orthonormal(a):
    """An orthonormal basis of the columns of ``a`` (Gram-Schmidt, twice, at DPS digits): any basis gives the same
    principal angles."""
    n, p = a.shape
    Q = []
    for j in range(p):
        v = [mp.mpf(float(a[i, j])) for i in range(n)]
        for _ in range(2):
            for q in Q:
                d = mp.fsum(x * y for x, y in zip(v, q))
                v = [x - d * y for x, y in zip(v, q)]
        nv = mp.sqrt(mp.fsum(x * x for x in v))
        Q.append([x / nv for x in v])
    return mp.matrix([[Q[j][i] for j in range(p)] for i in range(n)])


def _kappa(a):
    s = np.linalg.svd(np.asarray(a, dtype=np.float64), compute_uv=False)
    return float(s[0] / s[-1])


def angles_exact(a, b):
    r"""cos(theta_i) = the singular values of Q_A^T Q_B; the subspace error sqrt(sum sin^2) = ||Q_B - Q_A Q_A^T Q_B||_F
    (no cancellation however small the angles).  Scale: a condition estimate, kappa(A) + kappa(B): the inputs
    determine the subspaces (so the angles, in absolute terms) only to within eps times that (any backward-stable
    QR of A is the basis of a subspace that far away)."""
    with mp.workdps(DPS):
        QA, QB = _orthonormal(a), _orthonormal(b)
        M = QA.T * QB
        cos = sorted(mp.svd_r(M, compute_uv=False), reverse=True)
        k = min(a.shape[1], b.shape[1])
        cos = np.array([min(float(c), 1.0) for c in cos[:k]])
        R = QB - QA * M
        err = float(mp.sqrt(mp.fsum(R[i, j] ** 2 for i in range(R.rows) for j in range(R.cols))))
    s = _kappa(a) + _kappa(b)
    return {"cos": (cos, np.full(cos.shape, s)), "subspace_error": (np.float64(err), np.float64(s))}


def _angle_regimes():
    def mk(kind):
        def f(rng, dt):
            A = rng.standard_normal((6, 3))
            if kind == "random subspaces":
                B = rng.standard_normal((6, 3))
            elif kind == "the same span (B = A R)":
                B = A @ rng.standard_normal((3, 3))
            else:  # tiny angles: the float64 rounding of 1 - cos^2 is 1e8 times the answer
                B = A + float(kind.split("(")[1].rstrip(")")) * rng.standard_normal((6, 3))
            return {"A": A, "B": B}
        return f
    return {k: mk(k) for k in ("random subspaces", "the same span (B = A R)", "nearly equal (1e-9)",
                               "nearly equal (1e-5)")}


def _angle_case():
    return Case(FAMILY, "principal_angle_cosines + subspace_error", _angle_regimes(),
                lambda inp: {"cos": sim.principal_angle_cosines(inp["A"], inp["B"]),
                             "subspace_error": np.float64(sim.subspace_error(inp["A"], inp["B"]))},
                lambda inp: angles_exact(inp["A"], inp["B"]), dtypes=(np.float64,))


_before_angles = cases


def cases():  # noqa: F811
    return _before_angles() + [_angle_case()]


# ------------------------------------------------------------------------------------- convolution encoders
@exact
def conv_exact(x, w, bias, g, stride, padding, dilation, groups):
    """u[b,o,h,v] = bias[o] + sum_{c in o's group, i, j} W[o, c', i, j] xpad[b, c, s h + d i, s v + d j], written as
    that loop; its VJPs as the same loop accumulating g[b,o,h,v] times the other factor.  Scales: the |terms|."""
    X, Wm, Bm, G = mpa(x), mpa(w), mpa(bias), mpa(g)
    Bn, C, H, Wd = x.shape
    O, Cg, kh, kw = w.shape
    Ho, Wo = g.shape[2], g.shape[3]
    og = O // groups
    U, sU = zeros(g.shape), zeros(g.shape)
    gx, sgx = zeros(x.shape), zeros(x.shape)
    gw, sgw = zeros(w.shape), zeros(w.shape)
    for b in range(Bn):
        for o in range(O):
            grp = o // og
            for h in range(Ho):
                for v in range(Wo):
                    acc, sacc = Bm[o], abs(Bm[o])
                    for cc in range(Cg):
                        c = grp * Cg + cc
                        for i in range(kh):
                            for j in range(kw):
                                r, q = stride * h + dilation * i - padding, stride * v + dilation * j - padding
                                if 0 <= r < H and 0 <= q < Wd:
                                    t = Wm[o, cc, i, j] * X[b, c, r, q]
                                    acc += t
                                    sacc += abs(t)
                                    gx[b, c, r, q] += G[b, o, h, v] * Wm[o, cc, i, j]
                                    sgx[b, c, r, q] += abs(G[b, o, h, v] * Wm[o, cc, i, j])
                                    gw[o, cc, i, j] += G[b, o, h, v] * X[b, c, r, q]
                                    sgw[o, cc, i, j] += abs(G[b, o, h, v] * X[b, c, r, q])
                    U[b, o, h, v], sU[b, o, h, v] = acc, sacc
    gb = np.array([mp.fsum(G[:, o].reshape(-1)) for o in range(O)], dtype=object)
    sgb = np.array([mp.fsum(absa(G[:, o]).reshape(-1)) for o in range(O)], dtype=object)
    return {"u": (U, sU), "grad_x": (gx, sgx), "grad_weight": (gw, sgw), "grad_bias": (gb, sgb)}


_CONVS = [("Conv2d[k=3, stride=2, padding=1]", dict(C=2, O=3, k=3, stride=2, padding=1, dilation=1, groups=1)),
          ("Conv2d[k=2, dilation=2]", dict(C=2, O=2, k=2, stride=1, padding=0, dilation=2, groups=1)),
          ("GroupedConv2d[groups=2, k=3, padding=1]", dict(C=4, O=6, k=3, stride=1, padding=1, dilation=1, groups=2))]


def _conv_case(label, cfg):
    def shape_out(H):
        return (H + 2 * cfg["padding"] - cfg["dilation"] * (cfg["k"] - 1) - 1) // cfg["stride"] + 1

    def mk(xscale):
        def f(rng, dt):
            H = 5
            x = (rng.standard_normal((2, cfg["C"], H, H)) * xscale).astype(dt)
            w = rng.standard_normal((cfg["O"], cfg["C"] // cfg["groups"], cfg["k"], cfg["k"])).astype(dt)
            b = rng.standard_normal(cfg["O"]).astype(dt)
            g = rng.standard_normal((2, cfg["O"], shape_out(H), shape_out(H))).astype(dt)
            return {"x": x, "w": w, "b": b, "g": g}
        return f

    def run(inp):
        kw = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"],
                  weight=inp["w"], bias_value=inp["b"], dtype=inp["x"].dtype)
        if label.startswith("Grouped"):
            enc = sim.GroupedConv2d(cfg["C"], cfg["O"], cfg["k"], groups=cfg["groups"], **kw)
        else:
            enc = sim.Conv2d(cfg["C"], cfg["O"], cfg["k"], **kw)
        u = enc(inp["x"])
        gx, gp = enc.vjp(inp["g"], inp["x"])
        return {"u": u, "grad_x": gx, "grad_weight": gp["weight"], "grad_bias": gp["bias"]}

    return Case(FAMILY, f"{label} forward + vjp", {"normal": mk(1.0), "huge inputs (x1e15)": mk(1e15)}, run,
                lambda inp: conv_exact(inp["x"], inp["w"], inp["b"], inp["g"], cfg["stride"], cfg["padding"],
                                       cfg["dilation"], cfg["groups"]))


_before_convs = cases


def cases():  # noqa: F811
    return _before_convs() + [_conv_case(label, cfg) for label, cfg in _CONVS]


# ------------------------------------------------------------------------------------- Sequential
@exact
def seq_exact(x, W1, b1, W2, b2, g):
    """Sequential(Linear(4, 3), Tanh(), Linear(3, 2)) in torch's layout: h = x W1^T + b1, t = tanh h,
    u = t W2^T + b2, and its VJP by the chain rule.  Scales: each stage's |terms|, with the uncertainty of its input
    carried to first order (t inherits tanh'(h) times h's scale; the backward pass likewise)."""
    X, A, a, B, c, G = (mpa(v) for v in (x, W1, b1, W2, b2, g))
    h = X @ A.T + a.reshape(1, -1)
    sh = absa(X) @ absa(A).T + absa(a).reshape(1, -1)
    t = vmap(mp.tanh, h)
    st = absa(t) + (1 - t * t) * sh
    u = t @ B.T + c.reshape(1, -1)
    su = st @ absa(B).T + absa(c).reshape(1, -1)
    gt, sgt = G @ B, absa(G) @ absa(B)
    gh = gt * (1 - t * t)
    sgh = sgt * (1 + t * t) + absa(gt) * 2 * absa(t) * st
    return {"u": (u, su), "grad_x": (gh @ A, sgh @ absa(A)),
            "grad_0.weight": (gh.T @ X, sgh.T @ absa(X)), "grad_0.bias": (gh.sum(axis=0), sgh.sum(axis=0)),
            "grad_2.weight": (G.T @ t, absa(G).T @ st), "grad_2.bias": (G.sum(axis=0), absa(G).sum(axis=0))}


def _seq_case():
    def f(rng, dt):
        return {"x": rng.standard_normal((5, 4)).astype(dt), "W1": rng.standard_normal((3, 4)).astype(dt),
                "b1": rng.standard_normal(3).astype(dt), "W2": rng.standard_normal((2, 3)).astype(dt),
                "b2": rng.standard_normal(2).astype(dt), "g": rng.standard_normal((5, 2)).astype(dt)}

    def run(inp):
        dt = inp["x"].dtype
        seq = sim.Sequential(sim.Linear(4, 3, weight=inp["W1"], bias_value=inp["b1"], dtype=dt), sim.Tanh(dtype=dt),
                             sim.Linear(3, 2, weight=inp["W2"], bias_value=inp["b2"], dtype=dt))
        u = seq(inp["x"])
        gx, gp = seq.vjp(inp["g"], inp["x"])
        return {"u": u, "grad_x": gx, **{f"grad_{k}": v for k, v in gp.items()}}

    return Case(FAMILY, "Sequential[Linear, Tanh, Linear] forward + vjp", {"normal": f}, run,
                lambda inp: seq_exact(inp["x"], inp["W1"], inp["b1"], inp["W2"], inp["b2"], inp["g"]))


_before_seq = cases


def cases():  # noqa: F811
    return _before_seq() + [_seq_case()]


# ------------------------------------------------------------------------------------- torch on the same inputs
def _torch():
    try:
        import torch
    except Exception as exc:
        raise Unavailable(f"torch not importable: {type(exc).__name__}") from None
    return torch


def _t(torch, a, grad=False):
    return torch.tensor(np.asarray(a), requires_grad=grad)


def _up_act(name):
    def run(inp):
        torch = _torch()
        x = _t(torch, inp["x"], True)
        u = {"ReLU": torch.relu, "Tanh": torch.tanh, "Sigmoid": torch.sigmoid}[name](x)
        (u * _t(torch, inp["g"])).sum().backward()
        return {"u": u.detach().numpy(), "grad_x": x.grad.numpy()}
    return run


def _up_opt(kind, kw):
    def run(inp):
        torch = _torch()
        p = torch.nn.Parameter(_t(torch, inp["p"]).clone())
        opt = torch.optim.Adam([p], lr=0.01) if kind == "Adam" else torch.optim.SGD([p], lr=0.1, **kw)
        for g in inp["gs"]:
            p.grad = _t(torch, g).clone()
            opt.step()
        return {"p": p.detach().numpy()}
    return run


def _up_sched(kind):
    def run(inp):
        torch = _torch()
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))], lr=inp["lr"])
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=inp["gamma"]) if kind == "StepLR" else \
            torch.optim.lr_scheduler.ExponentialLR(opt, gamma=inp["gamma"])
        for _ in range(inp["n"]):
            opt.step()
            sched.step()
        return {"lr": np.float64(opt.param_groups[0]["lr"])}
    return run


def _up_conv(cfg):
    def run(inp):
        torch = _torch()
        x, w, b = _t(torch, inp["x"], True), _t(torch, inp["w"], True), _t(torch, inp["b"], True)
        u = torch.nn.functional.conv2d(x, w, b, stride=cfg["stride"], padding=cfg["padding"],
                                       dilation=cfg["dilation"], groups=cfg["groups"])
        (u * _t(torch, inp["g"])).sum().backward()
        return {"u": u.detach().numpy(), "grad_x": x.grad.numpy(), "grad_weight": w.grad.numpy(),
                "grad_bias": b.grad.numpy()}
    return run


def _torch_label():
    try:
        from importlib.metadata import version

        return f"torch {version('torch')}"
    except Exception:
        return "torch"


_TORCH_LABEL = _torch_label()


def _with_upstream():
    out = _before_torch()
    for c in out:
        if c.name.endswith("(encoder) forward + vjp"):
            c.upstream = {_TORCH_LABEL: _up_act(c.name.split(" ")[0])}
        elif c.name.startswith("SGD["):
            kw = dict(momentum=0.9, weight_decay=0.01) if "weight_decay" in c.name else dict(momentum=0.9,
                                                                                            nesterov=True)
            c.upstream = {_TORCH_LABEL: _up_opt("SGD", kw)}
        elif c.name.startswith("Adam"):
            c.upstream = {_TORCH_LABEL: _up_opt("Adam", {})}
        elif c.name.startswith(("StepLR", "ExponentialLR")):
            c.upstream = {_TORCH_LABEL: _up_sched("StepLR" if c.name.startswith("StepLR") else "ExponentialLR")}
        else:
            for label, cfg in _CONVS:
                if c.name.startswith(label):
                    c.upstream = {_TORCH_LABEL + " (conv2d)": _up_conv(cfg)}
    return out


_before_torch = cases
cases = _with_upstream
