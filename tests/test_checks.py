"""The shared validation helpers: messages name the argument, the expected and the received."""

import numpy as np
import pytest

from refnsm import _checks as C


def test_as_float_array_dtypes_and_no_aliasing():
    a32 = np.ones((2, 2), np.float32)
    assert C.as_float_array(a32, "x").dtype == np.float32
    assert C.as_float_array([[1, 2]], "x").dtype == np.float64
    assert C.as_float_array(np.array([True, False]), "x").dtype == np.float64
    with pytest.raises(TypeError, match="x: expected a real numeric array, got dtype complex128"):
        C.as_float_array(np.ones(2, complex), "x")
    with pytest.raises(TypeError, match="x: expected a real numeric array"):
        C.as_float_array("abc", "x")
    with pytest.raises(ValueError, match=r"x: expected 2 dimensions \[N, D\], got shape \(3,\)"):
        C.as_float_array(np.ones(3), "x", ndim=2, shape_hint="[N, D]")
    with pytest.raises(ValueError, match=r"x: expected finite values, got nan at index \(1,\)"):
        C.as_float_array([0.0, np.nan], "x")
    with pytest.raises(ValueError, match="x: expected a non-empty array"):
        C.as_float_array(np.ones((0, 2)), "x", allow_empty=False)


def test_zero_d_stays_zero_d_and_views_are_not_copied_needlessly():
    assert C.as_float_array(np.float64(2.0), "s").shape == ()
    assert C.as_float_array(np.array(2.0), "s").shape == ()
    assert C.as_index_array(np.array(3), "t").shape == ()
    a = np.ones((3, 4))
    assert C.as_float_array(a, "a") is a  # already C-contiguous float64: no copy (and never written to)
    assert C.as_float_array(a.T, "a").flags.c_contiguous


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["C", "F", "strided", "0-d"])
@pytest.mark.parametrize("bad", [None, np.nan, np.inf, -np.inf])
def test_check_finite_fast_and_slow_paths_agree(dtype, layout, bad):
    """C-contiguous float32/float64 arrays are tested by a compiled loop, other layouts by np.isfinite: both must
    accept the same arrays and name the same first bad element (in C order) in the same words."""
    a = np.arange(1.0, 25.0, dtype=dtype).reshape(4, 6)
    if bad is not None:
        a[2, 3] = bad
        a[3, 1] = bad
    view = {"C": a, "F": np.asfortranarray(a), "strided": a[:, :5], "0-d": np.asarray(a[2, 3])}[layout]
    assert view.flags.c_contiguous == (layout in ("C", "0-d"))
    if bad is None:
        C.check_finite(view, "w")
        assert C.as_float_array(view, "w").shape == view.shape
        return
    expected_bad = () if layout == "0-d" else (2, 3)
    with pytest.raises(ValueError) as e:
        C.check_finite(view, "w")
    assert str(e.value) == f"w: expected finite values, got {dtype(bad)} at index {expected_bad}"


def test_as_float_array_fast_path_equals_the_conversion():
    """An ndarray already C-contiguous in the target dtype is returned as is; everything else goes through
    np.asarray(value, dtype, order="C"): same values, dtype and layout, same errors, for every case below."""
    nan = np.ones((2, 3))
    nan[1, 2] = np.nan
    cases = [np.ones((2, 3)), np.ones((2, 3), dtype=np.float32), np.asfortranarray(np.ones((2, 3))), nan,
             np.float64(2.0), np.ones((0, 3)), np.ones((2, 3), dtype=np.int64), [[1.0, 2.0]], np.ones((2, 3))[:, ::2]]
    for dtype in (None, np.float64, np.float32):
        for value in cases:
            try:
                out = C.as_float_array(value, "x", dtype=dtype)
            except ValueError as e:
                assert "expected finite values, got nan at index (1, 2)" in str(e)
                continue
            want_dtype = np.dtype(dtype) if dtype else (np.asarray(value).dtype if np.asarray(value).dtype.kind == "f"
                                                         else np.dtype(np.float64))
            ref = np.asarray(value, dtype=want_dtype, order="C")
            assert out.dtype == want_dtype and out.flags.c_contiguous and out.shape == ref.shape
            np.testing.assert_array_equal(out, ref)
            same = isinstance(value, np.ndarray) and value.dtype == want_dtype and value.flags.c_contiguous
            assert (out is value) == same


def test_index_array_rejects_floats_with_a_reason():
    with pytest.raises(TypeError, match="target: expected integer class indices, got dtype float64 \\(one-hot"):
        C.as_index_array(np.ones(3), "target")
    assert C.as_index_array(np.array([1, 2], np.int32), "target").dtype == np.int64


def test_scalars_and_options():
    assert C.check_real(2, "sigma", positive=True) == 2.0
    with pytest.raises(ValueError, match="sigma: expected a positive number \\(> 0\\), got 0.0"):
        C.check_real(0.0, "sigma", positive=True)
    with pytest.raises(TypeError, match="sigma: expected a real number, got bool True"):
        C.check_real(True, "sigma")
    with pytest.raises(ValueError, match="mode: expected one of 'a', 'b'; got 'c'"):
        C.check_option("c", "mode", ("a", "b"))
    with pytest.raises(ValueError, match="n: expected an integer >= 1, got 0"):
        C.check_int(0, "n", minimum=1)
    with pytest.raises(ValueError, match=r"r: expected a number in \[0.0, 1.0\], got 2.0"):
        C.check_in_interval(2, "r", 0.0, 1.0)
    with pytest.raises(ValueError, match=r"w: expected shape \(3, \*\) \(weights\), got \(2, 2\)"):
        C.check_shape(np.ones((2, 2)), "w", (3, None), "weights")


def test_rng_and_grad_out():
    assert isinstance(C.resolve_rng(3), np.random.Generator)
    g = np.random.default_rng(0)
    assert C.resolve_rng(g) is g
    with pytest.raises(TypeError, match="rng: expected a numpy.random.Generator"):
        C.resolve_rng("seed")
    assert C.scalar_grad_out(None) == 1.0 and C.scalar_grad_out(np.array([2.0])) == 2.0
    with pytest.raises(ValueError, match="grad_out: expected a scalar"):
        C.scalar_grad_out(np.ones(2))
    assert C.result_float_dtype(np.ones(2, np.float32), np.ones(2, np.int64)) == np.float32
    assert C.result_float_dtype(np.ones(2, np.float32), np.ones(2)) == np.float64


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_all_finite_kernel_finds_every_nonfinite_at_every_position(dtype):
    """The vectorised finiteness test (sum of x * 0, reassociated) must see a NaN/Inf wherever it sits: in the
    vector body, in the scalar tail, first and last, among huge and subnormal finite values."""
    from refnsm._fastchecks import all_finite

    info = np.finfo(dtype)
    for n in (1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 64, 127, 1000):
        base = np.resize(np.array([info.max, -info.max, info.tiny / 4, -0.0, 1.0], dtype=dtype), n)
        assert all_finite(base)
        for bad in (np.nan, np.inf, -np.inf):
            for pos in sorted({0, n // 2, n - 1}):
                a = base.copy()
                a[pos] = bad
                assert not all_finite(a), (n, bad, pos)
    assert all_finite(np.empty(0, dtype))
