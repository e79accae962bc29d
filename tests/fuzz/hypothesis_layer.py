"""Hypothesis layer over the fuzz tables (fuzz_tables.py): random *valid-looking* calls for every spec.

For each spec, ``calls(spec)`` draws a full argument set from the spec's valid call:

* **shapes**: either the spec's own shapes, or every axis length ``d`` of the spec mapped consistently (the same
  new length for every axis that had length ``d``, so coupled axes stay coupled) to one of 0, 1, 2, d, d + 1;
  integer index arrays are resized with them.  A size the function does not accept must be refused cleanly;
* **dtype**: float32 or float64 for every float array argument together;
* **values** per array: the value set of a discrete argument (±1 states, 0-1 spikes, one-hot labels), normal,
  uniform [0, 1), the ±1 / 0-1 structure of spikes and patterns, small integers (ties), all zeros, a constant
  (every entry tied), scaled by 1, a tiny or a huge finite factor of the dtype (1e-300 / 1e300 for float64,
  1e-30 / 1e30 for float32); then, optionally, duplicated leading slices and zeroed entries.

``check(spec, values)`` asserts the contract of an accepted-or-refused call (``Violation`` otherwise):

* either a result with no NaN/Inf (for a VJP too: every input was finite) whose floating arrays have the input
  dtype (functions without a ``dtype`` argument; not methods of float64 objects) and, when the spec's shapes were
  kept, the shapes of the spec's valid call; or a ``ValueError``/``TypeError`` whose message names one of the
  arguments, or the documented ``NonFiniteResultError`` of the overflow policy (docs/reliability.md); never
  another exception;
* no caller array is written, and a refused call changes no state of the object.

A VJP that refuses an overflow (the gradient leaves the dtype's range, e.g. a huge cotangent times a huge input)
where its value is finite is counted apart ("VJP overflow refused where the value is finite"): allowed by the
overflow policy, reported by ``make fuzz``.

``PROFILES`` are the ``settings`` of the fast layer in ``make test`` (derandomized, a few examples per spec) and
of the longer sweep behind ``make fuzz`` (``REFNSM_HYPOTHESIS_PROFILE=fuzz``).
"""

from __future__ import annotations

import os
import re
import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzz_tables as F

_HC = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
PROFILES = {
    "fast": dict(derandomize=True, max_examples=30, deadline=None, database=None, suppress_health_check=_HC,
                 print_blob=False),
    "fuzz": dict(derandomize=True, max_examples=300, deadline=None, database=None, suppress_health_check=_HC,
                 print_blob=False),
}


def profile_name():
    name = os.environ.get("REFNSM_HYPOTHESIS_PROFILE", "fast")
    if name not in PROFILES:
        raise ValueError(f"REFNSM_HYPOTHESIS_PROFILE: expected one of {sorted(PROFILES)}, got {name!r}")
    return name


class Violation(AssertionError):
    """A call that broke the contract (the message says how)."""


def _float_arrays(spec):
    return [a for a in spec.args if a.kind in ("array", "anyarray") and isinstance(a.value, np.ndarray)
            and a.value.dtype.kind == "f"]


def _index_arrays(spec):
    return [a for a in spec.args if a.kind == "index" and isinstance(a.value, np.ndarray)]


_SCALES = {np.float64: (1.0, 1e-300, 1e300), np.float32: (1.0, 1e-30, 1e30)}


def _values(rng, shape, dtype, law, scale, dup, zero_frac, template):
    levels = np.unique(template)
    if law == "template":  # the value set of a discrete argument (±1 states, 0-1 spikes, one-hot labels)
        v = rng.choice(levels, size=shape) if levels.size <= 3 else rng.standard_normal(shape)
        scale, zero_frac = 1.0, (zero_frac if 0.0 in levels else 0.0)
    elif law == "normal":
        v = rng.standard_normal(shape)
    elif law == "uniform":
        v = rng.random(shape)
    elif law == "pm1":  # the ±1 / 0-1 structure of spikes and patterns
        v = np.where(rng.random(shape) > 0.5, 1.0, -1.0 if np.any(template < 0) else 0.0)
    elif law == "ties":
        v = rng.integers(-2, 3, size=shape).astype(float)
    elif law == "zeros":
        v = np.zeros(shape)
    else:  # constant: every entry tied
        v = np.full(shape, 0.5)
    v = v * scale
    if dup and v.ndim >= 1 and v.shape[0] >= 2:
        v[1] = v[0]
    if zero_frac and v.size:
        v[rng.random(shape) < zero_frac] = 0.0
    return v.astype(dtype)


