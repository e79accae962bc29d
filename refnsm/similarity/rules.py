r"""The Hebbian / anti-Hebbian update rules of similarity matching, written out.

For one linear encoder :math:`u = W x + \beta` with "weight" regularization, the update
:meth:`~refnsm.similarity.MultiSimilarityMatching.step` applies after ``loss`` and ``backward`` is, with
:math:`\langle\cdot\rangle` the average over the :math:`T` (sample, position) pairs of the batch and
:math:`\eta` the learning rate:

.. math::

    W &\leftarrow W + \frac{4\eta}{m}\big(\langle y x^\top\rangle - W\big)          &&\text{(Hebbian)}\\
    \beta &\leftarrow \beta + \frac{4\eta}{m}\big(\langle y\rangle - \beta\big)\\
    M &\leftarrow M + \frac{2\eta}{\tau m}\big(\langle y y^\top\rangle - M\big)     &&\text{(anti-Hebbian: } M
    \text{ enters the dynamics with a minus sign)}

These are pynsm's documented rules :math:`\Delta W = 2\eta'(yx^\top - W)`, :math:`\Delta M = (\eta'/\tau)(yy^\top - M)`
with :math:`\eta' = 2\eta/m` (pynsm's docstrings).  The fixed points are :math:`W^* = \langle y x^\top\rangle`,
:math:`M^* = \langle y y^\top\rangle`.
"""

from __future__ import annotations

from .. import _checks

__all__ = ["hebbian_update"]


@_checks.finite_result
def hebbian_update(W, M, x, y, lr, tau, bias=None):
    """Return the updated ``(W, M)`` (or ``(W, bias, M)`` when ``bias`` is given); nothing is modified in place.

    Parameters
    ----------
    W : array_like, shape [m, n]
    M : array_like, shape [m, m]
    x : array_like, shape [B, n]
    y : array_like, shape [B, m]
        The circuit's output for ``x`` (held fixed).
    lr : float >= 0
    tau : float > 0
    bias : array_like, shape [m], optional

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> W, M = np.zeros((2, 3)), np.eye(2)
    >>> x, y = np.ones((4, 3)), np.ones((4, 2))
    >>> W2, M2 = sim.hebbian_update(W, M, x, y, lr=0.1, tau=0.5)
    >>> W2.shape, M2.shape
    ((2, 3), (2, 2))
    """
    W = _checks.as_float_array(W, "W", ndim=2, shape_hint="[m, n]")
    m, n = W.shape
    M = _checks.as_float_array(M, "M", dtype=W.dtype)
    _checks.check_shape(M, "M", (m, m))
    x = _checks.as_float_array(x, "x", dtype=W.dtype, ndim=2, shape_hint="[B, n]", allow_empty=False)
    _checks.check_shape(x, "x", (None, n))
    y = _checks.as_float_array(y, "y", dtype=W.dtype)
    _checks.check_shape(y, "y", (x.shape[0], m))
    lr = _checks.check_real(lr, "lr", nonnegative=True)
    tau = _checks.check_real(tau, "tau", positive=True)
    B = x.shape[0]
    W_new = W + (4.0 * lr / m) * (y.T @ x / B - W)
    M_new = M + (2.0 * lr / (tau * m)) * (y.T @ y / B - M)
    if bias is None:
        return W_new, M_new
    bias = _checks.as_float_array(bias, "bias", dtype=W.dtype)
    _checks.check_shape(bias, "bias", (m,))
    return W_new, bias + (4.0 * lr / m) * (y.mean(axis=0) - bias), M_new
