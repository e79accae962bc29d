r"""Oracle of the spiking family (``refnsm.spiking``): the exact value and VJP of every public function.

The spike similarity loss is :mod:`refnsm.crosscheck._exact` (the same 50-digit evaluation the cross-checks use
where upstream refuses an input); the rest is written here.  Term scales (``measure.py``): a sum's scale is the sum
of its terms' absolute values; an elementwise function :math:`f(u)` of a computed :math:`u` with scale :math:`s_u`
gets :math:`|f(u)| + |f'(u)|\,s_u` (its own rounding plus the first-order effect of the rounding of :math:`u`),
the condition estimate that makes a saturated sigmoid or a cancelling score show up as ill-conditioned rather
than as a bug.
"""

from __future__ import annotations

import importlib

import mpmath as mp
import numpy as np

from refnsm import spiking as sp
from refnsm.crosscheck import _exact

from ._mp import absa, exact, f64, mpa, vmap, zeros
from .cases import Case, Unavailable

FAMILY = "spiking"
#: the public names of refnsm.spiking this oracle evaluates (docs/accuracy.md lists the others)
COVERS = ("spike_similarity_matrix", "spike_similarity_matrix_vjp", "kernel_dot_product", "kernel_dot_product_vjp", "spike_similar_loss", "spike_similar_loss_vjp",
          "spike_similar_loss_value_and_grad", "temporal_efficient_training_cross_entropy",
          "temporal_efficient_training_cross_entropy_vjp", "time_mean_cross_entropy", "time_mean_cross_entropy_vjp",
          "tet_loss", "tet_loss_vjp", "firing_rate_mse", "firing_rate_mse_vjp",
          "temporal_efficient_training_cross_entropy_value_and_grad", "TETLoss")


# ------------------------------------------------------------------------------------------ the exact math
@exact
def kdp_exact(x, y, kernel, p, A):
    """K = kappa(x, y) and (dL/dx, dL/dy) for dL/dK = A, with the scales of their terms."""
    X, Y, Am = mpa(x), mpa(y), mpa(A)
    p = mp.mpf(float(p))
    nx, m = X.shape
    ny = Y.shape[0]
    G = X @ Y.T
    sG = absa(X) @ absa(Y).T
    Kv, sK, B, sB = (zeros((nx, ny)) for _ in range(4))
    gx, sgx, gy, sgy = zeros((nx, m)), zeros((nx, m)), zeros((ny, m)), zeros((ny, m))
    for i in range(nx):
        for j in range(ny):
            g, s = G[i, j], sG[i, j]
            if kernel == "linear":
                Kv[i, j], sK[i, j], f1, f2 = g, s, mp.mpf(1), mp.mpf(0)
            elif kernel == "polynomial":
                Kv[i, j] = g ** p
                f1 = mp.mpf(0) if p == 0 else p * g ** (p - 1)
                f2 = mp.mpf(0) if p in (0, 1) else p * (p - 1) * g ** (p - 2)
                sK[i, j] = abs(Kv[i, j]) + abs(f1) * s
            elif kernel == "sigmoid":
                k = 1 / (1 + mp.exp(-p * g))
                Kv[i, j] = k
                f1 = p * k * (1 - k)
                f2 = p * p * k * (1 - k) * (1 - 2 * k)
                sK[i, j] = k + abs(f1) * s
            else:  # gaussian: the distance from its own (non-negative) terms
                d = mp.fsum((a - b) ** 2 for a, b in zip(X[i], Y[j]))
                k = mp.exp(-d / (2 * p * p))
                Kv[i, j] = k
                sK[i, j] = k * (1 + d / (2 * p * p))
                for c in range(m):
                    t = Am[i, j] * k * (Y[j, c] - X[i, c]) / (p * p)
                    gx[i, c] += t
                    gy[j, c] -= t
                    st = abs(t) * (1 + d / (2 * p * p))
                    sgx[i, c] += st
                    sgy[j, c] += st
                continue
            B[i, j] = Am[i, j] * f1
            sB[i, j] = abs(Am[i, j]) * (abs(f1) + abs(f2) * s)
    if kernel != "gaussian":
        gx, sgx = B @ Y, sB @ absa(Y)
        gy, sgy = B.T @ X, sB.T @ absa(X)
    return {"K": (Kv, sK), "dx": (gx, sgx), "dy": (gy, sgy)}


