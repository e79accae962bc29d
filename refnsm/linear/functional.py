r"""The math helpers of the structured linear maps, and the public functional helpers.

:func:`sigmoid`, :func:`softmax` and its VJP, :func:`frob_norm`, the argument checks the constructors share
(:func:`check_dtype`, :func:`check_bool`, :func:`check_bounds`), the VJP of ``numpy.linalg.eig`` (:func:`eig_vjp`),
the Householder product :func:`Hprod` with its VJP, and neuromancer's straight-through ReLU
(:func:`straight_through_relu`).  The base classes are in :mod:`.base`.
"""

from __future__ import annotations

import numpy as np

from .. import _backend, _checks
from .._checks import as_float_array, check_int, check_real, check_shape

__all__ = ["Hprod", "Hprod_vjp", "straight_through_relu", "straight_through_relu_vjp", "sigmoid", "softmax",
           "softmax_vjp", "check_dtype", "check_bool", "check_bounds", "frob_norm", "eig_vjp"]


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
    return _checks.check_float_dtype(dtype)


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


def eig_vjp(grad_w, grad_v, W, *, rtol: float = 1e-10):
    r"""VJP of ``numpy.linalg.eig`` (= ``torch.linalg.eig``) for a real square W with **simple** eigenvalues.

    With :math:`W = V\Lambda V^{-1}` (unit-norm eigenvectors), :math:`\bar\lambda` = ``grad_w`` and :math:`\bar V` =
    ``grad_v`` (complex cotangents in torch's convention, e.g. :math:`\bar z = 2cz` for :math:`L = c|z|^2`; ``None``
    means zero):

    .. math::

        \bar W = \mathrm{Re}\Big[V^{-H}\big(\mathrm{diag}(\bar\lambda) + E \odot (V^H\bar V - V^H V\,
        \mathrm{diag}(\mathrm{Re}\,\mathrm{diag}(V^H\bar V)))\big)V^H\Big],\qquad
        E_{ij} = \frac{1}{\bar\lambda_j - \bar\lambda_i}\ (i\ne j),\ E_{ii} = 0,

    where the overbars on :math:`\lambda` inside :math:`E` are complex conjugates.  The second term uses only
    gauge-invariant information, so a loss that depends on the eigenvectors' phase has no gradient (as torch).
    Degenerate case: with repeated eigenvalues (relative gap below ``rtol``) the eigenvector term is undefined and
    ``grad_v`` raises ``ValueError``; the eigenvalue term alone still needs V invertible (a defective W raises).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> W = np.diag([1.0, 2.0])
    >>> gW = L.eig_vjp(np.array([1.0, 0.0]), np.zeros((2, 2)), W)   # d(lambda_0)/dW for a diagonal W
    >>> np.round(gW.real, 6)
    array([[1., 0.],
           [0., 0.]])
    """
    W = as_float_array(W, "W", ndim=2, shape_hint="[n, n]")
    n = W.shape[0]
    if W.shape[1] != n:
        raise ValueError(f"W: expected a square matrix, got shape {W.shape}")
    lam, V = np.linalg.eig(W)
    gl = np.zeros(n, complex) if grad_w is None else np.asarray(grad_w, dtype=complex)
    if gl.shape != (n,):
        raise ValueError(f"grad_w: expected shape ({n},) (one per eigenvalue), got {gl.shape}")
    if not np.all(np.isfinite(gl)):
        raise ValueError("grad_w: expected finite values")
    scale = max(float(np.abs(lam).max()), np.finfo(float).tiny)
    gap = np.abs(lam[:, None] - lam[None, :]) + np.eye(n) * scale
    if np.linalg.cond(V) > 1.0 / rtol:
        raise ValueError("W: its eigenvectors are (numerically) linearly dependent, so W is defective and its "
                         "eigen-decomposition has no derivative; eig_vjp needs a diagonalisable W with simple eigenvalues")
    M = np.diag(gl).astype(complex)
    if grad_v is not None:
        gv = np.asarray(grad_v, dtype=complex)
        if gv.shape != (n, n):
            raise ValueError(f"grad_v: expected shape ({n}, {n}) (like the eigenvectors), got {gv.shape}")
        if not np.all(np.isfinite(gv)):
            raise ValueError("grad_v: expected finite values")
        if gap.min() <= rtol * scale:
            raise ValueError("W: repeated eigenvalues (relative gap below rtol): the eigenvectors are not unique, so "
                             "their derivative is undefined (grad_v needs simple eigenvalues)")
        VhgV = V.conj().T @ gv
        F = VhgV - (V.conj().T @ V) * np.real(np.diag(VhgV))[None, :]
        Lc = lam.conj()
        E = Lc[None, :] - Lc[:, None]
        np.fill_diagonal(E, 1.0)
        F = F / E
        np.fill_diagonal(F, gl)
        M = F
    Vh = V.conj().T
    gW = np.linalg.solve(Vh, M @ Vh)
    return np.ascontiguousarray(np.real(gW), dtype=W.dtype)


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
    from .householder import _REFLECTOR_SQNORM_EXP  # the range the Householder maps use (householder imports us)

    e = _REFLECTOR_SQNORM_EXP.get(np.dtype(dt), 500)
    with np.errstate(over="ignore", under="ignore"):  # an Inf or 0 here is what the check refuses
        c = float(np.dot(u[n - k:].astype(np.float64), u[n - k:].astype(np.float64)))
    if not 2.0 ** -e <= c <= 2.0 ** e:  # Hprod divides by it, the VJP by its square
        raise ValueError(f"u: Householder vector u[n-k:] is of squared norm {c:.3g}, outside [2**-{e}, 2**{e}] where "
                         f"the {np.dtype(dt)} computation divides by it without under- or overflow (a reflector is "
                         f"invariant to scale: rescale the vector)")
    return x.astype(dt, copy=False), u.astype(dt, copy=False), k


