r"""Oracle of the modern Hopfield functions (``refnsm.hopfield``): retrieval, its VJP, the energy and its VJP.

Written as the math of the docstrings of :mod:`refnsm.hopfield.modern`: :math:`z = \beta W^\top x`,
:math:`p = \mathrm{softmax}(z)`, :math:`\hat x = W p`, :math:`E = -\beta^{-1}\log\sum_j e^{z_j} + \tfrac12 x^\top x
+ \beta^{-1}\log H + \tfrac12 M^2`.  Term scales (``measure.py``): products carry :math:`|a|\,s_b + s_a\,|b|`;
the softmax carries the first-order effect of the rounding of its scores,
:math:`s_{p_j} = p_j (1 + s_{z_j} + \sum_k p_k s_{z_k})` (the scores' own scale :math:`s_z` includes the shift by
the row maximum that every stable implementation performs).

ngclearn has no functional form of these (only the stateful ``HopfieldSynapse``, cross-checked in
``tests/crosscheck/test_hopfield.py``), so no upstream column.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np

from refnsm import hopfield as hf

from ._mp import absa, exact, mpa, vmap, zeros
from .cases import Case

FAMILY = "hopfield"
#: the public names of refnsm.hopfield this oracle evaluates (docs/accuracy.md lists the others)
COVERS = ("retrieve", "retrieve_vjp", "energy", "energy_vjp", "delta_update", "contrastive_update", "classical_energy",
          "classical_update", "dense_energy", "dense_update", "hebbian_weights", "evolve_step", "iterate",
          "IterateResult", "Retrieval")


def _softmax_rows(Z, sZ):
    B, H = Z.shape
    A, sA = zeros((B, H)), zeros((B, H))
    lse = [None] * B
    for b in range(B):
        m = max(Z[b])
        e = [mp.exp(v - m) for v in Z[b]]
        se = mp.fsum(e)
        lse[b] = m + mp.log(se)
        p = [v / se for v in e]
        s = [sZ[b, j] + abs(m) * 0 for j in range(H)]
        mix = mp.fsum(pj * sj for pj, sj in zip(p, s))
        for j in range(H):
            A[b, j] = p[j]
            sA[b, j] = p[j] * (1 + s[j] + mix)
    return A, sA, lse


def _scores(X, W, beta):
    Z = beta * (X @ W)
    sZ = beta * (absa(X) @ absa(W))
    B = Z.shape[0]
    for b in range(B):  # the shift by the row maximum (S = XW - max) rounds too
        m = max(abs(v) for v in Z[b])
        for j in range(Z.shape[1]):
            sZ[b, j] += m
    return Z, sZ


@exact
def retrieve_exact(x, w, beta, g):
    X, W, G = mpa(x), mpa(w), mpa(g)
    beta = mp.mpf(float(beta))
    Z, sZ = _scores(X, W, beta)
    A, sA, _ = _softmax_rows(Z, sZ)
    Xh, sXh = A @ W.T, sA @ absa(W).T
    Ab, sAb = G @ W, absa(G) @ absa(W)
    rs = (A * Ab).sum(axis=1, keepdims=True)
    srs = (sA * absa(Ab) + A * sAb).sum(axis=1, keepdims=True)
    D = Ab - rs
    sD = sAb + srs
    T = A * D
    sT = sA * absa(D) + A * sD
    gX, sgX = beta * (T @ W.T), beta * (sT @ absa(W).T)
    gW = G.T @ A + beta * (X.T @ T)
    sgW = absa(G).T @ sA + beta * (absa(X).T @ sT)
    XW, sXW = X @ W, absa(X) @ absa(W)
    gb = (XW * T).sum()
    sgb = (absa(XW) * sT + sXW * absa(T)).sum()
    return {"A": (A, sA), "outputs": (Xh, sXh), "gX": (gX, sgX), "gW": (gW, sgW), "gbeta": (gb, sgb)}


@exact
def energy_exact(x, w, beta, g):
    X, W, gg = mpa(x), mpa(w), mpa(g)
    beta = mp.mpf(float(beta))
    B, D = X.shape
    H = W.shape[1]
    Z, sZ = _scores(X, W, beta)
    A, sA, lse = _softmax_rows(Z, sZ)
    norms = [mp.fsum(W[i, j] ** 2 for i in range(D)) for j in range(H)]
    jstar = max(range(H), key=lambda j: (norms[j], -j))
    M2 = norms[jstar]
    E, sE = zeros(B), zeros(B)
    for b in range(B):
        xx = mp.fsum(v * v for v in X[b])
        E[b] = -lse[b] / beta + xx / 2 + mp.log(H) / beta + M2 / 2
        sE[b] = (abs(lse[b]) + mp.fsum(A[b, j] * sZ[b, j] for j in range(H))) / beta + xx / 2 \
            + mp.log(H) / beta + M2 / 2
    Xh, sXh = A @ W.T, sA @ absa(W).T
    gX = gg[:, None] * (X - Xh)
    sgX = absa(gg)[:, None] * (absa(X) + sXh)
    gA = gg[:, None] * A
    gW = -(X.T @ gA)
    sgW = absa(X).T @ (absa(gg)[:, None] * sA)
    tot = gg.sum()
    for i in range(D):
        gW[i, jstar] += tot * W[i, jstar]
        sgW[i, jstar] += abs(tot) * abs(W[i, jstar])
    gb, sgb = mp.mpf(0), mp.mpf(0)
    for b in range(B):
        logp = [mp.log(A[b, j]) if A[b, j] > 0 else mp.mpf(0) for j in range(H)]
        ent = -mp.fsum(A[b, j] * logp[j] for j in range(H))
        sent = mp.fsum(A[b, j] * abs(logp[j]) + sA[b, j] * (1 + abs(logp[j])) for j in range(H))
        gb += gg[b] * (ent - mp.log(H)) / beta ** 2
        sgb += abs(gg[b]) * (sent + mp.log(H)) / beta ** 2
    return {"energy": (E, sE), "gX": (gX, sgX), "gW": (gW, sgW), "gbeta": (gb, sgb)}


@exact
def plasticity_exact(x, xh, a, w, beta):
    """(delta rule, contrastive rule) for probes x, their reconstructions xh and memory weights a (inputs)."""
    X, Xh, A, W = mpa(x), mpa(xh), mpa(a), mpa(w)
    B = X.shape[0]
    beta = mp.mpf(float(beta))
    dd = (X - Xh).T @ A / B
    sdd = (absa(X) + absa(Xh)).T @ absa(A) / B
    Z, sZ = _scores(Xh, W, beta)
    Ah, sAh, _ = _softmax_rows(Z, sZ)
    dc = (X.T @ A - Xh.T @ Ah) / B
    sdc = (absa(X).T @ absa(A) + absa(Xh).T @ sAh) / B
    return {"delta": (dd, sdd), "contrastive": (dc, sdc)}


def _regimes():
    def mk(beta, scale=1.0, ties=False):
        def f(rng, dt):
            x = (rng.standard_normal((3, 5)) * scale).astype(dt)
            w = rng.standard_normal((5, 4)).astype(dt)
            if ties:
                w[:, 1] = w[:, 0]
                x[0] = w[:, 0]
            return {"x": x, "w": w, "beta": beta, "g": rng.standard_normal((3, 5)).astype(dt),
                    "ge": rng.standard_normal(3).astype(dt)}
        return f
    return {"beta 1": mk(1.0), "saturated softmax (beta 50)": mk(50.0), "tied memories": mk(2.0, ties=True),
            "tiny beta (1e-6)": mk(1e-6), "large probes (x100)": mk(0.5, scale=100.0)}


def cases():
    def run_r(inp):
        r = hf.retrieve(inp["x"], inp["w"], inp["beta"])
        gX, gW, gb = hf.retrieve_vjp(inp["g"], inp["x"], inp["w"], inp["beta"])
        return {"A": r.memory_weights, "outputs": r.outputs, "gX": gX, "gW": gW, "gbeta": np.asarray(gb)}

    def run_e(inp):
        gX, gW, gb = hf.energy_vjp(inp["ge"], inp["x"], inp["w"], inp["beta"])
        return {"energy": hf.energy(inp["x"], inp["w"], inp["beta"]), "gX": gX, "gW": gW, "gbeta": np.asarray(gb)}

    def with_retrieval(make):
        def f(rng, dt):
            d = make(rng, dt)
            r = hf.retrieve(d["x"], d["w"], d["beta"])
            d["xh"], d["a"] = r.outputs, r.memory_weights
            return d
        return f

    def run_p(inp):
        return {"delta": hf.delta_update(inp["x"], inp["xh"], inp["a"]),
                "contrastive": hf.contrastive_update(inp["x"], inp["xh"], inp["a"], inp["w"], inp["beta"])}

    plast = Case(FAMILY, "delta_update + contrastive_update", {k: with_retrieval(v) for k, v in _regimes().items()},
                 run_p, lambda inp: plasticity_exact(inp["x"], inp["xh"], inp["a"], inp["w"], inp["beta"]))
    return [plast, Case(FAMILY, "retrieve + retrieve_vjp", _regimes(), run_r,
                 lambda inp: retrieve_exact(inp["x"], inp["w"], inp["beta"], inp["g"])),
            Case(FAMILY, "energy + energy_vjp", _regimes(), run_e,
                 lambda inp: energy_exact(inp["x"], inp["w"], inp["beta"], inp["ge"]))]


# ----------------------------------------------------------------------------------------------------------------
# The classical network and the dense associative memory (refnsm.hopfield.classical), the memory helpers, and the
# fixed-point iteration.  A sign update is a discrete output: the exact answer is the sign of the exact field on
# the same float inputs (a field of exactly 0 leaves the unit unchanged); where a field is non-zero but within
# rounding of 0 (|h| <= 8 N eps_64 s_h, s_h its term scale) no float implementation can be asked for one answer,
# and the case is undefined there (ValueError: skipped).  A wrong sign counts 2 / eps.

_AMBIG = 8 * 2.0 ** -52


def _sgn_keep(h, sh, old, n):
    if h == 0:
        return old
    if abs(h) <= _AMBIG * n * sh:
        raise ValueError("a field within rounding of 0")
    return mp.mpf(1) if h > 0 else mp.mpf(-1)


def _F(kind, n, v):
    if kind == "poly":
        return v ** n
    if kind == "rectified":
        return max(v, mp.mpf(0)) ** n
    return mp.exp(v)


def _dF(kind, n, v):
    if kind == "poly":
        return n * v ** (n - 1)
    if kind == "rectified":
        return n * max(v, mp.mpf(0)) ** (n - 1)
    return mp.exp(v)


@exact
def classical_exact(S, W, theta):
    Sm, Wm = mpa(S), mpa(W)
    B, N = Sm.shape
    th = mpa(theta) if theta is not None else zeros(N)
    E, sE = zeros(B), zeros(B)
    sync, asy = zeros((B, N)), zeros((B, N))
    for b in range(B):
        s = Sm[b]
        quad = s @ Wm @ s
        squad = absa(s) @ absa(Wm) @ absa(s)
        E[b] = -quad / 2 + (th * s).sum()
        sE[b] = squad / 2 + (absa(th) * absa(s)).sum()
        for i in range(N):  # synchronous: every unit from the old state
            h = (Wm[i] * s).sum() - th[i]
            sync[b, i] = _sgn_keep(h, (absa(Wm[i]) * absa(s)).sum() + abs(th[i]), s[i], N)
        cur = s.copy()
        for i in range(N):  # asynchronous, sequential order: each unit from the current state
            h = (Wm[i] * cur).sum() - th[i]
            cur[i] = _sgn_keep(h, (absa(Wm[i]) * absa(cur)).sum() + abs(th[i]), cur[i], N)
        asy[b] = cur
    one = zeros((B, N)) + 1
    return {"energy": (E, sE), "sync": (sync, one), "async": (asy, one)}


@exact
def hebbian_exact(P):
    Pm = mpa(P)
    N = Pm.shape[0]
    W, sW = (Pm @ Pm.T) / N, (absa(Pm) @ absa(Pm).T) / N
    for i in range(N):
        W[i, i], sW[i, i] = mp.mpf(0), mp.mpf(0)
    return {"W": (W, sW)}


@exact
def dense_exact(S, P, kind, n):
    Sm, Pm = mpa(S), mpa(P)
    B, N = Sm.shape
    M = Pm.shape[1]
    E, sE, upd = zeros(B), zeros(B), zeros((B, N))
    for b in range(B):
        x = Pm.T @ Sm[b]
        sx = absa(Pm).T @ absa(Sm[b])
        E[b] = -mp.fsum(_F(kind, n, v) for v in x)
        sE[b] = mp.fsum(abs(_F(kind, n, v)) + abs(_dF(kind, n, v)) * sv for v, sv in zip(x, sx))
        cur = Sm[b].copy()
        for i in range(N):
            terms = []
            for mu in range(M):
                r = (Pm[:, mu] * cur).sum() - Pm[i, mu] * cur[i]
                terms.append(_F(kind, n, Pm[i, mu] + r) - _F(kind, n, -Pm[i, mu] + r))
            h = mp.fsum(terms)
            sh = mp.fsum(abs(_F(kind, n, Pm[i, mu] + r)) + abs(_F(kind, n, -Pm[i, mu] + r)) for mu in range(M)
                         for r in [(Pm[:, mu] * cur).sum() - Pm[i, mu] * cur[i]])
            cur[i] = _sgn_keep(h, sh, cur[i], N * M)
        upd[b] = cur
    return {"energy": (E, sE), "update": (upd, zeros((B, N)) + 1)}


@exact
def evolve_exact(W, dW, eta, lam, l1, mask):
    Wm, D = mpa(W), mpa(dW)
    e, la, l1m = mp.mpf(float(eta)), mp.mpf(float(lam)), mp.mpf(float(l1))
    sg = vmap(lambda v: mp.mpf(1) if v > 0 else (mp.mpf(-1) if v < 0 else mp.mpf(0)), Wm)
    out = Wm + e * D - la * Wm - l1m * sg
    s = absa(Wm) + abs(e) * absa(D) + abs(la) * absa(Wm) + abs(l1m) * absa(sg)
    if mask is not None:
        Mm = mpa(mask)
        out, s = out * Mm, s * absa(Mm)
    return {"W": (out, s)}


@exact
def iterate_exact(X, W, beta, steps):
    """``steps`` retrieval updates x <- W softmax(beta W^T x); the scale is that of the last update's terms."""
    Xm, Wm = mpa(X), mpa(W)
    b = mp.mpf(float(beta))
    sX = absa(Xm)
    for _ in range(steps):
        Z, sZ = _scores(Xm, Wm, b)
        A, sA, _ = _softmax_rows(Z, sZ)
        Xm, sX = A @ Wm.T, sA @ absa(Wm).T
    return {"outputs": (Xm, sX)}


