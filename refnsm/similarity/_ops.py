r"""The array operations of the similarity circuits on the host (NumPy): :mod:`refnsm.similarity._cuda_ops` mirrors
them one for one on numba device arrays.

The circuits (:mod:`refnsm.similarity.models`) and the encoders' functional methods (``encoder(x)``,
``encoder.vjp``) are written once against these names; :func:`refnsm._backend.kernels` hands them this module or
its device twin (``part="ops"``).  Each function here is the plain NumPy expression it names.
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from .encoders import _from_internal as from_internal, _to_internal as to_internal

__all__ = ["locate", "check_input", "encode", "check_grad_out", "vjp", "repeat_rows", "drive", "scale", "add_scaled",
           "sum_positions", "to_internal", "from_internal", "check_y", "dot", "all_finite", "empty", "zeros",
           "from_host", "to_host", "store", "result", "copy_back"]

empty = np.empty
zeros = np.zeros


def locate(xs):
    """Whether the results of a call with inputs ``xs`` go back to the device (never, on the host)."""
    return False


def check_input(encoder, x, dtype, name):
    """``x`` validated and converted by the encoder (dtype: the encoder's when None)."""
    return encoder._check_input(x, dtype, name=name)


def encode(encoder, x):
    """``(U [B*S, m], cache, public shape)`` of a validated input."""
    return encoder._encode(x)


def check_grad_out(encoder, grad_out, shape):
    """``grad_out`` of the encoder's output (shape ``shape``), validated, in the internal layout."""
    return encoder._check_grad_out(grad_out, shape)


def vjp(encoder, G, cache, inputs, host_grads=True):
    """(input gradient or None, {name: parameter gradient}) of the encoder at the cached input."""
    return encoder._vjp(np.ascontiguousarray(G), cache, inputs)


def repeat_rows(U, S, dtype):
    """Each row of ``U`` repeated ``S`` times (a label encoding broadcast over S positions)."""
    return np.repeat(U, S, axis=0)


def drive(Us, dtype):
    """A fresh buffer with the sum of the encodings, left to right (the encodings are never overwritten)."""
    if len(Us) == 1:
        return Us[0].copy()
    D = np.zeros_like(Us[0])
    for U in Us:
        D += U
    return D


def scale(Y, c):
    """``Y * c``."""
    return Y * c


def add_scaled(G, U, c):
    """``G + U * c``."""
    return G + U * c


def sum_positions(G, B, S, m):
    """[B*S, m] -> [B, m]: the gradient of an encoding broadcast over S positions."""
    return G.reshape(B, S, m).sum(axis=1)


def check_y(y, shape, dtype):
    """``(Y, on_device)``: the output ``y`` given to ``loss`` (shape ``shape``), validated, in the internal layout."""
    yh = _checks.as_float_array(y, "y", dtype=dtype)
    _checks.check_shape(yh, "y", shape, "the shape of the encodings")
    return to_internal(yh), False


def dot(a, b):
    """``np.vdot(a, b)``."""
    return np.vdot(a, b)


def all_finite(a):
    """No NaN/Inf in ``a``."""
    return bool(np.isfinite(a).all())


def from_host(a):
    """A host array where the kernels run (itself, here)."""
    return a


def to_host(a):
    """A NumPy array (itself, here)."""
    return a


def store(Y, new):
    """``Y[...] = new`` (``new`` a host array)."""
    Y[...] = new


def result(g, on_device):
    """A result on the caller's side."""
    return g


def copy_back(dst, src):
    """Bring ``src`` (what :func:`from_host` made of the host array ``dst``) back into ``dst``: it is ``dst`` here."""
