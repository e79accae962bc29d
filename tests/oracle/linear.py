r"""Oracle of the structured linear maps (``refnsm.linear``): a forward and backward step of a few maps.

For :math:`y = xW(P) + b`: :math:`\bar x = \bar y W^\top`, :math:`\bar b = \sum \bar y`, and
:math:`\bar P` the pull-back of :math:`G = x^\top \bar y` through :math:`W(P)`, written per map from its docstring:
``Linear`` :math:`W = P^\top` (torch's layout); ``NonNegativeLinear`` :math:`W = \mathrm{relu}(P)`, :math:`\bar P = G \odot [P > 0]`;
``SymmetricLinear`` :math:`W = (P + P^\top)/2`; ``LeftStochasticLinear`` :math:`W = \mathrm{softmax}_{cols}(P)`,
:math:`\bar P_{ij} = W_{ij}(G_{ij} - \sum_k G_{kj} W_{kj})`.  The other maps (below ``_MAPS``): effective_W as
its closed form, the parameter VJPs as central differences at 50 digits (see the comment there).
The upstream column runs neuromancer's map of the same name with the same parameters copied in.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np

from refnsm import linear as L

from ._mp import absa, exact, mpa, vmap, zeros
from .cases import Case, Unavailable

FAMILY = "linear"
#: the public names of refnsm.linear this oracle evaluates (docs/accuracy.md lists the others)
COVERS = ("Linear", "NonNegativeLinear", "SymmetricLinear", "LeftStochasticLinear", "IdentityInitLinear",
          "IdentityLinear", "BoundedNormLinear", "SplitLinear", "LassoLinear", "LassoLinearRELU", "L0Linear",
          "RightStochasticLinear", "PerronFrobeniusLinear", "StableSplitLinear", "SkewSymmetricLinear",
          "DampedSkewSymmetricLinear", "PSDLinear", "SymplecticLinear", "GershgorinLinear", "SVDLinear",
          "SVDLinearLearnBounds", "SymmetricSVDLinear", "OrthogonalLinear", "SpectralLinear",
          "SymmetricSpectralLinear", "SchurDecompositionLinear", "TrivialNullSpaceLinear", "PowerBoundLinear",
          "ButterflyLinear", "householder_matrix", "householder_matrix_vjp", "Hprod", "Hprod_vjp",
          "straight_through_relu", "straight_through_relu_vjp")


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
    out += [_map_case(name, shape) for name, shape in _MAPS]
    return out + _function_cases()


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


# ----------------------------------------------------------------------------------------------------------------
# The other maps: effective_W written as its closed form in mpmath, the parameter VJP as the derivative itself.
#
# For these maps W(theta) is a closed form (a product of reflectors, a softmax, a shear, ...), written below as
# plain mpmath from each class's docstring.  The VJP of a parameter entry is <G, dW/dtheta_e> with G = x^T gy, the
# derivative taken as a central difference at DPS digits with h = 1e-20 (its error, O(h^2) + 10^-DPS/h, is below
# 1e-30 relative: far below float64's eps); every input is away from a kink (relu, hardtanh, max) by far more than h.
# Term scales: W and the maps applied to it are judged normwise per row of W (``s_W[i, j] = max_k |W_ik|``: a chain
# of reflectors or a matrix product is backward stable in that sense, not entrywise); a parameter gradient carries
# the terms of its last contraction, ``sum |G| |dW/dtheta_e|``.

# The gradient of a Householder reflector vector is formed from products with the whole chain (the reflector VJP),
# whose terms cancel where W hardly depends on the vector (a reflector that nearly commutes with the rest, e.g. in
# the Schur map's rotation blocks): those gradients are judged normwise over the reflector matrix, as W itself.

_H = mp.mpf(10) ** -20
_REFLECTOR_MAPS = ("orthogonal", "spectral", "symmetric_spectral", "schur")


def _sig(v):
    return 1 / (1 + mp.exp(-v))


def _eye(n, m=None):
    m = n if m is None else m
    out = zeros((n, m))
    for i in range(min(n, m)):
        out[i, i] = mp.mpf(1)
    return out


def _reflector(u, t):
    """H(v~) = I - 2 v~ v~^T / v~^T v~ with v~ = [0_t; u[t:]] (u a row of the reflector matrix)."""
    n = len(u)
    v = [mp.mpf(0)] * t + [u[j] for j in range(t, n)]
    vv = mp.fsum(a * a for a in v)
    H = _eye(n)
    for i in range(n):
        for j in range(n):
            H[i, j] -= 2 * v[i] * v[j] / vv
    return H


def _hh(U, k, reverse=False):
    n = U.shape[1]
    Q = _eye(n)
    order = range(k - 1, -1, -1) if reverse else range(k)
    for t in order:
        Q = Q @ _reflector(U[t], t)
    return Q


def _softmax_rows(P):
    W = zeros(P.shape)
    for i in range(P.shape[0]):
        mx = max(P[i])
        e = [mp.exp(v - mx) for v in P[i]]
        se = mp.fsum(e)
        for j in range(P.shape[1]):
            W[i, j] = e[j] / se
    return W


def _relu(A):
    return vmap(lambda v: v if v > 0 else mp.mpf(0), A)


def _sigma_diag(s, nin, nout):
    S = zeros((nin, nout))
    for i in range(min(nin, nout)):
        S[i, i] = s[i]
    return S


def _butterfly(m, p):
    """The butterfly chain of the module docstring of refnsm.linear.butterfly, applied to the rows of I."""
    tw = p[m._twiddle_key]
    n, nin, out = m.n, m.insize, m.outsize
    levels = list(range(m.m)) if m.increasing_stride else list(range(m.m - 1, -1, -1))
    ys = []
    for k in range(m.nstack):
        X = _eye(nin, n)
        for lv in levels:
            st = 1 << lv
            Y = zeros(X.shape)
            for g in range(n // (2 * st)):
                for l in range(st):
                    t = g * 2 * st + l
                    T = tw[k, st - 1 + l] if m.tied_weight else tw[k, lv, g * st + l]
                    for r in range(nin):
                        a, b = X[r, t], X[r, t + st]
                        Y[r, t] = T[0, 0] * a + T[0, 1] * b
                        Y[r, t + st] = T[1, 0] * a + T[1, 1] * b
            X = Y
        ys.append(X)
    Y = np.concatenate(ys, axis=1)
    q = n // m.o
    if q >= 2:
        Y = Y.reshape(nin, q, m.o).sum(axis=1) / q
    return Y[:, :out]


def _w_formula(name, m, p):
    """effective_W of map ``name`` (its class docstring's formula) from the mpmath parameters ``p``."""
    n_in, n_out = m.insize, m.outsize
    if name in ("identity_init", "bounded_Lp_norm"):
        return p["weight"].T
    if name == "identity":
        return _eye(n_in, n_out)
    if name == "split":
        return _relu(p["B.weight"]) - _relu(p["C.weight"])
    if name == "lasso":
        return p["u_param"] - p["v_param"]
    if name == "lasso_relu":
        return _relu(p["u_param"]) - _relu(p["v_param"])
    if name in ("l0_eval", "l0_noise"):
        a, b, beta = mp.mpf(-0.1), mp.mpf(1.1), mp.mpf(m.temperature)
        if name == "l0_eval":
            s = vmap(_sig, p["qz_loga"])
        else:
            u = mpa(m._noise)
            s = vmap(_sig, (vmap(mp.log, u) - vmap(lambda v: mp.log(1 - v), u) + p["qz_loga"]) / beta)
        z = (b - a) * s + a
        gate = vmap(lambda v: min(max(v, mp.mpf(0)), mp.mpf(1)), z)
        return gate * p["weight"]
    if name == "rstochastic":
        return _softmax_rows(p["weight"])
    if name == "pf":
        lo, hi = mp.mpf(m.sigma_min), mp.mpf(m.sigma_max)
        return (hi - (hi - lo) * vmap(_sig, p["scaling"])) * _softmax_rows(p["weight"])
    if name == "stable_split":
        lo, hi = mp.mpf(m.sigma_min), mp.mpf(m.sigma_max)
        B = hi * _softmax_rows(p["B.weight"])
        C = ((hi - lo) - (hi - lo) * vmap(_sig, p["C.scaling"])) * _softmax_rows(p["C.weight"])
        return B - C
    if name == "skew_symmetric":
        T = np.triu(p["weight"])
        return T - T.T
    if name == "damp_skew_symmetric":
        T = np.triu(p["weight"])
        return T - T.T + p["gamma"][0, 0] * _eye(n_in)
    if name == "psd":
        return p["weight"].T @ p["weight"]
    if name == "symplectic":
        S = (p["weight"] + p["weight"].T) / 2
        k = S.shape[0]
        return np.block([[_eye(k), S], [S, _eye(k) + S @ S]])
    if name in ("gershgorin", "gershgorin_complex"):
        w, d = p["w"], p["diag"]
        lo, hi = mp.mpf(m.sigma_min), mp.mpf(m.sigma_max)
        mu, rho = (lo + hi) / 2, (lo - hi) / 2
        om = w + w.T if m.real else w
        off = [(i, j) for i in range(n_in) for j in range(n_in) if i != j]
        mx = max(om[i, j] for i, j in off)
        e = [mp.exp(om[i, j] - mx) for i, j in off]
        se = mp.fsum(e)
        W = zeros((n_in, n_in))
        for (i, j), ev in zip(off, e):
            W[i, j] = rho / 2 * ev / se
        for i in range(n_in):
            W[i, i] = mu + rho * (_sig(d[i]) - mp.mpf(1) / 2)
        return W
    if name in ("softSVD", "learnSVD"):
        lo = p["sigma_min"][()] if "sigma_min" in p else mp.mpf(m.sigma_min)
        hi = p["sigma_max"][()] if "sigma_max" in p else mp.mpf(m.sigma_max)
        s = [hi - (hi - lo) * _sig(v) for v in p["sigma"][:, 0]]
        return p["U"] @ _sigma_diag(s, n_in, n_out) @ p["V"]
    if name == "symmetric_svd":
        lo, hi = mp.mpf(m.sigma_min), mp.mpf(m.sigma_max)
        s = [hi - (hi - lo) * _sig(v) for v in p["sigma"][:, 0]]
        return p["V"].T @ _sigma_diag(s, n_in, n_in) @ p["V"]
    if name == "orthogonal":
        return _hh(p["U"], n_in)
    if name == "spectral":
        lo, hi = mp.mpf(m.sigma_min), mp.mpf(m.sigma_max)
        s = [lo + (hi - lo) * _sig(v) for v in p["p"]]
        return _hh(p["U"], m.n_U_reflectors) @ _sigma_diag(s, n_in, n_out) @ _hh(p["V"], m.n_V_reflectors, True)
    if name == "symmetric_spectral":
        lo, hi = mp.mpf(m.sigma_min), mp.mpf(m.sigma_max)
        s = [lo + (hi - lo) * _sig(v) for v in p["p"]]
        Q = _hh(p["V"], m.n_reflectors)
        return Q @ _sigma_diag(s, n_in, n_in) @ Q.T
    if name == "schur":
        Q = _hh(p["P.U"], n_in)
        T = zeros((n_in, n_in))
        for k in range(n_in // 2):
            g, th = p["gamma"][k], p["theta"][k]
            c, s = mp.cos(th), mp.sin(th)
            T[2 * k, 2 * k], T[2 * k, 2 * k + 1] = g * c, -g * s
            T[2 * k + 1, 2 * k], T[2 * k + 1, 2 * k + 1] = g * s, g * c
        return Q @ T @ Q.T
    if name == "trivial_nullspace":
        A, B = p["Gl1"], p["Gl2"]
        upper = A.T @ A + mp.mpf(m.epsilon) * _eye(n_in)
        return np.concatenate([upper, B], axis=0).T
    if name == "Power_bound":
        return p["W"]
    if name.startswith("butterfly"):
        return _butterfly(m, p)
    raise KeyError(name)


#: (case name, catalog entry, shape, extra options); the shapes are the catalog's, square ones where several
_MAPS = [("identity_init", (4, 4)), ("identity", (4, 4)), ("bounded_Lp_norm", (4, 4)), ("split", (5, 3)),
         ("lasso", (3, 5)), ("lasso_relu", (4, 4)), ("l0_eval", (4, 4)), ("l0_noise", (5, 3)),
         ("rstochastic", (5, 3)), ("pf", (4, 4)), ("stable_split", (3, 5)), ("skew_symmetric", (4, 4)),
         ("damp_skew_symmetric", (4, 4)), ("psd", (4, 4)), ("symplectic", (4, 4)), ("gershgorin", (4, 4)),
         ("gershgorin_complex", (4, 4)), ("softSVD", (5, 3)), ("learnSVD", (3, 5)), ("symmetric_svd", (4, 4)),
         ("orthogonal", (4, 4)), ("spectral", (5, 3)), ("symmetric_spectral", (4, 4)), ("schur", (4, 4)),
         ("trivial_nullspace", (3, 5)), ("Power_bound", (4, 4)), ("butterfly", (3, 5)),
         ("butterfly_untied_dec", (4, 4))]


def _entry(name):
    from refnsm.linear._catalog import CATALOG

    key = "l0" if name.startswith("l0") else name
    return next(e for e in CATALOG if e.name == key)


def _build(name, shape, dt, params=None, noise=None):
    e = _entry(name)
    bias = name != "trivial_nullspace"
    m = e.cls(*shape, bias=bias, dtype=dt, rng=0, **e.kwargs, **({"params": params} if params is not None else {}))
    if name == "l0_eval":
        m.eval()
    if name == "l0_noise":
        m.set_noise(noise)
    return m


@exact
def map_exact(name, m, params, x, gy):
    p = {k: mpa(v) for k, v in params.items()}
    X, Gy = mpa(x), mpa(gy)
    W = _w_formula(name, m, p)
    sW = np.repeat(np.max(absa(W), axis=1, keepdims=True), W.shape[1], axis=1)
    bkey = m._bias_key if m.use_bias else None
    B = p[bkey].reshape(-1) if bkey else zeros(W.shape[1])
    y = X @ W + B.reshape(1, -1)
    sy = absa(X) @ sW + absa(B).reshape(1, -1)
    out = {"W": (W, sW), "y": (y, sy), "grad_x": (Gy @ W.T, absa(Gy) @ sW.T)}
    G = X.T @ Gy
    aG = absa(G)
    for k in m.trainable:
        if k == bkey:
            out["grad_" + k] = (Gy.sum(axis=0).reshape(params[k].shape), absa(Gy).sum(axis=0).reshape(params[k].shape))
            continue
        g, s = zeros(params[k].shape), zeros(params[k].shape)
        for idx in np.ndindex(params[k].shape):
            def at(delta):
                q = dict(p)
                q[k] = p[k].copy()
                q[k][idx] = p[k][idx] + delta
                return _w_formula(name, m, q)
            dW = (at(_H) - at(-_H)) / (2 * _H)
            g[idx] = (G * dW).sum()
            s[idx] = (aG * absa(dW)).sum()
        if name in _REFLECTOR_MAPS and k in ("U", "V", "P.U"):
            s[...] = max(s.reshape(-1))  # normwise over the reflector matrix (see the comment above)
        out["grad_" + k] = (g, s)
    return out


def _map_regimes(name, shape):
    def mk(scale, xscale=1.0):
        def f(rng, dt):
            m0 = _build(name, shape, np.float64)
            params = {}
            for k, v in m0.params.items():
                v = np.array(v, dtype=np.float64)
                if scale and k in m0.trainable and k != "eye":
                    v = v + scale * rng.standard_normal(v.shape)
                params[k] = v.astype(dt)
            if name == "Power_bound":
                params["W"] = params["W"]
            inp = {"params": params, "x": (rng.standard_normal((3, shape[0])) * xscale).astype(dt),
                   "gy": rng.standard_normal((3, shape[1])).astype(dt)}
            if name == "l0_noise":
                inp["noise"] = rng.uniform(0.05, 0.95, size=shape).astype(dt)
            return inp
        return f
    small = 0.05 if name in ("softSVD", "learnSVD", "symmetric_svd") else 0.3
    return {"initial parameters": mk(0.0), "perturbed parameters": mk(small),
            "perturbed, huge inputs (x1e15)": mk(small, 1e15)}


def _map_case(name, shape):
    def run(inp):
        dt = inp["x"].dtype
        m = _build(name, shape, dt, params=inp["params"], noise=inp.get("noise"))
        W = m.effective_W()
        y = m.forward(inp["x"])
        gx = m.backward(inp["gy"])
        out = {"W": W, "y": y, "grad_x": gx}
        for k in m.trainable:
            out["grad_" + k] = m.grads[k]
        return out

    def ex(inp):
        m = _build(name, shape, inp["x"].dtype, params=inp["params"], noise=inp.get("noise"))
        return map_exact(name, m, inp["params"], inp["x"], inp["gy"])

    label = _entry(name).cls.__name__
    opts = {"l0_eval": "[eval]", "l0_noise": "[pinned noise]", "gershgorin_complex": "[real=False]",
            "butterfly_untied_dec": "[untied, decreasing]", "bounded_Lp_norm": ""}.get(name, "")
    return Case(FAMILY, f"{label}{opts}.forward/backward ({shape[0]}x{shape[1]})", _map_regimes(name, shape), run, ex)


# ---------------------------------------------------------------------------------------------------- the functions

def _fd(fn, P, G):
    """(<G, d fn/dP_e>, sum |G| |d fn/dP_e|) for every entry e of P: 50-digit central differences (as above)."""
    g, s = zeros(P.shape), zeros(P.shape)
    aG = absa(G)
    for idx in np.ndindex(P.shape):
        Q1, Q2 = P.copy(), P.copy()
        Q1[idx] += _H
        Q2[idx] -= _H
        d = (fn(Q1) - fn(Q2)) / (2 * _H)
        g[idx], s[idx] = (G * d).sum(), (aG * absa(d)).sum()
    return g, s


def _rowmax(A):
    return np.repeat(np.max(absa(A), axis=-1, keepdims=True), A.shape[-1], axis=-1)


@exact
def householder_exact(U, k, reverse, dQ):
    Um, G = mpa(U), mpa(dQ)
    Q = _hh(Um, k, reverse)
    g, s = _fd(lambda V: _hh(V, k, reverse), Um, G)
    s[...] = max(s.reshape(-1))  # normwise, as the reflector maps
    return {"Q": (Q, _rowmax(Q)), "dU": (g, s)}


@exact
def hprod_exact(x, u, k, gy):
    X, Um, G = mpa(x), mpa(u), mpa(gy)
    n = len(Um)

    def H(v):
        w = [mp.mpf(0)] * (n - k) + [v[j] for j in range(n - k, n)]
        c = mp.fsum(t * t for t in w)
        Hm = _eye(n)
        for i in range(n):
            for j in range(n):
                Hm[i, j] -= 2 * w[i] * w[j] / c
        return Hm

    Hm = H(Um)
    Y = X @ Hm
    sY = absa(X) @ _rowmax(Hm)
    gx = G @ Hm
    sgx = absa(G) @ _rowmax(Hm)
    gu, sgu = _fd(lambda v: X @ H(v), Um, G)
    sgu[...] = max(sgu.reshape(-1))
    return {"y": (Y, sY), "gx": (gx, sgx), "gu": (gu, sgu)}


def _function_cases():
    def hh_reg(k, reverse):
        def f(rng, dt):
            n = 4
            return {"U": np.triu(rng.standard_normal((n, n))).astype(dt), "k": k, "reverse": reverse,
                    "dQ": rng.standard_normal((n, n)).astype(dt)}
        return f

    def run_hh(inp):
        Q = L.householder_matrix(inp["U"], inp["k"], reverse=inp["reverse"])
        return {"Q": Q, "dU": L.householder_matrix_vjp(inp["dQ"], Q, inp["U"], inp["k"], reverse=inp["reverse"])}

    out = [Case(FAMILY, "householder_matrix + householder_matrix_vjp",
                {"k = n": hh_reg(4, False), "k = n, reverse": hh_reg(4, True), "k = 2": hh_reg(2, False)}, run_hh,
                lambda inp: householder_exact(inp["U"], inp["k"], inp["reverse"], inp["dQ"]))]

    def hp_reg(k, xscale=1.0):
        def f(rng, dt):
            sc = xscale if dt == np.float64 or xscale == 1.0 else 1e18
            return {"x": (rng.standard_normal((3, 5)) * sc).astype(dt), "u": rng.standard_normal(5).astype(dt),
                    "k": k, "gy": rng.standard_normal((3, 5)).astype(dt)}
        return f

    def run_hp(inp):
        gx, gu = L.Hprod_vjp(inp["gy"], inp["x"], inp["u"], inp["k"])
        return {"y": L.Hprod(inp["x"], inp["u"], inp["k"]), "gx": gx, "gu": gu}

    out.append(Case(FAMILY, "Hprod + Hprod_vjp", {"k = n": hp_reg(5), "k = 3": hp_reg(3),
                                                   "huge inputs (x1e150; float32 x1e18)": hp_reg(4, 1e150)}, run_hp,
                    lambda inp: hprod_exact(inp["x"], inp["u"], inp["k"], inp["gy"])))

    def relu_reg(rng, dt):
        x = rng.standard_normal((3, 4))
        x[0, 0] = 0.0
        return {"x": x.astype(dt), "g": rng.standard_normal((3, 4)).astype(dt)}

    @exact
    def relu_exact(x, g):
        X, G = mpa(x), mpa(g)
        return {"y": (_relu(X), absa(X)), "gx": (G, absa(G))}

    out.append(Case(FAMILY, "straight_through_relu + straight_through_relu_vjp", {"normal": relu_reg},
                    lambda inp: {"y": L.straight_through_relu(inp["x"]),
                                 "gx": L.straight_through_relu_vjp(inp["g"], inp["x"])},
                    lambda inp: relu_exact(inp["x"], inp["g"])))
    return out
