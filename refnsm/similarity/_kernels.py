"""Numba kernels of the similarity-matching family: the math only (no validation, no Python objects).

Internal layout
---------------
Every kernel works on the *sample-major* layout ``Z[t, i]``: one row per (sample, spatial position) pair
``t = b * S + s`` (``T = B * S`` rows) and one column per output channel ``i`` (``m`` columns).  The competitor
acts on every row independently, ``(M y)_t = M y_t``, so the fast dynamics of one row never look at another row;
only pynsm's global stopping rule couples them.  A linear encoding ``x W^T`` is already in this layout, and a
convolution is ``cols @ W2^T`` with ``cols`` the im2col matrix (one row per output position).  The public layer
converts ``[B, m, S1..Sk]`` to and from this layout.

All kernels are ``@njit(cache=True)`` with ``fastmath=False`` and compile lazily on their first call.

Why no BLAS in the fast loop
----------------------------
``M y`` is a batch of ``T`` small (``m x m``) matrix-vector products.  Written per row, each product is ``m``
contiguous AXPYs ``my += y[k] * M[:, k]`` (the columns of ``M`` are the rows of ``MT = M.T``), the row stays in L1
cache for all its iterations, and the AXPYs of exact zeros are skipped: with the ReLU most outputs are 0 (adding
``0 * M[:, k]`` changes no sum, so the result is the same).  Measured on the 2-core target machine, this beats a
BLAS call per iteration on the whole ``[T, m]`` matrix (memory bound, with thread start-up on every call) at every
size in the benchmarks.  Each entry of ``M y`` is summed over ``k`` in increasing order.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _row_update(MT, d, y, my, eta, relu):
    """One update of one row in place: ``y <- P(y - eta (M y - d))``; returns max |change| (NaN-propagating)."""
    m = y.shape[0]
    for i in range(m):
        my[i] = 0.0
    for k in range(m):
        v = y[k]
        if v != 0.0:
            for i in range(m):
                my[i] += v * MT[k, i]
    change = 0.0
    for i in range(m):
        old = y[i]
        new = old - eta * (my[i] - d[i])
        if relu and new < 0.0:
            new = 0.0
        y[i] = new
        c = abs(new - old)
        if c > change or c != c:
            change = c
    return change


_BLOCK_ROWS = 128  # rows per block of fast_loop_blocked: its [m, 128] work arrays stay in L1 for m <= 16


@njit(cache=True)
def _all_finite(a):
    for v in a.ravel():
        if not np.isfinite(v):
            return False
    return True


@njit(cache=True)
def fast_loop_blocked(MT, D, Y, eta, relu, max_iter):
    r"""The ``tol = 0`` branch of :func:`fast_loop` with many rows per instruction: same results, bit for bit.

    With ``tol = 0`` the rows never interact, so the rows are taken ``_BLOCK_ROWS`` at a time and transposed into
    ``[m, rows]`` work arrays; every operation of :func:`_row_update` is then applied to a whole block at once, in
    loops over the rows that the compiler vectorises (the per-row loops of length ``m`` cannot be).  Each entry
    is computed by the same operations in the same order as in :func:`_row_update`: :math:`(My)_i` is
    ``0 + y_0 M_{i0} + y_1 M_{i1} + ...`` in increasing ``k``, then ``y - eta (My - d)`` and the ReLU.

    Two differences, neither changing a result: (1) the terms of exact zeros ``y_k`` are added, as
    ``0 * M[i, k] = ±0`` (``M`` is finite: the caller checks), and adding ±0 to a sum that starts at +0 leaves it
    unchanged; a column ``k`` is skipped only when it is zero in every row of the block; (2) a block stops once an
    update changed none of its rows (an exact fixed point of the deterministic map: every later update would
    repeat it), where :func:`fast_loop` stops row by row.  Returns the ``max_change`` of :func:`fast_loop`.
    """
    T, m = Y.shape
    R = _BLOCK_ROWS
    yT = np.empty((m, R), dtype=Y.dtype)
    dT = np.empty((m, R), dtype=Y.dtype)
    myT = np.empty((m, R), dtype=Y.dtype)
    cR = np.empty(R)  # this iteration's max |change| of each row (float64, as _row_update's)
    nz = np.empty(m, dtype=np.bool_)
    change = 0.0
    for t0 in range(0, T, R):
        nr = min(R, T - t0)
        for r in range(nr):
            for i in range(m):
                yT[i, r] = Y[t0 + r, i]
                dT[i, r] = D[t0 + r, i]
        for r in range(nr):
            cR[r] = 0.0
        for it in range(max_iter):
            for k in range(m):
                f = False
                for r in range(nr):
                    if yT[k, r] != 0.0:
                        f = True
                        break
                nz[k] = f
            for i in range(m):
                for r in range(nr):
                    myT[i, r] = 0.0
            for k in range(m):
                if nz[k]:
                    for i in range(m):
                        mki = MT[k, i]
                        for r in range(nr):
                            myT[i, r] += yT[k, r] * mki
            for r in range(nr):
                cR[r] = 0.0
            for i in range(m):
                for r in range(nr):
                    old = yT[i, r]
                    new = old - eta * (myT[i, r] - dT[i, r])
                    if relu and new < 0.0:
                        new = 0.0
                    yT[i, r] = new
                    c = abs(new - old)
                    if c > cR[r] or c != c:
                        cR[r] = c
            still = False
            for r in range(nr):
                if cR[r] != 0.0:
                    still = True
                    break
            if not still:
                break
        for r in range(nr):
            for i in range(m):
                Y[t0 + r, i] = yT[i, r]
            c = cR[r]
            if c > change or c != c:
                change = c
    return change


@njit(cache=True)
def fast_loop(MT, D, Y, eta, relu, tol, max_iter):
    r"""Run the fast (inference) dynamics in place, from the ``Y`` given (normally 0).

    For :math:`t = 0, 1, \dots` up to ``max_iter - 1``:

    .. math::  y^{t+1} = P\big(y^t - \eta (M y^t - D)\big),

    with :math:`P` the identity or the ReLU, applied to every row of ``Y`` (``[T, m]``).  Stops after update
    :math:`t \ge 1` when :math:`\max |y^{t+1} - y^t| < \mathrm{tol}` over all rows (pynsm's rule; ``tol = 0`` never
    stops early).  ``MT`` is ``M.T`` (contiguous).  One ``m``-vector is allocated before the loops, nothing inside.

    With ``tol = 0`` each row runs all its iterations while it sits in cache; with ``tol > 0`` every iteration
    sweeps all rows, because the stopping test is global.  The arithmetic of each row is the same either way.
    A row whose update changed nothing (bitwise) is at an exact fixed point of the deterministic map, so its
    remaining updates are skipped: the result is identical (for NSM this skips every image patch whose drive is
    non-positive, e.g. MNIST's background, after one update).

    Returns ``(iterations, max_change, converged)``; ``max_change`` is that of the last update.
    """
    T, m = Y.shape
    my = np.empty(m, dtype=Y.dtype)
    if max_iter <= 0:
        return 0, 0.0, False
    if tol > 0.0:
        done = np.zeros(T, dtype=np.bool_)  # rows at an exact fixed point: their later updates change nothing
        change = 0.0
        for it in range(max_iter):
            change = 0.0
            for t in range(T):
                if done[t]:
                    continue
                c = _row_update(MT, D[t], Y[t], my, eta, relu)
                if c == 0.0:
                    done[t] = True
                elif c > change or c != c:
                    change = c
            if it >= 1 and change < tol:
                return it + 1, change, True
        return max_iter, change, False
    if m <= 16 and _all_finite(MT):  # small m: many rows per instruction (same results)
        return max_iter, fast_loop_blocked(MT, D, Y, eta, relu, max_iter), False
    change = 0.0
    for t in range(T):
        yt = Y[t]
        dt = D[t]
        c = 0.0
        for it in range(max_iter):
            c = _row_update(MT, dt, yt, my, eta, relu)
            if c == 0.0:  # exact fixed point (bitwise): every later update would return the same row
                break
        if c > change or c != c:
            change = c
    return max_iter, change, False


@njit(cache=True)
def fast_step(MT, D, Y, eta, relu):
    """One update of :func:`fast_loop` on every row, in place; returns ``max |y_new - y_old|``."""
    T, m = Y.shape
    my = np.empty(m, dtype=Y.dtype)
    change = 0.0
    for t in range(T):
        c = _row_update(MT, D[t], Y[t], my, eta, relu)
        if c > change or c != c:
            change = c
    return change


@njit(cache=True)
def matmul_rows(MT, Y, out):
    """``out[t] = M @ Y[t]`` for every row (``MT = M.T``), summed over ``k`` in increasing order, zeros skipped."""
    T, m = Y.shape
    for t in range(T):
        for i in range(m):
            out[t, i] = 0.0
        for k in range(m):
            v = Y[t, k]
            if v != 0.0:
                for i in range(m):
                    out[t, i] += v * MT[k, i]


@njit(cache=True)
def gradient_step(MT, D, Y, eta, out):
    """``out = Y - eta * (M Y - D)`` row by row: the un-projected step, for projections given as callables."""
    T, m = Y.shape
    matmul_rows(MT, Y, out)
    for t in range(T):
        for i in range(m):
            out[t, i] = Y[t, i] - eta * (out[t, i] - D[t, i])


@njit(cache=True)
def fixed_point_stats(MT, D, Y, relu):
    r"""Residual and energy of a state ``Y`` (``[T, m]``).

    ``residual = max |y - P(y - (M y - D))|``: for the ReLU this is the natural residual of the KKT conditions of
    :math:`\min_{y \ge 0} \tfrac12 y^\top M y - y^\top D` (zero iff ``y >= 0``, ``My - D >= 0`` and
    ``y * (My - D) = 0``); for the identity it is ``max |M y - D|``.
    ``energy = 1/2 sum(y * My) - sum(y * D)`` (summed over all rows).
    """
    T, m = Y.shape
    my = np.empty(m, dtype=Y.dtype)
    res = 0.0
    e2 = 0.0
    e1 = 0.0
    for t in range(T):
        for i in range(m):
            my[i] = 0.0
        for k in range(m):
            v = Y[t, k]
            if v != 0.0:
                for i in range(m):
                    my[i] += v * MT[k, i]
        for i in range(m):
            y = Y[t, i]
            p = y - (my[i] - D[t, i])
            if relu and p < 0.0:
                p = 0.0
            r = abs(y - p)
            if r > res or r != r:
                res = r
            e2 += y * my[i]
            e1 += y * D[t, i]
    return res, 0.5 * e2 - e1


@njit(cache=True)
def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, cols):
    """Fill ``cols[(b*Ho + oh)*Wo + ow, (c*kh + i)*kw + j] = x_pad[b, c, oh*sh + i*dh, ow*sw + j*dw]``.

    ``x_pad`` is ``x`` zero-padded by ``ph`` rows and ``pw`` columns on each side (never materialised).
    """
    B, C, H, W = x.shape
    for b in range(B):
        for oh in range(Ho):
            for ow in range(Wo):
                t = (b * Ho + oh) * Wo + ow
                for c in range(C):
                    for i in range(kh):
                        h = oh * sh - ph + i * dh
                        for j in range(kw):
                            w = ow * sw - pw + j * dw
                            r = (c * kh + i) * kw + j
                            if h >= 0 and h < H and w >= 0 and w < W:
                                cols[t, r] = x[b, c, h, w]
                            else:
                                cols[t, r] = 0.0


@njit(cache=True)
def col2im(dcols, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, dx):
    """Adjoint of :func:`im2col`: ``dx`` (zeroed here) accumulates every ``dcols`` entry at its source pixel."""
    B, C, H, W = dx.shape
    dx[:] = 0.0
    for b in range(B):
        for oh in range(Ho):
            for ow in range(Wo):
                t = (b * Ho + oh) * Wo + ow
                for c in range(C):
                    for i in range(kh):
                        h = oh * sh - ph + i * dh
                        if h < 0 or h >= H:
                            continue
                        for j in range(kw):
                            w = ow * sw - pw + j * dw
                            if w >= 0 and w < W:
                                dx[b, c, h, w] += dcols[t, (c * kh + i) * kw + j]


@njit(cache=True)
def matmul_skip(A, B, out):
    """``out = A @ B`` (``A: [T, K]``, ``B: [K, N]``, both C-contiguous), row by row, skipping exact zeros of ``A``.

    Used where ``A`` is mostly zeros (ReLU outputs, im2col patches of blank image regions): each ``out[t]`` is a
    sum of AXPYs ``A[t, k] * B[k, :]`` over the non-zero ``A[t, k]`` in increasing ``k``.  Skipping a zero term
    leaves every sum unchanged.  Single-threaded and deterministic.
    """
    T, K = A.shape
    N = B.shape[1]
    for t in range(T):
        for n in range(N):
            out[t, n] = 0.0
        for k in range(K):
            a = A[t, k]
            if a != 0.0:
                for n in range(N):
                    out[t, n] += a * B[k, n]


@njit(cache=True)
def matmul_tn_skip(A, B, out):
    """``out = A.T @ B`` (``A: [T, K]``, ``B: [T, N]``), accumulated over ``t`` in increasing order, skipping exact
    zeros of ``A``.  Gives the Gram matrix ``Y^T Y`` and the weight gradients ``G^T cols`` without BLAS."""
    T, K = A.shape
    N = B.shape[1]
    for k in range(K):
        for n in range(N):
            out[k, n] = 0.0
    for t in range(T):
        for k in range(K):
            a = A[t, k]
            if a != 0.0:
                for n in range(N):
                    out[k, n] += a * B[t, n]


@njit(cache=True)
def encode_rows(x, W, b, has_bias, U):
    r"""``U[t, i] = sum_k x[t, k] W[i, k] (+ b[i])``: each sum in float64, over ``k`` in increasing order.

    The rows are taken ``_BLOCK_ROWS`` at a time, transposed, and every ``(t, i)`` sum of the block advances one
    term per instruction in a loop over the rows, which vectorises; each sum sees the same terms in the same
    order (each product rounded in the array dtype, accumulated in float64) as a plain per-row dot product.
    """
    B, n = x.shape
    m = W.shape[0]
    R = _BLOCK_ROWS
    xT = np.empty((n, R), dtype=x.dtype)
    acc = np.empty(R)
    for t0 in range(0, B, R):
        nr = min(R, B - t0)
        for r in range(nr):
            for k in range(n):
                xT[k, r] = x[t0 + r, k]
        for i in range(m):
            for r in range(nr):
                acc[r] = 0.0
            for k in range(n):
                w = W[i, k]
                for r in range(nr):
                    acc[r] += xT[k, r] * w
            for r in range(nr):
                U[t0 + r, i] = acc[r] + b[i] if has_bias else acc[r]


@njit(cache=True)
def linear_train_step(x, W, b, has_bias, M, eta, relu, tol, max_iter, reg, lr, lr_M, Y):
    r"""One whole training step of a single-``Linear``-encoder circuit, fused (the online / minibatch fast path).

    The same math as ``forward`` + ``loss`` + ``backward`` + ``step`` of the general path, in one call:

    * encoding :math:`u_t = W x_t + \beta`, fast dynamics into ``Y`` (``[B, m]``, zero on entry);
    * :math:`L = (2\sum M \odot C - 4 \sum y \odot u)/N - \|M\|^2/m + R` with :math:`C = Y^\top Y`, :math:`N = Bm`,
      ``reg`` 0 = "weight" (:math:`R = \tfrac2m(\|W\|^2 + \|\beta\|^2)`), 1 = "whiten" (:math:`R = \tfrac2N\|U\|^2`),
      2 = "none";
    * :math:`G = -\tfrac4N Y\ (+\tfrac4N U)`, :math:`\bar W = G^\top x\ (+\tfrac4m W)`,
      :math:`\bar\beta = \sum_t G_t\ (+\tfrac4m\beta)`, :math:`\bar M = \tfrac2N C - \tfrac2m M`;
    * in place: :math:`W \mathrel{-}= \mathrm{lr}\,\bar W`, :math:`\beta \mathrel{-}= \mathrm{lr}\,\bar\beta`,
      :math:`M \mathrel{+}= \mathrm{lr}_M \bar M`.

    Returns ``(L, iterations, max_change, converged, residual, energy, gW, gb, gM)``.
    """
    B, n = x.shape
    m = W.shape[0]
    U = np.empty((B, m), dtype=W.dtype)
    encode_rows(x, W, b, has_bias, U)
    MT = np.ascontiguousarray(M.T)
    iters, change, converged = fast_loop(MT, U, Y, eta, relu, tol, max_iter)
    res, energy = fixed_point_stats(MT, U, Y, relu)
    N = B * m
    C = np.empty((m, m), dtype=W.dtype)
    matmul_tn_skip(Y, Y, C)
    yMy = 0.0
    mm = 0.0
    for i in range(m):
        for j in range(m):
            yMy += M[i, j] * C[i, j]
            mm += M[i, j] * M[i, j]
    yu = 0.0
    uu = 0.0
    for t in range(B):
        for i in range(m):
            yu += Y[t, i] * U[t, i]
            uu += U[t, i] * U[t, i]
    L = (2.0 * yMy - 4.0 * yu) / N - mm / m
    if reg == 0:
        ww = 0.0
        for i in range(m):
            for k in range(n):
                ww += W[i, k] * W[i, k]
        bb = 0.0
        if has_bias:
            for i in range(m):
                bb += b[i] * b[i]
        L += ww * (2.0 / m) + bb * (2.0 / m)
    elif reg == 1:
        L += 2.0 * uu / N
    G = np.empty((B, m), dtype=W.dtype)
    for t in range(B):
        for i in range(m):
            g = Y[t, i] * (-4.0 / N)
            if reg == 1:
                g = g + U[t, i] * (4.0 / N)
            G[t, i] = g
    gW = np.empty((m, n), dtype=W.dtype)
    matmul_tn_skip(G, x, gW)
    gb = np.zeros(m, dtype=W.dtype)
    if has_bias:
        for t in range(B):
            for i in range(m):
                gb[i] += G[t, i]
    if reg == 0:
        for i in range(m):
            for k in range(n):
                gW[i, k] += W[i, k] * (4.0 / m)
            if has_bias:
                gb[i] += b[i] * (4.0 / m)
    gM = np.empty((m, m), dtype=W.dtype)
    for i in range(m):
        for j in range(m):
            gM[i, j] = C[i, j] * (2.0 / N) - M[i, j] * (2.0 / m)
    for i in range(m):
        for k in range(n):
            W[i, k] -= lr * gW[i, k]
        if has_bias:
            b[i] -= lr * gb[i]
        for j in range(m):
            M[i, j] += lr_M * gM[i, j]
    return L, iters, change, converged, res, energy, gW, gb, gM