def ssm_exact(X, kernel, args, A):
    """S = spike_similarity_matrix(X) and its VJP for dL/dS = A, with term scales (crosscheck._exact's partials)."""
    with mp.workdps(_exact.DPS):
        x = _exact._rows(X)
        n, d = len(x), len(x[0])
        S = _exact._similarity(x, kernel, args)
        Am = mpa(A)
        g, sg = zeros((n, d)), zeros((n, d))
        sS = zeros((n, n))
        for i in range(n):
            for j in range(n):
                d1, d2 = _exact._partials(x, S, kernel, args, i, j)
                a1, a2 = _exact._partials(x, S, kernel, args, i, j, absolute=True)
                for k in range(d):
                    g[i, k] += Am[i, j] * d1[k]
                    g[j, k] += Am[i, j] * d2[k]
                    sg[i, k] += abs(Am[i, j]) * a1[k]
                    sg[j, k] += abs(Am[i, j]) * a2[k]
                # S's own scale: the Gram entry's terms through the kernel (cosine: |x_i|.|x_j| / P)
                gij = mp.fsum(abs(u * v) for u, v in zip(x[i], x[j]))
                if kernel == "linear":
                    P = mp.sqrt(_exact._dot(x[i], x[i])) * mp.sqrt(_exact._dot(x[j], x[j])) + mp.mpf(_exact.COSINE_EPS)
                    sS[i, j] = 3 * gij / P
                elif kernel == "gaussian":
                    sS[i, j] = S[i][j] * (1 - mp.log(S[i][j])) if S[i][j] > 0 else mp.mpf(0)
                elif kernel == "polynomial":
                    pp = mp.mpf(float(args[0]))
                    sS[i, j] = abs(S[i][j]) + abs(pp * _exact._dot(x[i], x[j]) ** (pp - 1)) * gij
                else:
                    pp = mp.mpf(float(args[0]))
                    sS[i, j] = S[i][j] + abs(pp) * S[i][j] * (1 - S[i][j]) * gij
        Sm = np.array([[S[i][j] for j in range(n)] for i in range(n)], dtype=object)
        return {"S": (f64(Sm), f64(sS)), "grad": (f64(g).reshape(np.shape(X)), f64(sg).reshape(np.shape(X)))}


def _ssm_case(kernel, args):
    def run(inp):
        return {"S": sp.spike_similarity_matrix(inp["X"], kernel, *args),
                "grad": sp.spike_similarity_matrix_vjp(inp["A"], inp["X"], kernel, *args)}

    def mk(f):
        def g(rng, dt):
            X, _ = f(rng, dt)
            return {"X": X, "A": rng.standard_normal((X.shape[0], X.shape[0])).astype(dt)}
        return g

    regimes = {"binary": mk(lambda rng, dt: (_binary(rng, dt), None)), "duplicate and silent rows": mk(_duplicates),
               "real-valued, near rows": mk(_near_rows)}
    label = f"spike_similarity_matrix[{kernel}{',' + str(args[0]) if args else ''}]"
    return Case(FAMILY, label, regimes, run, lambda inp: ssm_exact(inp["X"], kernel, args, inp["A"]))


def ssl_exact(X, labels, kernel, loss, args):
    v, sv, g, sg = _exact.spike_similar_loss_terms(X, labels, kernel, loss, args)
    return {"value": (np.float64(v), np.float64(sv)), "grad": (g, sg)}


