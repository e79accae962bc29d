r"""The public encoder protocol, and composite encoders built on it: elementwise nonlinearities, ``Sequential``
and grouped convolution (pynsm's circuits accept any torch module; these cover the common ones).

**Protocol** (:class:`FunctionalEncoder`).  A subclass defines

* ``params``: a dict of float arrays, named like the torch ``state_dict`` (updated in place by the circuits);
* ``out_channels``: the number of output channels ``m`` (or ``None`` when it equals the input's);
* ``encode(x) -> u``: the encoding of a batch, shape ``[B, m, S1..Sk]``;
* ``encode_vjp(grad_u, x) -> (grad_x, {name: grad})``: the vector-Jacobian product at ``x`` (hand-derived);

and optionally ``check_input(x) -> x`` (validation).  The base turns these into what the circuits call, so a
``FunctionalEncoder`` can be passed to :class:`~refnsm.similarity.SimilarityMatching` like the built-in encoders
(CPU only).  Encoders provided here:

* :class:`ReLU`, :class:`Tanh`, :class:`Sigmoid` (elementwise, no parameters; ReLU's derivative at 0 is 0 as torch);
* :class:`Sequential` (``u = f_n(\cdots f_1(x))``; parameters ``"{i}.{name}"`` as ``torch.nn.Sequential``;
  the VJP runs the stages backwards, :math:`\bar x_{i-1} = J_i^\top \bar x_i`);
* :class:`GroupedConv2d` (``torch.nn.Conv2d(groups=g)``: ``g`` independent convolutions on consecutive channel
  slices, :math:`u_{[g]} = W_{[g]} * x_{[g]} + \beta_{[g]}`, weight ``(out, in/g, kh, kw)``).
"""

from __future__ import annotations

import math

import numpy as np

from .. import _checks
from .encoders import Conv2d, Encoder, _float_dtype, _from_internal, _init_param, _pair, _to_internal

__all__ = ["FunctionalEncoder", "ReLU", "Tanh", "Sigmoid", "Sequential", "GroupedConv2d"]


class FunctionalEncoder(Encoder):
    """Base of encoders written against the public protocol (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm.similarity import FunctionalEncoder, SimilarityMatching
    >>> class Square(FunctionalEncoder):       # u = x * x, elementwise
    ...     def encode(self, x):
    ...         return x * x
    ...     def encode_vjp(self, grad_u, x):
    ...         return 2 * x * grad_u, {}
    >>> Square()(np.array([[1.0, -2.0]]))
    array([[1., 4.]])
    >>> SimilarityMatching(Square(), 2)(np.array([[1.0, -2.0]])).shape
    (1, 2)
    """

    out_channels = None

    def __init__(self):
        if not hasattr(self, "params"):
            self.params = {}
        super().__init__()

    # the public protocol ------------------------------------------------------------------------------------
    def check_input(self, x):
        """Validate and convert ``x`` (default: a float array of rank >= 2 in the encoder's dtype)."""
        return _checks.as_float_array(x, "x", min_ndim=2, shape_hint="[B, C, ...]", dtype=self.dtype)

    def encode(self, x):
        raise NotImplementedError(f"{type(self).__name__} must implement encode(x) -> u [B, m, S1..Sk]")

    def encode_vjp(self, grad_u, x):
        raise NotImplementedError(f"{type(self).__name__} must implement encode_vjp(grad_u, x) -> (grad_x, grads)")

    # what the circuits call -----------------------------------------------------------------------------------
    def _check_input(self, x, dtype, name="x"):
        try:
            x = self.check_input(x)
        except (TypeError, ValueError) as exc:
            msg = str(exc)
            raise type(exc)(name + msg[1:] if msg.startswith("x") else msg) from None
        return x if dtype is None else x.astype(dtype, copy=False)

    def _encode(self, x):
        u = np.asarray(self.encode(x))
        if u.ndim < 2 or u.shape[0] != x.shape[0]:
            raise ValueError(f"{type(self).__name__}.encode: expected an output [B={x.shape[0]}, m, ...], got shape "
                             f"{u.shape}")
        if self.out_channels is not None and u.shape[1] != self.out_channels:
            raise ValueError(f"{type(self).__name__}.encode: expected {self.out_channels} channels, got {u.shape[1]}")
        return _to_internal(u.astype(x.dtype, copy=False)), (x, u.shape), tuple(u.shape)

    def _vjp(self, G, cache, need_input):
        x, shape = cache
        gx, grads = self.encode_vjp(_from_internal(G, shape), x)
        return (gx if need_input else None), grads

    def __call__(self, x, device="cpu"):
        if device != "cpu":
            raise NotImplementedError(f"device: {type(self).__name__} runs on the CPU only (use device='cpu')")
        return self.encode(self._check_input(x, None))

    def vjp(self, grad_out, x, device="cpu"):
        if device != "cpu":
            raise NotImplementedError(f"device: {type(self).__name__} runs on the CPU only (use device='cpu')")
        x = self._check_input(x, None)
        u = self.encode(x)
        g = _checks.as_float_array(grad_out, "grad_out", dtype=x.dtype)
        _checks.check_shape(g, "grad_out", np.shape(u), "the encoder's output shape")
        return self.encode_vjp(g, x)


