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
