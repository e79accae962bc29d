r"""The device side of the similarity circuits' array operations: the twin of :class:`refnsm.similarity._ops.HostOps`.

:class:`DeviceOps` has the methods of ``HostOps`` (validate and encode the inputs, form the drive, the backward's
elementwise steps, the encoders' VJPs, the layout changes), computed on numba device arrays with the kernels of
:mod:`refnsm.similarity._cuda_kernels`; the circuits (:mod:`refnsm.similarity.models`) and the encoders' functional
methods run the same code with either.  Imported only when ``device="cuda"`` is asked for.

Inputs: NumPy arrays (or array-likes) are validated by exactly the CPU code (each encoder's ``_check_input``) and
copied over; numba device arrays are validated from their metadata (rank, shape, float32/float64, C-contiguity) and
for NaN/Inf by a device count (the array is copied back only to name the first bad index in the error); a device
input of the other float dtype is cast on the device to the model's dtype.  The parameters stay NumPy arrays on the
host (``params``, the ``state_dict`` convention): each call copies them over (``m x n`` and ``m x m``).
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from .. import _checks
from ..cuda import is_device_array
from ..cuda import _primitives as prim
from ..cuda._arrays import empty as _empty, dev_float as _dev_float, any_device as _any_device, out as _out
from . import encoders as _E
from ._cuda_kernels import _launch1, _launch2, _matmul_into, _flat, _ft, _dot, _zeros, im2col, col2im

__all__ = ["locate", "check_input", "encode", "check_grad_out", "vjp", "repeat_rows", "drive", "scale", "add_scaled",
           "sum_positions", "to_internal", "from_internal", "check_y", "dot", "all_finite", "empty", "zeros",
           "from_host", "to_host", "store", "result", "copy_back"]

zeros = _zeros
empty = _empty
dot = _dot
result = _out


# ==================================================================================== device validation
def locate(xs):
    """Whether the results of a call with inputs ``xs`` go back to the device: when any input is a device array."""
    return _any_device(*xs)


def check_input(encoder, x, dtype, name="x"):
    """Twin of ``encoder._check_input``: a validated device array of ``dtype`` (the encoder's by default).

    Host arrays go through the CPU validator itself and are copied over; device arrays are checked in the CPU's
    order with the CPU's messages (integer device arrays are refused rather than converted)."""
    dtype = encoder.dtype if dtype is None else np.dtype(dtype)
    if not is_device_array(x):
        return cuda.to_device(encoder._check_input(x, dtype, name=name))
    kind = type(encoder)
    if kind is _E.Linear:
        _dev_float(x, name, ndim=2, shape_hint="[B, in_features]")
        if x.shape[1] != encoder.in_features:
            raise ValueError(f"{name}: expected shape (B, {encoder.in_features}) for {encoder!r}, got {x.shape}")
    elif kind is _E.Conv2d:
        _dev_float(x, name, ndim=4, shape_hint="[B, C, H, W]")
        if x.shape[1] != encoder.in_channels:
            raise ValueError(f"{name}: expected {encoder.in_channels} channels in dimension 1 for {encoder!r}, got "
                             f"shape {x.shape}")
        Ho, Wo = encoder.output_size(x.shape[2], x.shape[3])
        if Ho < 1 or Wo < 1:
            raise ValueError(f"{name}: input of shape {x.shape} is smaller than the (dilated) kernel of {encoder!r}")
    elif kind is _E.Identity:
        _dev_float(x, name, min_ndim=2, shape_hint="[B, m, S1..Sk]")
    else:
        raise TypeError(f"{name}: device='cuda' supports the Linear, Conv2d and Identity encoders, got "
                        f"{type(encoder).__name__}")
    return prim.astype(x, dtype)


# ============================================================================== layout and encoders on the device
def to_internal(u):
    """Device twin of ``encoders._to_internal``: [B, m, S1..Sk] -> [B*S, m] (a 2-D array is returned as is)."""
    B, m = u.shape[0], u.shape[1]
    if u.ndim == 2:
        return u
    S = u.size // (B * m) if B * m else 0
    out = _empty((B * S, m), u.dtype)
    _launch2("to_internal", B * S, m, u.dtype, u.reshape(B, m, S), out)
    return out


def from_internal(U, shape):
    """Device twin of ``encoders._from_internal``: [B*S, m] -> a new [B, m, S1..Sk] array."""
    B, m = shape[0], shape[1]
    S = U.shape[0] // B if B else 0
    out3 = _empty((B, m, S), U.dtype)
    _launch2("from_internal", U.shape[0], m, U.dtype, U, out3)
    return out3.reshape(*shape)


def _params_dev(encoder):
    return {k: cuda.to_device(v) for k, v in encoder.params.items()}


def encode(encoder, x):
    """Device twin of ``encoder._encode``: ``(U [T, m], cache, public shape)`` for a validated device ``x``."""
    p = _params_dev(encoder)
    dt = x.dtype
    kind = type(encoder)
    if kind is _E.Identity:
        return to_internal(x), x.shape, tuple(x.shape)
    if kind is _E.Linear:
        W = p["weight"]
        U = _empty((x.shape[0], encoder.out_features), dt)
        _matmul_into(x, W, U, False, True)  # x W^T
        cache, shape = (x, W), (x.shape[0], encoder.out_features)
    else:
        B, C, H, Wd = x.shape
        Ho, Wo = encoder.output_size(H, Wd)
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = encoder.kernel_size, encoder.stride, encoder.padding, encoder.dilation
        cols = _empty((B * Ho * Wo, C * kh * kw), dt)
        im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, cols)
        W2 = p["weight"].reshape(encoder.out_channels, C * kh * kw)
        U = _empty((cols.shape[0], encoder.out_channels), dt)
        _matmul_into(cols, W2, U, False, True)  # cols W2^T: every entry summed over the patch in order
        cache, shape = (cols, tuple(x.shape), W2), (B, encoder.out_channels, Ho, Wo)
    if "bias" in p:
        _launch2("bias_add", U.shape[0], U.shape[1], dt, U, p["bias"])
    return U, cache, shape


