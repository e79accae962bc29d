"""refnsm._vexp.exp: within 1 ulp of the exact exponential (mpmath) everywhere, and the C library's special values."""

import math

import mpmath
import numpy as np
import pytest
from numba import njit

from refnsm import _vexp


@njit(cache=True)
def _exp_all(x, out):
    for i in range(x.size):  # the loop the kernels write: it vectorises
        out[i] = _vexp.exp(x[i])


def _vexp_of(x):
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty_like(x)
    _exp_all(x, out)
    return out


def _ulp_errors(x, y):
    """|y - exp(x)| in units of the last place of the exact value (2**-1074 in the subnormal range)."""
    errs = []
    with mpmath.workprec(160):
        for xi, yi in zip(x.tolist(), y.tolist()):
            ex = mpmath.exp(mpmath.mpf(xi))
            if ex > mpmath.mpf(np.finfo(np.float64).max):
                errs.append(0.0 if yi == math.inf else math.inf)
                continue
            e = max(int(mpmath.floor(mpmath.log(ex, 2))), -1022)
            ulp = mpmath.ldexp(1, e - 52)
            errs.append(float(abs(mpmath.mpf(yi) - ex) / ulp))
    return np.array(errs)


def test_constants():
    with mpmath.workprec(200):
        ln2 = mpmath.log(2)
        assert _vexp.LN2_HI + _vexp.LN2_LO == float(ln2)
        assert _vexp.LN2_LO == float(ln2 - mpmath.mpf(_vexp.LN2_HI))
        assert _vexp.INV_LN2 == float(1 / ln2)
    m, _ = math.frexp(_vexp.LN2_HI)
    assert (m * 2.0 ** 42).is_integer()  # 42 significant bits: k * LN2_HI is exact for |k| < 2**11


def test_within_one_ulp_on_every_binade(rng):
    """Arguments from 2**-60 to 745 in magnitude, both signs, 200 per binade, against mpmath at 160 bits."""
    mags = np.concatenate([2.0 ** rng.uniform(e, e + 1, 200) for e in range(-60, 10)])
    x = np.concatenate([mags, -mags])
    x = x[(x < 709.78) & (x > -745.1)]
    err = _ulp_errors(x, _vexp_of(x))
    assert err.max() < 1.0, (err.max(), x[err.argmax()])
    # and not merely faithful by luck: the typical error is that of a good libm
    assert np.mean(err) < 0.3


def test_edges():
    f = np.float64
    pts = []
    # overflow threshold, the normal/subnormal boundary, the last subnormal, the ties of the reduction (k + 1/2) ln 2
    for p in [709.782712893384, 709.7827128933841, -708.3964185322641, -708.3964185322642, -745.1332191019411,
              -745.1332191019412, -744.44007192138126, 0.5 * math.log(2), 1.5 * math.log(2), -0.5 * math.log(2),
              1e-300, -1e-300, 5e-324, 2.0 ** -53, -(2.0 ** -54), 1.0, -1.0, 700.0, -700.0]:
        q = f(p)
        for _ in range(3):
            pts.append(q)
            q = np.nextafter(q, np.inf)
        q = f(p)
        for _ in range(3):
            q = np.nextafter(q, -np.inf)
            pts.append(q)
    x = np.array(pts)
    y = _vexp_of(x)
    err = _ulp_errors(x, y)
    assert err.max() < 1.0, (err.max(), x[err.argmax()])


def test_special_values():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 710.0, 1e300, -746.0, -1e300, 1e-320])
    with np.errstate(over="ignore"):
        want = np.exp(x)
    got = _vexp_of(x)
    assert np.array_equal(got, want, equal_nan=True)
    assert got[0] == 1.0 and got[1] == 1.0


def test_agrees_with_libm_to_one_ulp(rng):
    """Most results are the C library's bits; the others differ by one unit in the last place, never more."""
    x = rng.uniform(-745.0, 709.0, 200_000)
    got, want = _vexp_of(x), np.exp(x)
    steps = np.abs(got.view(np.int64) - want.view(np.int64))
    assert steps.max() <= 1
    assert np.mean(steps == 0) > 0.9


@pytest.mark.parametrize("n", [1, 3, 4, 7, 8, 33, 1000])
def test_vector_loop_matches_scalar_calls(rng, n):
    """The vectorised loop and its scalar remainder give the same bits as one call per element."""

    x = rng.uniform(-50, 50, n)
    one = np.array([_vexp_of(np.array([v]))[0] for v in x])
    assert np.array_equal(_vexp_of(x), one)


@njit(cache=True)
def _div_all(a, b, out):
    for i in range(a.size):
        out[i] = _vexp.fdiv(a[i], b[i])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fdiv_is_the_ieee_division(rng, dtype):
    """fdiv gives the bits of / wherever / returns, and IEEE's inf/nan (no exception) for a zero divisor."""
    a = (rng.standard_normal(5000) * 10.0 ** rng.integers(-30, 30, 5000)).astype(dtype)
    b = (rng.standard_normal(5000) * 10.0 ** rng.integers(-30, 30, 5000)).astype(dtype)
    a[:4] = [1.0, -1.0, 0.0, np.inf]
    b[:4] = 0.0
    out = np.empty_like(a)
    _div_all(a, b, out)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        want = a / b
    assert out.dtype == dtype and np.array_equal(out, want, equal_nan=True)
    assert out[0] == np.inf and out[1] == -np.inf and np.isnan(out[2])