def _ce_position(xs, tg):
    """(loss, scale, grad row, grad scales) of -log softmax(xs)[tg] for one position (mpf list)."""
    m = max(xs)
    e = [mp.exp(v - m) for v in xs]
    se = mp.fsum(e)
    lse = m + mp.log(se)
    p = [v / se for v in e]
    spread = mp.fsum(pc * abs(v - m) for pc, v in zip(p, xs))  # the rounding of the shifted scores, through exp
    loss = lse - xs[tg]
    sloss = abs(m) + abs(mp.log(se)) + abs(xs[tg]) + spread
    g = [pc - (1 if c == tg else 0) for c, pc in enumerate(p)]
    sg = [pc * (1 + abs(v - m) + spread) + (1 if c == tg else 0) for c, (pc, v) in enumerate(zip(p, xs))]
    return loss, sloss, g, sg


@exact
def tet_ce_exact(x, target, ignore_index=-100, time_mean=False, lam=0.0, phi=1.0):
    """TET cross-entropy (or, with time_mean, the cross-entropy of the time-mean) [+ lam * mean((x - phi)^2)]."""
    xm = mpa(x)
    T, N, C = x.shape[:3]
    S = int(np.prod(x.shape[3:], dtype=int))
    xr = xm.reshape(T, N, C, S)
    tg = np.asarray(target).reshape(N, S)
    if time_mean:
        sx = absa(xr).sum(axis=0).reshape(1, N, C, S) / T
        xr = xr.sum(axis=0).reshape(1, N, C, S) / T
    steps = xr.shape[0]
    valid = [(n, s) for n in range(N) for s in range(S) if tg[n, s] != ignore_index]
    count = len(valid) * steps
    total, stotal = mp.mpf(0), mp.mpf(0)
    g, sg = zeros(xr.shape), zeros(xr.shape)
    for t in range(steps):
        for n, s in valid:
            xs = [xr[t, n, c, s] for c in range(C)]
            loss, sl, gr, sgr = _ce_position(xs, int(tg[n, s]))
            if time_mean:  # the rounding of the mean, through the softmax
                sm = mp.fsum(sx[0, n, c, s] for c in range(C))
                sl += sm
                sgr = [v + abs(gv) * sm for v, gv in zip(sgr, gr)]
            total += loss
            stotal += sl
            for c in range(C):
                g[t, n, c, s] = gr[c] / count
                sg[t, n, c, s] = sgr[c] / count
    value, svalue = total / count, stotal / count
    if time_mean:
        g = np.repeat(g / T, T, axis=0)
        sg = np.repeat(sg / T, T, axis=0)
    g, sg = g.reshape(x.shape), sg.reshape(x.shape)
    lam, phi = mp.mpf(float(lam)), mp.mpf(float(phi))
    if lam != 0:
        n_all = xm.size
        d = xm - phi
        sd = absa(xm) + abs(phi)
        d2 = vmap(lambda v: v * v, d)
        value = (1 - lam) * value + lam * d2.sum() / n_all
        svalue = (1 - lam) * svalue + lam * (d2 + 2 * absa(d) * sd).sum() / n_all
        g = (1 - lam) * g + lam * 2 * d / n_all
        sg = (1 - lam) * sg + lam * 2 * sd / n_all
    return {"value": (value, svalue), "grad": (g, sg)}


@exact
def firing_rate_exact(spikes, labels):
    s = mpa(spikes)
    T, N, C = s.shape
    fr = s.sum(axis=0) / T
    sfr = absa(s).sum(axis=0) / T
    onehot = zeros((N, C))
    for n in range(N):
        onehot[n, int(labels[n])] = mp.mpf(1)
    d = fr - onehot
    sd = sfr + onehot
    value = vmap(lambda v: v * v, d).sum() / (N * C)
    svalue = (vmap(lambda v: v * v, d) + 2 * absa(d) * sd).sum() / (N * C)
    g = np.repeat((2 * d / (N * C * T))[None], T, axis=0)
    sg = np.repeat((2 * sd / (N * C * T))[None], T, axis=0)
    return {"value": (value, svalue), "grad": (g, sg)}


