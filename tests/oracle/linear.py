r"""Oracle of the structured linear maps (``refnsm.linear``): a forward and backward step of a few maps.

For :math:`y = xW(P) + b`: :math:`\bar x = \bar y W^\top`, :math:`\bar b = \sum \bar y`, and
:math:`\bar P` the pull-back of :math:`G = x^\top \bar y` through :math:`W(P)`, written per map from its docstring:
``Linear`` :math:`W = P^\top` (torch's layout); ``NonNegativeLinear`` :math:`W = \mathrm{relu}(P)`, :math:`\bar P = G \odot [P > 0]`;
``SymmetricLinear`` :math:`W = (P + P^\top)/2`; ``LeftStochasticLinear`` :math:`W = \mathrm{softmax}_{cols}(P)`,
:math:`\bar P_{ij} = W_{ij}(G_{ij} - \sum_k G_{kj} W_{kj})`.  The other 27 maps are not covered yet.
The upstream column runs neuromancer's map of the same name with the same parameters copied in.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np

from refnsm import linear as L

from ._mp import absa, exact, mpa, zeros
from .cases import Case, Unavailable

FAMILY = "linear"
#: the public names of refnsm.linear this oracle evaluates (docs/accuracy.md lists the others)
COVERS = ("Linear", "NonNegativeLinear", "SymmetricLinear", "LeftStochasticLinear")


def _weight(kind, P):
    n, m = P.shape
    if kind == "Linear":  # torch layout: the parameter is [outsize, insize]
        return P.T, absa(P).T
    if kind == "NonNegativeLinear":
        W = zeros(P.shape)
        for i in range(n):
            for j in range(m):
                W[i, j] = P[i, j] if P[i, j] > 0 else mp.mpf(0)
        return W, absa(W)
    if kind == "SymmetricLinear":
        return (P + P.T) / 2, (absa(P) + absa(P).T) / 2
    W, sW = zeros(P.shape), zeros(P.shape)  # softmax over each column
    for j in range(m):
        col = [P[i, j] for i in range(n)]
        mx = max(col)
        e = [mp.exp(v - mx) for v in col]
        se = mp.fsum(e)
        spread = mp.fsum((ev / se) * (abs(v) + abs(mx)) for ev, v in zip(e, col))
        for i in range(n):
            W[i, j] = e[i] / se
            sW[i, j] = W[i, j] * (1 + abs(col[i]) + abs(mx) + spread)
    return W, sW


def _weight_vjp(kind, P, W, sW, G, sG):
    if kind == "Linear":
        return G.T, sG.T
    if kind == "NonNegativeLinear":
        mask = np.vectorize(lambda v: mp.mpf(1) if v > 0 else mp.mpf(0), otypes=[object])(P)
        return G * mask, sG * mask
    if kind == "SymmetricLinear":
        return (G + G.T) / 2, (sG + sG.T) / 2
    colsum = (G * W).sum(axis=0)
    scol = (sG * W + absa(G) * sW).sum(axis=0)
    D = G - colsum[None, :]
    return W * D, sW * absa(D) + W * (sG + scol[None, :])


@exact
def step_exact(kind, x, P, b, gy):
    X, Pm, B, Gy = mpa(x), mpa(P), mpa(b), mpa(gy)
    W, sW = _weight(kind, Pm)
    y = X @ W + B.reshape(1, -1)
    sy = absa(X) @ sW + absa(B).reshape(1, -1)
    gx, sgx = Gy @ W.T, absa(Gy) @ sW.T
    G, sG = X.T @ Gy, absa(X).T @ absa(Gy)
    gP, sgP = _weight_vjp(kind, Pm, W, sW, G, sG)
    gb = Gy.sum(axis=0).reshape(B.shape)
    sgb = absa(Gy).sum(axis=0).reshape(B.shape)
    return {"y": (y, sy), "grad_x": (gx, sgx), "grad_weight": (gP, sgP), "grad_bias": (gb, sgb)}


def _regimes():
    def mk(kind, pscale=1.0, xscale=1.0, ties=False):
        def f(rng, dt):
            n = 4
            P = (rng.standard_normal((n, n)) * pscale).astype(dt)
            if ties:
                P[1] = P[0]
                P[2, 0] = 0.0
            return {"x": (rng.standard_normal((3, n)) * xscale).astype(dt), "P": P,
                    "b": rng.standard_normal(n).astype(dt), "gy": rng.standard_normal((3, n)).astype(dt)}
        return f
    return {"normal": mk(None), "large weights (x30: saturated softmax)": mk(None, pscale=30.0),
            "ties and zeros in P": mk(None, ties=True), "huge inputs (x1e15)": mk(None, xscale=1e15)}


def cases():
    out = []
    for kind in ("Linear", "NonNegativeLinear", "SymmetricLinear", "LeftStochasticLinear"):
        cls = getattr(L, kind)

        def run(inp, cls=cls):
            n = inp["P"].shape[0]
            dt = inp["P"].dtype
            m0 = cls(n, n, bias=True, rng=0, dtype=dt)
            bshape = m0.params["bias"].shape
            m = cls(n, n, bias=True, dtype=dt, params={"weight": inp["P"], "bias": inp["b"].reshape(bshape)})
            y = m.forward(inp["x"])
            gx = m.backward(inp["gy"])
            return {"y": y, "grad_x": gx, "grad_weight": m.grads["weight"], "grad_bias": m.grads["bias"].reshape(-1)}

        def ex(inp, kind=kind):
            return step_exact(kind, inp["x"], inp["P"], inp["b"], inp["gy"])

        out.append(Case(FAMILY, f"{kind}.forward/backward", _regimes(), run, ex,
                        {"neuromancer 1.5.6": _neuromancer(UPSTREAM_KEY[kind])}))
    return out


UPSTREAM_KEY = {"Linear": "linear", "NonNegativeLinear": "nneg", "SymmetricLinear": "symmetric",
                "LeftStochasticLinear": "lstochastic"}


def _neuromancer(key):
    def run(inp):
        try:
            import torch

            from refnsm.crosscheck import _upstream

            mod = _upstream.load("neuromancer")
        except Exception as exc:
            raise Unavailable(f"neuromancer not importable: {type(exc).__name__}") from None
        n = inp["P"].shape[0]
        tdt = torch.float64 if inp["P"].dtype == np.float64 else torch.float32
        up = mod.maps[key](n, n, True).to(tdt)
        sd = up.state_dict(keep_vars=True)
        with torch.no_grad():
            sd["weight"].copy_(torch.tensor(inp["P"]))
            sd["bias"].copy_(torch.tensor(inp["b"]).reshape(sd["bias"].shape))
        xt = torch.tensor(inp["x"], requires_grad=True)
        yt = up(xt)
        (yt * torch.tensor(inp["gy"])).sum().backward()
        return {"y": yt.detach().numpy(), "grad_x": xt.grad.numpy(), "grad_weight": sd["weight"].grad.numpy(),
                "grad_bias": sd["bias"].grad.numpy().reshape(-1)}
    return run
