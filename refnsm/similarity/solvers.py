r"""Exact solvers of the fast dynamics' fixed point, to check the iteration against.

For a drive :math:`b` (shape ``[B, m, S1..Sk]``) and competitor :math:`M` (``m x m``), the fixed point is
computed independently at every sample and position :math:`t`:

* SM (no projection): :math:`y_t = M^{-1} b_t` (a linear solve; the fixed point of
  :math:`y \leftarrow y - \eta (M y - b)` for any :math:`M`);
* NSM (ReLU): the solution of the linear complementarity problem
  :math:`y \ge 0,\ M y - b \ge 0,\ y \odot (M y - b) = 0`, which for symmetric positive-definite :math:`M` is the
  unique minimiser of the non-negative QP :math:`\min_{y \ge 0} \tfrac12 y^\top M y - y^\top b`.  With the
  Cholesky factor :math:`M = L L^\top` the QP is the non-negative least-squares problem
  :math:`\min_{y\ge 0} \tfrac12\|L^\top y - L^{-1} b\|^2`, solved exactly (active set, Lawson–Hanson) by
  ``scipy.optimize.nnls``.
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from .encoders import _from_internal, _to_internal

__all__ = ["solve_sm", "solve_nsm", "kkt_residual"]


def _check(M, b):
    M = _checks.as_float_array(M, "M", ndim=2, shape_hint="[m, m]")
    if M.shape[0] != M.shape[1]:
        raise ValueError(f"M: expected a square matrix, got shape {M.shape}")
    b = _checks.as_float_array(b, "b", min_ndim=2, shape_hint="[B, m, S1..Sk]", dtype=np.result_type(M, np.float32))
    if b.shape[1] != M.shape[0]:
        raise ValueError(f"b: expected {M.shape[0]} channels in dimension 1 (M is {M.shape}), got shape {b.shape}")
    return M, b


@_checks.finite_result
def solve_sm(M, b):
    """:math:`y = M^{-1} b` at every sample and position; ``b`` has shape ``[B, m, S1..Sk]``.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> M = np.array([[2.0, 0.0], [0.0, 4.0]])
    >>> sim.solve_sm(M, np.array([[2.0, -4.0]]))   # y = M^{-1} b (row-wise)
    array([[ 1., -1.]])
    """
    M, b = _check(M, b)
    try:
        Y = np.linalg.solve(M, _to_internal(b).T).T
    except np.linalg.LinAlgError as exc:
        raise ValueError(f"M: expected an invertible matrix ({exc})") from None
    return _from_internal(Y.astype(b.dtype, copy=False), b.shape)


@_checks.finite_result
def solve_nsm(M, b):
    r"""The non-negative QP :math:`\min_{y\ge0} \tfrac12 y^\top M y - y^\top b` at every sample and position.

    Uses the symmetric part of ``M`` (which must be positive definite); for symmetric ``M`` that is the fixed
    point of the ReLU dynamics.  Computed in float64 and returned in ``b``'s dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> M = np.array([[2.0, 0.0], [0.0, 4.0]])
    >>> sim.solve_nsm(M, np.array([[2.0, -4.0]]))   # the non-negative solution
    array([[1., 0.]])
    """
    from scipy.linalg import solve_triangular
    from scipy.optimize import nnls

    M, b = _check(M, b)
    if M.shape[0] == 0:  # no output channel: the empty solution (scipy's nnls corrupts memory on 0 columns)
        return np.zeros(b.shape, dtype=b.dtype)
    Ms = 0.5 * (M.astype(np.float64) + M.astype(np.float64).T)
    try:
        L = np.linalg.cholesky(Ms)
    except np.linalg.LinAlgError:
        raise ValueError("M: expected a positive-definite symmetric part for the NSM solver") from None
    Bint = _to_internal(b.astype(np.float64))  # [T, m]
    rhs = solve_triangular(L, Bint.T, lower=True)
    A = np.ascontiguousarray(L.T)
    Y = np.empty_like(Bint)
    for t in range(Bint.shape[0]):
        y = nnls(A, rhs[:, t])[0]
        # NNLS finds the support F; its least-squares form loses accuracy as cond(M), so the values are re-solved
        # on F from the KKT system S_FF y_F = b_F (kept when y_F > 0; the support, hence the conditions off it, is
        # NNLS's)
        F = y > 0
        if F.any():
            try:
                LF = np.linalg.cholesky(Ms[np.ix_(F, F)])
                yF = solve_triangular(LF.T, solve_triangular(LF, Bint[t, F], lower=True), lower=False)
            except np.linalg.LinAlgError:
                yF = None
            if yF is not None and np.all(yF > 0):
                y = np.zeros_like(y)
                y[F] = yF
        Y[t] = y
    return _from_internal(Y.astype(b.dtype, copy=False), b.shape)


@_checks.finite_result
def kkt_residual(M, b, y, nonnegative=True):
    r"""``max |y - P(y - (M y - b))|``: 0 exactly at the fixed point (the KKT natural residual when
    ``nonnegative``, :math:`\max|My - b|` otherwise).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> M = np.array([[2.0, 0.0], [0.0, 4.0]])
    >>> b = np.array([[2.0, -4.0]])
    >>> round(float(sim.kkt_residual(M, b, sim.solve_nsm(M, b))), 12)   # 0 at the solution
    0.0
    """
    nonnegative = _checks.check_bool(nonnegative, "nonnegative")
    M, b = _check(M, b)
    y = _checks.as_float_array(y, "y", dtype=b.dtype)
    _checks.check_shape(y, "y", b.shape, "the shape of b")
    Y, B = _to_internal(y), _to_internal(b)
    P = Y - (Y @ M.T - B)
    if nonnegative:
        P = np.maximum(P, 0.0)
    return float(np.max(np.abs(Y - P), initial=0.0))
