r"""Oracle of the regularizer functions (``refnsm.regularization``): Lp norms, Dale's L2, the E/I ratio, distances.

Written as the math of :mod:`refnsm.regularization.functional`, with torch's subgradient conventions, which are
part of the definition: :math:`\mathrm{sign}(0) = 0`; the gradient of a max (min) over tied entries is shared
equally among them (torch's ``amax``).  Term scales: sums of absolute values; a root :math:`v = (\sum_k a_k)^{1/p}`
carries :math:`|v|` (its sum has no cancellation); a quotient :math:`x/v` carries :math:`2|x/v|`.

Spectral (``p=2``, ``p=-2`` on matrices) and nuclear norms: the SVD at 50 digits (``mpmath.svd_r``); the value is
:math:`\sigma_1`, :math:`\sigma_r` or :math:`\sum_k\sigma_k`, the gradient :math:`u_1v_1^\top`, :math:`u_rv_r^\top` or
:math:`UV^\top`.  No float algorithm forms a singular value from a sum of terms, so the scale is a condition estimate
instead: any backward-stable SVD perturbs P by :math:`O(\varepsilon\|P\|_2)`, which moves every singular value by
at most that (value scale :math:`\sigma_1`; for the nuclear norm :math:`r\,\sigma_1`) and a singular vector by
:math:`\|P\|_2/\mathrm{gap}` (gradient scale :math:`\max|G|\,\sigma_1/\mathrm{gap}`, the gap to the nearest other
singular value; for :math:`UV^\top`, the polar factor, :math:`\sigma_1/\sigma_r`).  Exactly tied extremes (the mean
over the tie) and a rank-deficient nuclear norm (undefined) are not evaluated.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np

from refnsm import regularization as rg

from ._mp import absa, exact, f64, mpa, vmap, zeros
from .measure import DPS
from .cases import Case, Unavailable

FAMILY = "regularization"
#: the public names of refnsm.regularization this oracle evaluates (docs/accuracy.md lists the others)
COVERS = ("lp_norm", "lp_norm_vjp", "Lp", "L1", "L2", "DaleLawL2", "ExcRatioTargetRegularization",
          "InhRatioTargetRegularization", "regularization_step", "BaseRegularization", "dale_law_l2", "dale_law_l2_vjp", "exc_ratio_loss", "exc_ratio_loss_vjp",
          "weights_distance", "weights_distance_vjp")


def _sign(v):
    return mp.mpf(1) if v > 0 else (mp.mpf(-1) if v < 0 else mp.mpf(0))


def _tie_share(vals, target):
    k = sum(1 for v in vals if v == target)
    return [mp.mpf(1) / k if v == target else mp.mpf(0) for v in vals]


@exact
def vector_norm_exact(x, p):
    X = mpa(x).reshape(-1)
    a = [abs(v) for v in X]
    n = len(a)
    if p == 1:
        v = mp.fsum(a)
        g = [_sign(t) for t in X]
        sg = [abs(t) for t in g]
    elif p == 2:
        v = mp.sqrt(mp.fsum(t * t for t in a))
        g = [t / v if v > 0 else mp.mpf(0) for t in X]
        sg = [2 * abs(t) for t in g]
    elif p == np.inf:
        v = max(a)
        w = _tie_share(a, v)
        g = [_sign(t) * c for t, c in zip(X, w)]
        sg = [abs(t) for t in g]
    else:  # -1, -2
        if any(t == 0 for t in a):
            v, g = mp.mpf(0), [mp.mpf(0)] * n
        else:
            pp = mp.mpf(p)
            v = mp.fsum(t ** pp for t in a) ** (1 / pp)
            g = [_sign(t) * abs(t) ** (pp - 1) * v ** (1 - pp) for t in X]
        sg = [3 * abs(t) for t in g]
    shape = np.shape(x)
    G = np.array(g, dtype=object).reshape(shape)
    SG = np.array(sg, dtype=object).reshape(shape)
    return {"value": (v, abs(v)), "grad": (G, SG)}


@exact
def matrix_norm_exact(x, p):
    """Induced 1 / inf norms (max abs column / row sum) and Frobenius, with their gradients."""
    X = mpa(x)
    if p == "fro":
        v = mp.sqrt(vmap(lambda t: t * t, X).sum())
        G = X / v if v > 0 else zeros(X.shape)
        return {"value": (v, v), "grad": (G, 2 * absa(G))}
    axis = 0 if p == 1 else 1
    sums = absa(X).sum(axis=axis)
    v = max(sums)
    w = _tie_share(list(sums), v)
    G = zeros(X.shape)
    for i in range(X.shape[0]):
        for j in range(X.shape[1]):
            G[i, j] = _sign(X[i, j]) * w[j if axis == 0 else i]
    return {"value": (v, v), "grad": (G, absa(G))}


@exact
def svd_norm_exact(x, p):
    """Spectral (p = 2: sigma_1, p = -2: sigma_r) and nuclear ('nuc': sum sigma) norms and their gradients."""
    X = mpa(x)
    n, m = X.shape
    U, S, V = mp.svd_r(mp.matrix(X.tolist()))  # U [n, r], S [r], V [r, m]
    sv = [S[k] for k in range(S.rows)]
    r = len(sv)
    top = sv[0]
    if top == 0:
        raise ValueError("P = 0: the gradient is undefined")

    def outer(k):
        G = zeros((n, m))
        for i in range(n):
            for j in range(m):
                G[i, j] = U[i, k] * V[k, j]
        return G

    if p == "nuc":
        if sv[-1] <= top * mp.mpf(10) ** -30:
            raise ValueError("rank deficient: UV^T is not unique")
        G = zeros((n, m))
        for k in range(r):
            G = G + outer(k)
        v, sval = mp.fsum(sv), r * top
        gscale = top / sv[-1]
    else:
        k = 0 if p == 2 else r - 1
        others = [abs(sv[k] - sv[l]) for l in range(r) if l != k]
        if p == -2 and m != n:
            others.append(abs(sv[k]))  # the zero singular values of the wider side
        gap = min(others) if others else top
        if gap <= top * mp.mpf(10) ** -30:
            raise ValueError("the extreme singular value is tied (or 0 in a non-square matrix): u v^T is not unique")
        G = outer(k)
        v, sval = sv[k], top
        gscale = top / gap
    gmax = max(abs(t) for t in G.reshape(-1))
    SG = zeros((n, m))
    SG.reshape(-1)[:] = [gmax * gscale] * SG.size
    return {"value": (v, sval), "grad": (G, SG)}


def _svd_regimes():
    def mk(kind):
        def f(rng, dt):
            n, m = 4, 5
            x = rng.standard_normal((n, m))
            if kind == "rank deficient (equal rows)":
                x[1] = x[0]
            elif kind in ("near-tied singular values (1e-6)", "ill conditioned (1e8)"):
                qa, _ = np.linalg.qr(rng.standard_normal((n, n)))
                qb, _ = np.linalg.qr(rng.standard_normal((m, m)))
                s = [2.0, 2.0 * (1 - 1e-6), 0.5, 0.5 * (1 + 1e-6)] if kind.startswith("near") else [1.0, 1e-3, 1e-5, 1e-8]
                x = qa @ np.diag(s) @ qb[:n]
            return {"x": x.astype(dt)}
        return f
    return {k: mk(k) for k in ("normal", "rank deficient (equal rows)", "near-tied singular values (1e-6)",
                               "ill conditioned (1e8)")}


@exact
def dale_exact(w, ref, alpha):
    W = mpa(w)
    S = vmap(_sign, mpa(ref))
    al = mp.mpf(float(alpha))
    terms = al * vmap(lambda t: t * t, W) - (1 - al) * W * S
    v = terms.sum()
    sv = (al * vmap(lambda t: t * t, W) + (1 - al) * absa(W)).sum()
    G = 2 * al * W - (1 - al) * S
    SG = 2 * al * absa(W) + (1 - al) * absa(S)
    return {"value": (v, sv), "grad": (G, SG)}


@exact
def exc_exact(w, t):
    W = mpa(w).reshape(-1)
    n = len(W)
    phi = [x / (1 + abs(x)) for x in W]
    m = mp.fsum(phi) / n
    tt = mp.mpf(float(t))
    d = m + 1 - 2 * tt
    v = abs(d)
    sv = mp.fsum(abs(f) for f in phi) / n + 1 + 2 * tt
    s = _sign(d)
    g = [s / ((1 + abs(x)) ** 2) / n for x in W]
    shape = np.shape(w)
    G = np.array(g, dtype=object).reshape(shape)
    return {"value": (v, sv), "grad": (G, 3 * absa(G))}


@exact
def distance_exact(w, ref):
    """neurotorch's p=1 on a matrix: the max abs column sum of W - R (induced 1-norm)."""
    D = mpa(w) - mpa(ref)
    sums = absa(D).sum(axis=0)
    sD = (absa(mpa(w)) + absa(mpa(ref))).sum(axis=0)
    v = max(sums)
    j = list(sums).index(v)
    wts = _tie_share(list(sums), v)
    G = zeros(D.shape)
    for i in range(D.shape[0]):
        for k in range(D.shape[1]):
            G[i, k] = _sign(D[i, k]) * wts[k]
    return {"value": (v, sD[j]), "grad": (G, absa(G)), "grad_reference": (-G, absa(G))}


