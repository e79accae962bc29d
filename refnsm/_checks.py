"""Argument validation shared by every family.

Every public entry point validates its arguments here *before* doing any work, so that a bad call raises
and changes nothing.  The messages follow one pattern: the argument's name, what was expected, and what
was received, e.g. ``ValueError: spikes: expected at least 2 dimensions [N, ...], got shape (5,)``.

Conversion rules (see the package docstring):

* float64 and float32 arrays are kept in their dtype (a copy is made only when the layout needs it);
* integer and boolean arrays are converted to float64;
* complex, object and string arrays raise ``TypeError``;
* NaN or Inf raise ``ValueError`` unless the caller opts out with ``finite=False``.
"""

from __future__ import annotations

import numbers
import operator
from typing import Iterable, Sequence

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}" if not isinstance(value, str) else repr(value)


def as_numpy(value, name: str) -> np.ndarray:
    """Read an array object (NumPy, torch, JAX, CuPy on host, ...) as a NumPy array without copying a graph.

    Objects are read through ``__array__`` (or the array interface), else through DLPack (``__dlpack__``).
    A tensor that requires grad is refused with a message naming the argument and the fix: refnsm computes
    gradients itself (the ``*_vjp`` functions), so a gradient graph would be dropped silently otherwise.
    """
    if isinstance(value, np.ndarray):
        return value
    if getattr(value, "requires_grad", False) is True:
        kind = f"{type(value).__module__.split('.')[0]}.{type(value).__name__}"
        raise TypeError(f"{name}: got a {kind} that requires grad; pass {name}.detach() (refnsm does not read "
                        "through an autograd graph: its *_vjp functions return the gradients)")
    readable = any(hasattr(value, a) for a in ("__array__", "__array_interface__", "__array_struct__"))
    try:
        if not readable and hasattr(value, "__dlpack__"):
            return np.from_dlpack(value)
        return np.asarray(value)
    except Exception as exc:  # e.g. a tensor in GPU memory
        raise TypeError(f"{name}: could not read {type(value).__name__} as a NumPy array ({type(exc).__name__}: "
                        f"{exc}); move it to host memory first (e.g. .cpu() or .get())") from None


def as_float_array(
    value,
    name: str,
    *,
    ndim: int | None = None,
    min_ndim: int | None = None,
    shape_hint: str = "",
    dtype=None,
    finite: bool = True,
    allow_empty: bool = True,
) -> np.ndarray:
    """Convert ``value`` to a C-contiguous float32/float64 array, validating rank and finiteness.

    Parameters
    ----------
    value : array_like
        The argument to convert.  Never modified.
    name : str
        The argument's name, used in error messages.
    ndim, min_ndim : int, optional
        Required rank, or minimum rank.
    shape_hint : str
        Human description of the expected layout, e.g. ``"[N, M, T]"``, quoted in rank errors.
    dtype : numpy dtype, optional
        Force this float dtype instead of keeping float32/float64 (e.g. the promoted dtype of several inputs).
    finite : bool
        Reject NaN and Inf (default).
    allow_empty : bool
        Accept arrays with a zero-length axis.
    """
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name}: expected a real numeric array, got {_describe(value)}")
    arr = as_numpy(value, name)
    kind = arr.dtype.kind
    if kind not in "biuf":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {arr.dtype}")
    if dtype is not None:
        target = np.dtype(dtype)
    elif arr.dtype in FLOAT_DTYPES:
        target = arr.dtype
    else:
        target = np.dtype(np.float64)
    if arr.dtype != target or not arr.flags.c_contiguous:  # what a training loop passes needs no conversion
        arr = np.asarray(arr, dtype=target, order="C")  # (np.ascontiguousarray would turn a 0-d array into 1-d)
    check_rank(arr, name, ndim=ndim, min_ndim=min_ndim, shape_hint=shape_hint)
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    if finite:
        check_finite(arr, name)
    return arr


def as_index_array(value, name: str, *, ndim: int | None = None, shape_hint: str = "") -> np.ndarray:
    """Convert integer class indices (targets) to a C-contiguous int64 array.

    Floating-point arrays are rejected even when their values are whole numbers: a float target is almost
    always a one-hot or probability target passed by mistake, and silently truncating it would hide that.
    """
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name}: expected an integer array of class indices, got {_describe(value)}")
    arr = as_numpy(value, name)
    if arr.dtype.kind not in "iu":
        raise TypeError(
            f"{name}: expected integer class indices, got dtype {arr.dtype}"
            + (" (one-hot or probability targets are not supported; pass argmax indices)" if arr.dtype.kind == "f" else "")
        )
    arr = np.asarray(arr, dtype=np.int64, order="C")
    check_rank(arr, name, ndim=ndim, shape_hint=shape_hint)
    return arr


