"""Bad input to the structured linear maps: clear errors naming the argument, raised before any work, inputs untouched."""

import numpy as np
import pytest

import refnsm.linear as L
from refnsm.linear._catalog import CATALOG


@pytest.mark.parametrize("cls", sorted(L.square_maps, key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_square_maps_reject_rectangular(cls):
    with pytest.raises(ValueError, match="outsize"):
        cls(4, 2)


@pytest.mark.parametrize("cls", [L.SymplecticLinear, L.SchurDecompositionLinear])
def test_odd_size_rejected(cls):
    with pytest.raises(ValueError, match="insize"):
        cls(3, 3)


def test_trivial_null_space_rejects_wide_and_bias():
    with pytest.raises(ValueError, match="outsize"):
        L.TrivialNullSpaceLinear(5, 3)
    with pytest.raises(ValueError, match="bias"):
        L.TrivialNullSpaceLinear(3, 5, bias=True)
    with pytest.raises(ValueError, match="epsilon"):
        L.TrivialNullSpaceLinear(3, 5, epsilon=0.0)


@pytest.mark.parametrize("e", CATALOG, ids=lambda e: e.name)
def test_x_wrong_width_nan_and_types(e):
    n, k = e.shapes[-1]
    m = e.build(n, k)
    before = {key: v.copy() for key, v in m.params.items()}
    with pytest.raises(ValueError, match="x"):
        m.forward(np.ones((2, n + 1)))
    bad = np.ones((2, n))
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match="x"):
        m.forward(bad)
    with pytest.raises(TypeError, match="x"):
        m.forward("abc")
    with pytest.raises(TypeError, match="x"):
        m.forward(np.ones((2, n), dtype=complex))
    for key, v in m.params.items():
        np.testing.assert_array_equal(v, before[key])
    x = np.ones((2, n))
    x0 = x.copy()
    y = m.forward(x)
    np.testing.assert_array_equal(x, x0)  # never written to
    with pytest.raises(ValueError, match="grad_y"):
        m.backward(np.ones((2, k + 1)))
    with pytest.raises(ValueError, match="grad_W"):
        m.effective_W_vjp(np.ones((n + 1, k)))
    g = np.ones_like(y)
    g0 = g.copy()
    m.backward(g)
    np.testing.assert_array_equal(g, g0)


@pytest.mark.parametrize("e", CATALOG, ids=lambda e: e.name)
def test_bad_params(e):
    n, k = e.shapes[-1]
    m = e.build(n, k)
    key = next(iter(m.params))
    before = {kk: v.copy() for kk, v in m.params.items()}
    with pytest.raises(ValueError, match="params"):
        m.load_params({"no_such_parameter": np.ones(2)})
    with pytest.raises(ValueError, match="params"):
        m.load_params({key: np.ones(m.params[key].shape + (2,))})
    nanp = m.params[key].astype(float).copy()
    nanp.reshape(-1)[0] = np.nan
    with pytest.raises(ValueError, match="params"):
        m.load_params({key: nanp})
    with pytest.raises(TypeError, match="params"):
        m.load_params([1, 2])
    for kk, v in m.params.items():
        np.testing.assert_array_equal(v, before[kk])


def test_constructor_arguments():
    with pytest.raises(ValueError, match="insize"):
        L.Linear(0, 3)
    with pytest.raises(TypeError, match="outsize"):
        L.Linear(3, 2.5)
    with pytest.raises(TypeError, match="bias"):
        L.Linear(3, 2, "yes")
    with pytest.raises(ValueError, match="compat"):
        L.Linear(3, 2, compat="torch")
    with pytest.raises(ValueError, match="compat"):
        L.SchurDecompositionLinear(4, 4, compat="neuromancer")
    with pytest.raises(TypeError, match="dtype"):
        L.Linear(3, 2, dtype=np.int32)
    with pytest.raises(TypeError, match="rng"):
        L.Linear(3, 2, rng="seed")
    with pytest.raises(ValueError, match="sigma_max"):
        L.PerronFrobeniusLinear(3, 3, sigma_min=1.0, sigma_max=0.5)
    with pytest.raises(ValueError, match="sigma_max"):
        L.GershgorinLinear(3, 3, sigma_min=1.0, sigma_max=1.0)
    with pytest.raises(ValueError, match="p"):
        L.BoundedNormLinear(3, 3, p=0.5)
    with pytest.raises(ValueError, match="droprate_init"):
        L.L0Linear(3, 3, droprate_init=1.0)
    with pytest.raises(ValueError, match="temperature"):
        L.L0Linear(3, 3, temperature=0.0)
    with pytest.raises(ValueError, match="n_U_reflectors"):
        L.SpectralLinear(3, 5, n_U_reflectors=4)
    with pytest.raises(ValueError, match="n_V_reflectors"):
        L.SpectralLinear(3, 5, n_V_reflectors=6)
    with pytest.raises(ValueError, match="complex"):
        L.ButterflyLinear(4, 4, complex=True)
    with pytest.raises(ValueError, match="pwr_iters"):
        L.PowerBoundLinear(3, 3, pwr_iters=-1)
    # only n_U_reflectors given: accepted (neuromancer's guard raises TypeError here)
    assert L.SpectralLinear(4, 5, n_U_reflectors=2).n_V_reflectors == 4


def test_zero_householder_vector_rejected():
    m = L.OrthogonalLinear(3, 3, rng=0)
    U = m.params["U"].copy()
    U[1, 1:] = 0.0
    with pytest.raises(ValueError, match="U"):
        m.load_params({"U": U})
    with pytest.raises(ValueError, match="u"):
        L.Hprod(np.ones((2, 3)), np.array([1.0, 0.0, 0.0]), 2)
    with pytest.raises(ValueError, match="k"):
        L.Hprod(np.ones((2, 3)), np.ones(3), 4)


def test_noise_and_start_vectors_validated():
    m = L.L0Linear(2, 3)
    with pytest.raises(ValueError, match="u"):
        m.set_noise(np.ones((2, 3)))
    with pytest.raises(ValueError, match="u"):
        m.set_noise(np.full((3, 2), 0.5))
    p = L.PowerBoundLinear(3, 3)
    with pytest.raises(ValueError, match="a"):
        p.set_start(np.ones(4), np.ones(3))
    with pytest.raises(ValueError, match="b"):
        p.set_start(np.ones(3), np.ones(2))


def test_backward_before_forward_and_eig_needs_square():
    m = L.Linear(3, 2)
    with pytest.raises(RuntimeError, match="forward"):
        m.backward(np.ones((1, 2)))
    with pytest.raises(ValueError, match="square"):
        m.eig()
    with pytest.raises(ValueError, match="grad_out"):
        m.reg_error_vjp(np.ones(3))


# ------------------------------------------------------------------ the public Householder helpers (memory safety)
_HH_BAD = [
    # (description, call, argument named in the message)
    ("dQ 1x1", lambda U, Q: L.householder_matrix_vjp(np.ones((1, 1)), Q, U), "dQ"),
    ("dQ empty", lambda U, Q: L.householder_matrix_vjp(np.ones((0, 0)), Q, U), "dQ"),
    ("Q n x n+1", lambda U, Q: L.householder_matrix_vjp(np.ones((4, 4)), np.ones((4, 5)), U), "Q"),
    ("U 1x1 with 4x4 dQ and Q", lambda U, Q: L.householder_matrix_vjp(np.ones((4, 4)), Q, np.ones((1, 1))), "dQ"),
    ("U fewer rows than k", lambda U, Q: L.householder_matrix(U[:2]), "U"),
    ("k > n", lambda U, Q: L.householder_matrix(U, 5), "k"),
    ("k negative", lambda U, Q: L.householder_matrix(U, -1), "k"),
    ("k float", lambda U, Q: L.householder_matrix(U, 2.0), "k"),
    ("U 1-D", lambda U, Q: L.householder_matrix(np.ones(4)), "U"),
    ("U NaN", lambda U, Q: L.householder_matrix(np.where(np.eye(4, dtype=bool), np.nan, U)), "U"),
    ("U complex", lambda U, Q: L.householder_matrix(U + 0j), "U"),
    ("reverse='no'", lambda U, Q: L.householder_matrix(U, reverse="no"), "reverse"),
    ("zero reflector", lambda U, Q: L.householder_matrix(np.triu(np.ones((4, 4))) * [[1], [0], [1], [1]]), "U"),
    ("underflowing reflector", lambda U, Q: L.householder_matrix(np.where(np.arange(4)[:, None] == 1, 1e-160, U)), "U"),
    ("overflowing reflector", lambda U, Q: L.householder_matrix(np.where(np.arange(4)[:, None] == 1, 1e160, U)), "U"),
    ("orthogonality_error 1-D", lambda U, Q: L.orthogonality_error(np.ones(4)), "A"),
    ("orthogonality_error rectangular", lambda U, Q: L.orthogonality_error(np.ones((3, 4))), "A"),
    ("orthogonality_error Inf", lambda U, Q: L.orthogonality_error(np.full((2, 2), np.inf)), "A"),
]


@pytest.mark.parametrize("call,arg", [c[1:] for c in _HH_BAD], ids=[c[0] for c in _HH_BAD])
def test_householder_helpers_refuse_what_their_kernels_do_not_own(call, arg):
    U = np.triu(np.random.default_rng(0).standard_normal((4, 4))) + 2 * np.eye(4)
    Q = L.householder_matrix(U)
    before = U.copy()
    with pytest.raises((ValueError, TypeError), match=rf"^{arg}\b|\b{arg}:"):
        call(U, Q)
    np.testing.assert_array_equal(U, before)


def test_householder_helpers_convert_integer_and_keep_float32():
    U = np.triu(np.arange(1, 17).reshape(4, 4))
    np.testing.assert_array_equal(L.householder_matrix(U), L.householder_matrix(U.astype(np.float64)))
    assert L.householder_matrix(U.astype(np.float32)).dtype == np.float32
    assert L.householder_matrix(U.astype(np.float16)).dtype == np.float64
    assert L.householder_matrix(U, 0).tolist() == np.eye(4).tolist()
    # rectangular U: more rows than reflectors is fine, the extra rows are not read
    tall = np.vstack([U, np.ones((2, 4))]).astype(float)
    np.testing.assert_array_equal(L.householder_matrix(tall, 3), L.householder_matrix(U.astype(float), 3))


_BOUNDSCHECK_SCRIPT = r"""
import numpy as np, refnsm.linear as L
gen = np.random.default_rng(1)
for (m, n, k, rev) in [(4, 4, None, False), (4, 4, 2, True), (6, 4, 4, False), (3, 5, 3, True), (4, 4, 0, False),
                       (1, 1, 1, False)]:
    U = np.triu(gen.standard_normal((m, n))) + np.eye(m, n)
    Q = L.householder_matrix(U, k, rev)
    dU = L.householder_matrix_vjp(gen.standard_normal((n, n)), Q, U, k, rev)
    assert dU.shape == U.shape and np.isfinite(dU).all()
for bad in [lambda U, Q: L.householder_matrix_vjp(np.ones((1, 1)), Q, U),
            lambda U, Q: L.householder_matrix_vjp(np.ones((4, 4)), np.ones((4, 5)), U),
            lambda U, Q: L.householder_matrix_vjp(np.ones((4, 4)), Q, np.ones((1, 1))),
            lambda U, Q: L.householder_matrix(U[:2]), lambda U, Q: L.householder_matrix(U, 5)]:
    U = np.triu(gen.standard_normal((4, 4))) + np.eye(4)
    try:
        bad(U, L.householder_matrix(U))
    except ValueError:
        pass
    else:
        raise SystemExit("accepted a shape its kernel does not own")
m = L.SpectralLinear(5, 3, rng=0, n_U_reflectors=2)
x = gen.standard_normal((2, 5))
m.forward(x); m.backward(np.ones((2, 3)))
print("ok")
"""


def test_householder_shape_variants_under_numba_boundscheck(tmp_path):
    # a fresh cache folder: the bounds-checked kernels must be compiled, not loaded from the ordinary cache
    import os
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path))
    res = subprocess.run([sys.executable, "-c", _BOUNDSCHECK_SCRIPT], capture_output=True, text=True, env=env,
                         timeout=600)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-3000:]
