r"""Householder maps: orthogonal, exact-SVD ("spectral"), symmetric spectral and Schur maps.

A chain of reflectors :math:`Q = H(\tilde v_0) H(\tilde v_1)\cdots` with :math:`\tilde v_t = [0_t;\ U_{t, t:}]`
(row ``t`` of an upper-triangular parameter, read from the diagonal on) is exactly orthogonal for every value of
the parameter.  :math:`Q` is built explicitly by the Numba kernel ``hh_chain_apply`` (from the identity, one
reflector at a time); its VJP ``hh_chain_vjp`` walks the chain backwards, recovering each intermediate product
from the next with :math:`H^{-1} = H`, so nothing but :math:`Q` is stored.  Each reflector is invariant to the
scale of its vector, so its gradient is orthogonal to it: :math:`\tilde v_t\cdot\partial\tilde v_t = 0`.

The strict lower triangle of ``U`` is never read (zero gradient).  A zero vector :math:`U_{t, t:}` is rejected.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _backend, _checks
from .._checks import as_float_array, check_int, check_real, check_shape
from . import _kernels
from .base import LinearBase, SquareLinear
from .functional import check_bounds, sigmoid

__all__ = ["OrthogonalLinear", "SpectralLinear", "SymmetricSpectralLinear", "SchurDecompositionLinear",
           "householder_matrix", "householder_matrix_vjp"]


def _order(k, reverse):
    o = np.arange(k, dtype=np.int64)
    return np.ascontiguousarray(o[::-1]) if reverse else o


#: A reflector's squared norm c = v.v must lie in [2**-500, 2**500] (float64) or [2**-60, 2**60] (float32, whose
#: kernels compute in float32): the kernels divide by it (2 / c) and the VJP squares the quotient, which overflows
#: float64 below about 1e-154 (float32 below about 1e-19).  A reflector is invariant to the scale of its vector, so
#: a vector outside this range can always be rescaled.
_REFLECTOR_SQNORM_RANGE = (2.0 ** -500, 2.0 ** 500)
_REFLECTOR_SQNORM_EXP = {np.dtype(np.float64): 500, np.dtype(np.float32): 60}


def _check_reflectors(U, k, name, arg=None):
    """Every reflector vector ``U[t, t:]``, t < k, has a squared norm the kernels can divide by (computed in float64,
    as the kernels do).  ``arg`` is the argument named in the message (default ``name``; the maps pass
    ``params['U']``)."""
    e = _REFLECTOR_SQNORM_EXP.get(np.dtype(U.dtype), 500)
    lo, hi = 2.0 ** -e, 2.0 ** e
    with np.errstate(over="ignore", under="ignore"):  # an Inf or 0 here is what the check refuses
        c = np.einsum("ij,ij->i", np.triu(U[:k]), np.triu(U[:k]), dtype=np.float64) if k else np.zeros(0)
    bad = np.flatnonzero(~((c >= lo) & (c <= hi)))
    if bad.size:
        t = int(bad[0])
        what = "zero (the reflector is undefined)" if c[t] == 0 else (
            f"of squared norm {c[t]:.3g}, outside [2**-{e}, 2**{e}] where the {np.dtype(U.dtype)} kernels divide "
            f"by it without under- or overflow (a reflector is invariant to scale: rescale the vector)")
        raise ValueError(f"{arg or name}: Householder vector {name}[{t}, {t}:] is {what}")


def _chain_args(U, k, reverse, name="U"):
    """Validate the arguments of a Householder chain; return (U, k, order).  ``U`` must have a row per reflector
    and ``k <= n`` (reflector t reads ``U[t, t:]``)."""
    U = as_float_array(U, name, ndim=2, shape_hint="[k, n] (row t holds reflector t from column t)")
    m, n = U.shape
    k = n if k is None else check_int(k, "k", minimum=0)
    if k > n:
        raise ValueError(f"k: expected at most n = {n} reflectors (U has {n} columns), got {k}")
    if k > m:
        raise ValueError(f"{name}: expected at least k = {k} rows (one per reflector), got shape {U.shape}")
    if not isinstance(reverse, (bool, np.bool_)):
        raise TypeError(f"reverse: expected a bool, got {type(reverse).__name__} {reverse!r}")
    _check_reflectors(U, k, name)
    return U, k, _order(k, bool(reverse))


@_checks.finite_result
def householder_matrix(U, k=None, reverse=False, *, device="cpu"):
    r""":math:`Q = H_0 H_1 \cdots H_{k-1}` (``reverse``: :math:`H_{k-1}\cdots H_0`), reflector t from ``U[t, t:]``.

    :math:`H_t = I - 2\tilde v_t \tilde v_t^\top / \tilde v_t^\top \tilde v_t` with :math:`\tilde v_t = [0_t;\ U_{t, t:}]`.

    Parameters
    ----------
    U : array_like, shape [m, n], m >= k
        Reflector vectors, one per row (the strict lower triangle is not read).  float32 stays float32; integer and
        boolean arrays are computed in float64.
    k : int, optional
        Number of reflectors, 0 <= k <= min(m, n) (default n).
    reverse : bool
        Multiply the reflectors in reverse order.
    device : {"cpu", "cuda"}
        ``"cuda"``: U may be a device array (validated on a host copy); the chain runs in the CUDA kernels
        (``refnsm.linear._cuda_kernels.householder_matrix``) and Q is a device array when U was one.

    Returns
    -------
    ndarray, shape [n, n], exactly orthogonal up to rounding.

    Raises
    ------
    ValueError
        A wrong rank, too few rows for ``k``, ``k > n``, NaN/Inf, or a reflector vector that is zero or whose
        squared norm under- or overflows (see ``_REFLECTOR_SQNORM_EXP``: [2**-500, 2**500] in float64,
        [2**-60, 2**60] in float32).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> Q = L.householder_matrix(np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]), k=2)
    >>> np.allclose(Q @ Q.T, np.eye(3))
    True
    """
    xp = _backend.arrays(device, U)
    U, k, order = _chain_args(xp.to_host(U), k, reverse)
    if device == "cuda":
        kern = _backend.kernels("linear", "cuda")
        return xp.give_back(kern.householder_matrix(xp.from_host(U), k, bool(reverse)))
    return _householder_matrix(U, order)


def _householder_matrix(U, order):
    """The chain on validated arguments (the maps call this with their own, already validated, parameters)."""
    Q = np.eye(U.shape[1], dtype=U.dtype)
    _kernels.hh_chain_apply(Q, np.ascontiguousarray(U), order)
    return Q


@_checks.finite_result
def householder_matrix_vjp(dQ, Q, U, k=None, reverse=False, *, device="cpu"):
    r"""Gradient of :math:`\langle dQ, \mathrm{householder\_matrix}(U, k, reverse)\rangle` with respect to ``U``.

    ``Q`` is that matrix (the chain is walked backwards from it, so nothing else is stored); ``dQ`` and ``Q`` are
    [n, n] and are not modified.  Returns an array of ``U``'s shape and dtype whose strict lower triangle, and
    rows from ``k`` on, are 0.  Raises ``ValueError`` as :func:`householder_matrix`, and for ``dQ`` or ``Q`` of
    the wrong shape.  ``device`` as in :func:`householder_matrix`.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> U = np.array([[1.0, 1.0, 0.0]])
    >>> Q = L.householder_matrix(U, k=1)
    >>> L.householder_matrix_vjp(np.ones((3, 3)), Q, U, k=1).shape
    (1, 3)
    """
    xp = _backend.arrays(device, dQ, Q, U)
    U, k, order = _chain_args(xp.to_host(U), k, reverse)
    n = U.shape[1]
    dQ = as_float_array(xp.to_host(dQ), "dQ", ndim=2, dtype=U.dtype)
    check_shape(dQ, "dQ", (n, n), "Q's shape, [n, n] for U with n columns")
    Q = as_float_array(xp.to_host(Q), "Q", ndim=2, dtype=U.dtype)
    check_shape(Q, "Q", (n, n), "[n, n] for U with n columns")
    if device == "cuda":
        kern = _backend.kernels("linear", "cuda")
        return xp.give_back(kern.householder_matrix_vjp(xp.from_host(dQ), xp.from_host(Q), xp.from_host(U), k,
                                                        bool(reverse)))
    return _householder_matrix_vjp(dQ, Q, U, order)


def _householder_matrix_vjp(dQ, Q, U, order):
    dU = np.zeros_like(U)
    _kernels.hh_chain_vjp(np.array(Q, dtype=U.dtype, copy=True), np.array(dQ, dtype=U.dtype, copy=True),
                          np.ascontiguousarray(U), order, dU)
    return dU


def _triu_normal(gen, n):
    return np.triu(gen.standard_normal((n, n)))


class OrthogonalLinear(SquareLinear):
    r"""Orthogonal map as a product of n Householder reflectors (arXiv:1612.00188).

    Parameter ``U`` (n, n) = triu(N(0, 1)); reflector t uses :math:`v_t = U_{t, t:}`.

    .. math::

        W = Q = H(\tilde v_0) H(\tilde v_1)\cdots H(\tilde v_{n-1}),\qquad
        \partial\tilde v_t = -\frac{2(M_t + M_t^\top)\tilde v_t}{\tilde v_t^\top\tilde v_t}
        + \frac{4(\tilde v_t^\top M_t\tilde v_t)\tilde v_t}{(\tilde v_t^\top\tilde v_t)^2},\
        M_t = A_t^\top G B_t^\top,

    with :math:`A_t = H_0\cdots H_{t-1}`, :math:`B_t = H_{t+1}\cdots H_{n-1}`.

    Guarantee (exact): :math:`W^\top W = I`, :math:`\det W = (-1)^n`, all :math:`|\lambda| = 1`.  (:math:`H_{n-1}`
    always flips the last coordinate, so ``U[n-1, n-1]`` gets a zero gradient.)

    ``compat="neuromancer"``: ``effective_W()`` returns :math:`Q + \mathbf 1 b`, neuromancer's ``forward(I)`` (the bias
    folded into every row), which is not orthogonal when b != 0.  ``forward`` is :math:`xQ + b` in both modes.
    (neuromancer's own map crashes with the default bias=False.)

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.OrthogonalLinear(3, 3, rng=0)
    >>> W = m.effective_W()
    >>> np.allclose(W @ W.T, np.eye(3))
    True
    >>> m.forward(np.ones((2, 3))).shape
    (2, 3)
    """

    def _init_params(self, gen):
        self.params["U"] = _triu_normal(gen, self.insize)

    def _validate_params(self, params):
        _check_reflectors(params["U"], self.insize, "U", "params['U']")

    @property
    def bias_in_effective_W(self):
        return self.compat == "neuromancer"

    def _weight(self):
        Q = _householder_matrix(self.params["U"], _order(self.insize, False))
        return Q, Q

    def _weight_vjp(self, G, Q):
        return {"U": _householder_matrix_vjp(G, Q, self.params["U"], _order(self.insize, False))}

    def _device_weight(self, K, p):
        Q = K.householder_matrix(p["U"])
        return Q, Q

    def _device_weight_vjp(self, K, G, Q, p):
        return {"U": K.householder_matrix_vjp(G, Q, p["U"])}


class SpectralLinear(LinearBase):
    r"""Exact SVD map :math:`W = Q_U\,\Sigma\,Q_V` with Householder factors (after Zhang et al., spectral-RNN).

    Parameters ``p`` (r,) :math:`\sim 0.001\,N(0,1)`, ``V`` (out, out) and ``U`` (in, in) = triu(N(0,1)),
    :math:`r = \min(n_\text{in}, n_\text{out})`; ``n_U_reflectors`` <= insize and ``n_V_reflectors`` <= outsize
    (default r each, independently).

    .. math::

        s = \sigma_\min + (\sigma_\max-\sigma_\min)\,\sigma(p),\quad \Sigma = I_{n_\text{in}\times n_\text{out}}\odot s,
        \quad Q_U = H^U_0\cdots H^U_{k_U-1},\quad Q_V = H^V_{k_V-1}\cdots H^V_0,\quad W = Q_U\Sigma Q_V,

        \partial Q_U = G Q_V^\top\Sigma^\top,\quad \partial Q_V = \Sigma^\top Q_U^\top G,\quad
        \partial p_i = (Q_U^\top G Q_V^\top)_{ii}\,(\sigma_\max-\sigma_\min)\sigma(p_i)(1-\sigma(p_i)),

    then through each reflector chain.  Guarantee (exact): the singular values of W are exactly
    :math:`s \in (\sigma_\min, \sigma_\max)`, so :math:`\|xW\| \le \sigma_\max\|x\|`.

    ``compat="neuromancer"``: a trainable ``bias`` (outsize,) of zeros exists even when bias=False, and
    ``effective_W()`` includes the bias (neuromancer's ``forward(I)``).  By default bias follows ``bias`` and
    ``effective_W()`` is :math:`Q_U\Sigma Q_V` exactly.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.SpectralLinear(4, 3, rng=0)
    >>> W = m.effective_W()
    >>> s = np.linalg.svd(W, compute_uv=False)
    >>> bool(((s > 0.1) & (s < 1.0)).all())   # exactly inside (sigma_min, sigma_max)
    True
    >>> m.forward(np.ones((2, 4))).shape
    (2, 3)
    """

    def __init__(self, insize, outsize, bias=False, *, n_U_reflectors=None, n_V_reflectors=None, sigma_min=0.1,
                 sigma_max=1.0, **kw):
        self.sigma_min, self.sigma_max = check_bounds(sigma_min, sigma_max, strict=False)
        self._nU, self._nV = n_U_reflectors, n_V_reflectors
        super().__init__(insize, outsize, bias, **kw)

    def _check_sizes(self):
        super()._check_sizes()
        r = min(self.insize, self.outsize)
        self.n_U_reflectors = r if self._nU is None else check_int(self._nU, "n_U_reflectors", minimum=0)
        self.n_V_reflectors = r if self._nV is None else check_int(self._nV, "n_V_reflectors", minimum=0)
        if self.n_U_reflectors > self.insize:
            raise ValueError(f"n_U_reflectors: expected at most insize = {self.insize}, got {self.n_U_reflectors}")
        if self.n_V_reflectors > self.outsize:
            raise ValueError(f"n_V_reflectors: expected at most outsize = {self.outsize}, got {self.n_V_reflectors}")

    @property
    def r(self):
        return min(self.insize, self.outsize)

    @property
    def bias_in_effective_W(self):
        return self.compat == "neuromancer"

    def _init_bias(self, gen):
        super()._init_bias(gen)
        if not self.use_bias and self.compat == "neuromancer":
            self.params["bias"] = np.zeros(self.outsize)

    def _init_params(self, gen):
        self.params["p"] = 0.001 * gen.standard_normal(self.r)
        self.params["V"] = _triu_normal(gen, self.outsize)
        self.params["U"] = _triu_normal(gen, self.insize)

    def _validate_params(self, params):
        _check_reflectors(params["U"], self.n_U_reflectors, "U", "params['U']")
        _check_reflectors(params["V"], self.n_V_reflectors, "V", "params['V']")

    def singular_values(self):
        """The exact singular values :math:`s` of W (length r)."""
        return self.sigma_min + (self.sigma_max - self.sigma_min) * sigmoid(self.params["p"])

    def _svd_factors(self):
        QU = _householder_matrix(self.params["U"], _order(self.n_U_reflectors, False))
        QV = _householder_matrix(self.params["V"], _order(self.n_V_reflectors, True))
        return QU, QV

    def _weight(self):
        QU, QV = self._svd_factors()
        r = self.r
        sp = sigmoid(self.params["p"])
        s = self.sigma_min + (self.sigma_max - self.sigma_min) * sp
        W = (QU[:, :r] * s) @ QV[:r, :]
        return W, (QU, QV, s, sp)

    def _core_vjp(self, G, cache):
        QU, QV, s, sp = cache
        r = self.r
        GQVt = G @ QV[:r, :].T
        dQU = np.zeros_like(QU)
        dQU[:, :r] = GQVt * s
        dQV = np.zeros_like(QV)
        dQV[:r, :] = s[:, None] * (QU[:, :r].T @ G)
        dp = np.sum(QU[:, :r] * GQVt, axis=0) * (self.sigma_max - self.sigma_min) * sp * (1 - sp)
        return dQU, dQV, dp

    def _weight_vjp(self, G, cache):
        QU, QV = cache[0], cache[1]
        dQU, dQV, dp = self._core_vjp(G, cache)
        return {
            "p": dp,
            "U": _householder_matrix_vjp(dQU, QU, self.params["U"], _order(self.n_U_reflectors, False)),
            "V": _householder_matrix_vjp(dQV, QV, self.params["V"], _order(self.n_V_reflectors, True)),
        }

    def _device_weight(self, K, p):
        QU = K.householder_matrix(p["U"], self.n_U_reflectors)
        QV = K.householder_matrix(p["V"], self.n_V_reflectors, reverse=True)
        W, s, sp = K.spectral_factors(QU, QV, p["p"], self.sigma_min, self.sigma_max, self.r)
        return W, (QU, QV, s, sp)

    def _device_weight_vjp(self, K, G, cache, p):
        QU, QV, s, sp = cache
        dQU, dQV, dp = K.spectral_core_vjp(G, QU, QV, s, sp, self.sigma_min, self.sigma_max, self.r)
        return {"p": dp, "U": K.householder_matrix_vjp(dQU, QU, p["U"], self.n_U_reflectors),
                "V": K.householder_matrix_vjp(dQV, QV, p["V"], self.n_V_reflectors, reverse=True)}


    # ---- neuromancer's factor methods: Sigma(), Umultiply(x), Vmultiply(x), each with its VJP ----
    def Sigma(self) -> np.ndarray:
        r""":math:`\Sigma = I_{n_\text{in}\times n_\text{out}}\odot s` ([insize, outsize]), the singular values on the
        diagonal (neuromancer's ``Sigma()``)."""
        S = np.zeros((self.insize, self.outsize), dtype=self.dtype)
        r = self.r
        S[np.arange(r), np.arange(r)] = self.singular_values()
        return S

    def Sigma_vjp(self, grad_out) -> dict:
        r"""Pull :math:`\bar\Sigma` back to ``p``: :math:`\bar p_i = \bar\Sigma_{ii}(\sigma_\max-\sigma_\min)\sigma(p_i)
        (1-\sigma(p_i))` (the other parameters get zeros)."""
        G = as_float_array(grad_out, "grad_out", ndim=2, dtype=self.dtype)
        check_shape(G, "grad_out", (self.insize, self.outsize), "[insize, outsize]")
        sp = sigmoid(self.params["p"])
        r = self.r
        return self._full({"p": G[np.arange(r), np.arange(r)] * (self.sigma_max - self.sigma_min) * sp * (1 - sp)})

    def _factor_x(self, x, width, name="x"):
        x = as_float_array(x, name, ndim=2, dtype=self.dtype, shape_hint=f"[batch, {width}]")
        if x.shape[1] != width:
            raise ValueError(f"{name}: expected shape [batch, {width}], got {x.shape}")
        return x

    def _factor_grads(self, dQU, dQV) -> dict:
        QU, QV = self._svd_factors()
        grads = {}
        if dQU is not None:
            grads["U"] = _householder_matrix_vjp(dQU, QU, self.params["U"], _order(self.n_U_reflectors, False))
        if dQV is not None:
            grads["V"] = _householder_matrix_vjp(dQV, QV, self.params["V"], _order(self.n_V_reflectors, True))
        return self._full(grads)

    def Umultiply(self, x) -> np.ndarray:
        r""":math:`x Q_U` for x [batch, insize]: the U reflectors applied in neuromancer's order (``Umultiply``)."""
        x = self._factor_x(x, self.insize)
        return x @ self._svd_factors()[0]

    def Umultiply_vjp(self, grad_out, x):
        r"""VJP of :meth:`Umultiply`: returns :math:`(\bar x, \text{grads})` with :math:`\bar x = \bar y Q_U^\top` and
        the parameters' gradients through :math:`\bar Q_U = x^\top\bar y`."""
        x = self._factor_x(x, self.insize)
        g = self._factor_x(grad_out, self.insize, "grad_out")
        check_shape(g, "grad_out", x.shape, "the shape of x")
        QU = self._svd_factors()[0]
        return g @ QU.T, self._factor_grads(x.T @ g, None)

    def Vmultiply(self, x) -> np.ndarray:
        r""":math:`x Q_V` for x [batch, outsize]: the V reflectors applied last to first (neuromancer's ``Vmultiply``)."""
        x = self._factor_x(x, self.outsize)
        return x @ self._svd_factors()[1]

    def Vmultiply_vjp(self, grad_out, x):
        r"""VJP of :meth:`Vmultiply`: :math:`\bar x = \bar y Q_V^\top`, parameters through :math:`\bar Q_V = x^\top\bar y`."""
        x = self._factor_x(x, self.outsize)
        g = self._factor_x(grad_out, self.outsize, "grad_out")
        check_shape(g, "grad_out", x.shape, "the shape of x")
        QV = self._svd_factors()[1]
        return g @ QV.T, self._factor_grads(None, x.T @ g)


class SymmetricSpectralLinear(SpectralLinear):
    r"""Symmetric exact-spectrum map :math:`W = Q\Sigma Q^\top`, :math:`Q = H_0\cdots H_{k-1}` from the rows of ``V``.

    Parameters ``p`` (n,), ``V`` (n, n) = triu(N(0,1)); square only; ``n_reflectors`` defaults to n.

    .. math:: \partial Q = (G + G^\top) Q\Sigma,\qquad \partial p_i = (Q^\top G Q)_{ii}(\sigma_\max-\sigma_\min)\sigma(p_i)(1-\sigma(p_i)).

    (:math:`\partial Q` is formed as :math:`(G + G^\top) Q(\Sigma - cI)`, :math:`c = (\sigma_\min+\sigma_\max)/2`, which
    pulls back to the same gradient of ``V`` because :math:`QcIQ^\top = cI` for every ``V``, and does not cancel when
    the spectrum is clustered.)

    Guarantee (exact): :math:`W = W^\top`, its eigenvalues are exactly :math:`s \in (\sigma_\min, \sigma_\max)`
    (symmetric positive definite when :math:`\sigma_\min \ge 0`).  ``compat="neuromancer"``: as
    :class:`SpectralLinear` (a bias always exists and is folded into ``effective_W``).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.SymmetricSpectralLinear(3, 3, rng=0)
    >>> W = m.effective_W()
    >>> ev = np.linalg.eigvalsh(W)
    >>> np.allclose(W, W.T), bool(((ev > 0.1) & (ev < 1.0)).all())
    (True, True)
    >>> m.forward(np.ones((2, 3))).shape
    (2, 3)
    """

    square = True

    def __init__(self, insize, outsize, bias=False, *, n_reflectors=None, sigma_min=0.1, sigma_max=1.0, **kw):
        super().__init__(insize, outsize, bias, n_U_reflectors=n_reflectors, n_V_reflectors=n_reflectors,
                         sigma_min=sigma_min, sigma_max=sigma_max, **kw)
        self.n_reflectors = self.n_V_reflectors

    def _check_sizes(self):
        if self._nU is not None:
            check_int(self._nU, "n_reflectors", minimum=0)
        super()._check_sizes()

    def _init_params(self, gen):
        self.params["p"] = 0.001 * gen.standard_normal(self.r)
        self.params["V"] = _triu_normal(gen, self.outsize)

    def _validate_params(self, params):
        _check_reflectors(params["V"], self.n_V_reflectors, "V", "params['V']")

    def _svd_factors(self):
        Q = _householder_matrix(self.params["V"], _order(self.n_V_reflectors, False))
        return Q, Q.T

    def _weight_vjp(self, G, cache):
        # dQ = (G + G^T) Q S, but Q cI Q^T = cI for every V (Q is exactly orthogonal by construction), so the shift
        # S - cI gives the same exact gradient without the terms |G||S| that cancel when the spectrum is clustered
        # (it is at initialisation: p ~ 1e-3 N(0, 1)).  With c = (sigma_min + sigma_max)/2 the shifted values are
        # s - c = (sigma_max - sigma_min)/2 tanh(p/2), formed from p (the difference of the rounded s would not be).
        QU = cache[0]
        _, _, dp = self._core_vjp(G, cache)
        d = (0.5 * (self.sigma_max - self.sigma_min) * np.tanh(0.5 * self.params["p"])).astype(QU.dtype)
        dQ = (G + G.T) @ (QU * d)
        return {"p": dp, "V": _householder_matrix_vjp(dQ, QU, self.params["V"], _order(self.n_V_reflectors, False))}

    def _factor_grads(self, dQU, dQV) -> dict:
        # both factors are Q (U side) and Q^T (V side), built from the rows of V
        Q = self._svd_factors()[0]
        dQ = (0 if dQU is None else dQU) + (0 if dQV is None else dQV.T)
        return self._full({"V": _householder_matrix_vjp(dQ, Q, self.params["V"], _order(self.n_V_reflectors, False))})


def _rot(theta):
    c, s = np.cos(theta), np.sin(theta)
    return c, s


class SchurDecompositionLinear(SquareLinear):
    r"""Real Schur form :math:`W = Q T Q^\top` with prescribed eigenvalues :math:`\gamma_k e^{\pm i\theta_k}`
    (after the nnRNN, Kerg et al., NeurIPS 2019).

    Parameters ``P.U`` (n, n) = triu(N(0,1)) (the reflectors of :math:`Q`, as :class:`OrthogonalLinear`),
    ``theta`` (n/2,) :math:`\sim 2\pi\,U[0,1)`, ``gamma`` (n/2,) = 1; n must be even.

    .. math::

        T = \mathrm{blockdiag}_k\big(\gamma_k R(\theta_k)\big),\ R(\theta) = \begin{pmatrix}\cos\theta & -\sin\theta\\
        \sin\theta & \cos\theta\end{pmatrix},\quad W = QTQ^\top,\quad
        R_\text{reg} = l_2\,\mathrm{mean}_k(1-\gamma_k)^2,

        \partial Q = G Q T^\top + G^\top Q T,\quad B = Q^\top G Q,\quad
        \partial\gamma_k = \langle B_k, R(\theta_k)\rangle,\quad \partial\theta_k = \gamma_k\langle B_k, R'(\theta_k)\rangle.

    Guarantee (exact): the eigenvalues of W are exactly :math:`\gamma_k e^{\pm i\theta_k}`; W is normal.
    neuromancer's class is unusable (it crashes, its T is detached from theta and gamma, and its formula cancels
    Q), so there is no ``compat`` mode.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.SchurDecompositionLinear(4, 4, rng=0)
    >>> W = m.effective_W()
    >>> np.round(np.abs(np.linalg.eigvals(W)), 6)   # |gamma_k e^(i theta_k)| = gamma_k = 1 at init
    array([1., 1., 1., 1.])
    >>> m.forward(np.ones((2, 4))).shape
    (2, 4)
    """

    def __init__(self, insize, outsize, bias=False, *, l2=1e-2, **kw):
        self.l2 = check_real(l2, "l2", nonnegative=True)
        if kw.get("compat") is not None:
            raise ValueError("compat: SchurDecompositionLinear has no neuromancer mode (the upstream class crashes); use None")
        super().__init__(insize, outsize, bias, **kw)

    def _check_sizes(self):
        super()._check_sizes()
        if self.insize % 2:
            raise ValueError(f"insize: SchurDecompositionLinear needs an even size, got {self.insize}")

    def _init_params(self, gen):
        m = self.insize // 2
        self.params["P.U"] = _triu_normal(gen, self.insize)
        self.params["theta"] = 2 * math.pi * gen.uniform(0.0, 1.0, size=m)
        self.params["gamma"] = np.ones(m)

    def _validate_params(self, params):
        _check_reflectors(params["P.U"], self.insize, "P.U", "params['P.U']")

    def _T(self):
        n = self.insize
        c, s = _rot(self.params["theta"])
        g = self.params["gamma"]
        T = np.zeros((n, n), dtype=self.dtype)
        i = np.arange(0, n, 2)
        T[i, i], T[i, i + 1], T[i + 1, i], T[i + 1, i + 1] = g * c, -g * s, g * s, g * c
        return T

    def build_T(self, T=None) -> np.ndarray:
        r"""The block-diagonal :math:`T = \mathrm{blockdiag}_k(\gamma_k R(\theta_k))` (neuromancer's ``build_T(T)``
        writes the 2x2 blocks into ``T`` in place and returns it; so does this when ``T`` is given, else it returns a
        new array).  Its VJP is :meth:`build_T_vjp`."""
        Tn = self._T()
        if T is None:
            return Tn
        if not isinstance(T, np.ndarray) or T.shape != Tn.shape or not T.flags.writeable:
            raise ValueError(f"T: expected a writeable ndarray of shape {Tn.shape}, got {type(T).__name__} "
                             f"{getattr(T, 'shape', '')}")
        n = self.insize
        for i in range(0, n, 2):
            T[i:i + 2, i:i + 2] = Tn[i:i + 2, i:i + 2]
        return T

    def build_T_vjp(self, grad_out) -> dict:
        r"""Pull :math:`\bar T` back to ``gamma`` and ``theta``: :math:`\bar\gamma_k = \langle\bar T_k, R(\theta_k)\rangle`,
        :math:`\bar\theta_k = \gamma_k\langle\bar T_k, R'(\theta_k)\rangle` (``P.U`` gets zeros)."""
        n = self.insize
        B = as_float_array(grad_out, "grad_out", ndim=2, dtype=self.dtype)
        check_shape(B, "grad_out", (n, n), "[n, n]")
        c, s = _rot(self.params["theta"])
        g = self.params["gamma"]
        i = np.arange(0, n, 2)
        b00, b01, b10, b11 = B[i, i], B[i, i + 1], B[i + 1, i], B[i + 1, i + 1]
        dgamma = b00 * c - b01 * s + b10 * s + b11 * c
        dtheta = g * (-b00 * s - b01 * c + b10 * c - b11 * s)
        return self._full({"gamma": dgamma, "theta": dtheta})

    def _weight(self):
        Q = _householder_matrix(self.params["P.U"], _order(self.insize, False))
        T = self._T()
        return Q @ T @ Q.T, (Q, T)

    def _weight_vjp(self, G, cache):
        Q, T = cache
        dQ = G @ Q @ T.T + G.T @ Q @ T
        B = Q.T @ G @ Q
        i = np.arange(0, self.insize, 2)
        b00, b01, b10, b11 = B[i, i], B[i, i + 1], B[i + 1, i], B[i + 1, i + 1]
        c, s = _rot(self.params["theta"])
        dgamma = b00 * c - b01 * s + b10 * s + b11 * c
        dtheta = self.params["gamma"] * (-b00 * s - b01 * c + b10 * c - b11 * s)
        return {"P.U": _householder_matrix_vjp(dQ, Q, self.params["P.U"], _order(self.insize, False)), "theta": dtheta, "gamma": dgamma}

    def _reg(self):
        g = self.params["gamma"]
        m = g.shape[0]
        return self.l2 * float(np.mean((1 - g) ** 2)), {"gamma": -2.0 * self.l2 * (1 - g) / m}
