r"""The spike similarity loss in extended precision (mpmath), to judge refnsm where upstream cannot be used.

A cross-check row compares refnsm with an upstream library.  Where the upstream library *refuses* an input
only because of its own rounding (spikingjelly's gaussian diagonal :math:`S_{ii} = \exp(-(r_i^2 + r_i^2 -
2 G_{ii})/2\sigma^2)` comes out as :math:`1 + 2^{-52}` on some CPUs and torch's BCE then rejects it), there is no
upstream number to compare with, and whether upstream refuses at all depends on the machine's BLAS.  Such a row
judges refnsm against this module instead: the same function, evaluated from the same float64 inputs with
``DPS`` significant decimal digits, written as plainly as the math.

Definitions (those of :func:`refnsm.spiking.spike_similar_loss`): :math:`X \in \mathbb{R}^{N\times D}`,
:math:`G = XX^\top`, :math:`r_i = \|x_i\|`, :math:`Y = \min(LL^\top, 1)`,

* linear (cosine): :math:`S_{ij} = G_{ij} / (r_i r_j + \epsilon_c)`, :math:`\epsilon_c = 10^{-8}`
* polynomial: :math:`S_{ij} = G_{ij}^d`;  sigmoid: :math:`S_{ij} = \sigma(\alpha G_{ij})`
* gaussian: :math:`S_{ij} = \exp(-\|x_i - x_j\|^2 / 2\sigma^2)`

:math:`L = \frac{1}{N^2}\sum_{ij} \ell(S_{ij}, Y_{ij})` with mse :math:`(S-Y)^2`, l1 :math:`|S-Y|`, bce
:math:`-[Y\max(\log S, -100) + (1-Y)\max(\log(1-S), -100)]`.  The gradient uses torch's conventions, which are
part of the definition refnsm implements: :math:`\partial\ell/\partial S` is :math:`2(S-Y)`, :math:`\mathrm{sign}
(S-Y)` with :math:`\mathrm{sign}(0) = 0`, and :math:`(S-Y)/\max(S(1-S), \epsilon_b)` with
:math:`\epsilon_b` = float32(1e-12); the norm's gradient :math:`x_i/r_i` is 0 at :math:`r_i = 0`.  With
:math:`A = \partial L/\partial S`, each pair :math:`(i, j)` contributes through both of its arguments:

.. math::

    \bar x_i \mathrel{+}= A_{ij}\,\partial_1 S(x_i, x_j), \qquad \bar x_j \mathrel{+}= A_{ij}\,\partial_2 S(x_i, x_j),

with, for the gaussian, :math:`\partial_1 S = S_{ij}(x_j - x_i)/\sigma^2` (the difference form: exactly 0 for
equal rows), for the kernels of :math:`G_{ij}` alone :math:`\partial_1 S = S'(G_{ij})\,x_j`, and for the cosine
:math:`\partial_1 S = x_j/P_{ij} - G_{ij}\,r_j\,(x_i/r_i)/P_{ij}^2`, :math:`P_{ij} = r_i r_j + \epsilon_c`.
"""

from __future__ import annotations

import numpy as np

DPS = 50  #: decimal digits of the extended-precision evaluation
COSINE_EPS = 1e-8
BCE_EPS = float(np.float32(1e-12))


def _mp():
    import mpmath

    return mpmath


def _rows(X):
    mp = _mp()
    X = np.asarray(X, dtype=np.float64).reshape(np.shape(X)[0], -1)
    return [[mp.mpf(float(v)) for v in row] for row in X]


def _dot(a, b):
    mp = _mp()
    return mp.fsum(u * v for u, v in zip(a, b))


def similarity(X, kernel, args):
    """The exact similarity matrix S (a list of lists of mpf) of the rows of ``X`` (float64, any shape [N, ...])."""
    mp = _mp()
    with mp.workdps(DPS):
        return _similarity(_rows(X), kernel, args)


def _similarity(x, kernel, args):
    mp = _mp()
    n = len(x)
    G = [[_dot(x[i], x[j]) for j in range(n)] for i in range(n)]
    r = [mp.sqrt(G[i][i]) for i in range(n)]
    if kernel == "linear":
        eps = mp.mpf(COSINE_EPS)
        return [[G[i][j] / (r[i] * r[j] + eps) for j in range(n)] for i in range(n)]
    p = mp.mpf(float(args[0]))
    if kernel == "polynomial":
        return [[G[i][j] ** p for j in range(n)] for i in range(n)]
    if kernel == "sigmoid":
        return [[1 / (1 + mp.exp(-p * G[i][j])) for j in range(n)] for i in range(n)]
    if kernel == "gaussian":
        return [[mp.exp(-mp.fsum((a - b) ** 2 for a, b in zip(x[i], x[j])) / (2 * p * p)) for j in range(n)]
                for i in range(n)]
    raise ValueError(kernel)