# ------------------------------------------------------------------------------------------------- inputs
def _labels(rng, n, c=3):
    return np.eye(c)[rng.integers(0, c, n)]


def _binary(rng, dtype, n=6, d=8, rate=0.3):
    return (rng.random((n, d)) < rate).astype(dtype)


def _duplicates(rng, dtype, n=6, d=8):
    X = _binary(rng, dtype, n, d)
    X[1] = X[0]
    X[3] = 0.0
    X[4] = 0.0
    lab = _labels(rng, n)
    lab[1] = np.roll(lab[0], 1)
    lab[4] = np.roll(lab[3], 1)
    return X, lab


def _near_rows(rng, dtype, n=6, d=8):
    X = rng.random((n, d)).astype(dtype)
    X[1] = X[0] + (rng.standard_normal(d) * 1e-3).astype(dtype)
    X[2] = X[0]
    return X, _labels(rng, n)


def _ssl_regimes(kernel, loss):
    reg = {
        "binary": lambda rng, dt: (_binary(rng, dt), _labels(rng, 6)),
        "duplicate and silent rows": lambda rng, dt: _duplicates(rng, dt),
    }
    if not (loss == "bce" and kernel in ("linear", "polynomial")):  # bce needs S in [0, 1]
        reg["real-valued, near rows"] = lambda rng, dt: _near_rows(rng, dt)
    if kernel == "linear":
        reg["tiny scale (1e-150 / 1e-18)"] = lambda rng, dt: (
            (_binary(rng, dt) * (1e-150 if dt == np.float64 else 1e-18)).astype(dt), _labels(rng, 6))
        reg["huge scale (1e150 / 1e18)"] = lambda rng, dt: (
            (_binary(rng, dt) * (1e150 if dt == np.float64 else 1e18)).astype(dt), _labels(rng, 6))
    return reg


SSL_SETTINGS = [("linear", ()), ("polynomial", (2.0,)), ("sigmoid", (0.5,)), ("sigmoid", (40.0,)),
                ("gaussian", (2.0,)), ("gaussian", (0.3,))]


def _sj():
    try:
        from refnsm.crosscheck._upstream import load

        return load("spikingjelly")
    except Exception as exc:  # not installed here (the ledger runs from .venv-peers)
        raise Unavailable(f"spikingjelly not importable: {type(exc).__name__}") from None


def _torch():
    try:
        import torch
    except Exception:
        raise Unavailable("torch not importable") from None
    return torch


def _sj_ssl(kernel, loss, args):
    def run(inp):
        _sj()
        from refnsm.crosscheck import spiking as adapter

        X, lab = inp["X"], inp["labels"]
        out = adapter._upstream_ssl(X, lab, kernel, loss, args)
        if out[0] == "raise":
            raise Unavailable(f"refuses the input: {out[1][:60]}")
        return {"value": np.asarray(out[0]), "grad": out[1]}

    return run


def _ssl_case(kernel, args, loss):
    regimes = {name: (lambda mk: lambda rng, dt: dict(zip(("X", "labels"), mk(rng, dt))))(mk)
               for name, mk in _ssl_regimes(kernel, loss).items()}

    def run(inp):
        v, g = sp.spike_similar_loss_value_and_grad(inp["X"], inp["labels"], kernel, loss, *args)
        return {"value": v, "grad": g}

    label = f"spike_similar_loss[{kernel}{',' + str(args[0]) if args else ''},{loss}]"
    return Case(FAMILY, label, regimes, run, lambda inp: ssl_exact(inp["X"], inp["labels"], kernel, loss, args),
                {"spikingjelly 2.0.0": _sj_ssl(kernel, loss, args)})


