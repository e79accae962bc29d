r"""Functional core of the regularizers: value functions and their VJPs.

Every function here takes plain arrays, validates them (:mod:`refnsm._checks`), never writes to them, and
returns a NumPy scalar in the input's float dtype (float32 kept).  ``f_vjp(grad_out, *args)`` returns
:math:`\bar y \, \partial f / \partial x` in the same dtype as ``x``.

Norms follow ``torch.linalg.norm(x, ord=p)`` (the function neurotorch's ``Lp`` calls) when
``mode="neurotorch"`` (the default):

=================  ==========================================  ===============================================
``p``              1-D ``x`` (vector norm)                      2-D ``P`` (induced matrix norm)
=================  ==========================================  ===============================================
``1``              :math:`\sum_k |x_k|`                          :math:`\max_j \sum_i |P_{ij}|` (max column sum)
``-1``             :math:`(\sum_k |x_k|^{-1})^{-1}`              :math:`\min_j \sum_i |P_{ij}|`
``2``              :math:`(\sum_k x_k^2)^{1/2}`                  :math:`\sigma_{\max}(P)` (spectral norm)
``-2``             :math:`(\sum_k x_k^{-2})^{-1/2}`              :math:`\sigma_{\min}(P)`
``inf``            :math:`\max_k |x_k|`                          :math:`\max_i \sum_j |P_{ij}|` (max row sum)
``-inf``           :math:`\min_k |x_k|`                          :math:`\min_i \sum_j |P_{ij}|`
``'fro'``          error                                         :math:`\|P\|_F = (\sum_{ij} P_{ij}^2)^{1/2}`
``'nuc'``          error                                         :math:`\sum_k \sigma_k(P)`
=================  ==========================================  ===============================================

``mode="entrywise"`` flattens any array and applies the vector norm (so ``p=1`` is :math:`\sum |P_{ij}|` and
``p=2`` is :math:`\|P\|_F`), which is what the names "L1"/"L2" usually mean.

Gradients (torch's subgradient conventions at the non-smooth points)
--------------------------------------------------------------------
* vector :math:`p=\pm1,\pm2`: :math:`\partial n_p/\partial x_k = \mathrm{sign}(x_k)\,|x_k|^{p-1}\, n_p^{1-p}`,
  with :math:`\mathrm{sign}(0)=0`, and the whole gradient 0 when :math:`n_p = 0` (e.g. :math:`x=0`, or a zero
  entry when :math:`p<0`).
* :math:`\max`/:math:`\min` (vector :math:`\pm\infty`, matrix :math:`\pm1, \pm\infty`): the gradient of the
  selected entry, column or row is :math:`\mathrm{sign}(\cdot)`; with :math:`k` exactly tied maxima (minima)
  each receives :math:`1/k` of it (torch's ``amax``/``amin`` backward).
* spectral :math:`\pm2`: :math:`u_1 v_1^\top`; with :math:`k` exactly tied extreme singular values, the mean
  :math:`\frac1k\sum_{l\in\text{tie}} u_l v_l^\top`.  At a repeated singular value the individual singular
  vectors are not unique but the mean over the whole tie is.  At :math:`P=0` (or :math:`\sigma_{\min}=0` with a
  tie) the result depends on LAPACK's arbitrary singular vectors: **undefined**, not golden-tested.
* ``'fro'``: :math:`P/\|P\|_F` (0 at :math:`P=0`); ``'nuc'``: :math:`U V^\top` (reduced SVD; undefined when
  :math:`P` is rank deficient).

Device: every function takes ``device="cpu"`` (default) or ``"cuda"``.  With ``"cuda"`` the arguments may be numba
device arrays; they are copied to the host, where the value and the gradient are computed (the parameters of a
connectome are matrix-sized, and the spectral norms need LAPACK's SVD), and array results go back to the device when
an input was a device array.  There is no CUDA twin of these kernels yet (``docs/cuda.md``).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _backend
from .. import _checks
from . import _kernels as K


def _on_host(device, *arrays):
    """``(xp, host arrays)``: the device's array namespace (results go back through it) and host copies."""
    xp = _backend.arrays(device, *arrays)
    return xp, [xp.to_host(a) for a in arrays]

__all__ = [
    "VALID_P",
    "lp_norm",
    "lp_norm_vjp",
    "dale_law_l2",
    "dale_law_l2_vjp",
    "exc_ratio_loss",
    "exc_ratio_loss_vjp",
    "weights_distance",
    "weights_distance_vjp",
]