def _torch():
    try:
        import torch
    except Exception:
        raise Unavailable("torch not importable") from None
    return torch


def _torch_norm(p):
    def run(inp):
        torch = _torch()
        xt = torch.tensor(inp["x"], requires_grad=True)
        out = torch.linalg.norm(xt, ord=p)
        out.backward()
        return {"value": out.detach().numpy(), "grad": xt.grad.numpy()}
    return run


def _vec_regimes():
    def mk(kind):
        def f(rng, dt):
            x = rng.standard_normal(7)
            if kind == "ties":
                x[:3] = 2.0
                x[3] = -2.0
            elif kind == "zeros":
                x[[1, 4]] = 0.0
            elif kind == "tiny":
                x = x * 1e-160 if dt == np.float64 else x * 1e-18
            elif kind == "huge":
                x = x * 1e150 if dt == np.float64 else x * 1e18
            return {"x": x.astype(dt)}
        return f
    return {k: mk(k) for k in ("normal", "ties", "zeros", "tiny", "huge")}


def _mat_regimes():
    def mk(kind):
        def f(rng, dt):
            x = rng.standard_normal((4, 5))
            if kind == "ties":
                x[:, 1] = x[:, 0]
                x[1] = x[0]
            elif kind == "signed near-zero":
                x[0] = 0.0
            return {"x": x.astype(dt), "r": rng.standard_normal((4, 5)).astype(dt)}
        return f
    return {k: mk(k) for k in ("normal", "ties", "signed near-zero")}