class _Elementwise(FunctionalEncoder):
    def __init__(self, *, dtype=np.float64):
        self._dtype = _float_dtype(dtype)
        self.params = {}
        super().__init__()

    @property
    def dtype(self):
        return self._dtype

    def __repr__(self):
        return f"{type(self).__name__}()"

    def check_input(self, x):
        return _checks.as_float_array(x, "x", min_ndim=1, dtype=self.dtype)

    def encode_vjp(self, grad_u, x):
        return grad_u * self._derivative(x), {}


class ReLU(_Elementwise):
    """:math:`\\max(x, 0)`; derivative :math:`\\mathbb 1[x > 0]` (0 at 0, as torch).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm.similarity import ReLU
    >>> x = np.array([[-1.0, 2.0]])
    >>> ReLU()(x), ReLU().vjp(np.ones((1, 2)), x)[0]
    (array([[0., 2.]]), array([[0., 1.]]))
    """

    def encode(self, x):
        return np.maximum(x, 0.0)

    def _derivative(self, x):
        return (x > 0).astype(x.dtype)


class Tanh(_Elementwise):
    """:math:`\\tanh x`; derivative :math:`1 - \\tanh^2 x`.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm.similarity import Tanh
    >>> np.round(Tanh()(np.array([[0.0, 1.0]])), 4)
    array([[0.    , 0.7616]])
    """

    def encode(self, x):
        return np.tanh(x)

    def _derivative(self, x):
        return 1.0 - np.tanh(x) ** 2


class Sigmoid(_Elementwise):
    """:math:`\\sigma(x) = 1/(1+e^{-x})`; derivative :math:`\\sigma(1-\\sigma)`.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm.similarity import Sigmoid
    >>> np.round(Sigmoid()(np.array([[0.0, 2.0]])), 4)
    array([[0.5   , 0.8808]])
    """

    def encode(self, x):
        return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free

    def _derivative(self, x):
        s = 0.5 * (1.0 + np.tanh(0.5 * x))
        return s * (1.0 - s)


class Sequential(FunctionalEncoder):
    """``torch.nn.Sequential`` of encoders: ``Sequential(Linear(784, 100), ReLU(), Linear(100, 20))``.

    ``params`` holds every stage's arrays (the same objects) under ``"{i}.{name}"``; ``out_channels`` is the last
    stage's that has one.  Every stage must share one dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm.similarity import Linear, ReLU, Sequential
    >>> seq = Sequential(Linear(4, 3, rng=0), ReLU(), Linear(3, 2, rng=1))
    >>> sorted(seq.params), seq(np.ones((5, 4))).shape
    (['0.bias', '0.weight', '2.bias', '2.weight'], (5, 2))
    """

    def __init__(self, *stages):
        if not stages:
            raise ValueError("stages: expected at least one encoder")
        for i, s in enumerate(stages):
            if not isinstance(s, Encoder):
                raise TypeError(f"stages[{i}]: expected a refnsm.similarity encoder, got {type(s).__name__}")
        dtypes = {np.dtype(s.dtype) for s in stages}
        if len(dtypes) != 1:
            raise TypeError(f"stages: expected one dtype for all stages, got {sorted(str(d) for d in dtypes)}")
        self.stages = list(stages)
        self._dtype = dtypes.pop()
        self.params = {f"{i}.{k}": v for i, s in enumerate(self.stages) for k, v in s.params.items()}
        outs = [s.out_channels for s in self.stages if s.out_channels is not None]
        self.out_channels = outs[-1] if outs else None
        super().__init__()

    @property
    def dtype(self):
        return self._dtype

    def __repr__(self):
        return "Sequential(" + ", ".join(map(repr, self.stages)) + ")"

    def __len__(self):
        return len(self.stages)

    def __getitem__(self, i):
        return self.stages[i]

    def check_input(self, x):
        return self.stages[0]._check_input(x, self.dtype)

    def _run(self, x):
        acts = [x]
        for i, s in enumerate(self.stages):
            if i:
                x = s._check_input(x, self.dtype, name=f"stage {i} input")
            U, cache, shape = s._encode(x)
            acts.append((cache, shape))
            x = _from_internal(U, shape)
        return x, acts

    def encode(self, x):
        return self._run(x)[0]

    def encode_vjp(self, grad_u, x):
        _, acts = self._run(x)
        g = grad_u
        grads = {}
        for i in range(len(self.stages) - 1, -1, -1):
            cache, shape = acts[i + 1]
            g, pg = self.stages[i]._vjp(_to_internal(np.ascontiguousarray(g)), cache, True)
            for k, v in pg.items():
                grads[f"{i}.{k}"] = v
        return g, grads


