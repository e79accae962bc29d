r"""Softmax maps: stochastic matrices, Perron–Frobenius bounds, and the stable split.

For a square non-negative :math:`W`, the Perron–Frobenius theorem bounds the spectral radius by the row sums:
:math:`\min_i \sum_j W_{ij} \le \rho(W) \le \max_i \sum_j W_{ij}`.
"""

from __future__ import annotations

import math

import numpy as np

from . import _kernels
from .base import LinearBase
from .functional import check_bounds, softmax, softmax_vjp

__all__ = ["RightStochasticLinear", "LeftStochasticLinear", "PerronFrobeniusLinear", "StableSplitLinear"]


def _kaiming_uniform(gen, shape, fan):
    k = 1.0 / math.sqrt(fan)
    return gen.uniform(-k, k, size=shape)


class RightStochasticLinear(LinearBase):
    r"""Row-stochastic map: :math:`W = \mathrm{softmax}_\text{rows}(P)`.

    .. math:: W_{ij} = \frac{e^{P_{ij}}}{\sum_k e^{P_{ik}}},\qquad \partial P_{ij} = W_{ij}\big(G_{ij} - \textstyle\sum_k G_{ik}W_{ik}\big).

    Guarantee (exact, any shape): :math:`W > 0` and every row sums to 1, so :math:`\sum_j (xW)_j = \sum_i x_i`
    (probability vectors stay probability vectors); a square W has :math:`\rho(W) = 1`.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.RightStochasticLinear(3, 2, rng=0)
    >>> W = m.effective_W()
    >>> np.allclose(W.sum(axis=1), 1.0)   # every row sums to 1
    True
    >>> m.forward(np.ones((2, 3))).shape
    (2, 2)
    """

    def _init_params(self, gen):
        self.params["weight"] = _kaiming_uniform(gen, (self.insize, self.outsize), self.outsize)

    def _weight(self):
        W = softmax(self.params["weight"], axis=1)
        return W, W

    def _weight_vjp(self, G, W):
        return {"weight": softmax_vjp(G, W, axis=1)}


class LeftStochasticLinear(RightStochasticLinear):
    r"""Column-stochastic map: :math:`W = \mathrm{softmax}_\text{cols}(P)`.

    .. math:: \partial P_{ij} = W_{ij}\big(G_{ij} - \textstyle\sum_k G_{kj}W_{kj}\big).

    Guarantee (exact, any shape): :math:`W > 0` and every column sums to 1; a square W has :math:`\rho(W) = 1`.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.LeftStochasticLinear(3, 2, rng=0)
    >>> W = m.effective_W()
    >>> np.allclose(W.sum(axis=0), 1.0)   # every column sums to 1
    True
    >>> m.forward(np.ones((2, 3))).shape
    (2, 2)
    """

    def _weight(self):
        W = softmax(self.params["weight"], axis=0)
        return W, W

    def _weight_vjp(self, G, W):
        return {"weight": softmax_vjp(G, W, axis=0)}


