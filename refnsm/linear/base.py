r"""The base classes every structured linear map derives from (the math helpers are in :mod:`.functional`).

Convention (neuromancer's): :math:`W` = ``effective_W()`` has shape ``[insize, outsize]`` and acts on row vectors,

.. math::

    y = x W + b, \qquad x \in \mathbb R^{\dots \times n_\text{in}},\ y \in \mathbb R^{\dots \times n_\text{out}}.

A map only has to say how its parameters :math:`\theta` build :math:`W` (``_weight``) and how a cotangent
:math:`G = \partial L/\partial W` is pulled back to :math:`\partial L/\partial\theta` (``_weight_vjp``); the affine
layer's own VJP is shared:

.. math::

    \partial L/\partial x = \bar g W^\top, \qquad G = x^\top \bar g, \qquad
    \partial L/\partial b = \textstyle\sum_\text{batch} \bar g .

A soft constraint is a penalty ``reg_error()`` whose gradient is ``reg_error_vjp()``.
"""

from __future__ import annotations

import copy

import numpy as np

from .. import _checks
from .. import _backend
from .._checks import (
    as_float_array,
    check_int,
    check_option,
    check_shape,
    resolve_rng,
    scalar_grad_out,
)
from . import _kernels
from .functional import check_bool, check_dtype
# the helpers that lived here before they moved to .functional (imported from .base by code written earlier)
from .functional import (Hprod, Hprod_vjp, check_bounds, eig_vjp, frob_norm, sigmoid, softmax,  # noqa: F401
                         softmax_vjp, straight_through_relu, straight_through_relu_vjp)

__all__ = ["LinearBase", "SquareLinear"]

COMPAT_OPTIONS = ("neuromancer",)

#: whether a C-contiguous float32/float64 array holds no NaN/Inf (one compiled pass, loaded on the first call)
_finite_array = _checks._finite_c


def _host_input(value, dtype, shape=None, last=None):
    """``value`` itself when it needs no conversion and no message: an exact NumPy array of ``dtype``, C-contiguous,
    of ``shape`` (or of last dimension ``last``), every element finite.  ``None`` otherwise: the caller then runs the
    full validation (:func:`refnsm._checks.as_float_array`), which converts it or raises the usual error."""
    if type(value) is not np.ndarray or value.dtype != dtype or not value.flags.c_contiguous:
        return None
    shp = value.shape
    if shape is not None and shp != shape:
        return None
    if last is not None and (not shp or shp[-1] != last):
        return None
    if value.size and not _finite_array(value):
        return None
    return value


# the maps' four hot methods return (result, verified): see refnsm._checks.finite_result_verified
_guarded = _checks.finite_result_verified


def _mm(xp, a, b):
    """``a @ b`` where the kernels run (``b`` 2-D, ``a`` may have leading batch dimensions).  On the host a 1-D or
    2-D ``a`` goes through ``np.dot``: the same BLAS product, bit for bit, at about a third of ``@``'s fixed cost
    (2 -> 1.3 µs at a 32x16 by 16x16 product); ``@`` keeps the batched case (its per-matrix products round
    differently from one flattened product)."""
    if xp is _backend.HOST and a.ndim <= 2:
        return np.dot(a, b)
    return xp.matmul(a, b)


