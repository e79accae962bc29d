"""ngclearn's spellings on refnsm.hopfield.HopfieldSynapse (issue 14): resist_scale / g_conduct_factor,
initialiser specifications for weight_init, p_conn under compat, help(), save(), load()."""

import os

import numpy as np
import pytest

import refnsm.hopfield as hp
from refnsm.hopfield import initializers as I

D, H = 6, 8


def _syn(**kw):
    kw.setdefault("rng", 0)
    return hp.HopfieldSynapse("hop", (D, H), 0.2, 0.01, 2.0, **kw)


def test_resist_scale_and_g_conduct_factor_are_stored_and_change_nothing():
    X = np.random.default_rng(1).standard_normal((3, D))
    base = _syn().advance_state(X)
    for kw in ({"resist_scale": 3.0}, {"g_conduct_factor": 3.0}):
        s = _syn(**kw)
        assert s.g_conduct_factor == 3.0
        np.testing.assert_array_equal(s.advance_state(X), base)   # as ngclearn 3.2.1's HopfieldSynapse
    assert hp.HopfieldSynapse("h", (D, H), 0.1, 0.0, 8.0, None, "delta", None, 0.5).g_conduct_factor == 0.5
    with pytest.raises(TypeError, match="resist_scale, g_conduct_factor"):
        _syn(resist_scale=2.0, g_conduct_factor=3.0)
    with pytest.raises(TypeError, match="g_conduct_factor"):
        _syn(g_conduct_factor="big")


def test_weight_init_specs_dict_tuple_and_helpers_agree():
    a = _syn(weight_init={"dist": "uniform", "low": -1.0, "high": 2.0}, rng=7).weights
    b = _syn(weight_init=("uniform", -1.0, 2.0), rng=7).weights
    c = _syn(weight_init=I.uniform(-1.0, 2.0), rng=7).weights
    d = _syn(weight_init={"dist": "uniform", "amin": -1.0, "amax": 2.0}, rng=7).weights   # ngclearn 1.x names
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(a, d)
    # independently: the first draw of the synapse's generator
    np.testing.assert_array_equal(a, np.random.default_rng(7).uniform(-1.0, 2.0, (D, H)))
    g1 = _syn(weight_init=I.gaussian(0.5, 0.1), rng=3).weights
    g2 = _syn(weight_init={"dist": "gaussian", "mu": 0.5, "sigma": 0.1}, rng=3).weights
    np.testing.assert_array_equal(g1, g2)
    np.testing.assert_allclose(g1, 0.5 + 0.1 * np.random.default_rng(3).standard_normal((D, H)), rtol=1e-15)
    np.testing.assert_array_equal(_syn(weight_init=("constant", 0.25)).weights, np.full((D, H), 0.25))
    w32 = _syn(weight_init=I.constant(0.25), dtype=np.float32).weights
    assert w32.dtype == np.float32


def test_weight_init_laws_and_post_processing():
    big = I.make_weights(I.uniform(0.025, 0.8), (300, 200), np.float64, np.random.default_rng(0))
    assert big.min() >= 0.025 and big.max() < 0.8 and abs(big.mean() - 0.4125) < 5 * 0.775 / np.sqrt(12 * 6e4)
    g = I.make_weights(I.gaussian(1.0, 2.0, amin=0.0, amax=3.0), (300, 200), np.float64, np.random.default_rng(0))
    assert g.min() == 0.0 and g.max() == 3.0
    sq = (5, 5)
    rng = np.random.default_rng
    np.testing.assert_array_equal(I.make_weights(I.constant(2.0, hollow=True), sq, np.float64, rng(0)),
                                  2.0 * (1 - np.eye(5)))
    np.testing.assert_array_equal(I.make_weights(I.constant(2.0, eye=True), sq, np.float64, rng(0)), 2.0 * np.eye(5))
    np.testing.assert_array_equal(I.make_weights(I.constant(1.0, lower_triangle=True), sq, np.float64, rng(0)),
                                  np.tril(np.ones(sq)))
    np.testing.assert_array_equal(I.make_weights(I.constant(1.0, upper_triangle=True), sq, np.float64, rng(0)),
                                  np.triu(np.ones(sq)))
    W = _syn(weight_init=lambda shape, r: np.full(shape, 0.5)).weights
    np.testing.assert_array_equal(W, np.full((D, H), 0.5))