@_checks.finite_result
def Hprod(x, u, k, *, device="cpu"):
    r"""Reflect the last ``k`` columns of the rows of ``x`` in the hyperplane orthogonal to ``v = u[n-k:]``.

    .. math::

        y = x H(\tilde v), \qquad H(\tilde v) = I - \frac{2 \tilde v \tilde v^\top}{\tilde v^\top \tilde v},
        \qquad \tilde v = [0_{n-k};\ u_{n-k:}] .

    :math:`H` is symmetric, orthogonal and an involution (:math:`H^2 = I`).  x is [batch, n], u is [n].
    ``device="cuda"``: x and u may be device arrays; the reflection runs through the Householder chain kernel of
    ``refnsm.linear._cuda_kernels`` (a chain of one reflector), and the result is a device array when an input was.
    A ``ValueError`` names ``u`` when :math:`\tilde v^\top \tilde v` is zero or leaves the range the
    Householder maps accept ([2**-500, 2**500] in float64, [2**-60, 2**60] in float32; rescale the vector).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> u = np.array([1.0, 0.0])
    >>> L.Hprod(np.array([[3.0, 4.0]]), u, 2)   # reflect in the hyperplane orthogonal to e_0
    array([[-3.,  4.]])
    """
    xp = _backend.arrays(device, x, u)
    x, u, k = _hprod_check(xp.to_host(x), xp.to_host(u), k)
    if device == "cuda":
        return _hprod_on_device(xp, x, u, k)
    n = x.shape[1]
    v = u[n - k:]
    y = x.copy()
    a = 2.0 * (x[:, n - k:] @ v) / (v @ v)
    y[:, n - k:] -= np.outer(a, v)
    return y


@_checks.finite_result
def Hprod_vjp(grad_out, x, u, k, *, device="cpu"):
    r"""VJP of :func:`Hprod`: returns :math:`(\bar x, \bar u)`.

    With :math:`c = v^\top v`, :math:`a_b = x_b\cdot v`, :math:`\beta_b = \bar g_b \cdot v` (tail columns):
    :math:`\bar x = \bar g H` and
    :math:`\bar v = \sum_b [-\tfrac2c(\beta_b x_b + a_b \bar g_b) + \tfrac{4 a_b\beta_b}{c^2} v]`, zero on the head.
    ``device="cuda"`` as in :func:`Hprod` (through the chain's VJP kernel).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> gx, gu = L.Hprod_vjp(np.ones((1, 2)), np.array([[3.0, 4.0]]), np.array([1.0, 0.0]), 2)
    >>> gx
    array([[-1.,  1.]])
    """
    xp = _backend.arrays(device, grad_out, x, u)
    x, u, k = _hprod_check(xp.to_host(x), xp.to_host(u), k)
    g = as_float_array(xp.to_host(grad_out), "grad_out", ndim=2, dtype=x.dtype)
    check_shape(g, "grad_out", x.shape, "the shape of x")
    if device == "cuda":
        return _hprod_on_device(xp, x, u, k, g)
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


def _hprod_on_device(xp, x, u, k, g=None):
    """:func:`Hprod` (``g`` None) or :func:`Hprod_vjp` on validated host arguments, as a one-reflector chain on the
    device: reflector ``t = n - k`` is row t of an otherwise zero U (the chain reads ``U[t, t:]``)."""
    kern = _backend.kernels("linear", "cuda")
    n = x.shape[1]
    t = n - k
    U = np.zeros((n, n), dtype=x.dtype)
    U[t] = u
    Ud, order = xp.from_host(U), xp.from_host(np.array([t], dtype=np.int64))
    Y = xp.from_host(x)
    kern.hh_chain_apply(Y, Ud, order)
    if g is None:
        return xp.give_back(Y)
    G, dU = xp.from_host(g), xp.from_host(np.zeros_like(U))
    kern.hh_chain_vjp(Y, G, Ud, order, dU)  # Y <- x again, G <- grad_out H, dU[t] <- the reflector's gradient
    return xp.give_back(G), xp.give_back(dU[t])


@_checks.finite_result
def straight_through_relu(x):
    r"""Straight-through ReLU (neuromancer's ``IdentityGradReLU``): forward :math:`\max(x, 0)`.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> L.straight_through_relu(np.array([-1.0, 2.0]))
    array([0., 2.])
    """
    x = as_float_array(x, "x")
    return np.maximum(x, 0.0)


@_checks.finite_result
def straight_through_relu_vjp(grad_out, x):
    r"""The straight-through gradient: :math:`\bar x = \bar y`, also where :math:`x < 0` (it is not relu's derivative).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> L.straight_through_relu_vjp(np.array([1.0, 1.0]), np.array([-1.0, 2.0]))   # the gradient passes straight through
    array([1., 1.])
    """
    x = as_float_array(x, "x")
    g = as_float_array(grad_out, "grad_out", dtype=x.dtype)
    check_shape(g, "grad_out", x.shape, "the shape of x")
    return g.copy()
