"""``refnsm._specialise.float32_variant``: the choice by dtype, from compiled code and from Python, and the point of
it: a signature's machine code holds the selected function only (the first call with an empty cache compiles less,
see ``benchmarks/bench_cold_start.py``)."""

import numpy as np
import pytest
from numba import njit

from refnsm._specialise import float32_variant


def _pair():
    @njit
    def narrow_impl(a, b):
        return a.size + 32 * b

    @float32_variant(narrow_impl)
    @njit
    def wide_impl(a, b):
        """the wide one"""
        return a.size + 64 * b

    @njit
    def caller(a, b):
        return wide_impl(a, b) + 1

    return wide_impl, caller


@pytest.mark.parametrize("dtype, per", [(np.float32, 32), (np.float64, 64), (np.int32, 64), (np.complex64, 64)])
def test_float32_variant_selects_by_dtype(dtype, per):
    # int32 has float32's width: the choice is by dtype, not by itemsize
    pick, caller = _pair()
    a = np.zeros((2, 3), dtype)
    assert caller(a, 2) == 6 + 2 * per + 1  # compiled code
    assert pick(a, 2) == 6 + 2 * per  # Python
    assert pick.__name__ == "wide_impl" and pick.__doc__ == "the wide one"


def test_float32_variant_compiles_the_selected_function_only():
    _, caller = _pair()
    caller(np.zeros(3, np.float64), 1)
    caller(np.zeros(3, np.float32), 1)
    ir = {str(sig[0].dtype): text for sig, text in caller.inspect_llvm().items()}
    assert "narrow_impl" in ir["float32"] and "wide_impl" not in ir["float32"]
    assert "wide_impl" in ir["float64"] and "narrow_impl" not in ir["float64"]


def test_float32_variant_chooses_by_the_named_argument():
    @njit
    def lifted(x, w):
        return 1

    @float32_variant(lifted, arg=1)
    @njit
    def plain(x, w):
        return 0

    @njit
    def caller(x, w):
        return plain(x, w)

    x32, x64 = np.zeros(2, np.float32), np.zeros(2)
    assert caller(x64, x32) == plain(x64, x32) == 1
    assert caller(x32, x64) == plain(x32, x64) == 0


def test_float32_variant_compiles_with_the_functions_options():
    def ratio(a, b):
        return a[0] / b

    @float32_variant(njit(error_model="numpy")(ratio))
    @njit(error_model="numpy")
    def quotient(a, b):
        return a[0] / b

    @njit
    def caller(a, b):
        return quotient(a, b)

    for dt in (np.float32, np.float64):
        assert caller(np.ones(1, dt), 0.0) == np.inf  # Numba's default error model raises ZeroDivisionError
    with pytest.raises(ValueError, match="same compiler options"):
        float32_variant(njit(ratio))(njit(error_model="numpy")(ratio))