VALID_P = (1, -1, 2, -2, math.inf, -math.inf, "fro", "nuc")
MODES = ("neurotorch", "entrywise")
SIGN_FUNCS = ("softsign", "sign")


# --------------------------------------------------------------------------------------------------- validation
def check_p(p, name: str = "p"):
    """Normalise ``p`` to one of :data:`VALID_P` (ints for finite orders, ``math.inf`` for infinity)."""
    if isinstance(p, str):
        if p in ("fro", "nuc"):
            return p
    elif isinstance(p, (numbers.Real, np.integer, np.floating)) and not isinstance(p, (bool, np.bool_)):
        v = float(p)
        if v in (1.0, -1.0, 2.0, -2.0):
            return int(v)
        if math.isinf(v):
            return v
    raise ValueError(
        f"{name}: expected one of 1, -1, 2, -2, inf, -inf, 'fro', 'nuc'; got {_checks._describe(p)}"
    )


def check_p_for(p, ndim: int, mode: str, name: str = "p"):
    """Check that ``p`` applies to an array of rank ``ndim`` (after :func:`check_p`)."""
    if mode == "neurotorch" and ndim == 1 and p in ("fro", "nuc"):
        raise ValueError(f"{name}: {p!r} is a matrix norm and needs a 2-D parameter, got a 1-D one "
                         "(torch.linalg.norm raises here too)")
    if mode == "entrywise" and p == "nuc":
        raise ValueError(f"{name}: 'nuc' is a matrix norm and has no entrywise version (mode='entrywise')")


def check_norm_input(x, name: str, mode: str) -> np.ndarray:
    """Convert ``x`` (finiteness checked later, fused with the computation); rank 1-2 for mode='neurotorch'."""
    arr = _checks.as_float_array(x, name, finite=False, allow_empty=False)
    if mode == "neurotorch" and arr.ndim not in (1, 2):
        raise ValueError(
            f"{name}: expected a 1-D (vector norm) or 2-D (matrix norm) array, got shape {arr.shape} "
            "(torch.linalg.norm without dim accepts only these; use mode='entrywise' to flatten)"
        )
    if mode == "entrywise" and arr.ndim == 0:
        raise ValueError(f"{name}: expected at least 1 dimension, got a 0-d array")
    return arr


# --------------------------------------------------------------------------------------------------- norms
def _scaled_two_norm(x: np.ndarray, name: str) -> float:
    """sqrt(sum x^2) of a flat float array, checked finite (``ValueError`` naming ``name`` otherwise).

    One pass (:func:`refnsm.regularization._kernels.sum_squares`, float64 squares) when the sum of squares lies in
    [1e-280, 1e280]; outside (squares that underflow to subnormals or 0 and lose their digits, or overflow), the
    entries are scaled by the largest magnitude first.  A NaN or Inf entry makes the sum non-finite, so the check
    costs no pass of its own.
    """
    s = K.sum_squares(x) if x.size else 0.0
    if 1e-280 <= s <= 1e280:
        return float(math.sqrt(s))
    _checks.check_finite(x, name)
    a = np.abs(x.astype(np.float64, copy=False))
    amax = float(a.max()) if a.size else 0.0
    if amax == 0.0:
        return 0.0
    b = a / amax
    return amax * float(math.sqrt(np.dot(b, b)))


def _vector_norm(x: np.ndarray, p, want_grad: bool, name: str):
    """Vector p-norm of a flat array (finite), its gradient (float64) or None."""
    _checks.check_finite(x, name)
    a = np.abs(x.astype(np.float64, copy=False))
    g = None
    if p == 1:
        v = float(a.sum())
        if want_grad:
            g = np.sign(x).astype(np.float64)
    elif p == 2:
        v = _scaled_two_norm(x, name)
        if want_grad:
            g = x.astype(np.float64) / v if v > 0 else np.zeros(x.shape)
    elif math.isinf(p):
        v = float(a.max() if p > 0 else a.min())
        if want_grad:
            w = K.tie_weights(a, v, 1.0)
            g = np.sign(x) * w
    else:  # p = -1 or -2
        if np.any(a == 0.0):
            v = 0.0
            if want_grad:
                g = np.zeros(x.shape)
        else:
            # scaled by the largest |x_k| (and the gradient formed as (|x|/v)^(p-1)): a^p overflows for tiny
            # entries and v^(1-p) for huge ones, where the norm itself is representable
            amax = float(a.max())
            v = amax * float(np.sum((a / amax) ** p) ** (1.0 / p))
            if want_grad:
                g = np.sign(x) * (a / v) ** (p - 1)
    return v, g


