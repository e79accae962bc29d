"""refnsm.cuda infrastructure and the deterministic primitives (tiled matmul, row norms, reductions).

Where the kernels run: see the docstring of tests/cuda_support.py.

Sizes are tiny: the simulator runs every CUDA thread as a Python thread.
"""

import math
import subprocess
import sys

import numpy as np
import pytest
from cuda_support import MODE, ROOT, TOL, needs_device, rel as _rel, run_file_under_simulator

simulator_only = pytest.mark.skipif(
    MODE != "simulator", reason="exact-order check: only the simulator is free of FMA contraction"
)


@pytest.mark.skipif(MODE is not None, reason="the kernels run in this process")
def test_kernels_under_simulator():
    run_file_under_simulator(__file__)


def test_import_refnsm_does_not_import_cuda():
    code = ("import sys, numpy as np, refnsm, refnsm.spiking;"
            "refnsm.spiking.kernel_dot_product(np.ones((2, 2)), np.ones((2, 2)));"
            "bad = [m for m in ('numba.cuda', 'refnsm.cuda') if m in sys.modules]; assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


def test_require_explains_when_no_device(monkeypatch):
    import refnsm.cuda as rc

    monkeypatch.setattr(rc, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="NUMBA_ENABLE_CUDASIM=1"):
        rc.require()
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        rc.to_device(np.ones(3))


def test_status_matches_mode():
    import refnsm.cuda as rc

    assert rc.using_simulator() == (MODE == "simulator")
    assert rc.is_available() == (MODE is not None)
    assert ("simulator" in rc.status()) == (MODE == "simulator")


def test_ptx_compiles_for_hardware():
    """Every primitive is real nopython CUDA: NVVM compiles it to PTX (no GPU needed, only libNVVM)."""
    if MODE == "simulator":
        pytest.skip("the simulator has no compiler")
    from numba import cuda, types

    from refnsm.cuda import _primitives as P

    try:
        cuda.compile_ptx(P._cast.py_func, "void(float64[::1], float32[::1])", cc=(7, 5))
    except Exception as exc:  # no libNVVM on this machine
        pytest.skip(f"NVVM unavailable: {type(exc).__name__}: {exc}")
    for nb, dt in ((types.float64, np.float64), (types.float32, np.float32)):
        a2 = types.Array(nb, 2, "C")
        a1 = types.Array(nb, 1, "C")
        cuda.compile_ptx(P.matmul_kernel(dt).py_func, (a2, a2, a2, types.boolean, types.boolean), cc=(7, 5))
        cuda.compile_ptx(P.row_sqnorms_kernel(dt).py_func, (a2, a1), cc=(7, 5))
        cuda.compile_ptx(P._reduce.py_func, (a1, types.int64, types.Array(types.float64, 1, "C")), cc=(7, 5))


# ------------------------------------------------------------------------------------------ kernels
@needs_device
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False)])
def test_matmul_against_numpy(dtype, ta, tb):
    from refnsm.cuda import _primitives as P, to_device, to_host

    rng = np.random.default_rng(1)
    n, k, m = 5, 9, 6  # not multiples of the tile
    A = rng.standard_normal((k, n) if ta else (n, k)).astype(dtype)
    B = rng.standard_normal((m, k) if tb else (k, m)).astype(dtype)
    Ad, Bd = to_device(A), to_device(B)
    C = to_host(P.matmul(Ad, Bd, ta, tb))
    ref = (A.T if ta else A).astype(np.float64) @ (B.T if tb else B).astype(np.float64)
    assert C.dtype == dtype and C.shape == (n, m)
    assert _rel(C, ref) <= TOL[np.dtype(dtype)]
    np.testing.assert_array_equal(to_host(Ad), A)  # inputs untouched
    np.testing.assert_array_equal(to_host(Bd), B)