def similarity_in_unit_interval(X, kernel, args) -> bool:
    """True when every entry of the exact S lies in [0, 1], i.e. BCE is defined for this input."""
    mp = _mp()
    with mp.workdps(DPS):
        S = _similarity(_rows(X), kernel, args)
        return all(0 <= s <= 1 for row in S for s in row)


def spike_similar_loss(X, labels, kernel, loss, args):
    """``(value, dL/dX, dL/dS, S)`` of the spike similarity loss, computed with ``DPS`` digits, rounded to float64.

    ``dL/dX`` has the shape of ``X``; the matrices are [N, N].  Raises ``ValueError`` where BCE is undefined
    (an exact S outside [0, 1])."""
    mp = _mp()
    with mp.workdps(DPS):
        r = _ssl(X, labels, kernel, loss, args)
        return float(r["value"]), _to_np(r["grad"]).reshape(np.shape(X)), _to_np(r["A"]), _to_np(r["S"])


def spike_similar_loss_terms(X, labels, kernel, loss, args):
    r"""``(value, value_scale, dL/dX, grad_scale)``: the exact loss and gradient with the scale of their terms.

    The scale of an entry is the sum of the absolute values of the terms that form it in the formulas of the
    module docstring: :math:`\frac{1}{N^2}\sum_{ij} |\ell(S_{ij}, Y_{ij})|` for the value and
    :math:`\sum_j |A_{ij}\,\partial_1 S(x_i, x_j)_k| + |A_{ji}\,\partial_2 S(x_j, x_i)_k|` for
    :math:`(\partial L/\partial X)_{ik}` (see ``tests/oracle/measure.py`` for the error measure built on it)."""
    mp = _mp()
    with mp.workdps(DPS):
        r = _ssl(X, labels, kernel, loss, args)
        shape = np.shape(X)
        return (float(r["value"]), float(r["value_scale"]), _to_np(r["grad"]).reshape(shape),
                _to_np(r["grad_scale"]).reshape(shape))


def _to_np(m):
    return np.array([[float(v) for v in row] for row in m], dtype=np.float64)