def _svd(P: np.ndarray, name: str, uv: bool):
    _checks.check_finite(P, name)
    if uv:
        return np.linalg.svd(P, full_matrices=False)
    return np.linalg.svd(P, compute_uv=False)


_GAP = 1e-4  # relative gap (sigma_1 - sigma_2) / sigma_1 below which the spectral gradient uses the full SVD
_RESID = 64.0 * np.finfo(np.float64).eps  # eigen-residual / (n lambda_1) above which the fast path is not trusted


def _spectral_value_grad(P: np.ndarray, name: str, scale: float = 1.0):
    r""":math:`\sigma_{\max}(P)` and its gradient :math:`u_1 v_1^\top` without the full SVD when it is safe.

    The top singular pair is the top eigenpair of the smaller Gram matrix :math:`G` (:math:`P^\top P` or
    :math:`PP^\top`, formed by BLAS ``syrk`` in float64).  LAPACK's ``sytrd`` reduces it to tridiagonal form
    :math:`G = QTQ^\top`; :func:`refnsm.regularization._kernels.tridiagonal_top_eigpair` then bisects :math:`T`
    for :math:`\lambda_1` and a bracket of :math:`\lambda_2`, finds :math:`T`'s top eigenvector by inverse
    iteration and maps it back through :math:`Q` (what LAPACK's ``syevx`` does for a subset of eigenpairs, without
    its overhead on small matrices).  With the eigenvector :math:`x` of :math:`\lambda_1`, :math:`\sigma_1 = \|Px\|`
    (second-order accurate in the error of :math:`x`) and the other singular vector is :math:`Px/\sigma_1`.

    The top eigenvector of :math:`G` is as well conditioned as the top singular vector of :math:`P` (relative gaps
    :math:`(\lambda_1-\lambda_2)/\lambda_1 \approx 2(\sigma_1-\sigma_2)/\sigma_1`), so the result agrees with the
    full SVD to :math:`\sim\varepsilon/\mathrm{gap}`.  It is used when :math:`\lambda_1 - \lambda_2 > 2\cdot10^{-4}
    \lambda_1` (with the upper end of :math:`\lambda_2`'s bracket) and the eigen-residual is at rounding level,
    :math:`\|Tz - \lambda_1 z\| \le 64\, n\, \varepsilon \lambda_1`, so that Davis-Kahan bounds the eigenvector's
    angle error by :math:`\|r\|/(\lambda_1-\lambda_2) \le 0.32\, n\, \varepsilon \cdot 10^{4}`.  Otherwise (ties,
    near-ties, a single row or column, overflow in :math:`G`) the full SVD and torch's mean-over-the-tie rule are
    used.  The gradient comes back times ``scale`` (folded into the singular vector, not a pass over the matrix).
    """
    from scipy.linalg import blas, lapack

    _checks.check_finite(P, name)
    if min(P.shape) >= 2:
        Pd = np.ascontiguousarray(P, dtype=np.float64)  # float32 input: computed in float64, returned in float32
        wide = P.shape[1] > P.shape[0]
        # Pd.T is Pd's memory read as a Fortran array: syrk(trans=0) gives P^T P, trans=1 gives P P^T (lower part)
        G = blas.dsyrk(1.0, Pd.T, trans=1 if wide else 0, lower=1)
        # a workspace of 64 n lets sytrd use its blocked (syr2k) reduction; SciPy's default, n, forces the unblocked
        # one (rank-2 updates, memory-bound): 256x256 1.2 ms instead of 23 ms, 2048x2048 0.32 s instead of 0.57 s
        c, d, e, tau, info = lapack.dsytrd(G, lower=1, lwork=64 * G.shape[0], overwrite_a=1)
        if info == 0:
            x = np.empty(d.shape[0])
            lam1, lam2_hi, resid = K.tridiagonal_top_eigpair(d, e, tau, c.T, x, 2.0 * _GAP)
            if lam1 > 0 and lam1 - lam2_hi > 2.0 * _GAP * lam1 and resid <= _RESID * x.shape[0] * lam1:
                # y = x P (wide) or P x, by SciPy's gemv: the library of syrk and sytrd above.  NumPy's np.dot
                # would wake NumPy's own OpenBLAS thread pool while SciPy's threads still spin (1024x1024 on 2
                # cores: 62-76 ms instead of 36 ms; docs/contributing.md, "One BLAS per hot path")
                y = blas.dgemv(1.0, Pd.T, x, trans=0 if wide else 1)
                s1 = float(np.sqrt(blas.ddot(y, y)))
                y /= s1
                if scale != 1.0:
                    y *= scale
                g = np.multiply.outer(x, y) if wide else np.multiply.outer(y, x)
                return s1, g.astype(P.dtype, copy=False)
    U, s, Vt = _svd(P, name, True)
    tie = np.flatnonzero(s == s[0])
    if tie.size == 1:
        g = np.multiply.outer(U[:, 0], Vt[0])
    else:
        g = np.dot(U[:, tie], Vt[tie]) / P.dtype.type(tie.size)  # torch: mean over the tie
    if scale != 1.0:
        g *= g.dtype.type(scale)
    return float(s[0]), g


