r"""A natural logarithm that Numba can vectorise: ``log(x)`` for float64, within one unit in the last place.

``np.log`` inside a Numba loop is a call to the C library's ``log``, one element at a time (about 3 ns each on the
benchmark machine).  :func:`log` below is the same function as straight-line float64 arithmetic (integer
operations on the bit pattern, one division, a polynomial, selects instead of branches), which LLVM compiles to
vector instructions when it sits in a loop.  As for :mod:`refnsm._vexp`, there is no fused multiply-add and no
fast-math flag: every operation is one IEEE-754 rounding, so every conforming CPU gives the same bits.

The method (the classical reduction to :math:`\log(1 + f)` by an odd series in :math:`s = f / (2 + f)`):

1. Write :math:`x = 2^e m` with :math:`m \in (\sqrt2/2, q]`, :math:`q` = ``float(sqrt(2))`` (one half-ulp above
   :math:`\sqrt2`), from the bit pattern: the biased exponent gives :math:`e`; the significand bits with the
   exponent of 1 give :math:`m \in [1, 2)`, and when those bits exceed :math:`q`'s the exponent of 1/2 is used
   instead (:math:`m/2`, :math:`e + 1`).  A subnormal :math:`x` is
   first multiplied by :math:`2^{54}` (exact) and :math:`e` lowered by 54.
2. :math:`f = m - 1` is exact (Sterbenz: :math:`m \in [1/2, 2]`), :math:`|f| \le q - 1`.
3. With :math:`s = f/(2 + f)` (:math:`|s| \le (q - 1)/(q + 1) < 0.1716`, :math:`z = s^2 < 0.0295`),
   :math:`\log(1 + f) = 2\,\mathrm{atanh}(s) = 2s + sR(z)`, :math:`R(z) = \sum_{i \ge 1} 2z^i/(2i+1)`, here the
   first ten terms (the rest is below :math:`1.3\cdot10^{-18}`, times :math:`|s|`: 0.005 ulp of the result).
   Since :math:`2s = f - sf` and :math:`sf = h(1 - s)` with :math:`h = f^2/2`, this is
   :math:`\log(1 + f) = f - (h - s(h + R))`: ``f`` is exact and the correction in parentheses is at most
   :math:`0.2|f|`, so its few roundings move the result by a small fraction of an ulp.
4. :math:`\log x = e\ln 2 + \log(1+f)` with :math:`\ln 2` split as ``LN2_HI + LN2_LO`` (``LN2_HI`` of
   :mod:`refnsm._vexp`, 42 significant bits, so :math:`e \cdot` ``LN2_HI`` is exact for every exponent) and
   ``LN2_LO`` added inside the correction: ``e*LN2_HI - ((h - (s*(h + R) + e*LN2_LO)) - f)``.

Error: below 1 ulp everywhere (faithful rounding), checked against mpmath on every binade from the smallest
subnormal to the largest float, next to 1 and at the reduction's boundary :math:`\sqrt2` (``tests/test_vlog.py``);
measured: 0.76 ulp at most, 0.25 on average, over 275,880 such arguments.  Special values as the C library:
``log(0) = -inf``, ``log(x < 0) = nan``, ``log(inf) = inf``, ``log(nan) = nan``.

Used by the TET loss's log-sum-exps (``refnsm.spiking._kernels._ce_steps_flat``).  The function is inlined into
its callers, so Numba's on-disk cache of a kernel does not notice an edit of this file: after changing it, delete
the ``__pycache__`` folders under ``refnsm/`` before measuring or testing.
"""

import numpy as np
from numba import njit

from refnsm._vexp import LN2_HI, LN2_LO, _bits_as_float64, _float64_bits, fdiv

_TINY = 2.0 ** -1022  # the smallest normal float64
_TWO54 = 2.0 ** 54
_MANT = (1 << 52) - 1  # the significand field
_SQRT2_MANT = 0x6A09E667F3BCD  # the significand field of float(sqrt(2)), just above sqrt(2) (tests/test_vlog.py)
_ONE_EXP = 1023 << 52  # the exponent field of 1.0
_HALF_EXP = 1022 << 52  # the exponent field of 0.5
#: the coefficients 2 / (2i + 1) of R(z), i = 1 .. 10
_R1, _R2, _R3, _R4, _R5, _R6, _R7, _R8, _R9, _R10 = (2.0 / (2 * i + 1) for i in range(1, 11))
_INF = float("inf")
_NAN = float("nan")


@njit(cache=True, inline="always")
def log(x):
    """``ln(x)`` for a float64 ``x``, within 1 ulp, in arithmetic a loop can vectorise (see the module docstring)."""
    sub = x < _TINY  # subnormal (or zero, negative, -inf: those are replaced at the end)
    xs = x * _TWO54 if sub else x
    bits = _float64_bits(xs)
    mant = bits & _MANT
    up = mant > _SQRT2_MANT  # m > sqrt(2): use m / 2
    e = ((bits >> 52) & 0x7FF) - (1022 if up else 1023) - (54 if sub else 0)
    m = _bits_as_float64(mant | (_HALF_EXP if up else _ONE_EXP))
    f = m - 1.0  # exact
    s = fdiv(f, 2.0 + f)  # Numba's / would test for 0 and keep the loop scalar; here 2 + f >= 1.5 (m in [1/2, 2))
    z = s * s
    z2 = z * z
    z4 = z2 * z2
    a0 = (_R1 + _R2 * z) + (_R3 + _R4 * z) * z2
    a1 = (_R5 + _R6 * z) + (_R7 + _R8 * z) * z2
    a2 = _R9 + _R10 * z
    R = z * (a0 + z4 * (a1 + z4 * a2))
    h = 0.5 * f * f
    k = np.float64(e)
    r = k * LN2_HI - ((h - (s * (h + R) + k * LN2_LO)) - f)
    r = _INF if x == _INF else r
    r = -_INF if x == 0.0 else r
    r = _NAN if x < 0.0 else r
    return x if x != x else r