def cases():
    out = []
    for p in (1, 2, np.inf, -1, -2):
        def run(inp, p=p):
            return {"value": rg.lp_norm(inp["x"], p), "grad": rg.lp_norm_vjp(None, inp["x"], p)}
        out.append(Case(FAMILY, f"lp_norm[vector,p={p}]", _vec_regimes(), run,
                        lambda inp, p=p: vector_norm_exact(inp["x"], p),
                        {"torch.linalg.norm (neurotorch's Lp)": _torch_norm(p)}))
    for p in (1, np.inf, "fro"):
        def run(inp, p=p):
            return {"value": rg.lp_norm(inp["x"], p), "grad": rg.lp_norm_vjp(None, inp["x"], p)}
        out.append(Case(FAMILY, f"lp_norm[matrix,p={p}]", _mat_regimes(), run,
                        lambda inp, p=p: matrix_norm_exact(inp["x"], p),
                        {"torch.linalg.norm (neurotorch's Lp)": _torch_norm(p)}))

    for p in (2, -2, "nuc"):
        def run(inp, p=p):
            return {"value": rg.lp_norm(inp["x"], p), "grad": rg.lp_norm_vjp(None, inp["x"], p)}
        out.append(Case(FAMILY, f"lp_norm[matrix,p={p}]", _svd_regimes(), run,
                        lambda inp, p=p: svd_norm_exact(inp["x"], p),
                        {"torch.linalg.norm (neurotorch's Lp)": _torch_norm(p)}))

    def run_d(inp):
        return {"value": rg.dale_law_l2(inp["x"], inp["r"], 0.8), "grad": rg.dale_law_l2_vjp(None, inp["x"], inp["r"], 0.8)}

    def up_d(inp):
        torch = _torch()
        wt = torch.tensor(inp["x"], requires_grad=True)
        s = torch.sign(torch.tensor(inp["r"]))
        out = torch.trace(wt.T @ (0.8 * wt - 0.2 * s))
        out.backward()
        return {"value": out.detach().numpy(), "grad": wt.grad.numpy()}

    out.append(Case(FAMILY, "dale_law_l2[alpha=0.8]", _mat_regimes(), run_d,
                    lambda inp: dale_exact(inp["x"], inp["r"], 0.8), {"torch (neurotorch's DaleLawL2 formula)": up_d}))

    def run_e(inp):
        return {"value": rg.exc_ratio_loss(inp["x"], 0.8), "grad": rg.exc_ratio_loss_vjp(None, inp["x"], 0.8)}

    def up_e(inp):
        torch = _torch()
        wt = torch.tensor(inp["x"], requires_grad=True)
        out = torch.abs(torch.nn.functional.softsign(wt).mean() + 1 - 2 * 0.8)
        out.backward()
        return {"value": out.detach().numpy(), "grad": wt.grad.numpy()}

    out.append(Case(FAMILY, "exc_ratio_loss[softsign,t=0.8]", _mat_regimes(), run_e,
                    lambda inp: exc_exact(inp["x"], 0.8), {"torch (neurotorch's formula)": up_e}))

    def run_w(inp):
        gw, gr = rg.weights_distance_vjp(None, inp["x"], inp["r"], 1)
        return {"value": rg.weights_distance(inp["x"], inp["r"], 1), "grad": gw, "grad_reference": gr}

    def up_w(inp):
        torch = _torch()
        wt = torch.tensor(inp["x"], requires_grad=True)
        rt = torch.tensor(inp["r"], requires_grad=True)
        out = torch.linalg.norm(wt - rt, ord=1)
        out.backward()
        return {"value": out.detach().numpy(), "grad": wt.grad.numpy(), "grad_reference": rt.grad.numpy()}

    out.append(Case(FAMILY, "weights_distance[p=1]", _mat_regimes(), run_w,
                    lambda inp: distance_exact(inp["x"], inp["r"]), {"torch.linalg.norm (neurotorch's WeightsDistance)": up_w}))
    return out