def _matrix_norm(P: np.ndarray, p, want_grad: bool, name: str, scale: float = 1.0):
    """Induced/Frobenius/nuclear matrix norm of a 2-D array, its gradient times ``scale`` (P's dtype) or None.

    The scale is written with the gradient where a kernel writes it (induced and Frobenius norms, the spectral
    norm's fast path), and applied after the fact otherwise."""
    g = None
    if p in (1, -1) or (isinstance(p, float) and math.isinf(p)):
        G = np.empty_like(P) if want_grad else np.empty((0, 0), P.dtype)
        v, finite = K.induced_norm_grad(P, p in (1, -1), p > 0, want_grad, G, scale)
        if not finite:  # a NaN/Inf entry (raises, naming it) or a sum that overflowed: the step-by-step path
            _checks.check_finite(P, name)
            by_cols = p in (1, -1)
            sums = np.empty(P.shape[1] if by_cols else P.shape[0])
            (K.abs_col_sums if by_cols else K.abs_row_sums)(P, sums)
            v = sums.max() if p > 0 else sums.min()  # an Inf max is refused by the result guard
            if want_grad:
                (K.sign_times_col_weights if by_cols else K.sign_times_row_weights)(P, K.tie_weights(sums, v, scale),
                                                                                    G)
        v = float(v)
        g = G if want_grad else None
    elif p == "fro":
        v = _scaled_two_norm(P.reshape(-1), name)
        if want_grad:
            g = np.empty_like(P) if v > 0 else np.zeros_like(P)
            if v > 0:
                c = scale / v  # the gradient P * (scale / ||P||) written in one pass
                if math.isfinite(c):
                    K.scaled_copy(P, c, g)
                else:  # a tiny ||P|| times a huge scale: P / ||P|| first (each entry at most 1), then the scale
                    np.multiply(P / P.dtype.type(v), P.dtype.type(scale), out=g)
    elif p == 2 and want_grad:
        v, g = _spectral_value_grad(P, name, scale)
    elif p in (2, -2):
        if not want_grad:
            s = _svd(P, name, False)
            v = float(s[0] if p == 2 else s[-1])
        else:
            U, s, Vt = _svd(P, name, True)
            v = float(s[0] if p == 2 else s[-1])
            tie = np.flatnonzero(s == s[0 if p == 2 else -1])
            if tie.size == 1:
                g = np.multiply.outer(U[:, tie[0]], Vt[tie[0]])
            else:
                g = np.dot(U[:, tie], Vt[tie]) / P.dtype.type(tie.size)
            if scale != 1.0:
                g *= g.dtype.type(scale)
    else:  # nuc
        if not want_grad:
            v = float(_svd(P, name, False).astype(np.float64).sum())
        else:
            U, s, Vt = _svd(P, name, True)
            v = float(s.astype(np.float64).sum())
            g = np.dot(U, Vt)
            if scale != 1.0:
                g *= g.dtype.type(scale)
    return v, g


def norm_value_grad(x: np.ndarray, p, mode: str, want_grad: bool, name: str, scale: float = 1.0):
    """(value as float, gradient times ``scale`` in x's dtype or None) for a validated array ``x`` and normalised
    ``p``.  The gradient is a fresh array (the caller may write to it)."""
    if mode == "entrywise" or x.ndim == 1:
        if p == "fro":
            p = 2
        v, g = _vector_norm(x.reshape(-1), p, want_grad, name)
        if g is not None:
            g = g.reshape(x.shape)
            if g.dtype != x.dtype:
                g = g.astype(x.dtype)
            if scale != 1.0:
                g *= g.dtype.type(scale)
        return v, g
    v, g = _matrix_norm(x, p, want_grad, name, scale)
    if g is not None and g.dtype != x.dtype:
        g = g.astype(x.dtype)
    return v, g