def _ssl(X, labels, kernel, loss, args):
    mp = _mp()
    x = _rows(X)
    n, d = len(x), len(x[0]) if x else 0
    lab = [[mp.mpf(float(v)) for v in row] for row in np.asarray(labels, dtype=np.float64)]
    Y = [[min(_dot(lab[i], lab[j]), mp.mpf(1)) for j in range(n)] for i in range(n)]
    S = _similarity(x, kernel, args)
    Cm = _complement(x, S, kernel, args)
    if loss == "bce" and not all(0 <= s <= 1 for row in S for s in row):
        raise ValueError("bce: the exact similarity matrix leaves [0, 1]")
    inv = mp.mpf(1) / (n * n)
    total = mp.mpf(0)
    total_abs = mp.mpf(0)
    A = [[mp.mpf(0)] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            s, y, c = S[i][j], Y[i][j], Cm[i][j]
            dsy = -c if y == 1 else s - y  # 1 - S from its own formula: S can lie within 1e-40 of 1
            if loss == "mse":
                term = dsy ** 2
                A[i][j] = 2 * dsy * inv
            elif loss == "l1":
                term = abs(dsy)
                A[i][j] = mp.sign(dsy) * inv
            elif loss == "bce":
                logs = max(mp.log(s), mp.mpf(-100)) if s > 0 else mp.mpf(-100)
                log1ms = max(mp.log(c), mp.mpf(-100)) if c > 0 else mp.mpf(-100)
                term = -(y * logs + (1 - y) * log1ms)
                A[i][j] = dsy / max(s * c, mp.mpf(BCE_EPS)) * inv
            else:
                raise ValueError(loss)
            total += term
            total_abs += abs(term)
    grad = [[mp.mpf(0)] * d for _ in range(n)]
    scale = [[mp.mpf(0)] * d for _ in range(n)]
    for i in range(n):
        for j in range(n):
            d1, d2 = _partials(x, S, kernel, args, i, j)
            a1, a2 = _partials(x, S, kernel, args, i, j, absolute=True)
            a = abs(A[i][j])
            for k in range(d):
                grad[i][k] += A[i][j] * d1[k]
                grad[j][k] += A[i][j] * d2[k]
                scale[i][k] += a * a1[k]
                scale[j][k] += a * a2[k]
    return {"value": total * inv, "value_scale": total_abs * inv, "grad": grad, "grad_scale": scale, "A": A,
            "S": S}


def _complement(x, S, kernel, args):
    """1 - S_ij from its own formula (sigmoid: sigma(-p G); gaussian: -expm1(-d / 2 sigma^2); cosine:
    (P - G) / P), so that it keeps its digits where S lies within 10^-DPS of 1."""
    mp = _mp()
    n = len(x)
    out = [[None] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            if kernel == "sigmoid":
                out[i][j] = 1 / (1 + mp.exp(mp.mpf(float(args[0])) * _dot(x[i], x[j])))
            elif kernel == "gaussian":
                p = mp.mpf(float(args[0]))
                out[i][j] = -mp.expm1(-mp.fsum((a - b) ** 2 for a, b in zip(x[i], x[j])) / (2 * p * p))
            elif kernel == "linear":
                P = mp.sqrt(_dot(x[i], x[i])) * mp.sqrt(_dot(x[j], x[j])) + mp.mpf(COSINE_EPS)
                out[i][j] = (P - _dot(x[i], x[j])) / P
            else:
                out[i][j] = 1 - S[i][j]
    return out


def _partials(x, S, kernel, args, i, j, absolute=False):
    """(dS_ij/dx_i, dS_ij/dx_j) treating the two arguments of the kernel as independent.

    With ``absolute``, the scale of each entry instead: the absolute value, or for the cosine, whose partial is a
    difference of two terms, the sum of their absolute values."""
    mp = _mp()
    xi, xj = x[i], x[j]
    if kernel == "gaussian":
        c = S[i][j] / mp.mpf(float(args[0])) ** 2
        if absolute:  # with the condition of exp(-d / 2 sigma^2): 1 + d / 2 sigma^2 times S's own rounding
            c = abs(c) * (1 - mp.log(S[i][j])) if S[i][j] > 0 else abs(c)
            return [c * abs(b - a) for a, b in zip(xi, xj)], [c * abs(a - b) for a, b in zip(xi, xj)]
        return [c * (b - a) for a, b in zip(xi, xj)], [c * (a - b) for a, b in zip(xi, xj)]
    g = _dot(xi, xj)
    if kernel == "linear":
        ri, rj = mp.sqrt(_dot(xi, xi)), mp.sqrt(_dot(xj, xj))
        P = ri * rj + mp.mpf(COSINE_EPS)
        ui = [a / ri for a in xi] if ri > 0 else [mp.mpf(0)] * len(xi)
        uj = [b / rj for b in xj] if rj > 0 else [mp.mpf(0)] * len(xj)
        if absolute:
            return ([abs(b / P) + abs(g * rj * u / P ** 2) for b, u in zip(xj, ui)],
                    [abs(a / P) + abs(g * ri * u / P ** 2) for a, u in zip(xi, uj)])
        return ([b / P - g * rj * u / P ** 2 for b, u in zip(xj, ui)],
                [a / P - g * ri * u / P ** 2 for a, u in zip(xi, uj)])
    p = mp.mpf(float(args[0]))
    if kernel == "polynomial":
        dS = mp.mpf(0) if p == 0 else p * g ** (p - 1)
    else:  # sigmoid
        dS = p * S[i][j] / (1 + mp.exp(p * g))  # S (1 - S) with 1 - S = sigma(-p g), not by subtraction
    if absolute:  # with the first-order effect of G's rounding (scale sum_k |x_ik x_jk|) on the derivative
        sg = mp.fsum(abs(a * b) for a, b in zip(xi, xj))
        if kernel == "polynomial":
            d2 = mp.mpf(0) if p in (0, 1) else p * (p - 1) * g ** (p - 2)
        else:
            d2 = p * dS * (1 - 2 * S[i][j])
        c = abs(dS) + abs(d2) * sg
        return [c * abs(b) for b in xj], [c * abs(a) for a in xi]
    return [dS * b for b in xj], [dS * a for a in xi]
