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

import math
import numbers
import operator
from typing import Iterable, Sequence

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_INT64 = np.dtype(np.int64)


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
    if (type(value) is np.ndarray and value.dtype in _FLOAT_DTYPE_SET and value.flags.c_contiguous
            and (dtype is None or value.dtype == dtype)):
        arr = value  # what a training loop passes: no conversion, only the rank, size and finiteness checks
        nd = arr.ndim
        if (ndim is None or nd == ndim) and (min_ndim is None or nd >= min_ndim) and (allow_empty or arr.size):
            if not finite or not arr.size or _finite_c(arr):
                return arr
        # a check fails: the general checks below raise the error that names it
    else:
        arr = _converted_float_array(value, name, dtype)
    check_rank(arr, name, ndim=ndim, min_ndim=min_ndim, shape_hint=shape_hint)
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    if finite:
        check_finite(arr, name)
    return arr


def _converted_float_array(value, name, dtype):
    """``value`` as a C-contiguous float32/float64 array (``dtype``, or its own float dtype, else float64)."""
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
    if arr.dtype != target or not arr.flags.c_contiguous:
        arr = np.asarray(arr, dtype=target, order="C")  # (np.ascontiguousarray would turn a 0-d array into 1-d)
    return arr


def as_index_array(value, name: str, *, ndim: int | None = None, shape_hint: str = "") -> np.ndarray:
    """Convert integer class indices (targets) to a C-contiguous int64 array.

    Floating-point arrays are rejected even when their values are whole numbers: a float target is almost
    always a one-hot or probability target passed by mistake, and silently truncating it would hide that.
    """
    if type(value) is np.ndarray and value.dtype == _INT64 and value.flags.c_contiguous:
        check_rank(value, name, ndim=ndim, shape_hint=shape_hint)  # no conversion needed
        return value
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name}: expected an integer array of class indices, got {_describe(value)}")
    arr = as_numpy(value, name)
    if arr.dtype.kind not in "iu":
        raise TypeError(
            f"{name}: expected integer class indices, got dtype {arr.dtype}"
            + (" (one-hot or probability targets are not supported; pass argmax indices)" if arr.dtype.kind == "f" else "")
        )
    if arr.dtype.kind == "u" and arr.dtype.itemsize >= 8 and arr.size and arr.max() > np.iinfo(np.int64).max:
        # the int64 conversion would wrap 2**64 - 100 onto -100 (an ignore_index), silently dropping the target
        idx = tuple(int(i) for i in np.argwhere(arr > np.iinfo(np.int64).max)[0])
        raise ValueError(
            f"{name}: expected class indices that fit in int64 (<= {np.iinfo(np.int64).max}), got {int(arr[idx])} "
            f"at index {idx}"
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


_FLOAT_DTYPE_SET = frozenset(FLOAT_DTYPES)  # a set lookup: ``dtype in tuple`` compares dtypes one by one


def _finite_c(arr: np.ndarray) -> bool:
    """Whether a C-contiguous float32/float64 array holds no NaN/Inf: one compiled pass."""
    global _fast_all_finite
    if _fast_all_finite is None:
        from ._fastchecks import all_finite as _fast_all_finite
    return _fast_all_finite(arr.ravel())  # a view of a C-contiguous array


def _all_finite(arr: np.ndarray) -> bool:
    if arr.dtype in _FLOAT_DTYPE_SET and arr.flags.c_contiguous:
        return _finite_c(arr)
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
    t = type(value)
    if t is float or t is int:  # the common case, without the abstract-class tests below
        pass
    elif isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
            value = value.item()
        else:
            raise TypeError(f"{name}: expected a real number, got {_describe(value)}")
    value = float(value)
    if finite and not math.isfinite(value):  # a Python float: math's test, not a NumPy ufunc call
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


INT64_MIN, INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)


