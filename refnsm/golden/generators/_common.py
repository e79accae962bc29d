"""Helpers shared by the case generators.

Machine independence of the inputs.  The shipped inputs are compared bitwise with a fresh generation
(``tests/golden/test_store.py``), so every input must come from operations whose result is the same on every machine:
draws of integers from a seeded :class:`numpy.random.Generator` (exact integer arithmetic), scaled by powers of two,
and exact dyadic arithmetic (sums and products that fit in the mantissa, checked by :func:`exact`).  No BLAS product
(its summation order and FMA use depend on the CPU and OpenBLAS's kernel), no ``exp``/``log``/``sqrt``/``sin`` (libm
and NumPy's SIMD versions differ across CPUs), no ``Generator.normal`` (its ziggurat calls ``exp``/``log``), no
division that is not by a power of two.  :func:`normal` and :func:`uniform` below return numbers that are exactly
float32 numbers; :func:`exact_matmul` multiplies such matrices in integers.  ``tests/golden/test_generators_exact.py``
lints the generators for the forbidden operations and regenerates the inputs under other SIMD and BLAS kernels.
Metadata (a declared term scale) may use any arithmetic: it is not compared bitwise.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from .._case import Case, call, f32exact, inp

__all__ = ["Case", "call", "f32exact", "inp", "rng", "pair", "value_case", "binary", "normal", "uniform",
           "exact", "exact_matmul", "composition"]

#: the grid of :func:`normal` and :func:`uniform`: multiples of 2**-GRID_BITS
GRID_BITS = 19


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def binary(gen, shape, p=0.5) -> np.ndarray:
    return (gen.random(shape) < p).astype(np.float64)


def _dyadic_scale(scale) -> tuple:
    """``scale = num / 2**k`` with ``|num| <= 7`` (so that a 21-bit integer times it stays a float32 number)."""
    f = Fraction(scale)
    if f.denominator & (f.denominator - 1) or abs(f.numerator) > 7:
        raise ValueError(f"scale must be a small dyadic number (num/2^k, |num| <= 7), got {scale!r}")
    return f


def normal(gen, shape, scale=1.0) -> np.ndarray:
    """Roughly N(0, scale^2), exactly reproducible: ``scale * (sum of three integers uniform in [-2^19, 2^19]) / 2^19``.

    (Irwin-Hall: the sum of three uniforms on [-1, 1] has variance 1 and support [-3, 3].)  Integer draws and a
    scaling by a small dyadic number are exact, so the result (a float32 number, held in float64) is the same on every
    machine, which ``Generator.normal`` (ziggurat with ``exp``/``log``) does not promise.
    """
    f = _dyadic_scale(scale)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    k = gen.integers(-(1 << GRID_BITS), (1 << GRID_BITS) + 1, size=(3,) + shape, dtype=np.int64).sum(axis=0)
    out = (k * f.numerator).astype(np.float64) * (2.0 ** -GRID_BITS / f.denominator)
    return exact(out)


def uniform(gen, shape, low=0.0, high=1.0) -> np.ndarray:
    """Uniform on the grid ``2^-19 Z`` inside ``[low, high]`` (``low``, ``high`` dyadic): exact, float32 numbers."""
    s = 1 << GRID_BITS
    lo, hi = Fraction(low) * s, Fraction(high) * s
    if lo.denominator != 1 or hi.denominator != 1:
        raise ValueError(f"low and high must be multiples of 2^-{GRID_BITS}, got {low!r}, {high!r}")
    k = gen.integers(int(lo), int(hi) + 1, size=shape, dtype=np.int64)
    return exact(k.astype(np.float64) * 2.0 ** -GRID_BITS)


def exact(a) -> np.ndarray:
    """``a`` as float64, checked to be exactly a float32 number (the generators' arithmetic must stay exact)."""
    a = np.asarray(a, dtype=np.float64)
    if not np.array_equal(a.astype(np.float32).astype(np.float64), a):
        raise ValueError("a generated input is not exactly a float32 number: an inexact operation built it")
    return a


def _as_int(a, bits: int) -> np.ndarray:
    k = np.asarray(a, dtype=np.float64) * 2.0 ** bits
    if not np.array_equal(k, np.round(k)) or np.max(np.abs(k), initial=0.0) >= 2.0 ** 31:
        raise ValueError(f"exact_matmul: an operand is not on the grid 2^-{bits} (or too large)")
    return k.astype(np.int64)


def exact_matmul(a, b, bits_a: int = GRID_BITS + 3, bits_b: int = GRID_BITS + 3) -> np.ndarray:
    """``a @ b`` computed exactly in int64 (no BLAS), for operands on the grids ``2^-bits_a`` and ``2^-bits_b``.

    The float64 result is exact (checked below 2^53); round it with ``f32exact`` (a correctly rounded conversion)
    when it feeds a float32 case.
    """
    ia, ib = _as_int(a, bits_a), _as_int(b, bits_b)
    p = np.matmul(ia, ib)  # integer matmul: NumPy's own loop, exact (bounded below 2^62 by the checks)
    if np.max(np.abs(p), initial=0) >= 2 ** 53:
        raise ValueError("exact_matmul: the product does not fit in a float64 mantissa")
    return p.astype(np.float64) * 2.0 ** -(bits_a + bits_b)


def composition(gen, rows: int, cols: int, bits: int = 10) -> np.ndarray:
    """A ``rows x cols`` matrix of non-negative dyadic entries (multiples of 2^-bits) whose rows sum exactly to 1
    (random cut points of [0, 2^bits]): a softmax-like probability matrix built without ``exp``."""
    n = 1 << bits
    cuts = np.sort(gen.integers(0, n + 1, size=(rows, cols - 1), dtype=np.int64), axis=1)
    k = np.diff(np.concatenate([np.zeros((rows, 1), np.int64), cuts, np.full((rows, 1), n, np.int64)], axis=1),
                axis=1)
    return exact(k.astype(np.float64) * 2.0 ** -bits)


def value_case(family, fn, variant, inputs, args, kwargs=None, *, fields=None, **meta) -> Case:
    """``family.fn.variant``: one call, saving the result (or the named fields of a result object)."""
    save = {"value": []} if fields is None else {f: [f] for f in fields}
    return Case(f"{family}.{fn}.{variant}", [call(fn, *args, save=save, **(kwargs or {}))], inputs, **meta)


def pair(family, fn, variant, inputs, args, kwargs=None, *, grads, cot=None, fields=None, cot_name="grad_out",
         value=True, **meta) -> list:
    """The value case ``family.fn.variant`` and the VJP case ``family.fn_vjp.variant``.

    ``grads`` names the returned gradients in order (one name: the VJP returns an array; several: a tuple).
    ``cot`` is the cotangent array (None: a scalar loss, grad_out = None means 1).
    """
    out = []
    if value:
        out.append(value_case(family, fn, variant, inputs, args, kwargs, fields=fields, **meta))
    vin = dict(inputs)
    if cot is None:
        g = None
    elif isinstance(cot, (int, float)):
        g = float(cot)
    else:
        vin[cot_name] = exact(cot)
        g = inp(cot_name)
    save = {f"d_{grads[0]}": []} if len(grads) == 1 else {f"d_{n}": [i] for i, n in enumerate(grads)}
    out.append(Case(f"{family}.{fn}_vjp.{variant}", [call(f"{fn}_vjp", g, *args, save=save, **(kwargs or {}))], vin,
                    **meta))
    return out
