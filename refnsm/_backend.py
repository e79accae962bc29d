r"""Device dispatch: for a device, a family's kernel module and an array namespace.

This is the only module that knows which device runs.  A public function of a family is written once::

    K, xp = _backend.get("hopfield", device, X, W)   # validates `device`; on "cuda" checks a GPU is usable
    X = xp.asarray(X, "X", ndim=2)                   # validate and convert (host or device array)
    out = xp.empty(X.shape, X.dtype)                 # allocate where the kernels run
    K.retrieve_into(X, W, beta, ..., out)            # the same kernel names and arguments on both devices
    return xp.give_back(out)                         # a NumPy array, or a device array for device inputs

``K`` is ``refnsm.<family>._kernels`` (Numba CPU kernels) or ``refnsm.<family>._cuda_kernels`` (their
``numba.cuda`` twins, same names and arguments, imported only when ``device="cuda"`` is asked for).  ``xp`` is
:data:`HOST` (NumPy and :mod:`refnsm._checks`) or a :class:`refnsm.cuda._arrays.DeviceArrays`, with the same
methods:

==================  ====================================================================================
``empty, zeros``    allocate ``(shape, dtype)``
``asarray``         validate and convert an input: :func:`refnsm._checks.as_float_array`'s arguments and
                    messages (a device array is validated from its metadata and a device NaN/Inf count)
``as_real``         the same, and integer/boolean *device* arrays are cast to float64 instead of refused (labels)
``dtype_of``        the result float dtype of several inputs (:func:`refnsm._checks.result_float_dtype`)
``astype, copy``    a cast / a copy where the array lives
``add``             ``a + b`` (same shapes)
``matmul``          ``a @ b``; ``matmul_at``: ``a.T @ b``; ``matmul_bt``: ``a @ b.T`` (the device: fixed-order tiles)
``from_host``       a host array moved to where the kernels run (the identity on the CPU)
``to_host``         a NumPy array (a device array copied back; the identity on the CPU)
``give_back``       a result on the caller's side: NumPy for NumPy inputs, a device array if any input was one
``give_back_host``  the same for a result computed on the host (a NumPy array)
``is_native``       whether a value already lives where the kernels run
==================  ====================================================================================

Inputs are validated the same way on both devices (the validators of each family take ``xp``), so errors and
messages do not depend on the device.
"""

from __future__ import annotations

import importlib

import numpy as np

from . import _checks

__all__ = ["DEVICES", "check_device", "check_compat", "kernels", "arrays", "get", "HOST"]

#: the devices every ``device=`` argument accepts
DEVICES = ("cpu", "cuda")

FAMILIES = ("hopfield", "similarity", "spiking", "linear", "regularization")


def check_device(device) -> str:
    """``device`` checked against :data:`DEVICES`; the error lists the valid ones."""
    return _checks.check_option(device, "device", DEVICES)


def check_compat(compat, valid, name: str = "compat"):
    """``compat`` checked against ``valid`` (a tuple that contains ``None``, the default); the error lists them.

    Every family validates its ``compat=`` option here, so the message is the same everywhere.
    """
    if compat not in valid:
        raise ValueError(f"{name}: expected {' or '.join(repr(v) for v in valid)}, got {_checks._describe(compat)}")
    return compat


def _identity(a):
    return a


class _HostArrays:
    """The array namespace of ``device="cpu"``: NumPy and :mod:`refnsm._checks`."""

    name = "cpu"
    on_device = False
    empty = staticmethod(np.empty)
    zeros = staticmethod(np.zeros)
    asarray = staticmethod(_checks.as_float_array)
    as_real = staticmethod(_checks.as_float_array)
    dtype_of = staticmethod(_checks.result_float_dtype)
    from_host = staticmethod(_identity)
    to_host = staticmethod(_identity)
    give_back = staticmethod(_identity)
    give_back_host = staticmethod(_identity)
    add = staticmethod(np.add)

    @staticmethod
    def matmul(a, b):
        """``a @ b`` (``a`` may have leading batch dimensions)."""
        return a @ b

    @staticmethod
    def matmul_at(a, b):
        """``a.T @ b`` (2-D)."""
        return a.T @ b

    @staticmethod
    def matmul_bt(a, b):
        """``a @ b.T`` (``a`` may have leading batch dimensions)."""
        return a @ b.T

    @staticmethod
    def astype(a, dtype):
        # ``a`` itself when it has the dtype (what astype(copy=False) returns too, at a third of its fixed cost)
        return a if a.dtype == dtype else a.astype(dtype, copy=False)

    @staticmethod
    def copy(a):
        return a.copy()

    @staticmethod
    def is_native(a):
        return isinstance(a, np.ndarray)

    @staticmethod
    def shares(a, b):
        """Whether ``a`` may alias the caller's ``b`` (then a private copy is needed)."""
        return np.may_share_memory(a, b)


#: the CPU array namespace (a singleton: it holds no state)
HOST = _HostArrays()

_KERNELS: dict = {}
_CPU_KERNELS: dict = {}  # family -> its CPU kernel module: the hot path of every CPU call, one dict lookup


def kernels(family: str, device: str = "cpu", part: str = "kernels"):
    """The kernel module of ``family`` for ``device``: ``refnsm.<family>._kernels`` or ``._cuda_kernels``.

    ``part`` names another pair of device modules of the family, ``_<part>`` and ``_cuda_<part>`` (the similarity
    circuits' array operations are ``_ops`` and ``_cuda_ops``).  The CUDA module is imported only when asked for,
    after checking that kernels can run (``RuntimeError`` saying what to do otherwise).
    """
    key = (family, device, part)
    mod = _KERNELS.get(key)
    if mod is None:
        if family not in FAMILIES:
            raise ValueError(f"family: expected one of {', '.join(repr(f) for f in FAMILIES)}; got {family!r}")
        check_device(device)
        if device == "cuda":
            from .cuda import require

            require()
        name = f"_{part}" if device == "cpu" else f"_cuda_{part}"
        mod = _KERNELS[key] = importlib.import_module(f"refnsm.{family}.{name}")
    return mod


def arrays(device: str, *inputs, on_device=None):
    """The array namespace of ``device``.  For "cuda", results go back to the device when ``on_device`` is true or,
    when it is ``None``, if any of ``inputs`` is a device array (``None`` inputs are skipped).  Raises
    ``RuntimeError`` when "cuda" cannot run (no GPU, no simulator)."""
    if device == "cpu":
        return HOST
    check_device(device)
    from .cuda import require
    from .cuda._arrays import DeviceArrays

    require()
    if on_device is None:
        on_device = any(DeviceArrays.is_native(a) for a in inputs if a is not None)
    return DeviceArrays(on_device)


def get(family: str, device: str, *inputs):
    """``(kernel module, array namespace)`` for one call of a public function of ``family`` on ``device``.

    ``inputs`` are the call's array arguments (they decide where results go back to under "cuda").
    """
    if device == "cpu":
        mod = _CPU_KERNELS.get(family)
        if mod is None:
            mod = _CPU_KERNELS[family] = kernels(family, "cpu")
        return mod, HOST
    check_device(device)
    return kernels(family, device), arrays(device, *inputs)
