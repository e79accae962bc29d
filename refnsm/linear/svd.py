r"""Soft SVD maps: :math:`W = U\Sigma V` with singular values squashed into :math:`(\sigma_\min, \sigma_\max)` and
orthogonality of :math:`U, V` encouraged by a penalty.

Orthogonality penalty of a square factor :math:`A` (both norms Frobenius):

.. math::

    e(A) = \|I - AA^\top\|_F + \|I - A^\top A\|_F,\qquad
    \frac{\partial e}{\partial A} = -\frac{2EA}{\|E\|_F} - \frac{2AF}{\|F\|_F},\quad E = I - AA^\top,\ F = I - A^\top A,

with the convention that a term whose norm is exactly 0 contributes 0 (torch's subgradient of the norm at 0).
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from .._checks import as_float_array
from . import _kernels
from .base import LinearBase, SquareLinear
from .functional import check_bounds, frob_norm, sigmoid

__all__ = ["SVDLinear", "SVDLinearLearnBounds", "SymmetricSVDLinear", "orthogonal_init", "orthogonality_error"]


#: Below this many multiply-adds per product (r * insize * outsize), the soft-SVD products are BLAS calls made from
#: inside the Numba kernels, which saves the fixed cost of three Python-level calls (2.7 -> 1.9 us for a 16x16
#: weight, 4.5 -> 3.2 us for its VJP).  Those calls go to the BLAS that Numba links (SciPy's OpenBLAS), while
#: ``forward`` and ``backward`` multiply by W with NumPy's (a second OpenBLAS with its own thread pool, in NumPy's
#: wheels).  Where OpenBLAS runs a product on several threads, alternating the two libraries makes
#: both pools' spinning threads fight over the cores (``docs/contributing.md``, "One BLAS per hot path"): at
#: 512x512, batch 1024, on 2 cores, effective_W + forward + backward took 48-80 ms with the products in the
#: kernels against 23 ms with them in NumPy's BLAS, and at 96x96 16 ms against 0.2 ms
#: (``benchmarks/bench_blas_pools.py`` measures both).  So the larger products are NumPy's ``np.dot``; below the
#: threshold the two paths differ by 1-2 µs, and the pools stayed apart up to 80x80.
_PRODUCTS_IN_KERNEL_BELOW = 64**3


def orthogonal_init(gen, n):
    """torch's ``orthogonal_`` law: Q of the QR of an N(0, 1) matrix, columns multiplied by sign(diag R)."""
    q, r = np.linalg.qr(gen.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


@_checks.finite_result
def orthogonality_error(A):
    r"""Return :math:`e(A)` and :math:`\partial e/\partial A` (see the module docstring) of a square matrix ``A``.

    Raises ``ValueError`` for anything but a finite square matrix (``A`` of shape [n, n]); float32 stays float32.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> e, dA = L.orthogonality_error(np.eye(3))
    >>> float(e), dA.shape
    (0.0, (3, 3))
    >>> float(L.orthogonality_error(2 * np.eye(2))[0]) > 0
    True
    """
    A = as_float_array(A, "A", ndim=2, shape_hint="[n, n]")
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"A: expected a square matrix [n, n] (the penalty compares A A^T and A^T A with I), got shape {A.shape}")
    return _orthogonality_error(A)


def _orthogonality_error(A):
    n = A.shape[0]
    E = np.eye(n, dtype=A.dtype) - A @ A.T
    F = np.eye(n, dtype=A.dtype) - A.T @ A
    ne, nf = frob_norm(E), frob_norm(F)
    grad = np.zeros_like(A)
    if ne > 0:
        grad -= (2.0 / ne) * (E @ A)
    if nf > 0:
        grad -= (2.0 / nf) * (A @ F)
    return ne + nf, grad


class _OrthogonalErrorMethod:
    """neuromancer's ``orthogonal_error(weight)`` as a method of the soft-SVD maps (and its VJP)."""

    def orthogonal_error(self, weight) -> float:
        r""":math:`e(A) = \|I - AA^\top\|_F + \|I - A^\top A\|_F` of a square matrix (neuromancer's method; the penalty
        of :meth:`reg_error` is the sum over the factors).  Same as :func:`orthogonality_error`."""
        return float(orthogonality_error(weight)[0])

    def orthogonal_error_vjp(self, grad_out, weight) -> np.ndarray:
        r""":math:`\bar y\,\partial e/\partial A` (0 where a norm vanishes: a subgradient, as torch)."""
        from .._checks import scalar_grad_out

        return scalar_grad_out(grad_out) * orthogonality_error(weight)[1]


