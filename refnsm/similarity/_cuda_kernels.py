r"""CUDA twins of the similarity-matching kernels (:mod:`refnsm.similarity._kernels`): the same names and arguments.

Open the two files side by side: :func:`fast_loop`, :func:`fast_step`, :func:`matmul_rows`, :func:`gradient_step`,
:func:`fixed_point_stats`, :func:`im2col`, :func:`col2im`, :func:`matmul_skip`, :func:`matmul_tn_skip` and the
fused :func:`linear_train_step` take C-contiguous float32/float64 device arrays (no validation: the circuits of
:mod:`refnsm.similarity.models` validate through :mod:`refnsm._backend`), write their outputs in place as the CPU
kernels do, and return the same scalars (as Python numbers) and, for :func:`linear_train_step`, device arrays.
Imported only when ``device="cuda"`` is asked for.

Deterministic: no atomics.  Every output element is written by one thread summing in a fixed order; matrix products
use the tiled product of :mod:`refnsm.cuda._primitives` (each entry summed over ``k = 0, 1, ...`` in order, the order
of the CPU's ``matmul_skip``/``matmul_tn_skip``); sums use one block with a fixed tree; maxima are exact.  Two runs
give bitwise-identical results.

Float32: every product, sum and comparison is formed in the dtype the CPU kernel forms it in, including the places
where the CPU kernels promote to float64 (the fast update ``y - eta (My - b)`` and the fused step's gradients are
computed in float64 and rounded once when stored); scalar losses, energies and changes are float64.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import cuda

from ..cuda import _primitives as prim
from ..cuda._arrays import empty as _empty

__all__ = [
    "fast_loop", "fast_step", "matmul_rows", "gradient_step", "fixed_point_stats", "im2col", "col2im",
    "matmul_skip", "matmul_tn_skip", "linear_train_step",
]

#: the tol > 0 fast loop runs this many updates per launch first, doubling up to CHUNK_MAX (see fast_loop)
CHUNK_FIRST = 4
CHUNK_MAX = 64


# ================================================================================================ kernels
@lru_cache(maxsize=None)
def _kernels(dtype):
    """The CUDA kernels for one float dtype (the dtype's zero is a constant of the kernels, as on the CPU).

    Every kernel here writes each output element from exactly one thread, which reads its inputs and sums (if it
    sums) sequentially in a fixed order: no atomics, no shared memory, no dependence on scheduling, hence bitwise
    repeatable.  2-D launches use :func:`refnsm.cuda._primitives.grid2` (x over the columns of the array named in
    each docstring), 1-D launches :func:`~refnsm.cuda._primitives.grid1`."""
    zero = prim._FT[np.dtype(dtype)](0.0)

    # ------------------------------------------------------------------ layout
    @cuda.jit
    def transpose(A, out):
        """out[j, i] = A[i, j]; one thread per element of out (x over its columns)."""
        i, j = cuda.grid(2)
        if j < out.shape[0] and i < out.shape[1]:
            out[j, i] = A[i, j]

    @cuda.jit
    def fill(a, v):
        """a[q] = v for a flat array; one thread per element."""
        q = cuda.grid(1)
        if q < a.shape[0]:
            a[q] = v

    # ------------------------------------------------------------------ fast dynamics
    @cuda.jit
    def loop_rows(MT, Dt, Ysrc, Yt, MYt, n, eta, relu, record_all, chg):
        r"""``n`` fast updates of every row, one thread per row ``t`` (channel-major arrays ``[m, T]``).

        Thread ``t`` copies column ``t`` of ``Ysrc`` to ``Yt`` (a no-op when they are the same array), then runs
        :math:`y \leftarrow P(y - \eta (M y - d))` ``n`` times on it, exactly as ``_kernels._row_update``:
        :math:`(My)_i = \sum_k y_k M^\top_{ki}` in the dtype over ``k = 0, 1, ...`` skipping exact zeros, written
        to ``MYt`` before ``y`` changes; the new value ``float(y_i) - eta * float((My)_i - d_i)`` in float64 (the
        CPU kernel's promotion), clamped at 0 for the ReLU, rounded once when stored; the change
        ``max_i |new - old|`` in float64, NaN-propagating.  An update that changed nothing ends the row (an exact
        fixed point: every later update would change nothing either).  ``chg[it, t]`` receives the change of
        every update (``record_all``; 0 after an early end) or ``chg[0, t]`` that of the last one.

        Deterministic: each row is one thread's sequential loop; rows never interact.  Channel-major storage makes
        the threads of a warp read and write consecutive addresses; ``MT`` is read at the same address by all of
        them (a broadcast).
        """
        t = cuda.grid(1)
        m = Yt.shape[0]
        if t < Yt.shape[1]:
            for i in range(m):
                Yt[i, t] = Ysrc[i, t]
            last = 0.0
            for it in range(n):
                for i in range(m):
                    acc = zero
                    for k in range(m):
                        v = Yt[k, t]
                        if v != zero:
                            acc += v * MT[k, i]
                    MYt[i, t] = acc
                c = 0.0
                for i in range(m):
                    old = Yt[i, t]
                    new = float(old) - eta * float(MYt[i, t] - Dt[i, t])
                    if relu and new < 0.0:
                        new = 0.0
                    Yt[i, t] = new
                    d = abs(new - float(old))
                    if d > c or d != d:
                        c = d
                last = c
                if record_all:
                    chg[it, t] = c
                if c == 0.0:
                    if record_all:
                        for q in range(it + 1, n):
                            chg[q, t] = 0.0
                    break
            if not record_all:
                chg[0, t] = last

    @cuda.jit
    def matmul_rows(MT, Y, out):
        """out[t, i] = sum_k Y[t, k] MT[k, i] (k increasing, zeros skipped); one thread per element (x over i)."""
        i, t = cuda.grid(2)
        m = Y.shape[1]
        if t < Y.shape[0] and i < m:
            acc = zero
            for k in range(m):
                v = Y[t, k]
                if v != zero:
                    acc += v * MT[k, i]
            out[t, i] = acc

    @cuda.jit
    def gradient_step(MT, D, Y, eta, out):
        """out[t, i] = float(Y[t, i]) - eta * float((M y_t)_i - D[t, i]); one thread per element (x over i)."""
        i, t = cuda.grid(2)
        m = Y.shape[1]
        if t < Y.shape[0] and i < m:
            acc = zero
            for k in range(m):
                v = Y[t, k]
                if v != zero:
                    acc += v * MT[k, i]
            out[t, i] = float(Y[t, i]) - eta * float(acc - D[t, i])

    @cuda.jit
    def fp_terms(MT, D, Y, relu, res, e2, e1):
        """Per-element terms of fixed_point_stats (float64, index q = t*m + i); one thread per element (x over i).

        res[0, q] = |y - P(y - (My - d))| (the projection argument formed in the dtype, the difference in float64, as
        the CPU kernel does), res[1, q] = 1 if y is NaN/Inf else 0 (the divergence flag, reduced by the same max
        pass), e2[q] = y (My)_i and e1[q] = y d_i formed in the dtype."""
        i, t = cuda.grid(2)
        m = Y.shape[1]
        if t < Y.shape[0] and i < m:
            acc = zero
            for k in range(m):
                v = Y[t, k]
                if v != zero:
                    acc += v * MT[k, i]
            y = Y[t, i]
            p = float(y - (acc - D[t, i]))
            if relu and p < 0.0:
                p = 0.0
            q = t * m + i
            res[0, q] = abs(float(y) - p)
            res[1, q] = 0.0 if math.isfinite(y) else 1.0
            e2[q] = float(y * acc)
            e1[q] = float(y * D[t, i])

    # ------------------------------------------------------------------ convolution
    @cuda.jit
    def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, cols):
        """cols[(b Ho + oh) Wo + ow, (c kh + i) kw + j] = x_pad[b, c, oh sh + i dh, ow sw + j dw]; one thread per
        element of cols (x over its columns).  A gather: exact."""
        r, t = cuda.grid(2)
        if t < cols.shape[0] and r < cols.shape[1]:
            H = x.shape[2]
            W = x.shape[3]
            ow = t % Wo
            oh = (t // Wo) % Ho
            b = t // (Wo * Ho)
            j = r % kw
            i = (r // kw) % kh
            c = r // (kw * kh)
            h = oh * sh - ph + i * dh
            w = ow * sw - pw + j * dw
            if h >= 0 and h < H and w >= 0 and w < W:
                cols[t, r] = x[b, c, h, w]
            else:
                cols[t, r] = zero

    @cuda.jit
    def col2im(dcols, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, dx):
        """Adjoint of im2col as a gather: one thread per pixel of dx sums every dcols entry taken from it.

        The pixel ``(b, c, h, w)`` receives ``dcols[(b Ho + oh) Wo + ow, (c kh + i) kw + j]`` for every
        ``oh sh + i dh = h + ph`` and ``ow sw + j dw = w + pw`` in range.  Looping ``i`` and ``j`` downwards visits
        ``(oh, ow)`` in increasing lexicographic order, which is the order in which the CPU's scatter adds them: the
        sum (in the dtype, from 0) is bitwise the CPU's.  No atomics: each pixel is one thread's sum."""
        q = cuda.grid(1)
        B, C, H, W = dx.shape
        if q < B * C * H * W:
            w = q % W
            h = (q // W) % H
            c = (q // (W * H)) % C
            b = q // (W * H * C)
            acc = zero
            for i in range(kh - 1, -1, -1):
                a = h + ph - i * dh
                if a < 0 or a % sh != 0:
                    continue
                oh = a // sh
                if oh >= Ho:
                    continue
                for j in range(kw - 1, -1, -1):
                    e = w + pw - j * dw
                    if e < 0 or e % sw != 0:
                        continue
                    ow = e // sw
                    if ow >= Wo:
                        continue
                    acc += dcols[(b * Ho + oh) * Wo + ow, (c * kh + i) * kw + j]
            dx[b, c, h, w] = acc

    # ------------------------------------------------------------------ fused linear training step
    @cuda.jit
    def linear_encode(x, W, b, has_bias, U):
        """U[t, i] = sum_k x[t, k] W[i, k] (+ b[i]): products in the dtype, the sum in float64 over k in order, as
        the CPU's fused kernel; one thread per element (x over i)."""
        i, t = cuda.grid(2)
        if t < U.shape[0] and i < U.shape[1]:
            s = 0.0
            for k in range(x.shape[1]):
                s += float(x[t, k] * W[i, k])
            U[t, i] = s + float(b[i]) if has_bias else s

    @cuda.jit
    def fused_g(Y, U, c1, c2, whiten, G):
        """G = float(Y) c1 (+ float(U) c2 for "whiten") in float64, rounded once (flat arrays, one thread each)."""
        q = cuda.grid(1)
        if q < G.shape[0]:
            g = float(Y[q]) * c1
            if whiten:
                g = g + float(U[q]) * c2
            G[q] = g

    @cuda.jit
    def decay_add(g, p, c):
        """g += float(p) c in float64, rounded once (flat arrays, one thread each)."""
        q = cuda.grid(1)
        if q < g.shape[0]:
            g[q] = float(g[q]) + float(p[q]) * c

    @cuda.jit
    def grad_m(C, M, c1, c2, gM):
        """gM = float(C) c1 - float(M) c2 in float64, rounded once (flat arrays, one thread each)."""
        q = cuda.grid(1)
        if q < gM.shape[0]:
            gM[q] = float(C[q]) * c1 - float(M[q]) * c2

    @cuda.jit
    def axpy(p, g, a):
        """p += a float(g) in float64, rounded once (a = -lr: descent; a = lr_M: ascent; flat, one thread each)."""
        q = cuda.grid(1)
        if q < p.shape[0]:
            p[q] = float(p[q]) + a * float(g[q])

    @cuda.jit
    def col_sums(G, out):
        """out[i] = sum_t G[t, i] in the dtype, t increasing; one thread per column."""
        i = cuda.grid(1)
        if i < G.shape[1]:
            acc = zero
            for t in range(G.shape[0]):
                acc += G[t, i]
            out[i] = acc

    # ------------------------------------------------------------------ circuit plumbing (sample-major [T, m])
    @cuda.jit
    def add_into(D, U, first):
        """D = 0 + U (first) or D + U, elementwise in the dtype (flat arrays, one thread each)."""
        q = cuda.grid(1)
        if q < D.shape[0]:
            D[q] = (zero + U[q]) if first else (D[q] + U[q])

    @cuda.jit
    def repeat_rows(U, S, out):
        """out[t, i] = U[t // S, i]: a per-sample drive repeated at every spatial position (x over i)."""
        i, t = cuda.grid(2)
        if t < out.shape[0] and i < out.shape[1]:
            out[t, i] = U[t // S, i]

    @cuda.jit
    def to_internal(x3, out):
        """out[b S + s, i] = x3[b, i, s]: [B, m, S] -> sample-major [B S, m] (one thread per element, x over i)."""
        i, t = cuda.grid(2)
        S = x3.shape[2]
        if t < out.shape[0] and i < out.shape[1]:
            out[t, i] = x3[t // S, i, t % S]

    @cuda.jit
    def from_internal(U, out3):
        """out3[b, i, s] = U[b S + s, i]: sample-major [B S, m] -> [B, m, S] (one thread per element, x over i)."""
        i, t = cuda.grid(2)
        S = out3.shape[2]
        if t < U.shape[0] and i < U.shape[1]:
            out3[t // S, i, t % S] = U[t, i]

    @cuda.jit
    def scale(A, c, out):
        """out = A c in the dtype (flat arrays, one thread each)."""
        q = cuda.grid(1)
        if q < out.shape[0]:
            out[q] = A[q] * c

    @cuda.jit
    def add_scaled(G, U, c, out):
        """out = G + U c in the dtype (flat arrays, one thread each)."""
        q = cuda.grid(1)
        if q < out.shape[0]:
            out[q] = G[q] + U[q] * c

    @cuda.jit
    def bias_add(U, b):
        """U[t, i] += b[i] in the dtype (one thread per element, x over i)."""
        i, t = cuda.grid(2)
        if t < U.shape[0] and i < U.shape[1]:
            U[t, i] = U[t, i] + b[i]

    @cuda.jit
    def sum_positions(G, S, out):
        """out[b, i] = sum_s G[b S + s, i] in the dtype, s increasing; one thread per element of out (x over i)."""
        i, b = cuda.grid(2)
        if b < out.shape[0] and i < out.shape[1]:
            acc = zero
            for s in range(S):
                acc += G[b * S + s, i]
            out[b, i] = acc

    return dict(transpose=transpose, fill=fill, loop_rows=loop_rows, matmul_rows=matmul_rows,
                gradient_step=gradient_step, fp_terms=fp_terms, im2col=im2col, col2im=col2im,
                linear_encode=linear_encode, fused_g=fused_g, decay_add=decay_add, grad_m=grad_m, axpy=axpy,
                col_sums=col_sums, add_into=add_into, repeat_rows=repeat_rows, to_internal=to_internal,
                from_internal=from_internal, scale=scale, add_scaled=add_scaled, bias_add=bias_add,
                sum_positions=sum_positions)


#: segment length of the two-pass maxima (exact whatever it is: a maximum does not depend on the order)
SEG = 2 * prim.TPB


@cuda.jit
def _segment_max(a, L, part):
    """part[r, g] = max(0, max a[r, gL : (g+1)L]), NaN-propagating; one thread per (row r, segment g), x over g.

    First pass of the row maxima: no shared memory, no atomics; a maximum is exact, so the two passes give the
    CPU loop's value (NaN as soon as one change is NaN)."""
    g, r = cuda.grid(2)
    T = a.shape[1]
    if r < a.shape[0] and g < part.shape[1]:
        acc = 0.0
        end = (g + 1) * L
        if end > T:  # (no min(): NVVM-compilable without a device)
            end = T
        for t in range(g * L, end):
            v = a[r, t]
            if acc == acc and (v > acc or v != v):
                acc = v
        part[r, g] = acc


@cuda.jit
def _scan_max(part, out):
    """out[r] = NaN-propagating max of part[r, :] (from 0); one thread per row, scanning in order."""
    r = cuda.grid(1)
    if r < part.shape[0]:
        acc = 0.0
        for g in range(part.shape[1]):
            v = part[r, g]
            if acc == acc and (v > acc or v != v):
                acc = v
        out[r] = acc


@cuda.jit
def _products(a, b, out):
    """out[q] = float(a[q] b[q]): the product in the arrays' dtype, stored in float64 (flat, one thread each)."""
    q = cuda.grid(1)
    if q < out.shape[0]:
        out[q] = float(a[q] * b[q])


# ================================================================================================ host helpers
def _k(a):
    return _kernels(a.dtype)


def _ft(a):
    return prim._FT[np.dtype(a.dtype)]


def _flat(a):
    return a.reshape(a.size) if a.ndim != 1 else a


def _zeros(shape, dtype):
    a = _empty(shape, dtype)
    if a.size:
        b, t = prim.grid1(a.size)
        _kernels(dtype)["fill"][b, t](_flat(a), prim._FT[np.dtype(dtype)](0.0))
    return a


def _launch1(name, n, dtype, *args):
    if n:
        b, t = prim.grid1(n)
        _kernels(dtype)[name][b, t](*args)


def _launch2(name, rows, cols, dtype, *args):
    if rows and cols:
        b, t = prim.grid2(rows, cols)
        _kernels(dtype)[name][b, t](*args)


def _transpose_into(A, out):
    _launch2("transpose", out.shape[0], out.shape[1], A.dtype, A, out)
    return out


def _transpose(A):
    return _transpose_into(A, _empty((A.shape[1], A.shape[0]), A.dtype))


def _max_rows(a):
    """Host vector of the NaN-propagating maxima (from 0) of the rows of a float64 device array [K, T]."""
    K, T = a.shape
    if T == 0 or K == 0:
        return np.zeros(K)
    ng = (T + SEG - 1) // SEG
    part = _empty((K, ng), np.float64)
    b, t = prim.grid2(K, ng)
    _segment_max[b, t](a, SEG, part)
    out = _empty(K, np.float64)
    b, t = prim.grid1(K)
    _scan_max[b, t](part, out)
    return out.copy_to_host()


def _dot(a, b):
    """Deterministic float64 sum of the elementwise products (formed in the dtype) of two device arrays: the
    products into a float64 vector, summed by :func:`refnsm.cuda._primitives.sum_reduce` (fixed tree)."""
    if a.size == 0:
        return 0.0
    terms = _empty(a.size, np.float64)
    b1, t1 = prim.grid1(a.size)
    _products[b1, t1](_flat(a), _flat(b), terms)
    return prim.sum_reduce(terms)


def _matmul_into(A, B, out, trans_a, trans_b):
    """out = op(A) op(B) by the tiled product of :mod:`refnsm.cuda._primitives` (each entry summed over k in order)."""
    n, m = out.shape
    if n and m:
        blocks = (max(1, (m + prim.TILE - 1) // prim.TILE), max(1, (n + prim.TILE - 1) // prim.TILE))
        prim.matmul_kernel(A.dtype)[blocks, (prim.TILE, prim.TILE)](A, B, out, bool(trans_a), bool(trans_b))
    return out


# ======================================================================================= kernel twins
def fast_loop(MT, D, Y, eta, relu, tol, max_iter):
    r"""Twin of ``_kernels.fast_loop``: the fast dynamics in place on the device ``Y`` ([T, m], normally 0).

    For :math:`t = 0, 1, \dots` up to ``max_iter - 1``, :math:`y^{t+1} = P(y^t - \eta (M y^t - D))` on every row;
    stops after update :math:`t \ge 1` when :math:`\max |y^{t+1} - y^t| < \mathrm{tol}` over all rows (``tol = 0``
    never stops early).  Returns ``(iterations, max_change, converged)`` as the CPU kernel does.

    Layout: one thread per row (:func:`loop_rows` on channel-major copies of ``D`` and ``Y``), because the
    rows never interact and ``m`` is small: a thread runs all its updates without synchronising with anyone.

    * ``tol = 0``: one launch runs all ``max_iter`` updates of every row; ``max_change`` is the largest change of the
      rows' last updates (a deterministic max reduction).
    * ``tol > 0``: the stopping rule is global, so the updates run in chunks (``CHUNK_FIRST`` updates, doubling up to
      ``CHUNK_MAX``), each thread recording the change of every update; a reduction gives the per-update maxima,
      and the host applies pynsm's rule to them in order.  When it fires at update ``j`` of a chunk, the chunk is
      re-run from its saved starting state for exactly ``j + 1`` updates (the same arithmetic, so the same bits),
      so ``Y`` holds precisely the state after the stopping update, as on the CPU.
    """
    T, m = Y.shape
    if max_iter <= 0:
        return 0, 0.0, False
    kk = _k(Y)
    Dt = _transpose(D)
    Ya = _transpose(Y)
    MYt = _empty((m, T), Y.dtype)
    b1, t1 = prim.grid1(T)
    if tol > 0.0:
        Yb = _empty((m, T), Y.dtype)
        chg = _empty((min(CHUNK_MAX, max_iter), T), np.float64)  # one buffer for every chunk
        it0, chunk, change = 0, CHUNK_FIRST, 0.0
        while it0 < max_iter:
            n = min(chunk, max_iter - it0)
            if T:
                kk["loop_rows"][b1, t1](MT, Dt, Ya, Yb, MYt, n, float(eta), bool(relu), True, chg)
            maxes = _max_rows(chg[:n])
            for j in range(n):
                change = float(maxes[j])
                if it0 + j >= 1 and change < tol:
                    if j + 1 < n and T:  # back to the chunk's start, exactly j + 1 updates
                        kk["loop_rows"][b1, t1](MT, Dt, Ya, Yb, MYt, j + 1, float(eta), bool(relu), False, chg)
                    _transpose_into(Yb, Y)
                    return it0 + j + 1, change, True
            Ya, Yb = Yb, Ya
            it0 += n
            chunk = min(2 * chunk, CHUNK_MAX)
        _transpose_into(Ya, Y)
        return max_iter, change, False
    chg = _empty((1, T), np.float64)
    if T:
        kk["loop_rows"][b1, t1](MT, Dt, Ya, Ya, MYt, int(max_iter), float(eta), bool(relu), False, chg)
    change = float(_max_rows(chg)[0])
    _transpose_into(Ya, Y)
    return int(max_iter), change, False


def fast_step(MT, D, Y, eta, relu):
    """Twin of ``_kernels.fast_step``: one update of every row of the device ``Y`` in place; returns the max change."""
    T, m = Y.shape
    Dt = _transpose(D)
    Yt = _transpose(Y)
    chg = _empty((1, T), np.float64)
    if T:
        b, t = prim.grid1(T)
        _k(Y)["loop_rows"][b, t](MT, Dt, Yt, Yt, _empty((m, T), Y.dtype), 1, float(eta), bool(relu), False, chg)
    _transpose_into(Yt, Y)
    return float(_max_rows(chg)[0])


def matmul_rows(MT, Y, out):
    """Twin of ``_kernels.matmul_rows``: ``out[t] = M @ Y[t]`` (summed over k in order, zeros skipped)."""
    _launch2("matmul_rows", Y.shape[0], Y.shape[1], Y.dtype, MT, Y, out)


def gradient_step(MT, D, Y, eta, out):
    """Twin of ``_kernels.gradient_step``: ``out = Y - eta (M Y - D)`` row by row (the un-projected step)."""
    _launch2("gradient_step", Y.shape[0], Y.shape[1], Y.dtype, MT, D, Y, float(eta), out)


def fixed_point_stats(MT, D, Y, relu):
    r"""Twin of ``_kernels.fixed_point_stats``: ``(residual, energy)`` of the device state ``Y`` ([T, m]).

    ``residual = max |y - P(y - (M y - D))|`` (an exact max reduction), ``energy = 1/2 sum(y * My) - sum(y * D)``
    (float64 sums of terms formed in the dtype, by the deterministic single-block reduction)."""
    return _fixed_point_stats(MT, D, Y, relu)[:2]


def _fixed_point_stats(MT, D, Y, relu):
    """``(residual, energy, diverged)``: :func:`fixed_point_stats` and whether ``Y`` holds NaN/Inf, in one pass."""
    T, m = Y.shape
    n = T * m
    if n == 0:
        return 0.0, 0.0, False
    res = _empty((2, n), np.float64)
    e2 = _empty(n, np.float64)
    e1 = _empty(n, np.float64)
    _launch2("fp_terms", T, m, Y.dtype, MT, D, Y, bool(relu), res, e2, e1)
    r, bad = _max_rows(res)
    return float(r), 0.5 * prim.sum_reduce(e2) - prim.sum_reduce(e1), bool(bad > 0)


def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, cols):
    """Twin of ``_kernels.im2col``: fill the device ``cols`` with the (zero-padded) patches of ``x``."""
    _launch2("im2col", cols.shape[0], cols.shape[1], cols.dtype, x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, cols)


def col2im(dcols, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, dx):
    """Twin of ``_kernels.col2im``: ``dx`` (overwritten) receives the adjoint of :func:`im2col` of ``dcols``."""
    _launch1("col2im", dx.size, dx.dtype, dcols, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, dx)


def matmul_skip(A, B, out):
    """Twin of ``_kernels.matmul_skip``: ``out = A @ B`` (dense on the GPU; each entry summed over k in order)."""
    _matmul_into(A, B, out, False, False)


def matmul_tn_skip(A, B, out):
    """Twin of ``_kernels.matmul_tn_skip``: ``out = A.T @ B`` (dense on the GPU; summed over t in order)."""
    _matmul_into(A, B, out, True, False)


def linear_train_step(x, W, b, has_bias, M, eta, relu, tol, max_iter, reg, lr, lr_M, Y):
    r"""Twin of ``_kernels.linear_train_step``: one fused training step of a single-``Linear`` circuit.

    The same math and the same order of operations as the CPU kernel (see its docstring): the encoding
    :math:`U = x W^\top + \beta` (:func:`linear_encode`, float64 sums), the fast dynamics into ``Y`` (:func:`fast_loop`),
    :func:`fixed_point_stats`, :math:`C = Y^\top Y`, the loss (float64 sums of dtype products), the gradients
    :math:`G`, :math:`\bar W = G^\top x (+\tfrac4m W)`, :math:`\bar\beta`, :math:`\bar M = \tfrac2N C - \tfrac2m M`,
    and the in-place updates of the device arrays ``W``, ``b`` and ``M``.

    Returns ``(L, iterations, max_change, converged, residual, energy, gW, gb, gM)``, the gradients as device arrays.
    """
    B, n = x.shape
    m = W.shape[0]
    dt = W.dtype
    bk = b if has_bias else _empty(1, dt)  # kernels get a real (unused) array when there is no bias
    U = _empty((B, m), dt)
    _launch2("linear_encode", B, m, dt, x, W, bk, bool(has_bias), U)
    MT = _transpose(M)
    iters, change, converged = fast_loop(MT, U, Y, eta, relu, tol, max_iter)
    res, energy = fixed_point_stats(MT, U, Y, relu)
    N = B * m
    C = _empty((m, m), dt)
    matmul_tn_skip(Y, Y, C)
    yMy, mm, yu = _dot(M, C), _dot(M, M), _dot(Y, U)
    L = (2.0 * yMy - 4.0 * yu) / N - mm / m
    if reg == 0:
        bb = _dot(b, b) if has_bias else 0.0
        L += _dot(W, W) * (2.0 / m) + bb * (2.0 / m)
    elif reg == 1:
        L += 2.0 * _dot(U, U) / N
    G = _empty((B, m), dt)
    _launch1("fused_g", B * m, dt, _flat(Y), _flat(U), -4.0 / N, 4.0 / N, reg == 1, _flat(G))
    gW = _empty((m, n), dt)
    matmul_tn_skip(G, x, gW)
    gb = _zeros(m, dt)
    if has_bias:
        _launch1("col_sums", m, dt, G, gb)
    if reg == 0:
        _launch1("decay_add", m * n, dt, _flat(gW), _flat(W), 4.0 / m)
        if has_bias:
            _launch1("decay_add", m, dt, gb, b, 4.0 / m)
    gM = _empty((m, m), dt)
    _launch1("grad_m", m * m, dt, _flat(C), _flat(M), 2.0 / N, 2.0 / m, _flat(gM))
    _launch1("axpy", m * n, dt, _flat(W), _flat(gW), -float(lr))
    if has_bias:
        _launch1("axpy", m, dt, b, gb, -float(lr))
    _launch1("axpy", m * m, dt, _flat(M), _flat(gM), float(lr_M))
    return L, iters, change, converged, res, energy, gW, gb, gM