@_checks.finite_result
def lp_norm(x, p=1, *, mode: str = "neurotorch", device="cpu"):
    r"""The norm neurotorch's ``Lp`` regularizer applies to one parameter.

    With ``mode="neurotorch"`` this is ``torch.linalg.norm(x, ord=p)``: a vector norm for 1-D ``x`` and an
    *induced matrix norm* for 2-D ``x`` (see the table in :mod:`refnsm.regularization.functional`); for example
    ``p=1`` on a matrix is the largest absolute column sum :math:`\max_j \sum_i |x_{ij}|` and ``p=2`` the
    spectral norm :math:`\sigma_{\max}(x)`, not the entrywise sums.  ``mode="entrywise"`` flattens ``x`` first.

    Parameters
    ----------
    x : array_like, 1-D or 2-D (any rank >= 1 with ``mode="entrywise"``)
    p : {1, -1, 2, -2, inf, -inf, 'fro', 'nuc'}
    mode : {'neurotorch', 'entrywise'}

    Returns
    -------
    numpy scalar in ``x``'s float dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> float(R.lp_norm(np.array([3.0, -4.0]), p=2))
    5.0
    >>> float(R.lp_norm(np.array([[1.0, -2.0], [3.0, 4.0]]), p=1, mode="entrywise"))
    10.0
    """
    _, (x,) = _on_host(device, x)
    mode = _checks.check_option(mode, "mode", MODES)
    p = check_p(p)
    x = check_norm_input(x, "x", mode)
    check_p_for(p, x.ndim, mode)
    v, _ = norm_value_grad(x, p, mode, False, "x")
    return x.dtype.type(v)


@_checks.finite_result
def lp_norm_vjp(grad_out, x, p=1, *, mode: str = "neurotorch", device="cpu"):
    r"""VJP of :func:`lp_norm`: :math:`\bar y \,\partial \|x\|_p / \partial x` with torch's conventions at ties and
    zeros (module docstring).  Returns an array shaped like ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> R.lp_norm_vjp(None, np.array([3.0, -4.0]), p=2)   # x / ||x||
    array([ 0.6, -0.8])
    """
    xp, (x,) = _on_host(device, x)
    gbar = _checks.scalar_grad_out(grad_out)
    mode = _checks.check_option(mode, "mode", MODES)
    p = check_p(p)
    x = check_norm_input(x, "x", mode)
    check_p_for(p, x.ndim, mode)
    _, g = norm_value_grad(x, p, mode, True, "x", gbar)
    return xp.give_back_host(g)


# --------------------------------------------------------------------------------------------------- Dale L2
def check_dale_param(w, name: str) -> np.ndarray:
    w = _checks.as_float_array(w, name, finite=False, allow_empty=False)
    if w.ndim != 2:
        raise ValueError(f"{name}: expected 2 dimensions [N_pre, N_post], got shape {w.shape}")
    return w


def reference_sign(reference, name: str, shape, dtype) -> np.ndarray:
    """sign(reference) as a C-contiguous array of ``dtype``; shape must equal ``shape``; NaN/Inf rejected."""
    r = _checks.as_float_array(reference, name)
    if r.shape != tuple(shape):
        raise ValueError(f"{name}: expected the parameter's shape {tuple(shape)}, got {r.shape}")
    return np.ascontiguousarray(np.sign(r), dtype=dtype)


def dale_l2_value_grad(w: np.ndarray, s: np.ndarray, alpha: float, want_grad: bool, name: str,
                       scale: float = 1.0):
    """(value, gradient times ``scale`` or None): one pass over ``w`` and ``s`` (:func:`~._kernels.dale_l2`)."""
    g = np.empty_like(w) if want_grad else np.empty((0, 0), dtype=w.dtype)
    v = K.dale_l2(w, s, alpha, g, want_grad, scale)
    if not math.isfinite(v):
        _checks.check_finite(w, name)
    return v, (g if want_grad else None)