class GroupedConv2d(FunctionalEncoder):
    r"""``torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)``: the
    input channels and the filters split into ``groups`` consecutive blocks, block :math:`g` of the output
    convolving block :math:`g` of the input only.  ``weight`` (out, in/groups, kh, kw) and ``bias`` (out,) as torch
    (initialised :math:`U(\pm 1/\sqrt{(C/g) k_h k_w})`); each block runs :class:`~refnsm.similarity.Conv2d`'s
    kernels on a view of the weight.  ``groups = 1`` is :class:`~refnsm.similarity.Conv2d`.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm.similarity import GroupedConv2d
    >>> g = GroupedConv2d(4, 6, 3, groups=2, rng=0)
    >>> g.params["weight"].shape, g(np.ones((1, 4, 5, 5))).shape
    ((6, 2, 3, 3), (1, 6, 3, 3))
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 *, rng=None, weight=None, bias_value=None, dtype=np.float64):
        in_channels = _checks.check_int(in_channels, "in_channels", minimum=1)
        out_channels = _checks.check_int(out_channels, "out_channels", minimum=1)
        groups = _checks.check_int(groups, "groups", minimum=1)
        for name, n in (("in_channels", in_channels), ("out_channels", out_channels)):
            if n % groups:
                raise ValueError(f"{name}: expected a multiple of groups = {groups}, got {n}")
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias: expected a bool, got {type(bias).__name__} {bias!r}")
        kh, kw = _pair(kernel_size, "kernel_size", 1)
        dtype = _float_dtype(dtype)
        rng = _checks.resolve_rng(rng)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        cg, og = in_channels // groups, out_channels // groups
        bound = 1.0 / math.sqrt(cg * kh * kw)
        self.params = {"weight": _init_param(weight, "weight", (out_channels, cg, kh, kw), dtype, bound, rng)}
        if bias:
            self.params["bias"] = _init_param(bias_value, "bias_value", (out_channels,), dtype, bound, rng)
        elif bias_value is not None:
            raise ValueError("bias_value: given, but bias=False")
        self._block = Conv2d(cg, og, (kh, kw), stride, padding, dilation, bias, dtype=dtype, rng=0)
        self.kernel_size, self.stride = self._block.kernel_size, self._block.stride
        self.padding, self.dilation = self._block.padding, self._block.dilation
        super().__init__()

    @property
    def dtype(self):
        return self.params["weight"].dtype

    def __repr__(self):
        return (f"GroupedConv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
                f"bias={'bias' in self.params})")

    def output_size(self, H, W):
        return self._block.output_size(H, W)

    def _blocks(self):
        og = self.out_channels // self.groups
        for g in range(self.groups):
            blk = self._block
            blk.params = {"weight": self.params["weight"][g * og:(g + 1) * og]}
            if "bias" in self.params:
                blk.params["bias"] = self.params["bias"][g * og:(g + 1) * og]
            yield g, blk

    def check_input(self, x):
        x = _checks.as_float_array(x, "x", ndim=4, shape_hint="[B, C, H, W]", dtype=self.dtype)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x: expected {self.in_channels} channels in dimension 1 for {self!r}, got shape {x.shape}")
        Ho, Wo = self.output_size(x.shape[2], x.shape[3])
        if Ho < 1 or Wo < 1:
            raise ValueError(f"x: input of shape {x.shape} is smaller than the (dilated) kernel of {self!r}")
        return x

    def encode(self, x):
        cg = self.in_channels // self.groups
        outs = []
        for g, blk in self._blocks():
            U, _, shape = blk._encode(np.ascontiguousarray(x[:, g * cg:(g + 1) * cg]))
            outs.append(_from_internal(U, shape))
        return np.concatenate(outs, axis=1)

    def encode_vjp(self, grad_u, x):
        cg, og = self.in_channels // self.groups, self.out_channels // self.groups
        gx = np.empty_like(x)
        gW = np.empty_like(self.params["weight"])
        gb = np.empty_like(self.params["bias"]) if "bias" in self.params else None
        for g, blk in self._blocks():
            _, cache, _ = blk._encode(np.ascontiguousarray(x[:, g * cg:(g + 1) * cg]))
            G = _to_internal(np.ascontiguousarray(grad_u[:, g * og:(g + 1) * og]))
            gxg, pg = blk._vjp(G, cache, True)
            gx[:, g * cg:(g + 1) * cg] = gxg
            gW[g * og:(g + 1) * og] = pg["weight"]
            if gb is not None:
                gb[g * og:(g + 1) * og] = pg["bias"]
        grads = {"weight": gW}
        if gb is not None:
            grads["bias"] = gb
        return gx, grads