def _pm1(rng, shape):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0)


def _classical_regimes():
    def mk(kind):
        def f(rng, dt):
            N, P, B = 9, 3, 4
            pats = _pm1(rng, (N, P))
            if kind == "random symmetric W, thresholds":
                W = rng.standard_normal((N, N))
                W = (W + W.T) / 2
                np.fill_diagonal(W, 0.0)
                th = rng.standard_normal(N) * 0.3
            else:
                if kind == "Hebbian, even load (exact ties)":
                    pats = _pm1(rng, (N, 4))
                W = hf.hebbian_weights(pats)
                th = None
            S = pats[:, rng.integers(0, pats.shape[1], B)].T.copy()
            S[rng.random(S.shape) < 0.2] *= -1
            return {"S": S.astype(dt), "W": W.astype(dt), "theta": None if th is None else th.astype(dt),
                    "patterns": pats.astype(dt)}
        return f
    return {k: mk(k) for k in ("Hebbian (3 patterns, N 9)", "Hebbian, even load (exact ties)",
                               "random symmetric W, thresholds")}


def _dense_regimes():
    def mk(kind):
        def f(rng, dt):
            N, P, B = 8, 3, 3
            pats = _pm1(rng, (N, P)) if kind == "±1 patterns" else rng.standard_normal((N, P))
            S = _pm1(rng, (B, N))
            return {"S": S.astype(dt), "patterns": pats.astype(dt)}
        return f
    return {k: mk(k) for k in ("±1 patterns", "real-valued patterns")}


