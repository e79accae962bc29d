r"""The base class every structured linear map derives from, and the small shared helpers.

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
from .._checks import (
    DEVICES,
    as_float_array,
    check_int,
    check_option,
    check_real,
    check_shape,
    resolve_rng,
    scalar_grad_out,
)
from . import _kernels

__all__ = ["LinearBase", "SquareLinear", "Hprod", "Hprod_vjp", "straight_through_relu", "straight_through_relu_vjp"]

COMPAT_OPTIONS = ("neuromancer",)


def cuda_maps() -> tuple:
    """The maps with a CUDA path (``device="cuda"``), as exact classes: a subclass may change the math."""
    from .basic import Linear
    from .householder import OrthogonalLinear, SpectralLinear
    from .stochastic import PerronFrobeniusLinear

    return (Linear, SpectralLinear, OrthogonalLinear, PerronFrobeniusLinear)


def check_cuda_map(cls) -> None:
    """``NotImplementedError`` naming the maps that have a CUDA path, unless ``cls`` is one of them."""
    maps = cuda_maps()
    if cls not in maps:
        names = ", ".join(c.__name__ for c in maps)
        raise NotImplementedError(
            f"device: 'cuda' is implemented for {names}; {cls.__name__} runs on the CPU only (use device='cpu')"
        )


def _cuda_linear():
    """:mod:`refnsm.cuda.linear`, imported on the first call on a ``device="cuda"`` map, never before."""
    from ..cuda import linear

    return linear


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


def rect_eye(rows, cols, dtype):
    """The rectangular identity :math:`I_{rows \\times cols}` (ones at (k, k) for k < min(rows, cols))."""
    return np.eye(rows, cols, dtype=dtype)


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


# --------------------------------------------------------------------------------------------------- the base
class LinearBase:
    r"""Base of every structured linear map: :math:`y = xW + b` with :math:`W = W(\theta)` of shape [insize, outsize].

    Parameters
    ----------
    insize, outsize : int
        Input and output widths (both >= 1).
    bias : bool
        Add a trainable bias :math:`b` of shape (1, outsize), initialised :math:`U(\pm 1/\sqrt{n_\text{in}})`.
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
        later (``m.device = "cuda"``).  ``"cuda"`` runs them with the numba.cuda twins of :mod:`refnsm.cuda.linear`
        (same math, same validation, results within 1e-12 (float64) / 1e-5 (float32) of the CPU), for
        :class:`Linear`, :class:`SpectralLinear`, :class:`OrthogonalLinear` and :class:`PerronFrobeniusLinear`;
        other maps raise ``NotImplementedError``.  Parameters and gradients stay NumPy arrays; ``x`` and
        ``grad_y`` may be NumPy arrays (results NumPy) or numba device arrays (results stay on the device).
        ``reg_error`` and ``eig`` always run on the CPU.  See ``docs/cuda.md``.

    Attributes
    ----------
    params : dict[str, ndarray]
        Parameters, named like the neuromancer ``state_dict`` keys.
    grads : dict[str, ndarray]
        Filled by :meth:`backward` (same keys; frozen parameters get zeros).
    trainable : tuple of str
        Keys of the parameters that receive gradients (the others are frozen constants).
    """

    square = False  #: the map needs insize == outsize
    exact = True  #: whether the guarantee holds by construction (False: only softly, through reg_error)

    def __init__(self, insize, outsize, bias=False, *, dtype=np.float64, rng=None, params=None, compat=None,
                 device="cpu"):
        self.insize = check_int(insize, "insize", minimum=1)
        self.outsize = check_int(outsize, "outsize", minimum=1)
        self.use_bias = check_bool(bias, "bias")
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
        raise NotImplementedError

    def _weight(self):
        """Return (W, cache): W without the bias, cache whatever ``_weight_vjp`` needs."""
        raise NotImplementedError

    def _weight_vjp(self, G, cache) -> dict:
        """Pull back G = dL/dW to {param name: gradient} (missing keys mean zero)."""
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

    # ---------------------------------------------------------------- device
    def _check_device(self, device) -> str:
        check_option(device, "device", DEVICES)
        if device == "cuda":
            check_cuda_map(type(self))
        return device

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
        out = {}
        for k, v in self.params.items():
            g = partial.get(k)
            if g is None or k in self._frozen:
                out[k] = np.zeros(v.shape, dtype=v.dtype)
            elif type(g) is np.ndarray and g.dtype == v.dtype and g.shape == v.shape:
                out[k] = g
            else:
                out[k] = np.asarray(g, dtype=self.dtype).reshape(v.shape)
        return out

    # ---------------------------------------------------------------- the map
    @_checks.finite_result
    def effective_W(self) -> np.ndarray:
        r"""The matrix :math:`W` of shape [insize, outsize] (``y = x @ W + b``)."""
        if self._device == "cuda":
            return _cuda_linear().effective_W(self)
        W, _ = self._weight()
        if self.bias_in_effective_W and self._bias_key in self.params:
            W = W + self.params[self._bias_key]
        return W

    @_checks.finite_result
    def effective_W_vjp(self, grad_W) -> dict:
        r"""Pull a cotangent :math:`G = \partial L/\partial W` back to every parameter: returns {name: gradient}."""
        if self._device == "cuda":
            return _cuda_linear().effective_W_vjp(self, grad_W)
        G = as_float_array(grad_W, "grad_W", ndim=2, dtype=self.dtype)  # before _weight(), which may draw noise
        check_shape(G, "grad_W", (self.insize, self.outsize), "[insize, outsize]")
        W, cache = self._weight()
        grads = dict(self._weight_vjp(G, cache))
        if self.bias_in_effective_W and self._bias_key in self.params:
            grads[self._bias_key] = self._bias_grad(G)
        return self._full(grads)

    def _bias_grad(self, g2):
        b = self.params[self._bias_key]
        gb = _kernels.col_sums(g2)
        if b.size == 1 and gb.size != 1:  # neuromancer's scalar butterfly bias (compat)
            gb = gb.sum()
        return gb if gb.shape == b.shape else np.reshape(gb, b.shape)

    def _check_x(self, x):
        x = as_float_array(x, "x", min_ndim=1, dtype=self.dtype, shape_hint="[..., insize]")
        if x.shape[-1] != self.insize:
            raise ValueError(f"x: expected last dimension insize = {self.insize}, got shape {x.shape}")
        return x

    def _apply(self, x, W):
        y = x @ W
        b = self.params.get(self._bias_key)
        if b is not None:  # a (1,) bias of a wider map is neuromancer's scalar bias (compat): added to every entry
            _kernels.add_bias(y.reshape(-1, self.outsize), b.reshape(-1))
        return y

    @_checks.finite_result
    def forward(self, x) -> np.ndarray:
        r"""``y = x @ W + b`` for x of shape [..., insize]; caches what :meth:`backward` needs."""
        if self._device == "cuda":
            return _cuda_linear().forward(self, x)
        x = self._check_x(x)
        W, cache = self._weight()
        y = self._apply(x, W)
        self._cache = (x, W, cache, y.shape)
        return y

    __call__ = forward

    @_checks.finite_result
    def backward(self, grad_y) -> np.ndarray:
        r"""VJP of the last :meth:`forward`: returns :math:`\bar x = \bar g W^\top` and fills :attr:`grads`.

        :math:`\partial L/\partial\theta` is the pull-back of :math:`G = x^\top \bar g` through ``effective_W``;
        :math:`\partial L/\partial b = \sum_\text{batch} \bar g`.  ``grads`` is overwritten, not accumulated.
        """
        if self._device == "cuda":
            return _cuda_linear().backward(self, grad_y)
        if type(self._cache) is not tuple:  # None, or a cache of refnsm.cuda.linear.forward
            raise RuntimeError("backward: call forward(x) first")
        x, W, cache, yshape = self._cache
        g = as_float_array(grad_y, "grad_y", dtype=self.dtype)
        check_shape(g, "grad_y", yshape, "the shape of forward's output")
        g2 = g.reshape(-1, self.outsize)
        x2 = x.reshape(-1, self.insize)
        gx = g @ W.T
        grads = dict(self._weight_vjp(x2.T @ g2, cache))
        if self._bias_key in self.params:
            grads[self._bias_key] = self._bias_grad(g2)
        self.grads = self._full(grads)
        return gx

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

    def __repr__(self):
        extra = f", compat={self.compat!r}" if self.compat else ""
        extra += ", device='cuda'" if self._device == "cuda" else ""
        return f"{type(self).__name__}({self.insize}, {self.outsize}, bias={self.use_bias}, dtype={self.dtype}{extra})"


class SquareLinear(LinearBase):
    """Base of the maps that need ``insize == outsize`` (raises ``ValueError`` naming ``outsize`` otherwise)."""

    square = True


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


@_checks.finite_result
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


@_checks.finite_result
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


@_checks.finite_result
def straight_through_relu(x):
    r"""Straight-through ReLU (neuromancer's ``IdentityGradReLU``): forward :math:`\max(x, 0)`."""
    x = as_float_array(x, "x")
    return np.maximum(x, 0.0)


@_checks.finite_result
def straight_through_relu_vjp(grad_out, x):
    r"""The straight-through gradient: :math:`\bar x = \bar y`, also where :math:`x < 0` (it is not relu's derivative)."""
    x = as_float_array(x, "x")
    g = as_float_array(grad_out, "grad_out", dtype=x.dtype)
    check_shape(g, "grad_out", x.shape, "the shape of x")
    return g.copy()
