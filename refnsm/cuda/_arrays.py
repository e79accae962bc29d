"""Host-side handling of device arrays shared by every family's CUDA module: validation, allocation, results.

A CUDA entry point accepts NumPy arrays (validated by the CPU's own ``refnsm._checks``, then copied over) or numba
device arrays (validated here from their metadata and a device NaN/Inf count, with the CPU's messages), and returns
results on the side its inputs came from.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from .. import _checks
from . import _primitives as prim
from . import is_device_array, require


def empty(shape, dtype):
    """An uninitialised device array."""
    return cuda.device_array(shape, dtype=dtype)


def dev_float(a, name, *, ndim=None, min_ndim=None, shape_hint="", dtype=None, allow_empty=True):
    """Validate a float device array as ``refnsm._checks.as_float_array`` validates a host one; cast to ``dtype``.

    dtype (float32/float64: integer device arrays are refused rather than converted), rank, emptiness and
    C-contiguity come from the metadata; NaN/Inf from a device count, the array being copied back only to name the
    first bad element.
    """
    if a.dtype not in _checks.FLOAT_DTYPES:
        raise TypeError(f"{name}: expected a float32 or float64 device array, got dtype {a.dtype}")
    _checks.check_rank(a, name, ndim=ndim, min_ndim=min_ndim, shape_hint=shape_hint)
    if not allow_empty and a.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {a.shape}")
    if not a.is_c_contiguous():
        raise ValueError(f"{name}: expected a C-contiguous device array, got strides {a.strides} for shape {a.shape}")
    if a.size and prim.count_nonfinite(a):
        _checks.check_finite(a.copy_to_host(), name)  # names the first bad index
    return prim.astype(a, dtype) if dtype is not None else a


def to_dev_real(a, name, **kw):
    """As :func:`to_dev`, and an integer or boolean device array is accepted and cast to float64 on the device (what
    ``_checks.as_float_array`` does to an integer host array); ``kw`` as for ``as_float_array``."""
    if is_device_array(a) and a.dtype.kind in "biu":
        _checks.check_rank(a, name, ndim=kw.get("ndim"), min_ndim=kw.get("min_ndim"), shape_hint=kw.get("shape_hint", ""))
        if not a.is_c_contiguous():
            raise ValueError(f"{name}: expected a C-contiguous device array, got strides {a.strides} for shape {a.shape}")
        return prim.astype(a, kw.get("dtype") or np.float64)
    return to_dev(a, name, **kw)


def to_dev(a, name, **kw):
    """A validated float device array from a host array-like (``_checks.as_float_array``, then copied over) or a
    device array (:func:`dev_float`); ``kw`` as for ``as_float_array``."""
    if is_device_array(a):
        return dev_float(a, name, **kw)
    return cuda.to_device(_checks.as_float_array(a, name, **kw))


def common_dtype(*arrays):
    """As ``_checks.result_float_dtype``, reading only the dtype of device arrays (no copy)."""
    proxies = [np.empty(0, dtype=a.dtype) if is_device_array(a) else a for a in arrays]
    return _checks.result_float_dtype(*proxies)


def any_device(*arrays):
    """True when any argument is a device array (``None`` entries are skipped); raises when kernels cannot run."""
    require()
    return any(is_device_array(a) for a in arrays if a is not None)


def out(a, on_device):
    """A result on the caller's side: the device array itself, or a host copy (``None`` passes through)."""
    if a is None:
        return None
    return a if on_device else a.copy_to_host()


def copy(a):
    """A device copy of a device array."""
    c = cuda.device_array(a.shape, dtype=a.dtype)
    c.copy_to_device(a)
    return c


def zeros(shape, dtype):
    """A zero-filled device array."""
    return cuda.to_device(np.zeros(shape, dtype))


class DeviceArrays:
    """The array namespace of ``device="cuda"`` (see :mod:`refnsm._backend`): the methods of ``_backend.HOST``
    on numba device arrays.  ``on_device`` says whether the call's results go back as device arrays."""

    name = "cuda"
    empty = staticmethod(empty)
    zeros = staticmethod(zeros)
    asarray = staticmethod(to_dev)
    as_real = staticmethod(to_dev_real)
    dtype_of = staticmethod(common_dtype)
    astype = staticmethod(prim.astype)
    copy = staticmethod(copy)
    add = staticmethod(prim.add)
    is_native = staticmethod(is_device_array)

    def __init__(self, on_device: bool):
        self.on_device = bool(on_device)

    @staticmethod
    def from_host(a):
        return cuda.to_device(np.ascontiguousarray(a))

    @staticmethod
    def matmul(a, b):
        """``a @ b`` by the tiled product (``a`` may have leading batch dimensions, folded into its rows)."""
        a2 = a.reshape(a.size // a.shape[a.ndim - 1], a.shape[a.ndim - 1]) if a.ndim != 2 else a
        out = prim.matmul_ab(a2, b)
        return out if a.ndim == 2 else out.reshape(*(tuple(a.shape)[:-1] + (b.shape[1],)))

    @staticmethod
    def matmul_at(a, b):
        """``a.T @ b`` (2-D) by the tiled product."""
        return prim.matmul_atb(a, b)

    @staticmethod
    def matmul_bt(a, b):
        """``a @ b.T`` by the tiled product (``a`` may have leading batch dimensions)."""
        a2 = a.reshape(a.size // a.shape[a.ndim - 1], a.shape[a.ndim - 1]) if a.ndim != 2 else a
        out = prim.matmul_abt(a2, b)
        return out if a.ndim == 2 else out.reshape(*(tuple(a.shape)[:-1] + (b.shape[0],)))

    @staticmethod
    def to_host(a):
        return a.copy_to_host() if is_device_array(a) else a

    @staticmethod
    def shares(a, b):
        """Whether the validated ``a`` is the caller's ``b`` itself (then a private copy is needed)."""
        return a is b

    def give_back(self, a):
        return out(a, self.on_device)

    def give_back_host(self, a):
        """A host-computed result on the caller's side (copied to the device only for device inputs)."""
        return cuda.to_device(a) if self.on_device and a is not None else a
