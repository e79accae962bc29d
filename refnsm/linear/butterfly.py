r"""Butterfly map (Dao et al., "Learning Fast Algorithms for Linear Transforms Using Butterfly Factorizations",
ICML 2019; HazyResearch learning-circuits), as used by neuromancer's ``ButterflyLinear``.

Sizes: :math:`m = \lceil\log_2 n_\text{in}\rceil`, :math:`n = 2^m` (the input is zero-padded to n),
``nstack`` :math:`= \lceil n_\text{out}/n\rceil` independent chains.  Factor :math:`\ell` (stride
:math:`st = 2^\ell`) mixes the pairs :math:`(t, t+st)` with :math:`t = g\cdot 2st + l`, :math:`0\le l < st`,
through a 2×2 twiddle :math:`T`:

.. math::

    \text{out}_t = T_{00}x_t + T_{01}x_{t+st},\qquad \text{out}_{t+st} = T_{10}x_t + T_{11}x_{t+st}.

Tied twiddles (``tied_weight=True``) are shared across the blocks g: :math:`T = \text{tw}[k, st-1+l]`; untied:
:math:`T = \text{tw}[k, \ell, g\cdot st + l]`.  Factors run :math:`\ell = 0..m-1` (``increasing_stride``) or
backwards.  The stacks are concatenated; when :math:`n/o \ge 2` with :math:`o = 2^{\lceil\log_2 n_\text{out}\rceil}`,
the :math:`n/o` consecutive blocks of length o are averaged; the first ``outsize`` columns are kept.
``effective_W`` is the chain applied to the rows of :math:`I_{n_\text{in}}`; the VJP runs the Numba kernel
``bf_backward`` (each factor's transpose, twiddle gradients :math:`\partial T_{ab} = \sum \bar g_{t_a} x_{t_b}`).
"""

from __future__ import annotations

import math

import numpy as np

from . import _kernels
from .base import LinearBase
from .functional import check_bool

__all__ = ["ButterflyLinear", "Butterfly"]


