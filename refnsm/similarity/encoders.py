r"""Encoders of the similarity-matching circuits, with hand-derived vector-Jacobian products.

An encoder maps an input batch ``x`` to an encoding ``u = f(x)`` of shape ``[B, m, S1..Sk]`` (``m`` output
channels in dimension 1, optional spatial dimensions after it).  Three are provided, mirroring the torch modules
pynsm is used with:

* :class:`Linear`  ``u = x W^T + beta``             (``torch.nn.Linear``), ``x: [B, n]``, ``u: [B, m]``;
* :class:`Conv2d`  ``u = W * x + beta``             (``torch.nn.Conv2d``, groups = 1, zero padding),
  ``x: [B, C, H, W]``, ``u: [B, m, H', W']``;
* :class:`Identity` ``u = x``                        (``torch.nn.Identity``).

Each one is a small stateful object: ``params`` (a dict named like the torch ``state_dict``), ``forward(x)``,
``backward(grad_out)`` (returns the input gradient and fills ``grads``), and the functional
``vjp(grad_out, x) -> (grad_x, grads_dict)`` which does not touch the object's state.

Gradients (with :math:`G = \partial L / \partial u`):

.. math::

    \text{Linear: } \bar W = G^\top x,\quad \bar\beta = \textstyle\sum_b G_b,\quad \bar x = G W;

    \text{Conv2d: } \bar W[o,c,i,j] = \sum_{b,h,w} G[b,o,h,w]\, \tilde x[b,c,s h + d i, s w + d j],\quad
    \bar\beta[o] = \sum_{b,h,w} G[b,o,h,w],

and :math:`\bar x` is the adjoint scatter of the same patches (``col2im``), with :math:`\tilde x` the zero-padded
input, :math:`s` the stride and :math:`d` the dilation.

GPU: the functional methods ``encoder(x, device="cuda")`` and ``encoder.vjp(grad_out, x, device="cuda")`` run the
same code with the device twins of the operations (:mod:`refnsm.similarity._cuda_ops`: im2col, one tiled
product and col2im on the device); ``x`` and ``grad_out`` may be NumPy arrays (results come back as NumPy) or Numba
device arrays (results stay on the device).  See ``docs/cuda.md``.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _backend
from .. import _checks
from . import _kernels

__all__ = ["Encoder", "Linear", "Conv2d", "Identity"]

DEVICES = _backend.DEVICES


def _device_ops(device):
    """The array operations of ``device``: :mod:`refnsm.similarity._ops` or its CUDA twin (imported only then)."""
    return _backend.kernels("similarity", device, "ops")


def _pair(value, name, minimum):
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name}: expected an int or a pair of ints, got {value!r}")
        return tuple(_checks.check_int(v, name, minimum=minimum) for v in value)
    v = _checks.check_int(value, name, minimum=minimum)
    return (v, v)


def _float_dtype(dtype):
    return _checks.check_float_dtype(dtype)


def _init_param(value, name, shape, dtype, bound, rng):
    if value is None:
        return rng.uniform(-bound, bound, size=shape).astype(dtype)
    arr = _checks.as_float_array(value, name, dtype=dtype)
    _checks.check_shape(arr, name, shape)
    return arr.copy()


class Encoder:
    """Base class: the protocol every encoder of a similarity-matching circuit follows.

    Subclasses define ``params`` (dict of arrays), ``out_channels`` (or ``None`` when it is only known from the
    input, as for :class:`Identity`), and the three internal methods used by the circuits:

    * ``_check_input(x, dtype) -> ndarray``: validate and convert (never modifies ``x``);
    * ``_encode(x) -> (U, cache, public_shape)``: ``U`` is the encoding in the sample-major layout ``[B*S, m]``
      (one row per sample and spatial position);
    * ``_vjp(G, cache, need_input) -> (grad_x or None, grads)``: ``G`` is ``dL/du`` in the same layout.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> enc = sim.Linear(3, 2, rng=0)
    >>> isinstance(enc, sim.Encoder), sorted(enc.params)
    (True, ['bias', 'weight'])
    """

    out_channels: int | None = None
    params: dict

    def __init__(self):
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._cache = None

    @property
    def dtype(self):
        for v in self.params.values():
            return v.dtype
        return np.dtype(np.float64)

    # public, stateful ---------------------------------------------------------------------------------------
    def forward(self, x):
        """Encode ``x``; returns ``u`` of shape ``[B, m, S1..Sk]`` and remembers ``x`` for :meth:`backward`."""
        x = self._check_input(x, None)
        U, cache, shape = self._encode(x)
        self._cache = (cache, shape)
        return _from_internal(U, shape)

    def backward(self, grad_out):
        """Gradient of ``<grad_out, forward(x)>``: fills ``self.grads`` and returns ``grad_x``."""
        if self._cache is None:
            raise RuntimeError("backward: call forward(x) first")
        cache, shape = self._cache
        G = self._check_grad_out(grad_out, shape)
        gx, grads = self._vjp(G, cache, True)
        for k, v in grads.items():
            self.grads[k] = v
        return gx

    # public, functional -------------------------------------------------------------------------------------
    def __call__(self, x, device="cpu"):
        """Encode ``x`` (no state kept).

        ``device="cuda"`` (Linear, Conv2d and Identity) runs the device twins of the operations
        (:mod:`refnsm.similarity._cuda_ops`); a device ``x`` gives a device result."""
        ops = _device_ops(device)
        on_device = ops.locate((x,))
        x = ops.check_input(self, x, None, "x")
        U, _, shape = ops.encode(self, x)
        return ops.result(ops.from_internal(U, shape), on_device)

    def vjp(self, grad_out, x, device="cpu"):
        """Functional VJP at ``x``: returns ``(grad_x, {param name: grad})``; the object is not modified.

        ``device="cuda"`` as for :meth:`__call__`; results on the inputs' side."""
        ops = _device_ops(device)
        on_device = ops.locate((x, grad_out))
        x = ops.check_input(self, x, None, "x")
        U, cache, shape = ops.encode(self, x)
        G = ops.check_grad_out(self, grad_out, shape)
        gx, grads = ops.vjp(self, G, cache, True, host_grads=False)
        return ops.result(gx, on_device), {k: ops.result(v, on_device) for k, v in grads.items()}

    def _check_grad_out(self, grad_out, shape):
        g = _checks.as_float_array(grad_out, "grad_out", dtype=self._compute_dtype())
        _checks.check_shape(g, "grad_out", shape, "the encoder's output shape")
        return _to_internal(g)

    def _compute_dtype(self):
        return self.dtype