# ------------------------------------------------------------------------------------- the neurotorch-style classes
# Each class is Lambda * sum_k l(P_k) over its parameters (a matrix A and a vector b here), its gradients Lambda dl/dP,
# and regularization_step(lr) takes P - lr Lambda dl/dP: the exact functions above (undecorated, at DPS digits),
# combined exactly.

def _raw(fn):
    return fn.__wrapped__


def _class_exact(kind, A, b, R=None, Rb=None, lam=0.5, lr=0.1):
    def per(P, ref=None):
        vec = np.ndim(P) == 1
        if kind == "L1":
            return _raw(vector_norm_exact)(P, 1) if vec else _raw(matrix_norm_exact)(P, 1)
        if kind == "L2":
            return _raw(vector_norm_exact)(P, 2) if vec else _raw(svd_norm_exact)(P, 2)
        if kind == "Linf":
            return _raw(vector_norm_exact)(P, np.inf) if vec else _raw(matrix_norm_exact)(P, np.inf)
        if kind == "DaleLawL2":
            return _raw(dale_exact)(P, ref, 0.8)
        if kind == "Exc":
            return _raw(exc_exact)(P, 0.8)
        if kind == "Inh":
            return _raw(exc_exact)(P, 1 - 0.25)
        raise KeyError(kind)

    with mp.workdps(DPS):
        L = mp.mpf(float(lam))
        parts = {"A": per(A, R), "b": per(b, Rb) if kind != "DaleLawL2" else None}
        parts = {k: v for k, v in parts.items() if v is not None}
        val = L * mp.fsum(v["value"][0] for v in parts.values())
        sval = abs(L) * mp.fsum(v["value"][1] for v in parts.values())
        out = {"value": (val, sval)}
        lrm = mp.mpf(float(lr))
        for k, v in parts.items():
            g, sg = v["grad"]
            P = mpa(A if k == "A" else b)
            out[f"grad_{k}"] = (L * g, abs(L) * sg)
            out[f"new_{k}"] = (P - lrm * L * g, absa(P) + lrm * abs(L) * sg)
        return {k: (f64(v), f64(s)) for k, (v, s) in out.items()}


