r"""Device plumbing of the optional GPU path: availability, transfers, the device array namespace, fixed-order
reductions and tiled products.  Imported only when ``device="cuda"`` is asked for.

The kernels themselves live beside their CPU twins, one ``_cuda_kernels.py`` per family
(``refnsm/hopfield/_cuda_kernels.py`` beside ``refnsm/hopfield/_kernels.py``, and so on), and the public functions
of each family run the same code on both devices with the kernel module and array namespace that
:mod:`refnsm._backend` returns.  This package holds only what every family shares:

==============================  ===================================================================
``refnsm.cuda``                 :func:`is_available`, :func:`require`, :func:`to_device`, :func:`to_host`, ...
``refnsm.cuda._arrays``         device validation and allocation; ``DeviceArrays``, the array namespace
``refnsm.cuda._primitives``     deterministic building blocks: tiled matmul, row norms, reductions
==============================  ===================================================================

Importing ``refnsm.cuda`` imports ``numba.cuda``; whether that finds a real GPU or the simulator is decided by the
environment **before** ``numba.cuda`` is first imported:

* a machine with an NVIDIA GPU and driver: the kernels run on the hardware (``pip install refnsm[cuda]`` installs
  ``numba-cuda``, the maintained CUDA target; numba's built-in ``numba.cuda`` also works);
* ``NUMBA_ENABLE_CUDASIM=1``: numba's CUDA simulator runs every thread in Python (slow: for tests on tiny arrays);
* neither: :func:`is_available` is ``False`` and every launch raises ``RuntimeError`` saying so.

Determinism: no kernel uses atomics.  Every output element is written by one thread that sums in a fixed
sequential order, and scalar reductions run in one block of a fixed size with a fixed tree, so two runs on the
same device give bitwise-identical results (see ``docs/cuda.md``).
"""

from __future__ import annotations

import numpy as np

try:  # numba-cuda (the `cuda` extra) or numba's built-in numba.cuda
    from numba import cuda as _cuda
    from numba.core import config as _numba_config
except Exception as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "refnsm.cuda needs numba.cuda, which failed to import "
        f"({type(exc).__name__}: {exc}). Install the CUDA target with `pip install refnsm[cuda]` (numba-cuda), or set "
        "NUMBA_ENABLE_CUDASIM=1 before Python starts to use numba's CUDA simulator."
    ) from exc

__all__ = ["is_available", "using_simulator", "require", "is_device_array", "to_device", "to_host", "status"]


def using_simulator() -> bool:
    """True when numba runs CUDA kernels in its Python simulator (``NUMBA_ENABLE_CUDASIM=1`` at import time)."""
    return bool(_numba_config.ENABLE_CUDASIM)


def is_available() -> bool:
    """True when kernels can be launched: a usable GPU, or the simulator."""
    if using_simulator():
        return True
    try:
        return bool(_cuda.is_available())
    except Exception:  # a broken driver install must not make the question raise
        return False


def status() -> str:
    """One line: 'simulator', 'GPU: <name>' or 'unavailable'."""
    if using_simulator():
        return "simulator (NUMBA_ENABLE_CUDASIM=1)"
    if is_available():
        dev = _cuda.get_current_device()
        name = dev.name.decode() if isinstance(dev.name, bytes) else dev.name
        return f"GPU: {name}"
    return "unavailable"


def require() -> None:
    """Raise ``RuntimeError`` with the way out when there is neither a GPU nor the simulator."""
    if not is_available():
        raise RuntimeError(
            "refnsm.cuda: no CUDA GPU is usable (numba.cuda finds no driver or device) and the CUDA simulator is off. "
            "Run on a machine with an NVIDIA GPU (pip install refnsm[cuda]), use the CPU path (the default, "
            "device='cpu'), or set NUMBA_ENABLE_CUDASIM=1 before starting Python to run the kernels in numba's "
            "simulator (slow; for testing)."
        )


def is_device_array(a) -> bool:
    """True for a numba CUDA device array (or the simulator's stand-in for one)."""
    try:
        from numba.cuda.cudadrv.devicearray import is_cuda_ndarray
    except Exception:  # pragma: no cover
        return False
    return bool(is_cuda_ndarray(a))


def to_device(a):
    """Copy a NumPy array to the device as a C-contiguous array; a device array is returned unchanged."""
    require()
    if is_device_array(a):
        return a
    return _cuda.to_device(np.ascontiguousarray(a))


def to_host(a):
    """Copy a device array back to a NumPy array; a NumPy array (or array-like) is returned as an ndarray."""
    if is_device_array(a):
        return a.copy_to_host()
    return np.asarray(a)