def _kdp_case(kernel, args):
    p = args[0] if args else 0.0

    def make(scale, near=False):
        def mk(rng, dt):
            x = (rng.random((4, 5)) * scale).astype(dt)
            y = (rng.random((3, 5)) * scale).astype(dt)
            if near:
                y[0] = x[0]
                y[1] = x[1] + (1e-4 * scale * rng.standard_normal(5)).astype(dt)
            return {"x": x, "y": y, "A": rng.standard_normal((4, 3)).astype(dt)}
        return mk

    regimes = {"uniform [0, 1)": make(1.0), "near and equal rows": make(1.0, near=True)}
    if kernel == "gaussian":  # x and y must have as many rows (or x one)
        def sq(mk):
            def f(rng, dt):
                d = mk(rng, dt)
                d["y"] = np.concatenate([d["y"], (rng.random((1, 5))).astype(dt)])
                d["A"] = rng.standard_normal((4, 4)).astype(dt)
                return d
            return f
        regimes = {k: sq(v) for k, v in regimes.items()}

    def run(inp):
        Km = sp.kernel_dot_product(inp["x"], inp["y"], kernel, *args)
        gx, gy = sp.kernel_dot_product_vjp(inp["A"], inp["x"], inp["y"], kernel, *args)
        return {"K": Km, "dx": gx, "dy": gy}

    def up(inp):
        torch = _torch()
        sj = _sj()
        xt = torch.tensor(inp["x"], requires_grad=True)
        yt = torch.tensor(inp["y"], requires_grad=True)
        Kt = sj.kernel_dot_product(xt, yt, kernel, *args)
        Kt.backward(torch.tensor(inp["A"]))
        return {"K": Kt.detach().numpy(), "dx": xt.grad.numpy(), "dy": yt.grad.numpy()}

    label = f"kernel_dot_product[{kernel}{',' + str(p) if args else ''}]"
    return Case(FAMILY, label, regimes, run, lambda inp: kdp_exact(inp["x"], inp["y"], kernel, p, inp["A"]),
                {"spikingjelly 2.0.0": up})


def _ce_regimes():
    def mk(scale, ties=False, saturate=False):
        def f(rng, dt):
            x = (rng.standard_normal((3, 4, 5)) * scale).astype(dt)
            if ties:
                x[:, :, 1] = x[:, :, 0]
            if saturate:
                x[:, :, 2] += dt(60.0 if dt == np.float64 else 30.0)
            t = rng.integers(0, 5, 4)
            t[0] = -100
            return {"x": x, "target": t}
        return f
    return {"normal logits": mk(1.0), "ties": mk(1.0, ties=True), "saturated softmax": mk(1.0, saturate=True),
            "large logits (x100)": mk(100.0)}