@_checks.finite_result
def dale_law_l2(w, reference, alpha: float = 0.8, *, device="cpu"):
    r"""Dale's-law penalty of neurotorch's ``DaleLawL2`` for one weight matrix.

    .. math::

        \ell(W) = \operatorname{tr}\big(W^\top(\alpha W - (1-\alpha)\,S)\big)
                = \alpha \|W\|_F^2 - (1-\alpha)\langle W, S\rangle, \qquad S = \mathrm{sign}(R),

    where :math:`R` is the reference (only its sign is used: neurotorch's documentation writes :math:`R`, its code
    uses :math:`\mathrm{sign}(R)`).  :math:`\alpha=1` is a squared Frobenius (weight-decay) penalty,
    :math:`\alpha=0` rewards every weight whose sign agrees with the reference.  Rows of :math:`W` are
    presynaptic neurons (the "i to j" convention of :func:`refnsm.regularization.dale`).

    Parameters
    ----------
    w : array_like, shape (N, M)
    reference : array_like, shape (N, M)
        Same shape as ``w`` (neurotorch would broadcast; refnsm requires the exact shape).
    alpha : float in [0, 1]

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> w = np.array([[1.0, -1.0]])
    >>> float(R.dale_law_l2(w, np.array([[1.0, -1.0]]), alpha=0.0))
    -2.0
    """
    _, (w, reference) = _on_host(device, w, reference)
    alpha = _checks.check_in_interval(alpha, "alpha", 0.0, 1.0)
    w = check_dale_param(w, "w")
    s = reference_sign(reference, "reference", w.shape, w.dtype)
    v, _ = dale_l2_value_grad(w, s, alpha, False, "w")
    return w.dtype.type(v)


@_checks.finite_result
def dale_law_l2_vjp(grad_out, w, reference, alpha: float = 0.8, *, device="cpu"):
    r"""VJP of :func:`dale_law_l2` with respect to ``w``: :math:`\bar y\,(2\alpha W - (1-\alpha) S)`.

    The reference enters only through :math:`\mathrm{sign}(R)`, whose derivative is 0 wherever it exists, so it
    gets no gradient (torch returns exactly 0 for it).  Smooth in ``w`` everywhere.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> R.dale_law_l2_vjp(None, np.array([[1.0, -1.0]]), np.array([[1.0, -1.0]]), alpha=0.0).shape
    (1, 2)
    """
    xp, (w, reference) = _on_host(device, w, reference)
    gbar = _checks.scalar_grad_out(grad_out)
    alpha = _checks.check_in_interval(alpha, "alpha", 0.0, 1.0)
    w = check_dale_param(w, "w")
    s = reference_sign(reference, "reference", w.shape, w.dtype)
    _, g = dale_l2_value_grad(w, s, alpha, True, "w", gbar)
    return xp.give_back_host(g)


# --------------------------------------------------------------------------------------------------- E/I ratio
def check_ratio_param(w, name: str) -> np.ndarray:
    return _checks.as_float_array(w, name, finite=False, allow_empty=False)


def check_open_ratio(t, name: str) -> float:
    t = _checks.check_real(t, name)
    if not 0.0 < t < 1.0:
        raise ValueError(f"{name}: expected a number in the open interval (0, 1), got {t}")
    return t


def check_sign_func(sign_func, sign_func_grad=None):
    """``sign_func`` is 'softsign', 'sign' or an elementwise callable on arrays (neurotorch takes any callable, e.g.
    ``torch.nn.Softsign()``); ``sign_func_grad`` (its elementwise derivative) only goes with a callable."""
    if callable(sign_func):
        if sign_func_grad is not None and not callable(sign_func_grad):
            raise TypeError(f"sign_func_grad: expected None or a callable (the elementwise derivative of sign_func), "
                            f"got {_checks._describe(sign_func_grad)}")
        return sign_func
    if sign_func_grad is not None:
        raise ValueError("sign_func_grad: only used with a callable sign_func (the derivatives of 'softsign' and "
                         f"'sign' are built in), got sign_func={sign_func!r}")
    return _checks.check_option(sign_func, "sign_func", SIGN_FUNCS)


def _apply_elementwise(f, w: np.ndarray, what: str, name: str) -> np.ndarray:
    out = f(w.copy())  # a copy: the callable can never modify the parameter
    try:
        out = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{what}: expected a function returning an array, got {_checks._describe(out)}") from None
    if out.shape != w.shape:
        raise ValueError(f"{what}: expected an elementwise function (output shape {w.shape}), got shape {out.shape}")
    if not np.isfinite(out).all():
        _checks.check_finite(w, name)
        raise ValueError(f"{what}: returned a non-finite value for the finite {name}")
    return out