def _to_internal(u):
    """``[B, m, S1..Sk]`` -> sample-major ``[B*S, m]`` (contiguous; no copy for a contiguous ``[B, m]``)."""
    B, m = u.shape[0], u.shape[1]
    if u.ndim == 2:
        return np.ascontiguousarray(u)
    return np.ascontiguousarray(np.moveaxis(u.reshape(B, m, -1), 1, 2)).reshape(-1, m)


def _internal_view(U, shape):
    """sample-major ``[B*S, m]`` -> a ``[B, m, S1..Sk]`` view (no copy)."""
    if len(shape) == 2:
        return U.reshape(shape)
    B, m = shape[0], shape[1]
    return np.moveaxis(U.reshape((B,) + tuple(shape[2:]) + (m,)), -1, 1)


def _from_internal(U, shape):
    """sample-major ``[B*S, m]`` -> ``[B, m, S1..Sk]`` (a new contiguous array)."""
    return np.array(_internal_view(U, shape), order="C")


class Linear(Encoder):
    r"""Fully connected encoder :math:`u = x W^\top + \beta` (``torch.nn.Linear``).

    Parameters
    ----------
    in_features, out_features : int
        ``x`` has shape ``[B, in_features]``; ``u`` has shape ``[B, out_features]``.
    bias : bool
        Include :math:`\beta`.
    rng : numpy.random.Generator, int or None
        Initialisation: :math:`W, \beta \sim U(-1/\sqrt{n}, 1/\sqrt{n})` (torch's default law).
    weight, bias_value : array_like, optional
        Explicit initial values (copied), e.g. from a torch module.
    dtype : float32 or float64

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> enc = sim.Linear(3, 2, weight=np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]), bias_value=np.zeros(2))
    >>> enc.forward(np.array([[1.0, 2.0, 3.0]]))   # x W^T + b
    array([[1., 5.]])
    >>> enc.backward(np.ones((1, 2)))              # dL/dx; enc.grads holds dL/dW, dL/db
    array([[1., 1., 1.]])
    """

    def __init__(self, in_features, out_features, bias=True, *, rng=None, weight=None, bias_value=None,
                 dtype=np.float64):
        in_features = _checks.check_int(in_features, "in_features", minimum=1)
        out_features = _checks.check_int(out_features, "out_features", minimum=1)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias: expected a bool, got {type(bias).__name__} {bias!r}")
        dtype = _float_dtype(dtype)
        rng = _checks.resolve_rng(rng)
        self.in_features, self.out_features, self.out_channels = in_features, out_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        self.params = {"weight": _init_param(weight, "weight", (out_features, in_features), dtype, bound, rng)}
        if bias:
            self.params["bias"] = _init_param(bias_value, "bias_value", (out_features,), dtype, bound, rng)
        elif bias_value is not None:
            raise ValueError("bias_value: given, but bias=False")
        super().__init__()

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features}, bias={'bias' in self.params})"

    def _check_input(self, x, dtype, name="x"):
        x = _checks.as_float_array(x, name, ndim=2, shape_hint="[B, in_features]", dtype=dtype or self.dtype)
        if x.shape[1] != self.in_features:
            raise ValueError(f"{name}: expected shape (B, {self.in_features}) for {self!r}, got {x.shape}")
        return x

    def _encode(self, x):
        W = self.params["weight"]
        U = np.dot(x, W.T)  # [B, m]
        if "bias" in self.params:
            U += self.params["bias"]
        return U, x, (x.shape[0], self.out_features)

    def _vjp(self, G, x, need_input):
        grads = {"weight": np.dot(G.T, x)}
        if "bias" in self.params:
            grads["bias"] = G.sum(axis=0)
        gx = np.dot(G, self.params["weight"]) if need_input else None
        return gx, grads


