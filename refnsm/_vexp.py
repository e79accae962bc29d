r"""An exponential that Numba can vectorise: ``exp(x)`` for float64, within one unit in the last place.

``np.exp`` inside a Numba loop is a call to the C library's ``exp``, one element at a time: about 5 ns each on the
benchmark machine, the largest cost of a softmax row or of the TET loss's log-sum-exps.  :func:`exp` below is the
same function written as straight-line float64 arithmetic (no calls, no branches, no table), which LLVM compiles
to vector instructions when it sits in a loop: 1.8 ns per element on the same machine (4 lanes of AVX2).
The result does not depend on the machine (no fused multiply-add, no fast-math flags: every operation is one
IEEE-754 rounding, so any conforming CPU gives the same bits).

The method (Cody and Waite's argument reduction, then a polynomial):

1. :math:`k = \operatorname{round}(x / \ln 2)` (to nearest, by adding and subtracting :math:`1.5\cdot 2^{52}`) and
   :math:`r = x - k \ln 2`, so :math:`e^x = 2^k e^r` with :math:`|r| \le \frac12 \ln 2 + 2^{-40}`.  :math:`\ln 2`
   is split as ``LN2_HI + LN2_LO``: ``LN2_HI`` has 42 significant bits, so :math:`k \cdot` ``LN2_HI`` is exact for
   :math:`|k| < 2^{11}` and :math:`x - k\,`\ ``LN2_HI`` is exact (Sterbenz); the subtraction of :math:`k\,`\
   ``LN2_LO`` is rounded and its error ``rl`` kept (Fast2Sum), so :math:`r + r_l` is :math:`x - k\ln 2` to about
   :math:`2^{-100}`.
2. :math:`e^r = 1 + r + r^2 q(r)`, with :math:`q` the Taylor polynomial :math:`\sum_{i=2}^{13} r^{i-2}/i!`
   (truncation error :math:`\le |r|^{14}/14! \cdot e^{|r|} < 6\cdot10^{-18}`, 0.05 ulp), evaluated by Estrin's
   scheme (short dependency chains).  :math:`1 + r` is formed exactly as ``s + e`` (Fast2Sum), and the result is
   ``s + ((e + rl) + r^2 q)``: one final rounding, plus the rounding of the small correction
   (:math:`|r^2 q| < 0.07`).
3. :math:`2^k` is applied as two exact multiplications by :math:`2^{\lfloor k/2 \rfloor}` and
   :math:`2^{k - \lfloor k/2 \rfloor}`, built from their bit patterns, so results near overflow and in the
   subnormal range are right too (only the last multiplication can round, once).

Error: below 1 ulp everywhere (faithful rounding); measured 0.71 ulp at most over 2^21 random arguments in each of
five ranges against an extended-precision exponential (``tests/test_vexp.py`` checks < 1 ulp against mpmath on
every binade of the argument and at the edges).  The C library's ``exp`` is within 0.51 ulp, so about 2% of
results differ from it by one unit in the last place.  Special values: ``exp(nan) = nan``, ``exp(inf) = inf``,
``exp(-inf) = 0``, overflow to ``inf`` above 709.78, underflow to 0 below -745.13, as the C library does.

Used by the Hopfield softmax (``refnsm.hopfield._kernels.softmax_rows``) and the TET loss
(``refnsm.spiking._kernels.cross_entropy_steps``).  The function is inlined into those kernels, so Numba's on-disk
cache of a kernel does not notice an edit of this file: after changing it, delete the ``__pycache__`` folders
under ``refnsm/`` before measuring or testing.
"""

import math

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

LN2_HI = float.fromhex("0x1.62e42fefa3800p-1")  # ln 2 to 42 significant bits
LN2_LO = float.fromhex("0x1.ef35793c76730p-45")  # ln 2 - LN2_HI, rounded (tests/test_vexp.py checks both)
INV_LN2 = float.fromhex("0x1.71547652b82fep0")  # 1 / ln 2, rounded
_SHIFT = 1.5 * 2.0 ** 52  # adding and subtracting it rounds |y| < 2**51 to an integer, ties to even
_HI = 710.0  # exp(710) overflows; clamping there keeps k a small integer
_LO = -746.0  # exp(-746) rounds to 0
_C2, _C3, _C4, _C5, _C6, _C7, _C8, _C9, _C10, _C11, _C12, _C13 = (1.0 / math.factorial(i) for i in range(2, 14))


def _bitcast(src, dst, doc):
    """An intrinsic that reinterprets a ``src`` value as the ``dst`` value with the same bits (one LLVM ``bitcast``;
    vectorises)."""

    @intrinsic
    def cast(typingctx, v):
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(dst))

        return dst(src), codegen

    cast.__doc__ = doc
    return cast


_bits_as_float64 = _bitcast(types.int64, types.float64, "The float64 whose bit pattern is the int64 ``v``.")
_float64_bits = _bitcast(types.float64, types.int64, "The bit pattern of the float64 ``v``, as an int64.")


@intrinsic
def fdiv(typingctx, a, b):
    """``a / b`` for two floats of the same type (float32 or float64) as the plain IEEE division, one LLVM
    ``fdiv``: the same result as ``/`` wherever ``/`` returns.  Numba's ``/`` first tests ``b == 0`` to raise
    ``ZeroDivisionError`` as Python does, and that branch, taken per element, keeps a loop from vectorising (a
    logarithm's loop: 7.4 ns per element with it, 1.0 ns without).  For divisors that cannot be zero (``1 + e``
    with ``e >= 0``, a norm product plus a positive epsilon), or where IEEE's inf/nan is the wanted answer."""
    if not (isinstance(a, types.Float) and a == b):
        return None
    sig = a(a, b)

    def codegen(context, builder, signature, args):
        return builder.fdiv(args[0], args[1])

    return sig, codegen


@njit(cache=True, inline="always")
def exp(x):
    """``e**x`` for a float64 ``x``, within 1 ulp, in arithmetic a loop can vectorise (see the module docstring)."""
    x = _HI if x > _HI else x  # comparisons with NaN are false: NaN passes through both clamps
    x = _LO if x < _LO else x
    xk = x if x == x else 0.0  # a NaN must not reach the integer conversion below
    k = (xk * INV_LN2 + _SHIFT) - _SHIFT
    rh = x - k * LN2_HI  # exact
    t = k * LN2_LO
    r = rh - t
    rl = (rh - r) - t  # the rounding error of r (exact: |rh| >= |t| unless k = 0, where t = 0)
    r2 = r * r
    r4 = r2 * r2
    b0 = (_C2 + _C3 * r) + (_C4 + _C5 * r) * r2
    b1 = (_C6 + _C7 * r) + (_C8 + _C9 * r) * r2
    b2 = (_C10 + _C11 * r) + (_C12 + _C13 * r) * r2
    q = b0 + r4 * (b1 + r4 * b2)
    s = 1.0 + r
    e = (1.0 - s) + r  # 1 + r = s + e exactly (Fast2Sum, |r| < 1)
    p = s + ((e + rl) + r2 * q)
    ki = np.int64(k)
    k1 = ki >> 1
    return (p * _bits_as_float64((k1 + 1023) << 52)) * _bits_as_float64((ki - k1 + 1023) << 52)