@st.composite
def calls(draw, spec):
    """(values, dtype, resized) for one call of ``spec``."""
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    arrays = _float_arrays(spec)
    sizes = sorted({d for a in arrays + _index_arrays(spec) for d in a.value.shape})
    resized = bool(sizes) and draw(st.integers(0, 3)) == 0  # a quarter of the calls change the shapes
    mapping = {d: d for d in sizes}
    if resized:
        mapping = {d: draw(st.sampled_from(sorted({0, 1, 2, d, d + 1}))) for d in sizes}
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    values = {a.name: a.value for a in spec.args}
    for a in arrays:
        shape = tuple(mapping[d] for d in a.value.shape)
        law = draw(st.sampled_from(["template", "template", "normal", "uniform", "pm1", "ties", "zeros", "constant"]))
        scale = draw(st.sampled_from(_SCALES[dtype]))
        dup = draw(st.booleans())
        zero_frac = draw(st.sampled_from([0.0, 0.0, 0.5]))
        values[a.name] = _values(rng, shape, dtype, law, scale, dup, zero_frac, a.value)
    for a in _index_arrays(spec):
        shape = tuple(mapping[d] for d in a.value.shape)
        values[a.name] = np.resize(a.value, shape).astype(a.value.dtype)
    return values, dtype, resized


def _names_an_argument(spec, msg):
    for a in spec.args:
        if re.search(rf"(?<![\w.]){re.escape(a.name)}(?!\w)", msg):
            return True
    return False


def _arrays_in(value, path="result"):
    if isinstance(value, np.ndarray):
        yield path, value
    elif isinstance(value, (tuple, list)):
        for i, v in enumerate(value):
            yield from _arrays_in(v, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _arrays_in(v, f"{path}[{k!r}]")
    elif hasattr(value, "__dataclass_fields__"):
        for k in value.__dataclass_fields__:
            yield from _arrays_in(getattr(value, k), f"{path}.{k}")


_BASE_SHAPES = {}
_FORWARD = {}


def forward_of(spec):
    """The spec of the value a VJP spec differentiates (same argument names, less the cotangent), or None."""
    if "vjp" not in spec.label:
        return None
    if not _FORWARD:
        by_label = {sp.label: sp for sps in F.specs().values() for sp in sps}
        for sp in by_label.values():
            if "vjp" in sp.label:
                fwd = (by_label.get(sp.label.replace("_vjp", ""))
                       or by_label.get(sp.label.replace("vjp", "").rstrip("_")))
                ok = fwd is not None and fwd.make is None and {a.name for a in fwd.args} <= {a.name for a in sp.args}
                _FORWARD[sp.label] = fwd if ok else None
    return _FORWARD.get(spec.label)


def _base_shapes(spec):
    if spec.label not in _BASE_SHAPES:
        _, _, res, exc = F._call(spec, {a.name: a.value for a in spec.args})
        _BASE_SHAPES[spec.label] = None if exc is not None else [(p, v.shape) for p, v in _arrays_in(res)]
    return _BASE_SHAPES[spec.label]


def check(spec, values, dtype, resized):
    """The outcome of one call ("finite result", "clean error", "overflow refused"); raises Violation."""
    from refnsm._checks import NonFiniteResultError

    snap = F.snapshot_inputs(values, spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        obj, before, res, exc = F._call(spec, values)
    if not F.inputs_unchanged(snap, values):
        raise Violation(f"{spec.label}: a caller array was written")
    if exc is not None:
        if before is not None and not F._state_same(before, spec.state(obj)):
            raise Violation(f"{spec.label}: a refused call changed the object ({type(exc).__name__}: {exc})")
        if isinstance(exc, NonFiniteResultError):
            fwd = forward_of(spec)
            if fwd is not None:  # the VJP refused an overflow: was the value itself finite there?
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    _, _, fres, fexc = F._call(fwd, {a.name: values[a.name] for a in fwd.args})
                if fexc is None and not F._has_nonfinite(fres):
                    return "VJP overflow refused where the value is finite"
            return "overflow refused"
        if isinstance(exc, (ValueError, TypeError)):
            if not _names_an_argument(spec, str(exc)):
                raise Violation(f"{spec.label}: error names no argument: {type(exc).__name__}: {exc}")
            return "clean error"
        raise Violation(f"{spec.label}: {type(exc).__name__}: {exc}")
    if F._has_nonfinite(res):
        raise Violation(f"{spec.label}: NaN/Inf returned from finite input")
    if spec.make is None and _float_arrays(spec) and not any(a.kind == "dtype" for a in spec.args):
        for path, arr in _arrays_in(res):
            if arr.dtype.kind == "f" and arr.dtype != np.dtype(dtype):
                raise Violation(f"{spec.label}: {path} is {arr.dtype} for {np.dtype(dtype)} input")
    if not resized:
        base = _base_shapes(spec)
        got = [(p, v.shape) for p, v in _arrays_in(res)]
        if base is not None and got != base:
            raise Violation(f"{spec.label}: result shapes {got} differ from the valid call's {base}")
    return "finite result"


def make_test(spec, profile=None, outcomes=None):
    """A no-argument function running ``spec``'s examples under the profile (raises on the first violation,
    shrunk); ``outcomes`` (a Counter) counts the outcome of every example."""

    @settings(**PROFILES[profile or profile_name()])
    @given(call=calls(spec))
    def run(call):
        out = check(spec, *call)
        if outcomes is not None:
            outcomes[out] += 1

    return run