class SVDLinear(_OrthogonalErrorMethod, LinearBase):
    r"""Soft SVD map :math:`W = U\,\Sigma\,V` (Koopman-operator style, arXiv:2101.01864).

    Parameters ``U`` (in, in) and ``V`` (out, out) (orthogonal at initialisation), ``sigma`` :math:`\theta`
    (in, 1) :math:`\sim U[0,1)`.  With :math:`r = \min(n_\text{in}, n_\text{out})`:

    .. math::

        s = \sigma_\max - (\sigma_\max-\sigma_\min)\,\sigma(\theta) \in (\sigma_\min, \sigma_\max),\quad
        \Sigma = I_{n_\text{in}\times n_\text{out}} \odot s,\quad W = U\Sigma V,\quad R = e(U) + e(V),

        \partial U = G V^\top\Sigma^\top,\quad \partial V = \Sigma^\top U^\top G,\quad
        \partial\theta_i = -(\sigma_\max-\sigma_\min)\sigma(\theta_i)(1-\sigma(\theta_i))\,(U^\top G V^\top)_{ii}\ (i<r).

    Guarantee (soft): the singular values of W are exactly :math:`s_{0..r-1}` only while U and V are orthogonal
    (they are at initialisation; the penalty R keeps them close).  :math:`\theta_{r:}` is unused (zero gradient).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.SVDLinear(3, 3, rng=0)
    >>> W = m.effective_W()
    >>> float(m.reg_error()) >= 0.0   # the soft orthogonality penalty
    True
    >>> m.forward(np.ones((2, 3))).shape
    (2, 3)
    """

    exact = False

    def __init__(self, insize, outsize, bias=False, *, sigma_min=0.1, sigma_max=1.0, **kw):
        self.sigma_min, self.sigma_max = check_bounds(sigma_min, sigma_max, strict=False)
        super().__init__(insize, outsize, bias, **kw)

    @property
    def r(self):
        return min(self.insize, self.outsize)

    def _init_params(self, gen):
        self.params["U"] = orthogonal_init(gen, self.insize)
        self.params["V"] = orthogonal_init(gen, self.outsize)
        self.params["sigma"] = gen.uniform(0.0, 1.0, size=(self.insize, 1))

    def _bounds(self):
        return self.sigma_min, self.sigma_max

    def singular_values(self):
        """The squashed values :math:`s_{0..r-1}` (the singular values of W when U and V are orthogonal)."""
        lo, hi = self._bounds()
        return (hi - (hi - lo) * sigmoid(self.params["sigma"][: self.r, 0])).astype(self.dtype)

    def _factors(self):
        return self.params["U"], self.params["V"]

    def _products_in_kernel(self):
        """Whether the weight's products (r * insize * outsize multiply-adds each) are made inside the Numba kernels;
        see :data:`_PRODUCTS_IN_KERNEL_BELOW`."""
        return self.r * self.insize * self.outsize < _PRODUCTS_IN_KERNEL_BELOW

    def _weight(self):
        # sigma(theta), s, Us = U[:, :r] diag(s) (Numba) and the product Us V[:r] (BLAS)
        U, V = self._factors()
        lo, hi = self._bounds()
        if self._products_in_kernel():
            W, s, sg = _kernels.svd_weight(U, V, self.params["sigma"], float(lo), float(hi), self.r)
        else:
            Us, s, sg = _kernels.svd_scaled_factor(U, self.params["sigma"], float(lo), float(hi), self.r)
            W = np.dot(Us, V[: self.r])
        return W, (U, V, s, sg)

    def _core_vjp(self, G, cache):
        U, V, s, sg = cache
        lo, hi = self._bounds()
        r, ntheta = self.r, self.params["sigma"].shape[0]
        # G V^T and U^T G (BLAS), then dU = [G V^T diag(s), 0], dV = [diag(s) U^T G; 0], g_i = (U^T G V^T)_ii
        # and dtheta (Numba)
        G = np.ascontiguousarray(G)
        if self._products_in_kernel():
            dU, dV, dtheta, g = _kernels.svd_weight_vjp(G, U, V, s, sg, float(lo), float(hi), r, ntheta)
        else:
            GVt, UtG = np.dot(G, V[:r].T), np.dot(U[:, :r].T, G)
            dU, dV, dtheta, g = _kernels.svd_vjp_from_products(GVt, UtG, U, s, sg, float(lo), float(hi), r, ntheta)
        return dU, dV, dtheta, g, sg

    def _weight_vjp(self, G, cache):
        dU, dV, dtheta, _, _ = self._core_vjp(G, cache)
        return {"U": dU, "V": dV, "sigma": dtheta}

    def _reg(self):
        eu, gu = _orthogonality_error(self.params["U"])
        ev, gv = _orthogonality_error(self.params["V"])
        return eu + ev, {"U": gu, "V": gv}