def _tet_case(which):
    def run(inp):
        x, t = inp["x"], inp["target"]
        if which == "tet":
            v, g = sp.temporal_efficient_training_cross_entropy_value_and_grad(x, t)
            return {"value": sp.temporal_efficient_training_cross_entropy(x, t),
                    "grad": sp.temporal_efficient_training_cross_entropy_vjp(None, x, t),
                    "value (value_and_grad)": np.asarray(v), "grad (value_and_grad)": g}
        if which == "time_mean":
            return {"value": sp.time_mean_cross_entropy(x, t), "grad": sp.time_mean_cross_entropy_vjp(None, x, t)}
        crit = sp.TETLoss(mean=1.0, tet_lambda=0.05)
        v = crit(x, t)
        return {"value": sp.tet_loss(x, t, 1.0, 0.05), "grad": sp.tet_loss_vjp(None, x, t, 1.0, 0.05),
                "value (TETLoss)": np.asarray(v), "grad (TETLoss.backward)": crit.backward()}

    def ex(inp):
        if which == "tet":
            d = tet_ce_exact(inp["x"], inp["target"])
            return {**d, "value (value_and_grad)": d["value"], "grad (value_and_grad)": d["grad"]}
        if which == "time_mean":
            return tet_ce_exact(inp["x"], inp["target"], time_mean=True)
        d = tet_ce_exact(inp["x"], inp["target"], lam=0.05, phi=1.0)
        return {**d, "value (TETLoss)": d["value"], "grad (TETLoss.backward)": d["grad"]}

    def up(inp):
        torch = _torch()
        xt = torch.tensor(inp["x"], requires_grad=True)
        tt = torch.tensor(inp["target"])
        if which == "tet":
            out = _sj().temporal_efficient_training_cross_entropy(xt, tt)
        elif which == "time_mean":
            out = torch.nn.functional.cross_entropy(xt.mean(0), tt)
        else:
            _sj()
            TETLoss = importlib.import_module("spikingjelly.activation_based.examples.memopt.loss").TETLoss
            out = TETLoss(mean=1.0, tet_lambda=0.05)(xt, tt)
        out.backward()
        return {"value": out.detach().numpy(), "grad": xt.grad.numpy()}

    name = {"tet": "temporal_efficient_training_cross_entropy", "time_mean": "time_mean_cross_entropy",
            "tet_loss": "tet_loss[lambda=0.05]"}[which]
    lib = {"tet": "spikingjelly 2.0.0", "time_mean": "torch (F.cross_entropy of x.mean(0))",
           "tet_loss": "spikingjelly 2.0.0 (TETLoss)"}[which]
    regimes = _ce_regimes()
    if which == "tet_loss":  # spikingjelly's TETLoss has no ignore_index: every target valid
        def valid(f):
            def g(rng, dt):
                d = f(rng, dt)
                d["target"] = np.abs(d["target"]) % 5
                return d
            return g
        regimes = {k: valid(v) for k, v in regimes.items()}
        ex_ = ex

        def ex(inp):  # noqa: F811
            return ex_(inp)
    return Case(FAMILY, name, regimes, run, ex, {lib: up})


def _fr_case():
    def mk(rate):
        def f(rng, dt):
            return {"s": (rng.random((5, 4, 3)) < rate).astype(dt), "labels": rng.integers(0, 3, 4)}
        return f

    def run(inp):
        return {"value": sp.firing_rate_mse(inp["s"], inp["labels"]),
                "grad": sp.firing_rate_mse_vjp(None, inp["s"], inp["labels"])}

    def up(inp):
        torch = _torch()
        st = torch.tensor(inp["s"], requires_grad=True)
        oh = torch.nn.functional.one_hot(torch.tensor(inp["labels"]), 3).to(st.dtype)
        out = torch.nn.functional.mse_loss(st.mean(0), oh)
        out.backward()
        return {"value": out.detach().numpy(), "grad": st.grad.numpy()}

    return Case(FAMILY, "firing_rate_mse", {"binary rate 0.3": mk(0.3), "silent": mk(0.0), "saturated": mk(1.01)},
                run, lambda inp: firing_rate_exact(inp["s"], inp["labels"]), {"torch (F.mse_loss of the rate)": up})


def cases():
    out = [_kdp_case(k, a) for k, a in [("linear", ()), ("polynomial", (3.0,)), ("sigmoid", (0.7,)),
                                        ("gaussian", (1.3,))]]
    out += [_ssm_case(k, a) for k, a in [("linear", ()), ("polynomial", (2.0,)), ("sigmoid", (0.5,)),
                                         ("gaussian", (0.3,))]]
    for kernel, args in SSL_SETTINGS:
        for loss in ("mse", "l1", "bce"):
            if loss == "bce" and kernel == "polynomial":
                continue  # unnormalised: S leaves [0, 1]
            out.append(_ssl_case(kernel, args, loss))
    out += [_tet_case("tet"), _tet_case("time_mean"), _tet_case("tet_loss"), _fr_case()]
    return out