@pytest.mark.parametrize("spec, err, match", [
    ({"dist": "beta"}, ValueError, r"weight_init\['dist'\]: expected one of"),
    ({"dist": "uniform", "low": 1.0, "high": 1.0}, ValueError, "low < high"),
    ({"dist": "gaussian", "std": -1.0}, ValueError, "std >= 0"),
    ({"dist": "gaussian", "mean": 0.0, "mu": 1.0}, ValueError, "'mean' and 'mu' are the same"),
    ({"dist": "constant"}, ValueError, "needs 'value'"),
    ({"dist": "constant", "value": "x"}, TypeError, "value"),
    ({"dist": "constant", "value": np.nan}, ValueError, "finite"),
    ({"dist": "uniform", "col_mask": 2}, ValueError, "unsupported parameter"),
    ({"dist": "constant", "value": 1.0, "hollow": 1}, TypeError, "hollow"),
    ({"dist": "constant", "value": 1.0, "lower_triangle": True, "upper_triangle": True}, ValueError, "exclusive"),
    ({"dist": "gaussian", "amin": 2.0, "amax": 1.0}, ValueError, "amin <= amax"),
    (("poisson", 1.0), ValueError, "unknown distribution"),
    (("constant",), ValueError, "exactly 1"),
    (("uniform", 0.0, 1.0, 2.0), ValueError, "at most 2"),
    (lambda shape, rng: np.ones((2, 2)), ValueError, "weight_init"),
    (lambda shape, rng: np.full(shape, np.inf), ValueError, "weight_init"),
])
def test_weight_init_bad_specs(spec, err, match):
    with pytest.raises(err, match=match):
        _syn(weight_init=spec)


def test_compat_ngclearn_ignores_p_conn_as_ngclearn_3_2_1():
    a = _syn(p_conn=0.3, compat="ngclearn", rng=4)
    b = _syn(compat="ngclearn", rng=4)
    assert a.mask is None
    np.testing.assert_array_equal(a.weights, b.weights)
    d = _syn(p_conn=0.3, rng=4)               # default mode: the mask is applied
    assert d.mask is not None and np.count_nonzero(d.weights) < D * H


def test_help_describes_the_component():
    info = hp.HopfieldSynapse.help()
    assert set(info) == {"HopfieldSynapse", "compartments", "dynamics", "hyperparameters"}
    assert {"eta", "beta", "weight_init", "g_conduct_factor", "p_conn"} <= set(info["hyperparameters"])
    assert _syn().help() == info


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    s = _syn(p_conn=0.5, keep_mask=True, batch_size=3)
    for _ in range(2):
        s.advance_state(rng.standard_normal((3, D)))
        s.evolve()
    path = s.save(tmp_path)
    assert path == os.path.join(tmp_path, "hop.npz")
    t = _syn(rng=99, batch_size=3, keep_mask=True)   # options come from the constructor, state from the file
    t.load(tmp_path)
    for k in hp.HopfieldSynapse._SAVED:
        np.testing.assert_array_equal(getattr(t, k), getattr(s, k))
    np.testing.assert_array_equal(t.mask, s.mask)
    X = rng.standard_normal((3, D))
    np.testing.assert_array_equal(t.advance_state(X), s.advance_state(X))
    np.testing.assert_array_equal(t.evolve(), s.evolve())


def test_save_load_bad_input(tmp_path):
    s = _syn()
    with pytest.raises(ValueError, match="directory: expected an existing directory"):
        s.save(tmp_path / "nope")
    with pytest.raises(TypeError, match="directory: expected a path"):
        s.save(3)
    with pytest.raises(ValueError, match="directory: no file 'hop.npz'"):
        s.load(tmp_path)
    W_before = s.weights.copy()
    np.savez(tmp_path / "hop.npz", weights=np.ones((D, H + 1)))
    with pytest.raises(ValueError, match="'weights'.*does not fit"):
        s.load(tmp_path)
    np.savez(tmp_path / "hop.npz", weights=np.ones((D, H)), energy=np.full((1, 1), np.nan))
    with pytest.raises(ValueError, match="energy"):
        s.load(tmp_path)
    np.savez(tmp_path / "hop.npz", weights=np.ones((D, H)), inputs=np.ones((2, D)), outputs=np.ones((3, D)))
    with pytest.raises(ValueError, match="'outputs'.*batch 2"):
        s.load(tmp_path)
    np.testing.assert_array_equal(s.weights, W_before)     # nothing changed by a failed load
    np.savez(tmp_path / "hop.npz", weights=np.ones((D, H)), key=np.zeros(2), biases=np.zeros(()))
    s.load(tmp_path)                                        # unknown ngclearn keys ignored
    np.testing.assert_array_equal(s.weights, np.ones((D, H)))


@pytest.mark.skipif(__import__("cuda_support").MODE is None, reason="no GPU and no CUDA simulator")
def test_save_load_cuda_synapse_round_trips_with_a_cpu_one(tmp_path):
    rng = np.random.default_rng(3)
    gpu = _syn(device="cuda", batch_size=2)
    gpu.advance_state(rng.standard_normal((2, D)))
    gpu.evolve()
    gpu.save(tmp_path)
    cpu = _syn(rng=7, batch_size=2)
    cpu.load(tmp_path)
    np.testing.assert_array_equal(cpu.weights, gpu.weights)
    gpu2 = _syn(device="cuda", rng=8, batch_size=2)
    gpu2.load(tmp_path)
    X = rng.standard_normal((2, D))
    np.testing.assert_allclose(np.asarray(gpu2.advance_state(X).copy_to_host()), cpu.advance_state(X), rtol=1e-12)
