"""refnsm._blas.matmul: a @ b through SciPy's gemm, for every operand layout, exactly where the product is exact."""

import numpy as np
import pytest

from refnsm._blas import matmul


def _layouts(a):
    """The same matrix as a C array, an F array (a transposed C array) and a strided view (neither)."""
    big = np.zeros((2 * a.shape[0], 3 * a.shape[1]), dtype=a.dtype)
    big[::2, ::3] = a
    return {"C": np.ascontiguousarray(a), "F": np.ascontiguousarray(a.T).T, "strided": big[::2, ::3]}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 7, 5), (4, 1, 3), (6, 5, 1), (13, 9, 11), (64, 70, 3)])
def test_matmul_exact_on_integers_for_every_layout(dtype, shape):
    """Small integers: every partial sum is exact in float32 and float64, so the product must equal the integer
    product bit for bit; a swapped operand or transpose flag cannot pass."""
    m, k, n = shape
    gen = np.random.default_rng(m * 100 + k * 10 + n)
    A = gen.integers(-8, 9, size=(m, k))
    B = gen.integers(-8, 9, size=(k, n))
    expected = (A @ B).astype(dtype)  # integer arithmetic, exact; |entries| <= 64 k < 2**24
    for la, a in _layouts(A.astype(dtype)).items():
        for lb, b in _layouts(B.astype(dtype)).items():
            a0, b0 = a.copy(), b.copy()
            c = matmul(a, b)
            assert c.dtype == dtype and c.shape == (m, n) and c.flags.c_contiguous, (la, lb)
            np.testing.assert_array_equal(c, expected, err_msg=f"{la} @ {lb}")
            np.testing.assert_array_equal(a, a0)  # inputs untouched
            np.testing.assert_array_equal(b, b0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_within_the_dot_product_bound(dtype):
    """Random operands against the exact product of the same values (rational arithmetic): the error of a length-k
    dot product is at most k eps sum_q |a_iq||b_qj|."""
    gen = np.random.default_rng(5)
    m, k, n = 37, 53, 29
    a = gen.standard_normal((m, k)).astype(dtype)
    b = gen.standard_normal((k, n)).astype(dtype)
    c = matmul(a, b)
    from fractions import Fraction

    exact = np.array([[float(sum(Fraction(float(a[i, q])) * Fraction(float(b[q, j])) for q in range(k)))
                       for j in range(n)] for i in range(m)])
    bound = k * np.finfo(dtype).eps * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))
    assert np.all(np.abs(c.astype(np.float64) - exact) <= bound)


def test_matmul_empty_dimensions():
    for m, k, n in ((0, 3, 2), (2, 0, 3), (2, 3, 0)):
        c = matmul(np.ones((m, k)), np.ones((k, n)))
        assert c.shape == (m, n) and c.dtype == np.float64 and not c.any()


def test_matmul_refuses_what_it_does_not_compute():
    with pytest.raises(ValueError, match="2-D operands"):
        matmul(np.ones(3), np.ones((3, 2)))
    with pytest.raises(ValueError, match="2-D operands"):
        matmul(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(TypeError, match="float32 or two float64"):
        matmul(np.ones((2, 3), np.float32), np.ones((3, 2)))
    with pytest.raises(TypeError, match="float32 or two float64"):
        matmul(np.ones((2, 3), np.int64), np.ones((3, 2), np.int64))