def check_rank(arr: np.ndarray, name: str, *, ndim: int | None = None, min_ndim: int | None = None, shape_hint: str = ""):
    hint = f" {shape_hint}" if shape_hint else ""
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions{hint}, got shape {arr.shape}")
    if min_ndim is not None and arr.ndim < min_ndim:
        raise ValueError(f"{name}: expected at least {min_ndim} dimensions{hint}, got shape {arr.shape}")


_fast_all_finite = None  # refnsm._fastchecks.all_finite (Numba), loaded on the first check, not at `import refnsm`


def _all_finite(arr: np.ndarray) -> bool:
    global _fast_all_finite
    if arr.dtype in FLOAT_DTYPES and arr.flags.c_contiguous:
        if _fast_all_finite is None:
            from ._fastchecks import all_finite as _fast_all_finite
        return _fast_all_finite(arr.reshape(-1))
    return bool(np.isfinite(arr).all())


def check_finite(arr: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` naming the first non-finite element of ``arr``."""
    if arr.dtype.kind == "f" and arr.size and not _all_finite(arr):
        bad = np.argwhere(~np.isfinite(arr))[0]
        idx = tuple(int(i) for i in bad)
        raise ValueError(f"{name}: expected finite values, got {arr[idx]} at index {idx}")


def check_shape(arr: np.ndarray, name: str, expected: Sequence[int | None], what: str = "") -> None:
    """Check ``arr.shape`` against ``expected`` (``None`` entries match any length)."""
    ok = arr.ndim == len(expected) and all(e is None or e == s for e, s in zip(expected, arr.shape))
    if not ok:
        exp = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ("," if len(expected) == 1 else "") + ")"
        suffix = f" ({what})" if what else ""
        raise ValueError(f"{name}: expected shape {exp}{suffix}, got {arr.shape}")


def check_option(value, name: str, valid: Iterable[str]) -> str:
    """Check a string option against the valid choices; the error lists them."""
    valid = tuple(valid)
    if not isinstance(value, str) or value not in valid:
        raise ValueError(f"{name}: expected one of {', '.join(repr(v) for v in valid)}; got {_describe(value)}")
    return value


def check_real(value, name: str, *, positive: bool = False, nonnegative: bool = False, finite: bool = True) -> float:
    """Check a real scalar and return it as a Python float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
            value = value.item()
        else:
            raise TypeError(f"{name}: expected a real number, got {_describe(value)}")
    value = float(value)
    if finite and not np.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    if positive and not value > 0:
        raise ValueError(f"{name}: expected a positive number (> 0), got {value}")
    if nonnegative and not value >= 0:
        raise ValueError(f"{name}: expected a non-negative number (>= 0), got {value}")
    return value


def check_in_interval(value, name: str, low: float, high: float) -> float:
    """Check a real scalar in the closed interval [low, high]."""
    value = check_real(value, name)
    if not low <= value <= high:
        raise ValueError(f"{name}: expected a number in [{low}, {high}], got {value}")
    return value


def check_int(value, name: str, *, minimum: int | None = None) -> int:
    """Check an integer scalar (bools rejected) and return it as a Python int."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an integer, got {_describe(value)}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected an integer, got {_describe(value)}") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return value


def check_same_dim(a: np.ndarray, name_a: str, axis_a: int, b: np.ndarray, name_b: str, axis_b: int, what: str) -> None:
    """Check that two arrays agree along the given axes (e.g. the batch size)."""
    if a.shape[axis_a] != b.shape[axis_b]:
        raise ValueError(
            f"{name_b}: expected {what} {a.shape[axis_a]} to match {name_a} (shape {a.shape}), got shape {b.shape}"
        )


def _dtype_of(value) -> np.dtype:
    try:
        return as_numpy(value, "input").dtype
    except TypeError:  # unreadable: the argument's own conversion raises the error that names it
        return np.dtype(np.float64)


def result_float_dtype(*values) -> np.dtype:
    """The float dtype shared by several inputs: float32 only if every float input is float32."""
    dtypes = [_dtype_of(v) for v in values]
    if dtypes and all(d == np.float32 or d.kind in "biu" for d in dtypes) and any(d == np.float32 for d in dtypes):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def resolve_rng(rng) -> np.random.Generator:
    """``rng`` may be a Generator, an int seed or None (fresh entropy); there is no global RNG."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (numbers.Integral, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng: expected a numpy.random.Generator, an int seed or None, got {_describe(rng)}")


def scalar_grad_out(grad_out, name: str = "grad_out") -> float:
    """The upstream gradient of a scalar loss: None means 1.0; a 0-d or size-1 array is accepted."""
    if grad_out is None:
        return 1.0
    arr = as_numpy(grad_out, name)
    if arr.size != 1 or arr.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected a scalar (the loss is a scalar), got {_describe(grad_out)}")
    value = float(arr.reshape(()))
    if not np.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    return value
