"""Integer scans of float32 bit patterns: the smallest non-zero and the largest magnitude of an array, in loops
that vectorise and never touch a subnormal as a float (on the CPUs this project runs on, every vector operation
with a subnormal input takes a microcode assist).

Used by the lifted products of subnormal float32 operands, ``2**-k (A (2**k W))``: the Hopfield memories
(``refnsm.hopfield._kernels``) and the spiking losses' pull-back (``refnsm.spiking._kernels.dot_lifted``).
"""

import numpy as np
from numba import njit

from refnsm._specialise import float32_variant

BITS_MAG = 0x7FFFFFFF  # the magnitude bits (sign cleared)
BITS_MIN_NORMAL32 = 0x00800000  # 2**-126, float32's smallest normal
BITS_INF32 = 0x7F800000  # inf; a NaN's magnitude bits are larger


@njit(cache=True)
def _min_abs_bits32(W):
    """``min_abs_bits32`` of a float32 ``W``: a scan of integers (``(|bits| - 1) mod 2**31`` maps 0 to the largest
    value), so it vectorises and never touches a subnormal as a float."""
    bits = np.ascontiguousarray(W).ravel().view(np.int32)
    mag = np.int32(BITS_MAG)
    one = np.int32(1)
    lo = mag
    for i in range(bits.size):
        lo = min(lo, ((bits[i] & mag) - one) & mag)
    return np.int64(lo) + 1


@float32_variant(_min_abs_bits32)
@njit(cache=True)
def min_abs_bits32(W):
    """The smallest non-zero ``|w|`` of a float32 ``W`` as its bit pattern (0x7FFFFFFF + 1 when W is all zero), by
    ``_min_abs_bits32``.  Any other dtype gives 2**31, above every float32 pattern: no float32 subnormal, nothing to
    lift (and a float64 signature compiles no scan, see ``refnsm._specialise``)."""
    return np.int64(BITS_MAG) + 1


@njit(cache=True)
def max_abs_bits32(W):
    """The largest ``|w|`` of a float32 ``W`` as its bit pattern (sign cleared; 0 when empty): an integer maximum,
    which vectorises.  Magnitude patterns order as the values, Inf below every NaN."""
    bits = np.ascontiguousarray(W).ravel().view(np.int32)
    mag = np.int32(BITS_MAG)
    hi = np.int32(0)
    for i in range(bits.size):
        hi = max(hi, bits[i] & mag)
    return np.int64(hi)


@njit(cache=True, inline="always")
def abs_bits_value(a):
    """The float64 value of the finite float32 whose magnitude bits (sign cleared) are ``a``."""
    if a >= BITS_MIN_NORMAL32:
        return (1.0 + (a & 0x7FFFFF) * 2.0 ** -23) * 2.0 ** ((a >> 23) - 127)
    return a * 2.0 ** -149