def check_int(value, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Check an integer scalar (bools rejected) and return it as a Python int.

    Every integer option reaches a kernel as an int64, so values outside the int64 range are refused here (with
    the argument's name) rather than by a Numba typing error; ``maximum`` tightens the upper bound."""
    if (type(value) is int and INT64_MIN <= value <= INT64_MAX and (minimum is None or value >= minimum)
            and (maximum is None or value <= maximum)):
        return value  # a plain int that passes every test below (bool is a subclass, not this type)
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an integer, got {_describe(value)}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected an integer, got {_describe(value)}") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    high = INT64_MAX if maximum is None else min(maximum, INT64_MAX)
    if value > high or value < INT64_MIN:
        low = INT64_MIN if minimum is None else minimum
        raise ValueError(f"{name}: expected an integer in [{low}, {high}], got {value}")
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


def resolve_rng(rng, name: str = "rng") -> np.random.Generator:
    """``rng`` may be a Generator, a non-negative int seed or None (fresh entropy); there is no global RNG.

    A Generator is returned as is (not advanced), so calling this first validates ``rng`` without side effects."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a numpy.random.Generator, an int seed or None, got {_describe(rng)}")
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (numbers.Integral, np.integer)):
        if int(rng) < 0:
            raise ValueError(f"{name}: expected a non-negative int seed (or a Generator, or None), got {int(rng)}")
        return np.random.default_rng(int(rng))
    raise TypeError(f"{name}: expected a numpy.random.Generator, an int seed or None, got {_describe(rng)}")


def check_bool(value, name: str) -> bool:
    """A flag must be a bool (or numpy bool): ``"no"`` or ``0`` would be accepted by truthiness and mean the
    opposite of what a reader sees."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool (True or False), got {_describe(value)}")
    return bool(value)


def check_float_dtype(dtype, name: str = "dtype") -> np.dtype:
    """A dtype argument: float32 or float64 (anything numpy accepts for them, e.g. ``"float32"``)."""
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected float32 or float64, got {_describe(dtype)}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected float32 or float64, got {dt}")
    return dt


def scalar_grad_out(grad_out, name: str = "grad_out") -> float:
    """The upstream gradient of a scalar loss: None means 1.0; a 0-d or size-1 array is accepted."""
    if grad_out is None:
        return 1.0
    if isinstance(grad_out, (str, bytes)):
        raise TypeError(f"{name}: expected a real scalar (the loss is a scalar), got {_describe(grad_out)}")
    arr = as_numpy(grad_out, name)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a real scalar (the loss is a scalar), got {_describe(grad_out)}")
    if arr.size != 1:
        raise ValueError(f"{name}: expected a scalar (the loss is a scalar), got {_describe(grad_out)}")
    value = float(arr.reshape(()))
    if not np.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    return value


# --------------------------------------------------------------------------------------------- overflow policy
class NonFiniteResultError(ValueError, FloatingPointError):
    """A result that is Inf or NaN although every input was finite: an intermediate overflowed the working
    precision.  A ``ValueError`` (the input is outside what the function can compute) and a ``FloatingPointError``."""


def _first_nonfinite(value, path="result"):
    """(path, bad value) of the first non-finite float in a result (arrays, floats, tuples, lists, dicts,
    dataclasses); None when everything is finite.  Objects it does not know (device arrays, models) are skipped.

    This runs after every guarded call, so the common results are tested first, by exact type, and the path of an
    element is only spelled out once one is found (:func:`_nonfinite_at`)."""
    return None if _finite_tree(value) else _nonfinite_at(value, path)


def _finite_leaf(value):
    """True / False for a leaf (array, float); None for a container or an unknown object."""
    t = type(value)
    if t is np.ndarray or isinstance(value, np.ndarray):
        k = value.dtype.kind
        if k == "f":
            return not value.size or _all_finite(value)
        if k == "c":
            return not value.size or _all_finite(np.abs(value))
        return True
    if t is float or t is np.float64 or t is np.float32 or isinstance(value, (float, np.floating)):
        return math.isfinite(value)
    if t is int or t is bool or value is None or t is str:
        return True
    return None


def _finite_tree(value) -> bool:
    t = type(value)
    if t is tuple:  # (value, gradients): the most common guarded result, tested first
        items = value
    elif t is dict:
        items = value.values()
    else:
        leaf = _finite_leaf(value)
        if leaf is not None:
            return leaf
        if isinstance(value, (tuple, list)):
            items = value
        elif isinstance(value, dict):
            items = value.values()
        elif hasattr(value, "__dataclass_fields__"):
            items = [getattr(value, k) for k in value.__dataclass_fields__]
        else:
            return True
    for v in items:  # a loop, not all(<generator>): a generator costs more than the check of a small tuple
        leaf = _finite_leaf(v)
        if not (leaf if leaf is not None else _finite_tree(v)):
            return False
    return True


def _nonfinite_at(value, path):
    """The slow path of :func:`_first_nonfinite`: where the first non-finite element is, and its value."""
    leaf = _finite_leaf(value)
    if leaf is not None:
        if leaf:
            return None
        if isinstance(value, np.ndarray):
            idx = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
            return f"{path}{list(idx) if idx else ''}", value[idx]
        return path, value
    if isinstance(value, (tuple, list)):
        fields = getattr(value, "_fields", None)
        items = ((f"{path}.{fields[i]}" if fields else f"{path}[{i}]", v) for i, v in enumerate(value))
    elif isinstance(value, dict):
        items = ((f"{path}[{k!r}]", v) for k, v in value.items())
    elif hasattr(value, "__dataclass_fields__"):
        items = ((f"{path}.{k}", getattr(value, k)) for k in value.__dataclass_fields__)
    else:
        return None
    for p, v in items:
        bad = _nonfinite_at(v, p)
        if bad is not None:
            return bad
    return None


def _largest_input(args, kwargs) -> str:
    mags = []
    for a in list(args) + list(kwargs.values()):
        try:
            arr = np.asarray(a)
        except Exception:  # noqa: BLE001 - only describing the failure
            continue
        if arr.dtype.kind in "biuf" and arr.size:
            with np.errstate(all="ignore"):
                mags.append(float(np.max(np.abs(arr))))
    return f"{max(mags):.3g}" if mags else "n/a"


def finite_result(fn):
    """Decorator: the overflow policy of a function whose result is not scale-invariant.

    When every input passed the finiteness checks but the result holds an Inf or NaN (an intermediate overflowed
    the working precision, e.g. a Gram matrix of entries of size 1e300), raise :class:`NonFiniteResultError`
    naming the function, the first non-finite entry and the largest input magnitude, instead of returning it."""
    import functools

    name = getattr(fn, "__qualname__", getattr(fn, "__name__", "function"))

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            out = fn(*args, **kwargs)
        except RuntimeWarning as w:  # numpy's overflow warning, raised because warnings are errors (e.g. in tests)
            if str(w).startswith("invalid value encountered in matmul"):
                # some OpenBLAS kernels raise the invalid flag on finite operands (docs/reliability.md): say so
                raise NonFiniteResultError(
                    f"{name}: NumPy reported {w!s} (largest input magnitude {_largest_input(args, kwargs)}) and "
                    "warnings are errors: either an intermediate overflowed (rescale the inputs) or the BLAS raised "
                    "the invalid flag on finite operands, which some OpenBLAS kernels do; run without turning this "
                    "warning into an error to get the result, which the result check still guards"
                ) from w
            raise NonFiniteResultError(
                f"{name}: an intermediate overflowed the working precision ({w}; largest input magnitude "
                f"{_largest_input(args, kwargs)}); rescale the inputs"
            ) from w
        bad = _first_nonfinite(out)
        if bad is not None:
            where, v = bad
            raise NonFiniteResultError(
                f"{name}: {where} = {v} although every input was finite: an intermediate overflowed the working "
                f"precision (largest input magnitude {_largest_input(args, kwargs)}); rescale the inputs"
            )
        return out

    wrapper.__wrapped_finite__ = True
    return wrapper


def _finite_result_array(a) -> bool:
    """Whether a real result array holds no NaN/Inf (False for a complex one: the full policy reads those)."""
    k = a.dtype.kind
    if k != "f":
        return k != "c"
    if not a.size:
        return True
    return _all_finite(a)


#: the results :func:`finite_result` reads (it skips other objects, e.g. device arrays)
_POLICY_READS = (np.ndarray, float, np.floating, complex, np.complexfloating, tuple, list, dict)


def _replayed_policy(fn, out=None, warning=None):
    """:func:`finite_result` applied to a call of ``fn`` that already ran: it returned ``out`` or raised ``warning``.

    Replaying the outcome (instead of running the call again) keeps the error and its message exactly the shared
    policy's without repeating a call's side effects (L0Linear draws noise per call)."""
    import functools

    def replay(*args, **kwargs):
        if warning is not None:
            raise warning
        return out

    return finite_result(functools.update_wrapper(replay, fn))


def finite_result_verified(fn):
    """:func:`finite_result` for hot functions, with a cheaper test of the common result.

    ``fn`` returns ``(result, verified)``; ``verified`` is True when a kernel already tested every element of the
    result in the pass that wrote it.  Otherwise a result that is an array, or a tuple or dict of arrays, is tested
    here with one compiled pass per array.  When a test fails, or the call raised a ``RuntimeWarning`` (NumPy's
    overflow warning under ``-W error``), or the result is of another kind that the policy reads, the outcome goes
    through :func:`finite_result` itself, so the error (:class:`NonFiniteResultError`) and its message are exactly
    the shared policy's."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            out, verified = fn(*args, **kwargs)
        except RuntimeWarning as w:
            return _replayed_policy(fn, warning=w)(*args, **kwargs)
        if verified:
            return out
        t = type(out)
        if t is np.ndarray:
            if _finite_result_array(out):
                return out
        elif t is dict or t is tuple:
            for v in (out.values() if t is dict else out):
                if type(v) is not np.ndarray or not _finite_result_array(v):
                    break
            else:
                return out
        elif not isinstance(out, _POLICY_READS) and not hasattr(out, "__dataclass_fields__"):
            return out  # an object the policy skips as well (a device array: its result stays on the device)
        return _replayed_policy(fn, out=out)(*args, **kwargs)  # a failure, or a kind the fast test does not read

    wrapper.__wrapped_finite__ = True
    return wrapper
