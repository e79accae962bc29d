"""refnsm._vlog.log: within 1 ulp of the exact logarithm (mpmath) everywhere, and the C library's special values."""

import math

import mpmath
import numpy as np
import pytest
from numba import njit

from refnsm import _vexp, _vlog


@njit(cache=True)
def _log_all(x, out):
    for i in range(x.size):  # the loop the kernels write: it vectorises
        out[i] = _vlog.log(x[i])


def _vlog_of(x):
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty_like(x)
    _log_all(x, out)
    return out


def _ulp_errors(x, y):
    """|y - log(x)| in units of the last place of the exact value, for positive finite x (log(1) = 0 exactly:
    there the error must be 0)."""
    errs = []
    with mpmath.workprec(200):
        for xi, yi in zip(x.tolist(), y.tolist()):
            ex = mpmath.log(mpmath.mpf(xi))
            if ex == 0:
                errs.append(0.0 if yi == 0.0 else math.inf)
                continue
            e = max(int(mpmath.floor(mpmath.log(abs(ex), 2))), -1022)
            ulp = mpmath.ldexp(1, e - 52)
            errs.append(float(abs(mpmath.mpf(yi) - ex) / ulp))
    return np.array(errs)


def test_constants():
    q = math.sqrt(2)  # float(sqrt 2), just above the exact value
    assert _vlog._SQRT2_MANT == int(np.float64(q).view(np.int64)) & ((1 << 52) - 1)
    with mpmath.workprec(200):
        assert mpmath.mpf(q) > mpmath.sqrt(2)
        assert mpmath.mpf(np.nextafter(q, 0.0)) < mpmath.sqrt(2)
    assert _vlog.LN2_HI is _vexp.LN2_HI and _vlog.LN2_LO is _vexp.LN2_LO
    assert [getattr(_vlog, f"_R{i}") for i in range(1, 11)] == [2.0 / (2 * i + 1) for i in range(1, 11)]


def test_truncation_bound():
    """The ten terms of R leave less than 1.3e-18 out at the largest z = ((q - 1)/(q + 1))^2, q = float(sqrt 2)."""
    with mpmath.workprec(200):
        q = mpmath.mpf(math.sqrt(2))
        s = (q - 1) / (q + 1)
        z = s * s
        rest = mpmath.nsum(lambda i: 2 * z ** i / (2 * i + 1), [11, mpmath.inf])
    assert rest < 1.3e-18 and s < 0.1716 and z < 0.0295


def test_within_one_ulp_on_every_binade(rng):
    """30 arguments per binade from the smallest subnormal to the largest float, against mpmath at 200 bits."""
    x = np.concatenate([2.0 ** rng.uniform(e, e + 1, 30) for e in range(-1074, 1024)])
    x = x[np.isfinite(x) & (x > 0)]
    err = _ulp_errors(x, _vlog_of(x))
    assert err.max() < 1.0, (err.max(), x[err.argmax()])
    assert np.mean(err) < 0.3  # and not merely faithful by luck: the typical error of a good libm


def test_within_one_ulp_next_to_one_and_at_the_boundaries(rng):
    """Where log is smallest (x near 1, the result far below 1 in magnitude) and at the reduction's edges."""
    near1 = np.concatenate([1.0 + rng.uniform(-1, 1, 4000) * 2.0 ** -k for k in range(1, 53, 3)])
    pts = [1.0, math.sqrt(2), math.sqrt(0.5), 2.0, 0.5, 2.0 ** -1022, 2.0 ** -1074, 5e-324, 1.7976931348623157e308]
    edges = []
    for p in pts:
        q = np.float64(p)
        for direction in (np.inf, -np.inf):
            v = q
            for _ in range(4):
                edges.append(v)
                if direction < 0 or v < np.finfo(np.float64).max:  # not past the largest float
                    v = np.nextafter(v, direction)
    x = np.concatenate([near1, np.array(edges)])
    x = x[np.isfinite(x) & (x > 0)]
    err = _ulp_errors(x, _vlog_of(x))
    assert err.max() < 1.0, (err.max(), x[err.argmax()])
    assert _vlog_of(np.array([1.0]))[0] == 0.0


def test_special_values():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, -1.0, -5e-324, 5e-324, 1.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.log(x)
    got = _vlog_of(x)
    assert np.array_equal(got, want, equal_nan=True)
    assert got[0] == -np.inf and got[1] == -np.inf


def test_agrees_with_libm_to_one_ulp(rng):
    """Most results are the C library's bits; the others differ by one unit in the last place, never more."""
    x = np.concatenate([2.0 ** rng.uniform(-1074, 1024, 100_000), rng.uniform(0.0, 4.0, 100_000)])
    x = x[np.isfinite(x) & (x > 0)]
    got = _vlog_of(x)
    want = np.array([math.log(v) for v in x.tolist()])  # the C library's log (NumPy may use its own SIMD one)
    steps = np.abs(got.view(np.int64) - want.view(np.int64))
    assert steps.max() <= 1
    assert np.mean(steps == 0) > 0.9


@pytest.mark.parametrize("n", [1, 3, 4, 7, 8, 33, 1000])
def test_vector_loop_matches_scalar_calls(rng, n):
    """The vectorised loop and its scalar remainder give the same bits as one call per element."""
    x = 2.0 ** rng.uniform(-1074, 1024, n)
    one = np.array([_vlog_of(np.array([v]))[0] for v in x])
    assert np.array_equal(_vlog_of(x), one)