class PerronFrobeniusLinear(LinearBase):
    r"""Positive map whose row sums, hence (square case) spectral radius, lie in :math:`(\sigma_\min, \sigma_\max)`.

    Parameters ``weight`` :math:`P` (LinearBase init) and ``scaling`` :math:`C \sim U[0, 1)`, both (insize, outsize).

    .. math::

        S = \sigma_\max - (\sigma_\max - \sigma_\min)\,\sigma(C),\qquad M = \mathrm{softmax}_\text{rows}(P),\qquad
        W = S \odot M,

        \partial P = M\odot(\tilde G - \textstyle\sum_k \tilde G_{:k} M_{:k}),\ \tilde G = G\odot S;\qquad
        \partial C = -(\sigma_\max-\sigma_\min)\, G\odot M\odot\sigma(C)(1-\sigma(C)).

    Guarantee (exact): :math:`W > 0`; each row sum is a convex combination of entries of :math:`S`, so lies in
    :math:`(\sigma_\min, \sigma_\max)`; for a square W, :math:`\rho(W) \in (\sigma_\min, \sigma_\max)`
    (Perron–Frobenius).  With :math:`\sigma_\max \le 1` the linear system :math:`x_{t+1} = x_t W` is stable.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.PerronFrobeniusLinear(4, 4, rng=0)
    >>> W = m.effective_W()
    >>> bool((W > 0).all()), bool(np.abs(np.linalg.eigvals(W)).max() < 1.0)   # spectral radius < sigma_max
    (True, True)
    >>> m.forward(np.ones((2, 4))).shape
    (2, 4)
    """

    def __init__(self, insize, outsize, bias=False, *, sigma_min=0.8, sigma_max=1.0, **kw):
        self.sigma_min, self.sigma_max = check_bounds(sigma_min, sigma_max, strict=False)
        super().__init__(insize, outsize, bias, **kw)

    def _init_params(self, gen):
        self.params["weight"] = _kaiming_uniform(gen, (self.insize, self.outsize), self.outsize)
        self.params["scaling"] = gen.uniform(0.0, 1.0, size=(self.insize, self.outsize))

    def _weight(self):
        # fused Numba kernel (one pass; the softmax and sigmoid of the docstring, nothing else)
        W, M, sc = _kernels.pf_weight(self.params["weight"], self.params["scaling"], self.sigma_min, self.sigma_max)
        return W, (M, sc)

    def _weight_vjp(self, G, cache):
        M, sc = cache
        dP, dC = _kernels.pf_weight_vjp(np.ascontiguousarray(G), M, sc, self.sigma_min, self.sigma_max)
        return {"weight": dP, "scaling": dC}

    def _device_weight(self, K, p):
        W, M, sc = K.pf_weight(p["weight"], p["scaling"], self.sigma_min, self.sigma_max)
        return W, (M, sc)

    def _device_weight_vjp(self, K, G, cache, p):
        dP, dC = K.pf_weight_vjp(G, cache[0], cache[1], self.sigma_min, self.sigma_max)
        return {"weight": dP, "scaling": dC}


class StableSplitLinear(LinearBase):
    r"""Difference of two Perron–Frobenius maps, :math:`W = B - C`.

    :math:`B = \sigma_\max\,\mathrm{softmax}_\text{rows}(P_B)` (a PF map with both bounds at :math:`\sigma_\max`,
    so its ``B.scaling`` parameter gets zero gradient) and :math:`C` a PF map with bounds
    :math:`(0, \sigma_\max - \sigma_\min)`.  Parameters ``B.weight``, ``B.scaling``, ``C.weight``, ``C.scaling``.

    Guarantee (exact): every row sum of W lies in :math:`(\sigma_\min, \sigma_\max)`.  **Not** guaranteed, despite
    the name: a bound on :math:`\rho(W)` (W has mixed signs, so Perron–Frobenius does not apply).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.StableSplitLinear(3, 3, rng=0)
    >>> W = m.effective_W()
    >>> W.shape
    (3, 3)
    >>> m.forward(np.ones((2, 3))).shape
    (2, 3)
    """

    def __init__(self, insize, outsize, bias=False, *, sigma_min=0.1, sigma_max=1.0, **kw):
        self.sigma_min, self.sigma_max = check_bounds(sigma_min, sigma_max, strict=False)
        super().__init__(insize, outsize, bias, **kw)

    def _init_params(self, gen):
        for ch in ("B", "C"):
            self.params[f"{ch}.weight"] = _kaiming_uniform(gen, (self.insize, self.outsize), self.outsize)
            self.params[f"{ch}.scaling"] = gen.uniform(0.0, 1.0, size=(self.insize, self.outsize))

    def _child(self, ch):
        lo, hi = (self.sigma_max, self.sigma_max) if ch == "B" else (0.0, self.sigma_max - self.sigma_min)
        W, M, sc = _kernels.pf_weight(self.params[f"{ch}.weight"], self.params[f"{ch}.scaling"], lo, hi)
        return W, (M, sc, lo, hi)

    def _weight(self):
        WB, cB = self._child("B")
        WC, cC = self._child("C")
        return WB - WC, (cB, cC)

    def _weight_vjp(self, G, cache):
        out = {}
        G = np.ascontiguousarray(G)
        for ch, c, g in (("B", cache[0], G), ("C", cache[1], -G)):
            M, sc, lo, hi = c
            out[f"{ch}.weight"], out[f"{ch}.scaling"] = _kernels.pf_weight_vjp(g, M, sc, lo, hi)
        return out