# --------------------------------------------------------------------------------------------------- the base
class LinearBase:
    r"""Base of every structured linear map: :math:`y = xW + b` with :math:`W = W(\theta)` of shape [insize, outsize].

    Parameters
    ----------
    insize, outsize : int
        Input and output widths (both >= 1).
    bias : bool
        Add a trainable bias :math:`b` of shape (1, outsize), initialised :math:`U(\pm 1/\sqrt{n_\text{in}})`.
    provide_weights : bool
        neuromancer's flag for subclasses: when True (default) and the subclass does not define its own
        parametrisation (``_init_params``), the base provides a plain trainable ``weight`` [insize, outsize]
        drawn :math:`U(\pm 1/\sqrt{n_\text{out}})` (torch's ``kaiming_uniform_(a=sqrt 5)`` on that shape) with
        :math:`W =` ``weight``, so a custom map only needs ``_weight``/``_weight_vjp`` or nothing at all.  Every
        refnsm map defines its own parameters, so the flag changes nothing for them.
    dtype : float64 (default) or float32
        Precision of the parameters and of every computation; inputs are converted to it.
    rng : numpy.random.Generator, int or None
        Source of the random initialisation (same laws as neuromancer's, not the same bits).
    params : dict, optional
        Arrays overriding the initial parameters (e.g. copied from a neuromancer ``state_dict``); keys and shapes
        must match :attr:`params`.
    compat : None or "neuromancer"
        ``None``: the intended math.  ``"neuromancer"``: reproduce neuromancer 1.5.6's numbers where they differ
        (documented per class).
    device : "cpu" (default) or "cuda"
        Where :meth:`effective_W`, :meth:`effective_W_vjp`, :meth:`forward` and :meth:`backward` run; settable
        later (``m.device = "cuda"``).  ``"cuda"`` runs the same code with the numba.cuda twins of
        :mod:`refnsm.linear._cuda_kernels` (same math, same validation, results within 1e-12 (float64) / 1e-5
        (float32) of the CPU) for every map: the products with :math:`W` and the affine layer's VJP run on the
        device; :class:`Linear`, :class:`SpectralLinear`, :class:`OrthogonalLinear` and
        :class:`PerronFrobeniusLinear` also build :math:`W` and pull :math:`G` back there (``_device_weight``), the
        other maps build their (cheap) :math:`W` on the host and move it over.  Parameters and gradients stay NumPy
        arrays; ``x`` and ``grad_y`` may be NumPy arrays (results NumPy) or numba device arrays (results stay on
        the device).  ``reg_error`` and ``eig`` always run on the CPU.  See ``docs/cuda.md``.

    Attributes
    ----------
    params : dict[str, ndarray]
        Parameters, named like the neuromancer ``state_dict`` keys.
    grads : dict[str, ndarray]
        Filled by :meth:`backward` (same keys; frozen parameters get zeros).
    trainable : tuple of str
        Keys of the parameters that receive gradients (the others are frozen constants).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.Linear(3, 2, bias=True, rng=0)
    >>> isinstance(m, L.LinearBase), sorted(m.params)
    (True, ['bias', 'weight'])
    >>> y = m.forward(np.ones((4, 3)))
    >>> gx = m.backward(np.ones_like(y))   # returns dL/dx, fills m.grads
    >>> gx.shape, m.grads["weight"].shape
    ((4, 3), (2, 3))
    """

    square = False  #: the map needs insize == outsize
    exact = True  #: whether the guarantee holds by construction (False: only softly, through reg_error)

    def __init__(self, insize, outsize, bias=False, provide_weights=True, *, dtype=np.float64, rng=None, params=None,
                 compat=None, device="cpu"):
        self.insize = check_int(insize, "insize", minimum=1)
        self.outsize = check_int(outsize, "outsize", minimum=1)
        self.use_bias = check_bool(bias, "bias")
        self.provide_weights = check_bool(provide_weights, "provide_weights")
        self.dtype = check_dtype(dtype)
        if compat is not None:
            check_option(compat, "compat", COMPAT_OPTIONS)
        self.compat = compat
        self._device = self._check_device(device)
        self._check_sizes()
        gen = resolve_rng(rng)
        self.params: dict[str, np.ndarray] = {}
        self._frozen: set[str] = set()
        self._init_bias(gen)
        self._init_params(gen)
        # np.array, not np.ascontiguousarray: the latter turns 0-d parameters (SVDLinearLearnBounds) into 1-d
        self.params = {k: np.array(v, dtype=self.dtype, order="C") for k, v in self.params.items()}
        if params is not None:
            self.load_params(params)
        self.zero_grad()
        self._cache = None

    # ---------------------------------------------------------------- hooks a subclass overrides
    def _check_sizes(self):
        if self.square and self.insize != self.outsize:
            raise ValueError(
                f"outsize: {type(self).__name__} is square, expected outsize == insize = {self.insize}, got {self.outsize}"
            )

    def _init_bias(self, gen):
        if self.use_bias:
            k = 1.0 / np.sqrt(self.insize)
            self.params["bias"] = gen.uniform(-k, k, size=(1, self.outsize))

    def _init_params(self, gen):
        if not self.provide_weights:
            raise NotImplementedError(f"{type(self).__name__}: provide_weights=False and no _init_params: the map has "
                                      "no parameters (define _init_params, _weight and _weight_vjp)")
        k = 1.0 / np.sqrt(self.outsize)
        self.params["weight"] = gen.uniform(-k, k, size=(self.insize, self.outsize))

    def _weight(self):
        """Return (W, cache): W without the bias, cache whatever ``_weight_vjp`` needs."""
        if type(self)._init_params is LinearBase._init_params and "weight" in self.params:
            return self.params["weight"].copy(), None  # the base's provided weight (provide_weights=True)
        raise NotImplementedError

    def _weight_vjp(self, G, cache) -> dict:
        """Pull back G = dL/dW to {param name: gradient} (missing keys mean zero)."""
        if type(self)._init_params is LinearBase._init_params and "weight" in self.params:
            return {"weight": G}
        raise NotImplementedError

    def _reg(self):
        """Return (value, {param: gradient}) of the penalty.  Default: no penalty."""
        return 0.0, {}

    @property
    def _bias_key(self):
        return "bias"

    @property
    def bias_in_effective_W(self) -> bool:
        """neuromancer computes effective_W as forward(I) for some maps, folding the bias into W (compat only)."""
        return False

    #: a map that can build W on the device defines ``_device_weight(K, p) -> (W, cache)`` and
    #: ``_device_weight_vjp(K, G, cache, p) -> {name: gradient}`` (K: the CUDA kernel module, p: the parameters as
    #: device arrays); they are used for that exact class only (a subclass may change the math)
    _device_weight = None

    def _weight_on(self, K, xp):
        """``(W, cache)`` where the kernels ``K`` run (``xp``: that device's array namespace, refnsm._backend)."""
        if xp is _backend.HOST or "_device_weight" not in type(self).__dict__:
            W, cache = self._weight()  # on the host (and moved over: the cheap parametrisations)
            return xp.from_host(W), (cache, None)
        p = {k: xp.from_host(v) for k, v in self.params.items() if k != self._bias_key}
        W, cache = self._device_weight(K, p)
        return W, (cache, p)

    def _weight_vjp_on(self, K, xp, G, cache) -> dict:
        """:meth:`_weight_vjp` of a cotangent ``G`` where the kernels run; host gradients."""
        cache, p = cache
        if p is None:
            return self._weight_vjp(xp.to_host(G), cache)
        return {k: xp.to_host(v) for k, v in self._device_weight_vjp(K, G, cache, p).items()}

    # ---------------------------------------------------------------- device
    def _check_device(self, device) -> str:
        return _backend.check_device(device)

    @property
    def device(self) -> str:
        """``"cpu"`` or ``"cuda"``: where the map runs (setting it validates the value and drops the forward cache)."""
        return self._device

    @device.setter
    def device(self, value) -> None:
        self._device = self._check_device(value)
        self._cache = None

    # ---------------------------------------------------------------- parameters
    @property
    def trainable(self) -> tuple:
        return tuple(k for k in self.params if k not in self._frozen)

    def load_params(self, params) -> None:
        """Replace parameters from a dict (every key must exist; shapes must match).  Validates all first."""
        if not isinstance(params, dict):
            raise TypeError(f"params: expected a dict of arrays, got {type(params).__name__}")
        new = {}
        for key, value in params.items():
            if key not in self.params:
                raise ValueError(
                    f"params: unknown key {key!r} for {type(self).__name__}; expected keys {sorted(self.params)}"
                )
            arr = as_float_array(value, f"params[{key!r}]", dtype=self.dtype)
            check_shape(arr, f"params[{key!r}]", self.params[key].shape)
            new[key] = arr.copy()
        self._validate_params({**self.params, **new})
        self.params.update(new)
        self._cache = None

    def _validate_params(self, params) -> None:
        """Extra checks on a complete parameter set (e.g. non-zero Householder vectors)."""

    def with_params(self, **arrays) -> "LinearBase":
        """A copy of this map with some parameters replaced (this map is not modified)."""
        other = copy.copy(self)
        other.params = dict(self.params)
        other._cache = None
        other.zero_grad()
        other.load_params(arrays)
        return other

    def zero_grad(self) -> None:
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def _full(self, partial: dict) -> dict:
        frozen = self._frozen
        out = {}
        for k, v in self.params.items():
            g = partial.get(k)
            if g is None or (frozen and k in frozen):
                out[k] = np.zeros(v.shape, dtype=v.dtype)
            elif type(g) is np.ndarray and (g.dtype is v.dtype or g.dtype == v.dtype) and g.shape == v.shape:
                out[k] = g
            else:
                out[k] = np.asarray(g, dtype=self.dtype).reshape(v.shape)
        return out

    # ---------------------------------------------------------------- the map
    @_guarded
    def effective_W(self) -> np.ndarray:
        r"""The matrix :math:`W` of shape [insize, outsize] (``y = x @ W + b``), a NumPy array."""
        kernels, xp = _backend.get("linear", self._device)
        W, _ = self._weight_on(kernels, xp)
        W = xp.to_host(W)
        if self.bias_in_effective_W and self._bias_key in self.params:
            W = W + self.params[self._bias_key]
        return W, False

    @_guarded
    def effective_W_vjp(self, grad_W) -> dict:
        r"""Pull a cotangent :math:`G = \partial L/\partial W` back to every parameter: returns {name: gradient}."""
        kernels, xp = _backend.get("linear", self._device, grad_W)
        G = _host_input(grad_W, self.dtype, shape=(self.insize, self.outsize)) if xp is _backend.HOST else None
        if G is None:
            G = xp.asarray(grad_W, "grad_W", ndim=2, dtype=self.dtype)
            check_shape(G, "grad_W", (self.insize, self.outsize), "[insize, outsize]")
        W, cache = self._weight_on(kernels, xp)
        grads = dict(self._weight_vjp_on(kernels, xp, G, cache))
        if self.bias_in_effective_W and self._bias_key in self.params:
            grads[self._bias_key] = self._bias_grad(G, kernels, xp)
        return self._full(grads), False

    def _bias_grad(self, g2, K=_kernels, xp=_backend.HOST):
        return self._shape_bias_grad(xp.to_host(K.col_sums(g2)))

    def _shape_bias_grad(self, gb):
        """The column sums of the output gradient, shaped as the bias."""
        b = self.params[self._bias_key]
        if b.size == 1 and gb.size != 1:  # neuromancer's scalar butterfly bias (compat)
            gb = gb.sum()
        return gb if gb.shape == b.shape else np.reshape(gb, b.shape)

    def _check_x(self, x, xp=_backend.HOST):
        if xp is _backend.HOST:
            fast = _host_input(x, self.dtype, last=self.insize)
            if fast is not None:
                return fast
        x = xp.asarray(x, "x", min_ndim=1, dtype=self.dtype, shape_hint="[..., insize]")
        if tuple(x.shape)[-1] != self.insize:  # tuple(): the CUDA simulator's shapes refuse negative indices
            raise ValueError(f"x: expected last dimension insize = {self.insize}, got shape {tuple(x.shape)}")
        return x

    def _apply(self, x, W, K=_kernels, xp=_backend.HOST):
        """``(y, verified)``: ``y = x W + b``; on the host the bias pass also tests ``y`` for NaN/Inf (``verified``)."""
        y = _mm(xp, x, W)
        b = self.params.get(self._bias_key)
        if b is None:
            return y, False
        # a (1,) bias of a wider map is neuromancer's scalar bias (compat): added to every entry
        y2 = y if y.ndim == 2 else y.reshape(y.size // self.outsize, self.outsize)
        b1 = b.ravel()  # a view: parameters are C-contiguous
        if xp is _backend.HOST:
            return y, _kernels.add_bias_finite(y2, b1)
        K.add_bias(y2, xp.from_host(b1))
        return y, False

    @_guarded
    def forward(self, x) -> np.ndarray:
        r"""``y = x @ W + b`` for x of shape [..., insize]; caches what :meth:`backward` needs."""
        device = self._device
        kernels, xp = _backend.get("linear", device, x)
        x = self._check_x(x, xp)
        W, cache = self._weight_on(kernels, xp)
        y, verified = self._apply(x, W, kernels, xp)
        self._cache = (x, W, cache, y.shape if xp is _backend.HOST else tuple(y.shape), device, xp.on_device)
        return xp.give_back(y), verified

    __call__ = forward

    @_guarded
    def backward(self, grad_y) -> np.ndarray:
        r"""VJP of the last :meth:`forward`: returns :math:`\bar x = \bar g W^\top` and fills :attr:`grads`.

        :math:`\partial L/\partial\theta` is the pull-back of :math:`G = x^\top \bar g` through ``effective_W``;
        :math:`\partial L/\partial b = \sum_\text{batch} \bar g`.  ``grads`` is overwritten, not accumulated.
        """
        c = self._cache
        if c is None or c[4] != self._device:
            raise RuntimeError("backward: call forward(x) first")
        x, W, cache, yshape, device, on_device = c
        if device == "cpu":
            kernels, xp = _backend.get("linear", device)
            g = _host_input(grad_y, self.dtype, shape=yshape)
        else:
            kernels = _backend.kernels("linear", device)
            xp = _backend.arrays(device, grad_y, on_device=True if on_device else None)
            g = None
        if g is None:
            g = xp.asarray(grad_y, "grad_y", dtype=self.dtype)
            check_shape(g, "grad_y", yshape, "the shape of forward's output")
        if len(yshape) == 2:
            g2, x2 = g, x
        else:
            rows = g.size // self.outsize
            g2 = g.reshape(rows, self.outsize)
            x2 = x.reshape(rows, self.insize)
        if xp is _backend.HOST:  # the same BLAS products as matmul_bt / matmul_at (see _mm)
            gx = np.dot(g, W.T) if g.ndim <= 2 else g @ W.T  # g W^T
            G = np.dot(x2.T, g2)  # G = x^T g
        else:
            gx = xp.matmul_bt(g, W)
            G = xp.matmul_at(x2, g2)
        verified = False
        bkey = self._bias_key
        b = self.params.get(bkey)
        if xp is _backend.HOST and b is not None:  # the bias gradient (in the bias's shape) and the test of gx
            gx2 = gx if gx.ndim == 2 else gx.reshape(g2.shape[0], self.insize)
            if b.size == self.outsize:
                gb, verified = _kernels.col_sums_finite(g2, gx2, b)
            else:  # neuromancer's scalar butterfly bias (compat)
                gb, verified = _kernels.col_sums_finite(g2, gx2, np.empty((1, self.outsize), dtype=b.dtype))
                gb = self._shape_bias_grad(gb)
        grads = self._weight_vjp_on(kernels, xp, G, cache)
        if b is not None:
            grads = dict(grads)
            grads[bkey] = self._bias_grad(g2, kernels, xp) if xp is not _backend.HOST else gb
        self.grads = self._full(grads)
        return xp.give_back(gx), verified

    def reg_error(self) -> float:
        """The penalty added to the loss (0 for maps whose constraint is exact)."""
        value, _ = self._reg()
        return float(value)

    def reg_error_vjp(self, grad_out=None) -> dict:
        """Gradient of ``grad_out * reg_error()`` for every parameter ({name: array}, zeros where unused)."""
        s = scalar_grad_out(grad_out)
        _, grads = self._reg()
        return {k: s * v for k, v in self._full(grads).items()}

    def eig(self):
        """Eigenvalues and right eigenvectors of ``effective_W()`` (square maps only), as ``numpy.linalg.eig``."""
        if self.insize != self.outsize:
            raise ValueError(f"eig: expected a square map, got insize {self.insize} != outsize {self.outsize}")
        return np.linalg.eig(self.effective_W())

    def eig_vjp(self, grad_w, grad_v=None) -> dict:
        r"""Pull cotangents of :meth:`eig`'s eigenvalues (and optionally eigenvectors) back to every parameter:
        :func:`eig_vjp` on ``effective_W()``, then :meth:`effective_W_vjp`.  Simple eigenvalues only."""
        if self.insize != self.outsize:
            raise ValueError(f"eig: expected a square map, got insize {self.insize} != outsize {self.outsize}")
        return self.effective_W_vjp(eig_vjp(grad_w, grad_v, self.effective_W()))

    def __repr__(self):
        extra = f", compat={self.compat!r}" if self.compat else ""
        extra += ", device='cuda'" if self._device == "cuda" else ""
        return f"{type(self).__name__}({self.insize}, {self.outsize}, bias={self.use_bias}, dtype={self.dtype}{extra})"


class SquareLinear(LinearBase):
    """Base of the maps that need ``insize == outsize`` (raises ``ValueError`` naming ``outsize`` otherwise).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> issubclass(L.SymmetricLinear, L.SquareLinear)
    True
    >>> try:
    ...     L.SymmetricLinear(3, 2)
    ... except ValueError as err:
    ...     print("ValueError:", str(err).split(":")[0])
    ...
    ValueError: outsize
    """

    square = True