class ButterflyLinear(LinearBase):
    r"""Butterfly-structured map: :math:`W` is a product of :math:`\lceil\log_2 n_\text{in}\rceil` sparse factors
    (see the module docstring), :math:`O(n\log n)` parameters.

    Parameter ``linmap.twiddle``: (nstack, n-1, 2, 2) tied or (nstack, m, n/2, 2, 2) untied, :math:`N(0,1)/\sqrt 2`;
    ``ortho_init`` draws each twiddle as a rotation or reflection
    :math:`\begin{pmatrix} d\cos\theta & \sin\theta\\ -d\sin\theta & \cos\theta\end{pmatrix}`,
    :math:`\theta\sim U[0,2\pi)`, :math:`d = \pm1`.

    Guarantee (structural, exact): W is a product of butterfly factors; with ``ortho_init`` and
    insize = outsize = :math:`2^m`, W is orthogonal at initialisation.

    Bias: by default a per-output ``bias`` (1, outsize).  ``compat="neuromancer"``: neuromancer's bias, a single
    scalar ``linmap.bias`` of shape (1,) added to every output, and ``effective_W()`` = :math:`W + b\mathbf 1\mathbf 1^\top`
    (neuromancer's ``linmap(I)``).  ``complex=True`` is not supported (neuromancer's cannot run it either).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.ButterflyLinear(4, 4, rng=0)
    >>> W = m.effective_W()
    >>> W.shape
    (4, 4)
    >>> m.forward(np.ones((2, 4))).shape
    (2, 4)
    """

    _twiddle_key = "linmap.twiddle"  #: the state_dict key of the twiddles (neuromancer's ButterflyLinear.linmap)

    def __init__(self, insize, outsize, bias=False, *, complex=False, tied_weight=True, increasing_stride=True,
                 ortho_init=False, **kw):
        if check_bool(complex, "complex"):
            raise ValueError("complex: complex butterflies are not supported (expected False, got True)")
        self.tied_weight = check_bool(tied_weight, "tied_weight")
        self.increasing_stride = check_bool(increasing_stride, "increasing_stride")
        self.ortho_init = check_bool(ortho_init, "ortho_init")
        super().__init__(insize, outsize, bias, **kw)

    def _check_sizes(self):
        self.m = int(math.ceil(math.log2(self.insize))) if self.insize > 1 else 0
        self.n = 1 << self.m
        self.nstack = -(-self.outsize // self.n)
        self.o = 1 << (int(math.ceil(math.log2(self.outsize))) if self.outsize > 1 else 0)
        levels = list(range(self.m)) if self.increasing_stride else list(range(self.m - 1, -1, -1))
        self._levels = np.array(levels, dtype=np.int64)
        self._strides = np.array([1 << lv for lv in levels], dtype=np.int64)
        half = self.n // 2
        idx = np.empty((self.m, half), dtype=np.int64)
        for s, lv in enumerate(levels):
            st = 1 << lv
            j = np.arange(half)
            idx[s] = (st - 1 + j % st) if self.tied_weight else lv * half + j
        self._idx = idx  # position of each (factor, pair) twiddle in the flattened per-stack twiddle array

    @property
    def _bias_key(self):
        return "linmap.bias" if self.compat == "neuromancer" else "bias"

    @property
    def bias_in_effective_W(self):
        return self.compat == "neuromancer"

    def _init_bias(self, gen):
        if self.use_bias:
            k = 1.0 / math.sqrt(self.insize)
            shape = (1,) if self.compat == "neuromancer" else (1, self.outsize)
            self.params[self._bias_key] = gen.uniform(-k, k, size=shape)

    def _init_params(self, gen):
        n, m = self.n, self.m
        shape = (self.nstack, n - 1, 2, 2) if self.tied_weight else (self.nstack, m, n // 2, 2, 2)
        if self.ortho_init:
            theta = gen.uniform(0.0, 2 * math.pi, size=shape[:-2])
            det = gen.choice([-1.0, 1.0], size=shape[:-2])
            c, s = np.cos(theta), np.sin(theta)
            tw = np.stack([np.stack([det * c, s], -1), np.stack([-det * s, c], -1)], -2)
        else:
            tw = gen.standard_normal(shape) / math.sqrt(2.0)
        self.params[self._twiddle_key] = tw

    def _expanded(self, k):
        flat = self.params[self._twiddle_key][k].reshape(-1, 2, 2)
        return np.ascontiguousarray(flat[self._idx])  # (m, n/2, 2, 2)

    def _weight(self):
        n, nin, out = self.n, self.insize, self.outsize
        if nin == n:
            X0 = np.eye(n, dtype=self.dtype)
        else:
            X0 = np.zeros((nin, n), dtype=self.dtype)
            X0[:, :nin] = np.eye(nin, dtype=self.dtype)
        acts, ys = [], []
        for k in range(self.nstack):
            a = _kernels.bf_forward(X0, self._expanded(k), self._strides)
            acts.append(a)
            ys.append(a[-1])
        Y = np.concatenate(ys, axis=1) if len(ys) > 1 else ys[0].copy()  # a copy: W must not alias the cache
        q = n // self.o
        if q >= 2:
            Y = Y.reshape(nin, q, self.o).mean(axis=1)
        return np.ascontiguousarray(Y[:, :out]), acts

    def _weight_vjp(self, G, acts):
        n, nin, out = self.n, self.insize, self.outsize
        q = n // self.o
        width = self.o if q >= 2 else self.nstack * n
        if out == width:
            Gp = G
        else:
            Gp = np.zeros((nin, width), dtype=self.dtype)
            Gp[:, :out] = G
        if q >= 2:
            Gp = np.tile(Gp, (1, q)) / q
        dtw = np.zeros_like(self.params[self._twiddle_key])
        for k in range(self.nstack):
            _, dE = _kernels.bf_backward(acts[k], np.ascontiguousarray(Gp[:, k * n:(k + 1) * n]),
                                         self._expanded(k), self._strides)
            # np.add.at(dtw[k] as (-1, 2, 2), self._idx, dE): the same additions in the same (C) order
            _kernels.bf_scatter_add(dtw[k].reshape(-1, 2, 2), self._idx, dE)
        return {self._twiddle_key: dtw}


class Butterfly(ButterflyLinear):
    r"""neuromancer's standalone ``Butterfly`` module (``slim.butterfly``): the same map as :class:`ButterflyLinear`
    with the module's own names and defaults.

    ``Butterfly(in_size, out_size, bias=True, complex=False, tied_weight=True, increasing_stride=True,
    ortho_init=False)``; parameters ``twiddle`` (as :class:`ButterflyLinear`'s ``linmap.twiddle``) and ``bias``
    (out_size,) :math:`U(\pm 1/\sqrt{n_\text{in}})`, a per-output bias (``forward(x) = xW + b``, the module's
    ``forward``).  :meth:`reset_parameters` redraws the bias as upstream.

    ``compat="neuromancer"``: the bias is a single scalar of shape (1,) added to every output, which is what
    neuromancer's ``torch.Tensor((out_size,))`` creates (a tensor holding the *value* out_size, not a tensor of that
    shape); the same bug gives ``ButterflyLinear`` its scalar bias.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.Butterfly(4, 4, rng=0)
    >>> m.forward(np.ones((2, 4))).shape
    (2, 4)
    >>> isinstance(m, L.LinearBase)
    True
    """

    _twiddle_key = "twiddle"

    def __init__(self, in_size, out_size, bias=True, complex=False, tied_weight=True, increasing_stride=True,
                 ortho_init=False, *, dtype=np.float64, rng=None, params=None, compat=None):
        super().__init__(in_size, out_size, bias, complex=complex, tied_weight=tied_weight,
                         increasing_stride=increasing_stride, ortho_init=ortho_init, dtype=dtype, rng=rng,
                         params=params, compat=compat)

    @property
    def in_size(self) -> int:
        return self.insize

    @property
    def out_size(self) -> int:
        return self.outsize

    @property
    def _bias_key(self):
        return "bias"

    @property
    def bias_in_effective_W(self):
        return False

    def _init_bias(self, gen):
        if self.use_bias:
            k = 1.0 / math.sqrt(self.insize)
            self.params["bias"] = gen.uniform(-k, k, size=(1,) if self.compat == "neuromancer" else (self.outsize,))

    def reset_parameters(self, rng=None) -> None:
        r"""Redraw the bias :math:`U(\pm 1/\sqrt{n_\text{in}})` (neuromancer's ``reset_parameters``; the twiddles are
        kept, as upstream).  ``rng``: a Generator, int or None."""
        from .._checks import resolve_rng

        if self.use_bias:
            k = 1.0 / math.sqrt(self.insize)
            shape = self.params["bias"].shape
            self.params["bias"] = resolve_rng(rng).uniform(-k, k, size=shape).astype(self.dtype)
            self._cache = None