def _class_regimes():
    def mk(kind):
        def f(rng, dt):
            A = rng.standard_normal((4, 5))
            if kind == "ties":
                A[:, 1] = A[:, 0]
            return {"A": A.astype(dt), "b": rng.standard_normal(5).astype(dt),
                    "R": rng.standard_normal((4, 5)).astype(dt)}
        return f
    return {k: mk(k) for k in ("normal", "ties")}


def _class_cases():
    out = []
    specs = [("L1", "L1", lambda P, inp: rg.L1(P, Lambda=0.5)), ("L2", "L2", lambda P, inp: rg.L2(P, Lambda=0.5)),
             ("Lp[p=inf]", "Linf", lambda P, inp: rg.Lp(P, Lambda=0.5, p=np.inf)),
             ("DaleLawL2[alpha=0.8]", "DaleLawL2",
              lambda P, inp: rg.DaleLawL2(P, alpha=0.8, reference_weights=[inp["R"]], Lambda=0.5)),
             ("ExcRatioTargetRegularization[t=0.8]", "Exc",
              lambda P, inp: rg.ExcRatioTargetRegularization(P, exc_target_ratio=0.8, Lambda=0.5)),
             ("InhRatioTargetRegularization[t=0.25]", "Inh",
              lambda P, inp: rg.InhRatioTargetRegularization(P, inh_target_ratio=0.25, Lambda=0.5))]
    for label, kind, build in specs:
        def run(inp, kind=kind, build=build):
            P = {"A": inp["A"].copy()} if kind == "DaleLawL2" else {"A": inp["A"].copy(), "b": inp["b"].copy()}
            reg = build(P, inp)
            v, g = reg.value_and_grad()
            res = {"value": np.asarray(v), **{f"grad_{k}": gk for k, gk in g.items()}}
            rg.regularization_step(reg, lr=0.1)
            res.update({f"new_{k}": P[k] for k in P})
            return res

        def ex(inp, kind=kind):
            return _class_exact(kind, inp["A"], inp["b"], inp["R"])

        out.append(Case(FAMILY, f"{label}.value_and_grad + regularization_step", _class_regimes(), run, ex))
    return out


_base_cases = cases


def cases():  # noqa: F811 -- the functions, then the classes
    return _base_cases() + _class_cases()