class SVDLinearLearnBounds(SVDLinear):
    r""":class:`SVDLinear` whose bounds ``sigma_min`` and ``sigma_max`` are trainable 0-d parameters.

    .. math::

        \partial\sigma_\max = \textstyle\sum_{i<r} g_i (1 - \sigma(\theta_i)),\qquad
        \partial\sigma_\min = \textstyle\sum_{i<r} g_i\,\sigma(\theta_i),\qquad g_i = (U^\top G V^\top)_{ii}.

    Guarantee (soft, and weak): nothing keeps :math:`\sigma_\min < \sigma_\max` or the bounds where they started,
    so the singular values are not bounded by fixed numbers.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.SVDLinearLearnBounds(3, 3, rng=0)
    >>> W = m.effective_W()
    >>> sorted(m.params)
    ['U', 'V', 'sigma', 'sigma_max', 'sigma_min']
    >>> m.forward(np.ones((2, 3))).shape
    (2, 3)
    """

    def _init_params(self, gen):
        super()._init_params(gen)
        self.params["sigma_min"] = np.array(self.sigma_min)
        self.params["sigma_max"] = np.array(self.sigma_max)

    def _bounds(self):
        return self.params["sigma_min"][()], self.params["sigma_max"][()]

    def _weight_vjp(self, G, cache):
        dU, dV, dtheta, g, sg = self._core_vjp(G, cache)
        return {"U": dU, "V": dV, "sigma": dtheta,
                "sigma_max": np.array(np.sum(g * (1 - sg))), "sigma_min": np.array(np.sum(g * sg))}


class SymmetricSVDLinear(SquareLinear, SVDLinear):
    r"""Symmetric soft-SVD map :math:`W = V^\top \Sigma V` (a soft eigendecomposition).

    Parameters ``V`` (n, n) (orthogonal at initialisation) and ``sigma`` (n, 1); penalty :math:`R = 2e(V)` (the same
    number as neuromancer, whose ``U`` and ``V`` are one tensor).

    .. math:: W = V^\top\Sigma V,\qquad \partial V = \Sigma V (G + G^\top),\qquad
              \partial\theta_i = -(\sigma_\max-\sigma_\min)\sigma(\theta_i)(1-\sigma(\theta_i))(V G V^\top)_{ii}.

    Guarantee: W is exactly symmetric; its eigenvalues equal :math:`s \in (\sigma_\min, \sigma_\max)` only while V is
    orthogonal (soft).  ``compat="neuromancer"`` computes neuromancer's :math:`W = V\Sigma V`, which is **not**
    symmetric (:math:`\partial V = G V^\top\Sigma + \Sigma V^\top G`).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.SymmetricSVDLinear(3, 3, rng=0)
    >>> W = m.effective_W()
    >>> np.allclose(W, W.T)
    True
    >>> m.forward(np.ones((2, 3))).shape
    (2, 3)
    """

    def _init_params(self, gen):
        self.params["V"] = orthogonal_init(gen, self.insize)
        self.params["sigma"] = gen.uniform(0.0, 1.0, size=(self.insize, 1))

    def _factors(self):
        V = self.params["V"]
        return (V, V) if self.compat == "neuromancer" else (V.T, V)

    def _weight_vjp(self, G, cache):
        dA, dV, dtheta, _, _ = self._core_vjp(G, cache)
        dV = dV + (dA if self.compat == "neuromancer" else dA.T)
        return {"V": dV, "sigma": dtheta}

    def _reg(self):
        ev, gv = _orthogonality_error(self.params["V"])
        return 2.0 * ev, {"V": 2.0 * gv}