def _vjp(encoder, G, cache, need_input):
    """Device twin of ``encoder._vjp``: ``(grad_x or None, {name: grad})``, all device arrays."""
    kind = type(encoder)
    dt = G.dtype
    if kind is _E.Identity:
        return (from_internal(G, cache) if need_input else None), {}
    grads = {}
    if kind is _E.Linear:
        x, W = cache
        grads["weight"] = _matmul_into(G, x, _empty((G.shape[1], x.shape[1]), dt), True, False)
    else:
        cols, xshape, W2 = cache
        gW = _matmul_into(G, cols, _empty((G.shape[1], cols.shape[1]), dt), True, False)
        grads["weight"] = gW.reshape(*encoder.params["weight"].shape)
    if "bias" in encoder.params:
        gb = _empty(G.shape[1], dt)
        _launch1("col_sums", G.shape[1], dt, G, gb)
        grads["bias"] = gb
    gx = None
    if need_input:
        if kind is _E.Linear:
            gx = _matmul_into(G, W, _empty((G.shape[0], W.shape[1]), dt), False, False)
        else:
            dcols = _matmul_into(G, W2, _empty(cols.shape, dt), False, False)
            gx = _empty(xshape, dt)
            (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (encoder.kernel_size, encoder.stride, encoder.padding,
                                                      encoder.dilation)
            Ho, Wo = encoder.output_size(xshape[2], xshape[3])
            col2im(dcols, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, gx)
    return gx, grads


def check_grad_out(encoder, grad_out, shape):
    """Twin of ``encoder._check_grad_out``: a validated internal-layout device gradient."""
    dt = encoder._compute_dtype()
    if not is_device_array(grad_out):
        return cuda.to_device(encoder._check_grad_out(grad_out, shape))
    g = _dev_float(grad_out, "grad_out")
    _checks.check_shape(g, "grad_out", shape, "the encoder's output shape")
    return to_internal(prim.astype(g, dt))


def vjp(encoder, G, cache, inputs, host_grads=True):
    """(input gradient or None, {name: parameter gradient}): device arrays, the parameter gradients copied to the
    host when ``host_grads`` (the circuits' ``grads`` are NumPy arrays)."""
    gx, pg = _vjp(encoder, G, cache, inputs)
    return gx, ({name: g.copy_to_host() for name, g in pg.items()} if host_grads else pg)


def repeat_rows(U, S, dtype):
    """Each row of ``U`` repeated ``S`` times."""
    rep = _empty((U.shape[0] * S, U.shape[1]), dtype)
    _launch2("repeat_rows", rep.shape[0], rep.shape[1], dtype, U, S, rep)
    return rep


def drive(Us, dtype):
    """A fresh buffer with the sum of the encodings, left to right (the encodings are never overwritten)."""
    T, m = Us[0].shape
    D = _empty((T, m), dtype)
    for i, U in enumerate(Us):
        _launch1("add_into", T * m, dtype, _flat(D), _flat(U), i == 0)
    return D


def scale(Y, c):
    """``Y * c`` in the dtype (one thread per element)."""
    out = _empty(Y.shape, Y.dtype)
    _launch1("scale", Y.size, Y.dtype, _flat(Y), _ft(Y)(c), _flat(out))
    return out


def add_scaled(G, U, c):
    """``G + U * c`` in the dtype (one thread per element)."""
    out = _empty(U.shape, U.dtype)
    _launch1("add_scaled", U.size, U.dtype, _flat(G), _flat(U), _ft(U)(c), _flat(out))
    return out


def sum_positions(G, B, S, m):
    """[B*S, m] -> [B, m], summed over the S positions in order."""
    summed = _empty((B, m), G.dtype)
    _launch2("sum_positions", B, m, G.dtype, G, S, summed)
    return summed


def check_y(y, shape, dtype):
    """``(Y, on_device)``: ``y`` of ``loss`` validated (a host array by the CPU's checks, then copied over), internal."""
    if is_device_array(y):
        _dev_float(y, "y")
        _checks.check_shape(y, "y", shape, "the shape of the encodings")
        return to_internal(prim.astype(y, dtype)), True
    yh = _checks.as_float_array(y, "y", dtype=dtype)
    _checks.check_shape(yh, "y", shape, "the shape of the encodings")
    return cuda.to_device(_E._to_internal(yh)), False


def all_finite(a):
    """No NaN/Inf in ``a`` (a device count; only the count is copied back)."""
    return a.size == 0 or prim.count_nonfinite(a) == 0


def from_host(a):
    """A device copy of a host array."""
    return cuda.to_device(np.ascontiguousarray(a))


def to_host(a):
    """A NumPy copy of a device array (a host array passes through)."""
    return a.copy_to_host() if is_device_array(a) else np.asarray(a)


def store(Y, new):
    """``Y[...] = new`` for a device ``Y`` and a host ``new``."""
    Y.copy_to_device(np.ascontiguousarray(new))


def copy_back(dst, src):
    """The device array ``src`` copied back into the host array ``dst`` (a parameter updated on the device)."""
    dst[...] = src.copy_to_host()
