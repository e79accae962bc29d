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
COVERS = ("retrieve", "retrieve_vjp", "energy", "energy_vjp", "delta_update", "contrastive_update")


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