class Conv2d(Encoder):
    r"""2-D convolution encoder (``torch.nn.Conv2d`` with groups = 1 and zero padding).

    .. math::  u[b,o,h,w] = \beta[o] + \sum_{c,i,j} W[o,c,i,j]\; \tilde x[b, c, s_h h + d_h i, s_w w + d_w j],

    with :math:`\tilde x` the input zero-padded by ``padding``; the output size is
    :math:`H' = \lfloor (H + 2p_h - d_h (k_h - 1) - 1) / s_h \rfloor + 1` (likewise :math:`W'`).
    Implemented as im2col (a Numba kernel) followed by one matrix product.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, padding, dilation : int or pair of ints
    bias : bool
    rng : numpy.random.Generator, int or None
        Initialisation :math:`U(\pm 1/\sqrt{C k_h k_w})` (torch's default law).
    weight, bias_value : array_like, optional
        Explicit initial values (copied).
    dtype : float32 or float64

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> enc = sim.Conv2d(1, 4, 3, stride=1, padding=1, rng=0)
    >>> u = enc.forward(np.ones((2, 1, 5, 5)))    # [B, C_in, H, W] -> [B, out_channels, H', W']
    >>> u.shape
    (2, 4, 5, 5)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True, *,
                 rng=None, weight=None, bias_value=None, dtype=np.float64):
        in_channels = _checks.check_int(in_channels, "in_channels", minimum=1)
        out_channels = _checks.check_int(out_channels, "out_channels", minimum=1)
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = _pair(stride, "stride", 1)
        self.padding = _pair(padding, "padding", 0)
        self.dilation = _pair(dilation, "dilation", 1)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias: expected a bool, got {type(bias).__name__} {bias!r}")
        dtype = _float_dtype(dtype)
        rng = _checks.resolve_rng(rng)
        self.in_channels, self.out_channels = in_channels, out_channels
        kh, kw = self.kernel_size
        bound = 1.0 / math.sqrt(in_channels * kh * kw)
        self.params = {"weight": _init_param(weight, "weight", (out_channels, in_channels, kh, kw), dtype, bound, rng)}
        if bias:
            self.params["bias"] = _init_param(bias_value, "bias_value", (out_channels,), dtype, bound, rng)
        elif bias_value is not None:
            raise ValueError("bias_value: given, but bias=False")
        super().__init__()

    def __repr__(self):
        return (f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, bias={'bias' in self.params})")

    def output_size(self, H, W):
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        return (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1

    def _check_input(self, x, dtype, name="x"):
        x = _checks.as_float_array(x, name, ndim=4, shape_hint="[B, C, H, W]", dtype=dtype or self.dtype)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"{name}: expected {self.in_channels} channels in dimension 1 for {self!r}, got shape {x.shape}")
        Ho, Wo = self.output_size(x.shape[2], x.shape[3])
        if Ho < 1 or Wo < 1:
            raise ValueError(f"{name}: input of shape {x.shape} is smaller than the (dilated) kernel of {self!r}")
        return x

    def _encode(self, x):
        B, C, H, W = x.shape
        Ho, Wo = self.output_size(H, W)
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        cols = np.empty((B * Ho * Wo, C * kh * kw), dtype=x.dtype)
        _kernels.im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, cols)
        W2T = np.ascontiguousarray(self.params["weight"].reshape(self.out_channels, -1).T)
        U = np.empty((cols.shape[0], self.out_channels), dtype=x.dtype)
        _kernels.matmul_skip(cols, W2T, U)  # [B*Ho*Wo, m]; blank patches cost nothing
        if "bias" in self.params:
            U += self.params["bias"]
        return U, (cols, x.shape), (B, self.out_channels, Ho, Wo)

    def _vjp(self, G, cache, need_input):
        cols, xshape = cache
        G = np.ascontiguousarray(G)
        gW = np.empty((self.out_channels, cols.shape[1]), dtype=G.dtype)
        _kernels.matmul_tn_skip(G, cols, gW)
        grads = {"weight": gW.reshape(self.params["weight"].shape)}
        if "bias" in self.params:
            grads["bias"] = G.sum(axis=0)
        gx = None
        if need_input:
            W2 = np.ascontiguousarray(self.params["weight"].reshape(self.out_channels, -1))
            dcols = np.empty_like(cols)
            _kernels.matmul_skip(G, W2, dcols)
            gx = np.empty(xshape, dtype=G.dtype)
            (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
            Ho, Wo = self.output_size(xshape[2], xshape[3])
            _kernels.col2im(dcols, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, gx)
        return gx, grads


class Identity(Encoder):
    """``u = x`` (``torch.nn.Identity``): the input already has the layout ``[B, m, S1..Sk]``; no parameters.

    The circuits never write to the caller's array (pynsm's in-place sum overwrites it, ``docs/upstream_differences.md``).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> sim.Identity().forward(np.array([[1.0, 2.0]]))
    array([[1., 2.]])
    """

    out_channels = None

    def __init__(self, *, dtype=np.float64):
        self._dtype = _float_dtype(dtype)
        self.params = {}
        super().__init__()

    def __repr__(self):
        return "Identity()"

    @property
    def dtype(self):
        return self._dtype

    def _check_input(self, x, dtype, name="x"):
        return _checks.as_float_array(x, name, min_ndim=2, shape_hint="[B, m, S1..Sk]", dtype=dtype or self.dtype)

    def _encode(self, x):
        return _to_internal(x), x.shape, x.shape

    def _vjp(self, G, shape, need_input):
        return (_from_internal(G, shape) if need_input else None), {}
