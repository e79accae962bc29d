r"""The math helpers of the structured linear maps, and the public functional helpers.

:func:`sigmoid`, :func:`softmax` and its VJP, :func:`frob_norm`, the argument checks the constructors share
(:func:`check_dtype`, :func:`check_bool`, :func:`check_bounds`), the Householder product :func:`Hprod` with its VJP,
and neuromancer's straight-through ReLU (:func:`straight_through_relu`).  The base classes are in :mod:`.base`.
"""

from __future__ import annotations

import numpy as np

from .._checks import as_float_array, check_int, check_real, check_shape

__all__ = ["Hprod", "Hprod_vjp", "straight_through_relu", "straight_through_relu_vjp", "sigmoid", "softmax",
           "softmax_vjp", "check_dtype", "check_bool", "check_bounds", "frob_norm"]


# ----------------------------------------------------------------------------------------------- small helpers
def sigmoid(x):
    r""":math:`\sigma(x) = 1/(1+e^{-x}) = \tfrac12(1 + \tanh(x/2))` (the tanh form never overflows)."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def softmax(x, axis):
    z = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


def softmax_vjp(g, s, axis):
    r"""VJP of ``s = softmax(x, axis)``: :math:`\bar x = s \odot (\bar s - \sum \bar s s)`."""
    return s * (g - np.sum(g * s, axis=axis, keepdims=True))


def check_dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype: expected float32 or float64, got {dt}")
    return dt


def check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def check_bounds(sigma_min, sigma_max, *, strict=True):
    """Validate a pair of bounds ``sigma_min < sigma_max`` (``<=`` when not strict)."""
    lo = check_real(sigma_min, "sigma_min")
    hi = check_real(sigma_max, "sigma_max")
    if (strict and not lo < hi) or (not strict and not lo <= hi):
        raise ValueError(f"sigma_max: expected sigma_max {'>' if strict else '>='} sigma_min = {lo}, got {hi}")
    return lo, hi


def frob_norm(a) -> float:
    return float(np.sqrt(np.sum(a * a, dtype=np.float64)))


# ---------------------------------------------------------------------------- Householder product helper
def _hprod_check(x, u, k):
    x = as_float_array(x, "x", ndim=2, shape_hint="[batch, n]")
    u = as_float_array(u, "u", ndim=1, shape_hint="[n]")
    n = x.shape[1]
    check_shape(u, "u", (n,), "[n] with n = x.shape[1]")
    k = check_int(k, "k", minimum=1)
    if k > n:
        raise ValueError(f"k: expected 1 <= k <= n = {n}, got {k}")
    if not np.any(u[n - k:]):
        raise ValueError("u: expected a non-zero tail u[n-k:] (a zero Householder vector is undefined)")
    dt = np.result_type(x.dtype, u.dtype)
    return x.astype(dt, copy=False), u.astype(dt, copy=False), k


def Hprod(x, u, k):
    r"""Reflect the last ``k`` columns of the rows of ``x`` in the hyperplane orthogonal to ``v = u[n-k:]``.

    .. math::

        y = x H(\tilde v), \qquad H(\tilde v) = I - \frac{2 \tilde v \tilde v^\top}{\tilde v^\top \tilde v},
        \qquad \tilde v = [0_{n-k};\ u_{n-k:}] .

    :math:`H` is symmetric, orthogonal and an involution (:math:`H^2 = I`).  x is [batch, n], u is [n].
    """
    x, u, k = _hprod_check(x, u, k)
    n = x.shape[1]
    v = u[n - k:]
    y = x.copy()
    a = 2.0 * (x[:, n - k:] @ v) / (v @ v)
    y[:, n - k:] -= np.outer(a, v)
    return y


def Hprod_vjp(grad_out, x, u, k):
    r"""VJP of :func:`Hprod`: returns :math:`(\bar x, \bar u)`.

    With :math:`c = v^\top v`, :math:`a_b = x_b\cdot v`, :math:`\beta_b = \bar g_b \cdot v` (tail columns):
    :math:`\bar x = \bar g H` and
    :math:`\bar v = \sum_b [-\tfrac2c(\beta_b x_b + a_b \bar g_b) + \tfrac{4 a_b\beta_b}{c^2} v]`, zero on the head.
    """
    x, u, k = _hprod_check(x, u, k)
    g = as_float_array(grad_out, "grad_out", ndim=2, dtype=x.dtype)
    check_shape(g, "grad_out", x.shape, "the shape of x")
    n = x.shape[1]
    v = u[n - k:]
    c = v @ v
    xt, gt = x[:, n - k:], g[:, n - k:]
    a, beta = xt @ v, gt @ v
    gx = g.copy()
    gx[:, n - k:] -= np.outer(2.0 * beta / c, v)
    gu = np.zeros_like(u)
    gu[n - k:] = -(2.0 / c) * (xt.T @ beta + gt.T @ a) + (4.0 * (a @ beta) / c**2) * v
    return gx, gu


def straight_through_relu(x):
    r"""Straight-through ReLU (neuromancer's ``IdentityGradReLU``): forward :math:`\max(x, 0)`."""
    x = as_float_array(x, "x")
    return np.maximum(x, 0.0)


def straight_through_relu_vjp(grad_out, x):
    r"""The straight-through gradient: :math:`\bar x = \bar y`, also where :math:`x < 0` (it is not relu's derivative)."""
    x = as_float_array(x, "x")
    g = as_float_array(grad_out, "grad_out", dtype=x.dtype)
    check_shape(g, "grad_out", x.shape, "the shape of x")
    return g.copy()