def exc_value_grad(w: np.ndarray, t: float, sign_func, want_grad: bool, name: str, sign_func_grad=None,
                   scale: float = 1.0):
    """(|m + 1 - 2t|, gradient times ``scale`` or None, m) with m = mean(phi(w))."""
    if callable(sign_func):
        _checks.check_finite(w, name)
        m = float(np.mean(_apply_elementwise(sign_func, w, "sign_func", name)))
    else:
        m = K.softsign_mean(w) if sign_func == "softsign" else K.sign_mean(w)
    if (isinstance(sign_func, str) and sign_func == "sign") or not math.isfinite(m):  # sign(+-Inf) is finite
        _checks.check_finite(w, name)
    d = m + 1.0 - 2.0 * t
    v = abs(d)
    g = None
    if want_grad:
        if sign_func == "sign" or d == 0.0:
            g = np.zeros_like(w)
        elif callable(sign_func):
            if sign_func_grad is None:
                raise ValueError("sign_func_grad: the gradient of a callable sign_func needs its elementwise "
                                 "derivative (pass sign_func_grad=...); the value alone needs nothing")
            dphi = _apply_elementwise(sign_func_grad, w, "sign_func_grad", name)
            g = ((1.0 if d > 0 else -1.0) / w.size * dphi).astype(w.dtype)
            if scale != 1.0:
                g *= g.dtype.type(scale)
        else:
            g = np.empty_like(w)
            K.softsign_grad(w, (1.0 if d > 0 else -1.0) / w.size * scale, g)
    return v, g, m


@_checks.finite_result
def exc_ratio_loss(w, exc_target_ratio: float = 0.8, *, sign_func="softsign", sign_func_grad=None,
                   device="cpu"):
    r"""Excitatory-ratio penalty of neurotorch's ``ExcRatioTargetRegularization`` for one parameter.

    .. math::

        \ell(P) = \Big|\, m_P + 1 - 2t \,\Big| = 2\,\Big|\frac{m_P + 1}{2} - t\Big|, \qquad
        m_P = \frac{1}{|P|}\sum_{k} \varphi(P_k),

    with :math:`t` the target fraction of excitatory entries and :math:`\varphi` the softsign
    :math:`x/(1+|x|)` (neurotorch's default) or :math:`\mathrm{sign}` (``sign_func="sign"``).
    :math:`(m_P+1)/2` is a *soft* excitatory ratio: it equals the fraction of positive entries only as
    :math:`|P|\to\infty`.  Any shape (0-d included) is accepted.

    ``sign_func`` may also be any elementwise callable on NumPy arrays (neurotorch accepts any callable, such as
    ``torch.nn.Softsign()`` or ``torch.tanh``); its mean is taken in float64.  The VJP then needs its elementwise
    derivative ``sign_func_grad``.
    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> float(R.exc_ratio_loss(np.array([[5.0, 5.0, -5.0, 5.0]]), 0.75, sign_func="sign"))
    0.0
    """
    _, (w,) = _on_host(device, w)
    t = check_open_ratio(exc_target_ratio, "exc_target_ratio")
    sign_func = check_sign_func(sign_func, sign_func_grad)
    w = check_ratio_param(w, "w")
    v, _, _ = exc_value_grad(w, t, sign_func, False, "w")
    return w.dtype.type(v)


@_checks.finite_result
def exc_ratio_loss_vjp(grad_out, w, exc_target_ratio: float = 0.8, *, sign_func="softsign", sign_func_grad=None,
                       device="cpu"):
    r"""VJP of :func:`exc_ratio_loss`:

    .. math::

        \frac{\partial \ell}{\partial P_k} = \mathrm{sign}(m_P + 1 - 2t)\, \frac{\varphi'(P_k)}{|P|},\qquad
        \varphi'(x) = \frac{1}{(1+|x|)^2},

    0 at the kink :math:`m_P + 1 = 2t` (torch's convention), and identically 0 for ``sign_func="sign"``
    (the regularizer is then inert under gradient descent).  For a callable ``sign_func``,
    :math:`\varphi' =` ``sign_func_grad`` (required).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> R.exc_ratio_loss_vjp(None, np.array([[1.0, -1.0]]), 0.8).shape
    (1, 2)
    """
    xp, (w,) = _on_host(device, w)
    gbar = _checks.scalar_grad_out(grad_out)
    t = check_open_ratio(exc_target_ratio, "exc_target_ratio")
    sign_func = check_sign_func(sign_func, sign_func_grad)
    w = check_ratio_param(w, "w")
    _, g, _ = exc_value_grad(w, t, sign_func, True, "w", sign_func_grad, gbar)
    return xp.give_back_host(g)