@needs_device
def test_matmul_named_products_and_exact_gram_symmetry():
    from refnsm.cuda import _primitives as P, to_device, to_host

    rng = np.random.default_rng(2)
    X = to_device(rng.standard_normal((7, 5)))
    Y = to_device(rng.standard_normal((5, 3)))
    G = to_host(P.matmul_abt(X, X))
    np.testing.assert_array_equal(G, G.T)  # same products summed in the same order: exactly symmetric
    assert _rel(to_host(P.matmul_ab(X, Y)), to_host(X) @ to_host(Y)) <= 1e-12
    assert _rel(to_host(P.matmul_atb(X, X)), to_host(X).T @ to_host(X)) <= 1e-12
    with pytest.raises(ValueError, match="inner dimensions"):
        P.matmul(X, Y, trans_b=True)


@needs_device
@simulator_only
def test_matmul_sums_in_naive_order():
    """Each C_ij is the sequential sum over k (the tile does not change the order): bitwise in the simulator."""
    from refnsm.cuda import _primitives as P, to_device, to_host

    rng = np.random.default_rng(3)
    A = rng.standard_normal((3, 11)).astype(np.float32)
    B = rng.standard_normal((11, 2)).astype(np.float32)
    C = to_host(P.matmul(to_device(A), to_device(B)))
    for i in range(3):
        for j in range(2):
            acc = np.float32(0.0)
            for k in range(11):
                acc = np.float32(acc + A[i, k] * B[k, j])
            assert C[i, j] == acc


@needs_device
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_row_sqnorms_against_cpu_kernel(dtype):
    from refnsm.cuda import _primitives as P, to_device, to_host
    from refnsm.spiking import _kernels as K

    x = np.random.default_rng(4).standard_normal((6, 5)).astype(dtype)
    out = to_host(P.row_sqnorms(to_device(x)))
    assert out.dtype == dtype
    assert _rel(out, K.row_sqnorms(x)) <= TOL[np.dtype(dtype)]


@needs_device
def test_sum_reduce_is_exact_enough_and_repeatable():
    from refnsm.cuda import _primitives as P, to_device

    rng = np.random.default_rng(5)
    a = rng.standard_normal(50) * 10.0 ** rng.integers(-3, 3, 50)
    d = to_device(a)
    s1, s2 = P.sum_reduce(d), P.sum_reduce(d)
    assert abs(s1 - math.fsum(a)) <= 1e-12 * np.abs(a).sum()
    assert s1 == s2  # bitwise: fixed single-block tree, no atomics
    assert P.sum_reduce(to_device(np.zeros((3, 4)))) == 0.0
    assert P.sum_reduce(to_device(np.arange(12.0).reshape(3, 4))) == 66.0  # any shape, summed flat
    f32 = rng.random(20).astype(np.float32)
    assert abs(P.sum_reduce(to_device(f32)) - math.fsum(f32.astype(np.float64))) <= 1e-12 * f32.sum()


@needs_device
def test_counts():
    from refnsm.cuda import _primitives as P, to_device

    a = np.array([[0.0, 1.0, np.nan], [np.inf, -0.5, 0.3], [-np.inf, 1.5, 1.0]])
    d = to_device(a)
    assert P.count_nonfinite(d) == 3
    assert P.count_outside_unit_interval(d) == 5  # nan, +-inf, -0.5, 1.5
    assert P.count_nonfinite(to_device(np.ones(5, dtype=np.float32))) == 0


@needs_device
def test_astype_and_transfers():
    import refnsm.cuda as rc
    from refnsm.cuda import _primitives as P

    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    d = rc.to_device(a)
    assert rc.is_device_array(d) and not rc.is_device_array(a)
    assert rc.to_device(d) is d
    f = P.astype(d, np.float32)
    assert f.dtype == np.float32 and f.shape == (2, 3)
    np.testing.assert_array_equal(rc.to_host(f), a.astype(np.float32))
    assert P.astype(f, np.float32) is f
    np.testing.assert_array_equal(rc.to_host([1.0, 2.0]), [1.0, 2.0])