def _more_cases():
    out = []

    def run_c(inp):
        kw = {} if inp["theta"] is None else {"theta": inp["theta"]}
        return {"energy": hf.classical_energy(inp["S"], inp["W"], **kw),
                "sync": hf.classical_update(inp["S"], inp["W"], mode="sync", n_sweeps=1, **kw),
                "async": hf.classical_update(inp["S"], inp["W"], mode="async", n_sweeps=1, order="sequential", **kw)}

    out.append(Case(FAMILY, "classical_energy + classical_update[sync, async sequential]", _classical_regimes(), run_c,
                    lambda inp: classical_exact(inp["S"], inp["W"], inp["theta"])))
    out.append(Case(FAMILY, "hebbian_weights", _classical_regimes(),
                    lambda inp: {"W": hf.hebbian_weights(inp["patterns"])},
                    lambda inp: hebbian_exact(inp["patterns"])))
    for kind, n in (("poly", 3), ("rectified", 4), ("exp", 3)):
        def run_d(inp, kind=kind, n=n):
            return {"energy": hf.dense_energy(inp["S"], inp["patterns"], interaction=kind, n=n),
                    "update": hf.dense_update(inp["S"], inp["patterns"], interaction=kind, n=n, n_sweeps=1,
                                              order="sequential")}
        out.append(Case(FAMILY, f"dense_energy + dense_update[{kind}{'' if kind == 'exp' else f',n={n}'}]",
                        _dense_regimes(), run_d, lambda inp, kind=kind, n=n: dense_exact(inp["S"], inp["patterns"], kind, n)))

    def ev_regimes():
        def mk(masked):
            def f(rng, dt):
                W = rng.standard_normal((5, 4))
                W[0, 0] = 0.0
                d = {"W": W.astype(dt), "dW": rng.standard_normal((5, 4)).astype(dt), "eta": 0.05, "lam": 1e-3,
                     "l1": 1e-4, "mask": None}
                if masked:
                    d["mask"] = (rng.random((5, 4)) < 0.7).astype(dt)
                return d
            return f
        return {"no mask": mk(False), "mask": mk(True)}

    out.append(Case(FAMILY, "evolve_step", ev_regimes(),
                    lambda inp: {"W": hf.evolve_step(inp["W"], inp["dW"], inp["eta"], inp["lam"], inp["l1"], inp["mask"])},
                    lambda inp: evolve_exact(inp["W"], inp["dW"], inp["eta"], inp["lam"], inp["l1"], inp["mask"])))

    def it_regimes():
        def mk(beta):
            def f(rng, dt):
                return {"X": rng.standard_normal((3, 5)).astype(dt), "W": rng.standard_normal((5, 4)).astype(dt),
                        "beta": beta}
            return f
        return {"beta 1": mk(1.0), "beta 8": mk(8.0)}

    def run_it(inp):
        r = hf.iterate(inp["X"], inp["W"], inp["beta"], tol=0.0, max_iter=3)
        if r.n_iter != 3:
            raise ValueError(f"iterate stopped after {r.n_iter} updates (a float fixed point)")
        return {"outputs": r.outputs}

    out.append(Case(FAMILY, "iterate[3 updates]", it_regimes(), run_it,
                    lambda inp: iterate_exact(inp["X"], inp["W"], inp["beta"], 3)))
    return out


_base_cases = cases


def cases():  # noqa: F811 -- the modern functions above, then the classical ones
    return _base_cases() + _more_cases()