# --------------------------------------------------------------------------------------------------- distance
def check_distance_pair(w, reference, wname: str, rname: str, mode: str):
    w = check_norm_input(w, wname, mode)
    r = _checks.as_float_array(reference, rname, dtype=w.dtype)
    if r.shape != w.shape:
        raise ValueError(f"{rname}: expected the parameter's shape {w.shape}, got {r.shape}")
    _checks.check_finite(r, rname)
    return w, r


def distance_value_grad(w: np.ndarray, r: np.ndarray, p, mode: str, want_grad: bool, name: str,
                        scale: float = 1.0):
    """(value, gradient times ``scale`` or None) of the norm of ``|w - r|`` (:func:`weights_distance`)."""
    if mode == "neurotorch" and w.ndim == 2 and p in (1, -1, math.inf, -math.inf):
        # fused: column/row sums of |W - R| and sign(W - R) times the tie weights, no temporaries
        by_cols = p in (1, -1)
        g = np.empty_like(w) if want_grad else np.empty((0, 0), w.dtype)
        v, finite = K.distance_induced_grad(w, r, by_cols, p > 0, want_grad, g, scale)
        if finite:
            return float(v), (g if want_grad else None)
        sums = np.empty(w.shape[1] if by_cols else w.shape[0])  # a NaN/Inf entry or an overflow: step by step
        (K.absdiff_col_sums if by_cols else K.absdiff_row_sums)(w, r, sums)
        if not np.isfinite(sums).all():
            _checks.check_finite(w, name)
        v = float(sums.max() if p > 0 else sums.min())
        if want_grad:
            K.signdiff_times_weights(w, r, K.tie_weights(sums, v, scale), by_cols, g)
        return v, (g if want_grad else None)
    with np.errstate(over="ignore"):
        diff = w - r
    if not _checks._all_finite(diff):
        raise _checks.NonFiniteResultError(
            f"weights_distance: {name} - reference overflows {w.dtype} (largest magnitudes {float(np.abs(w).max()):.3g} "
            f"and {float(np.abs(r).max()):.3g}); rescale both")
    v, g = norm_value_grad(np.abs(diff), p, mode, want_grad, name, scale)
    if g is not None:
        g *= np.sign(diff)
    return v, g


@_checks.finite_result
def weights_distance(w, reference, p=1, *, mode: str = "neurotorch", device="cpu"):
    r"""Distance penalty of neurotorch's ``WeightsDistance`` for one parameter:
    :math:`\big\|\,|W - R|\,\big\|_p`, with the norm of :func:`lp_norm` (matrix norm for 2-D).

    The absolute value does not change the value of these norms (except the spectral ones, where
    :math:`|W-R|` and :math:`W-R` can have different singular values); it fixes the subgradient at
    :math:`W_{ij}=R_{ij}` to 0.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> float(R.weights_distance(np.array([[1.0, 2.0]]), np.zeros((1, 2)), p=1))
    2.0
    """
    _, (w, reference) = _on_host(device, w, reference)
    mode = _checks.check_option(mode, "mode", MODES)
    p = check_p(p)
    w, r = check_distance_pair(w, reference, "w", "reference", mode)
    check_p_for(p, w.ndim, mode)
    v, _ = distance_value_grad(w, r, p, mode, False, "w")
    return w.dtype.type(v)


@_checks.finite_result
def weights_distance_vjp(grad_out, w, reference, p=1, *, mode: str = "neurotorch", device="cpu"):
    r"""VJP of :func:`weights_distance` with respect to ``(w, reference)``.

    With :math:`D = |W - R|`, :math:`\partial/\partial W = (\partial\|D\|_p/\partial D) \odot \mathrm{sign}(W - R)`
    (0 where :math:`W = R`), and the reference gets the negative of it.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> g_w, g_ref = R.weights_distance_vjp(None, np.array([[1.0, -2.0]]), np.zeros((1, 2)), p=1)
    >>> g_w
    array([[ 0., -1.]])
    """
    xp, (w, reference) = _on_host(device, w, reference)
    gbar = _checks.scalar_grad_out(grad_out)
    mode = _checks.check_option(mode, "mode", MODES)
    p = check_p(p)
    w, r = check_distance_pair(w, reference, "w", "reference", mode)
    check_p_for(p, w.ndim, mode)
    _, g = distance_value_grad(w, r, p, mode, True, "w", gbar)
    return xp.give_back_host(g), xp.give_back_host(-g)
