"""refnsm.regularization objects (Lambda, lists, frozen/0-d parameters), the Dale generator and the
training-loop glue (SGD, regularization_step)."""

import math

import numpy as np
import pytest

import refnsm.regularization as R
from refnsm.gradcheck import gradcheck

INF = math.inf


def _reg_gradcheck(make, params: dict):
    """gradcheck a regularizer's value_and_grad against finite differences over all its parameters at once."""
    keys = list(params)

    def f(*arrays):
        reg = make(dict(zip(keys, [np.array(a) for a in arrays])))
        return float(reg())

    def vjp(g, *arrays):
        reg = make(dict(zip(keys, [np.array(a) for a in arrays])))
        grads = reg.backward(g)
        return tuple(grads.get(k, np.zeros_like(a)) for k, a in zip(keys, arrays))

    return gradcheck(f, vjp, tuple(params.values()), raise_on_fail=True)


@pytest.mark.parametrize("p", [1, -1, 2, -2, INF, -INF, "fro", "nuc"])
def test_lp_object_is_lambda_times_sum_of_norms(rng, p):
    ps = {"W": rng.standard_normal((4, 4)), "V": rng.standard_normal((3, 5)), "b": rng.standard_normal(5),
          "scalar": np.array(2.0)}
    if p in ("fro", "nuc"):
        del ps["b"]
    reg = R.Lp(ps, Lambda=0.7, p=p)
    expected = 0.7 * sum(np.linalg.norm(v, p) for v in ps.values() if v.ndim > 0)  # 0-d skipped
    assert float(reg()) == pytest.approx(expected, rel=1e-12)
    v, grads = reg.value_and_grad()
    assert float(v) == pytest.approx(float(reg()), rel=1e-14)  # SVD with/without vectors: last-bit differences
    assert set(grads) == {k for k, a in ps.items() if a.ndim > 0}
    for k, g in grads.items():
        np.testing.assert_allclose(g, 0.7 * R.lp_norm_vjp(None, ps[k], p), rtol=1e-15)
    _reg_gradcheck(lambda d: R.Lp(d, Lambda=0.7, p=p), {k: a for k, a in ps.items() if a.ndim > 0})


def test_l1_l2_and_frozen(rng):
    W, V = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    assert float(R.L1([W])()) == pytest.approx(np.linalg.norm(W, 1), rel=1e-12)
    assert float(R.L2([W])()) == pytest.approx(np.linalg.norm(W, 2), rel=1e-12)
    reg = R.L1({"W": W, "V": V}, frozen=["V"])  # upstream: requires_grad=False params are left out of Lp
    assert float(reg()) == pytest.approx(np.linalg.norm(W, 1), rel=1e-12)
    assert set(reg.backward()) == {"W"}
    allfrozen = R.L1({"W": W}, frozen="W")
    assert float(allfrozen()) == 0.0 and allfrozen.backward() == {}
    # frozen params still count in the other penalties (as upstream) but get no gradient
    d = R.DaleLawL2({"W": W, "V": V}, alpha=0.5, reference_weights=[W, V], frozen=["V"])
    assert float(d()) == pytest.approx(R.dale_law_l2(W, W, 0.5) + R.dale_law_l2(V, V, 0.5), rel=1e-12)
    assert set(d.backward()) == {"W"}


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.8, 1.0])
def test_dale_objects(rng, alpha):
    ps = {"a": rng.standard_normal((4, 4)), "b": rng.standard_normal((3, 5))}
    refs = [rng.standard_normal((4, 4)), rng.standard_normal((3, 5))]
    reg = R.DaleLawL2(ps, alpha, refs, Lambda=1.5)
    assert float(reg()) == pytest.approx(1.5 * sum(R.dale_law_l2(ps[k], r, alpha) for k, r in zip(ps, refs)),
                                         rel=1e-12)
    _reg_gradcheck(lambda d: R.DaleLawL2(d, alpha, refs, Lambda=1.5), ps)
    law = R.DaleLaw(ps, refs, Lambda=2.0)
    assert float(law()) == pytest.approx(-2.0 * sum(np.sum(ps[k] * np.sign(r)) for k, r in zip(ps, refs)), rel=1e-12)
    np.testing.assert_array_equal(law.backward()["a"], -2.0 * np.sign(refs[0]))


def test_dale_generated_reference_rectangular_and_float64(rng):
    W = rng.standard_normal((6, 4))  # upstream: rows 4, 5 uninitialised (N > M); float64 raises
    reg = R.DaleLawL2({"W": W}, alpha=0.0, inh_ratio=0.5, rho=1.0, rng=3)
    S = reg.reference_signs["W"]
    np.testing.assert_array_equal(S, np.repeat([[-1.0], [-1.0], [-1.0], [1.0], [1.0], [1.0]], 4, axis=1))
    assert float(reg()) == pytest.approx(-np.sum(W * S), rel=1e-12)
    reg_t = R.DaleLawL2({"W": rng.standard_normal((3, 7))}, alpha=1.0)
    assert reg_t.reference_signs["W"].shape == (3, 7)


@pytest.mark.parametrize("t", [0.2, 0.8])
def test_exc_inh_objects(rng, t):
    ps = {"s": rng.standard_normal(6), "W": rng.standard_normal((3, 4)), "c": np.array(0.3)}
    exc = R.ExcRatioTargetRegularization(ps, t, Lambda=0.5)
    inh = R.InhRatioTargetRegularization(ps, 1 - t, Lambda=0.5)
    expected = 0.5 * sum(R.exc_ratio_loss(v, t) for v in ps.values())
    assert float(exc()) == pytest.approx(expected, rel=1e-12)
    assert float(inh()) == pytest.approx(expected, rel=1e-12)
    _reg_gradcheck(lambda d: R.ExcRatioTargetRegularization(d, t, Lambda=0.5), ps)
    ratios = exc.get_params_exc_ratio()
    for r, v in zip(ratios, ps.values()):
        assert r == pytest.approx((np.mean(v / (1 + np.abs(v))) + 1) / 2, rel=1e-12)
    assert inh.get_params_inh_ratio() == pytest.approx([1 - r for r in ratios], rel=1e-12)
    assert set(exc.on_pbar_update()) == {"exc_ratio", "exc_ratio_loss"}
    assert set(inh.on_pbar_update()) == {"inh_ratio", "inh_ratio_loss"}
    hard = R.ExcRatioTargetRegularization(ps, t, sign_func="sign")
    assert all(np.all(g == 0) for g in hard.backward().values())


@pytest.mark.parametrize("p", [1, 2, INF, "fro"])
def test_weights_distance_object(rng, p):
    ps = {"W": rng.standard_normal((4, 3)), "V": rng.standard_normal((3, 3))}
    refs = {"x": rng.standard_normal((4, 3)), "y": rng.standard_normal((3, 3))}  # a dict: its values are used
    reg = R.WeightsDistance(ps, refs, Lambda=0.3, p=p)
    expected = 0.3 * sum(np.linalg.norm(np.abs(ps[k] - r), p) for k, r in zip(ps, refs.values()))
    assert float(reg()) == pytest.approx(expected, rel=1e-12)
    _reg_gradcheck(lambda d: R.WeightsDistance(d, refs, Lambda=0.3, p=p), ps)
    refs["x"][:] = 0.0  # references are copied at construction
    assert float(reg()) == pytest.approx(expected, rel=1e-12)


def test_regularization_list_sums_children_and_shared_params(rng):
    W, V = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    a = R.L1({"W": W}, Lambda=0.5)
    b = R.DaleLawL2({"W": W, "V": V}, 0.3, [W.copy(), V.copy()], Lambda=2.0)
    lst = R.RegularizationList([a, b])
    assert len(lst) == 2 and list(lst) == [a, b]
    assert float(lst()) == pytest.approx(float(a()) + float(b()), rel=1e-12)
    v, grads = lst.value_and_grad()
    assert set(lst.params) == {"0.W", "1.V"} and lst.params["0.W"] is W
    np.testing.assert_allclose(grads["0.W"], a.backward()["W"] + b.backward()["W"], rtol=1e-15)
    np.testing.assert_allclose(grads["1.V"], b.backward()["V"], rtol=1e-15)
    empty = R.RegularizationList([])
    assert float(empty()) == 0.0 and empty.value_and_grad()[1] == {}


def test_lambda_zero_and_negative(rng):
    W = rng.standard_normal((3, 3))
    assert float(R.L2([W], Lambda=0.0)()) == 0.0
    np.testing.assert_array_equal(R.L2([W], Lambda=0.0).backward()["params.0"], 0.0)
    assert float(R.L2([W], Lambda=-1.0)()) == pytest.approx(-np.linalg.norm(W, 2), rel=1e-12)


# ------------------------------------------------------------------------------------------------ dale generator
@pytest.mark.parametrize("shape", [(8, 8), (5, 9), (9, 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("inh_first", [True, False])
def test_dale_generator_law(shape, dtype, inh_first):
    n, m = shape
    W = R.dale(shape, inh_ratio=0.25, rho=0.75, inh_first=inh_first, rng=7, dtype=dtype)
    assert W.shape == shape and W.dtype == dtype and np.isfinite(W).all()
    assert np.count_nonzero(W == 0) == int(0.25 * n * m)
    inh_rows = [i for i in range(n) if np.all(W[i] <= 0) and np.any(W[i] < 0)]
    exc_rows = [i for i in range(n) if np.all(W[i] >= 0) and np.any(W[i] > 0)]
    assert len(inh_rows) + len(exc_rows) == n  # every row one sign (no row is all-zero at these sizes)
    assert len(inh_rows) == int(n * 0.25)
    if inh_first:
        assert inh_rows == list(range(int(n * 0.25)))


def test_dale_generator_randomness_and_magnitudes():
    a, b = R.dale(50, rng=1), R.dale(50, rng=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(R.dale(50), R.dale(50))  # None: fresh entropy (upstream: always the same)
    W = R.dale((400, 400), inh_ratio=0.0, rho=0.5, rng=0)
    nz = W[W != 0]
    sigma = R.dale_scale(400, 0.5)
    assert sigma == pytest.approx(1 / np.sqrt(400 * 0.25))
    # half-normal: E|z| = sigma * sqrt(2/pi); 80000 draws, standard error ~ 0.6 % of the mean
    assert nz.mean() == pytest.approx(sigma * np.sqrt(2 / np.pi), rel=0.03)
    assert np.all(R.dale((4, 5), rho=0.0, rng=0) == 0)
    assert np.isfinite(R.dale((4, 5), rho=1.0, rng=0, scale=0.5)).all()
    assert np.count_nonzero(R.dale((4, 5), rho=1.0, rng=0, scale=0.5)) == 20


def test_dale_in_place():
    W = np.empty((5, 3), dtype=np.float32)
    out = R.dale_(W, 0.4, 0.8, True, seed=11)
    assert out is W
    np.testing.assert_array_equal(W, R.dale((5, 3), 0.4, 0.8, True, rng=11, dtype=np.float32))


def test_dale_bad_input():
    with pytest.raises(ValueError, match="scale: rho=1"):
        R.dale((3, 3), rho=1.0)
    with pytest.raises(ValueError, match="shape: expected 2 dimensions"):
        R.dale((3, 3, 3))
    with pytest.raises(ValueError, match="shape: expected an integer >= 1"):
        R.dale((0, 3))
    with pytest.raises(TypeError, match="shape"):
        R.dale("3x3")
    with pytest.raises(TypeError, match="inh_first"):
        R.dale(3, inh_first=1)
    with pytest.raises(TypeError, match="dtype"):
        R.dale(3, dtype=np.int64)
    with pytest.raises(TypeError, match="tensor"):
        R.dale_([[1.0]])
    with pytest.raises(ValueError, match="tensor: expected 2 dimensions"):
        R.dale_(np.zeros(3))
    with pytest.raises(TypeError, match="rng"):
        R.dale(3, rng="seed")
    with pytest.raises(ValueError, match="rho"):
        R.DaleLawL2([np.ones((3, 3))], rho=2.0)


# ------------------------------------------------------------------------------------------------ training glue
def test_sgd_and_regularization_step(rng):
    W = rng.standard_normal((4, 4))
    W0 = W.copy()
    reg = R.DaleLawL2({"W": W}, 0.5, [np.ones((4, 4))], Lambda=2.0)
    loss = R.regularization_step(reg, lr=0.1)
    assert float(loss) == pytest.approx(2.0 * R.dale_law_l2(W0, np.ones((4, 4)), 0.5), rel=1e-12)
    np.testing.assert_allclose(W, W0 - 0.1 * 2.0 * (W0 - 0.5), rtol=1e-15)  # updated in place
    # an optimiser over the model's dict (different keys, same arrays) works; the reg sees the update
    model = {"rec": W}
    opt = R.SGD(model, lr=0.05)
    before = W.copy()
    R.regularization_step(reg, opt)
    np.testing.assert_allclose(W, before - 0.05 * 2.0 * (before - 0.5), rtol=1e-15)
    # gradients never accumulate: two backward calls give the same result
    np.testing.assert_array_equal(reg.backward()["W"], reg.backward()["W"])


def test_regularization_step_pitfalls(rng):
    W = rng.standard_normal((3, 3))
    reg = R.L1({"W": W})
    with pytest.raises(ValueError, match="optimizer, lr: expected exactly one"):
        R.regularization_step(reg)  # upstream: silently no update
    detached = R.SGD({"W": W.copy()}, lr=0.1)  # upstream after a checkpoint resume
    with pytest.raises(ValueError, match="optimizer: does not hold the regularizer's parameter 'W'"):
        R.regularization_step(reg, detached)
    with pytest.raises(TypeError, match="optimizer"):
        R.regularization_step(reg, optimizer=object())
    with pytest.raises(TypeError, match="reg"):
        R.regularization_step("L1", lr=0.1)
    frozen = R.L1({"W": W, "V": np.ones((3, 3))}, frozen=["V"])
    V = frozen.params["V"]
    R.regularization_step(frozen, lr=0.1)
    np.testing.assert_array_equal(V, 1.0)


def test_sgd_bad_input(rng):
    W = rng.standard_normal((3, 3))
    opt = R.SGD({"W": W}, lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        R.SGD({"W": W}, lr=-1.0)
    with pytest.raises(ValueError, match=r"grads: key 'V'"):
        opt.step({"V": W})
    with pytest.raises(ValueError, match=r"grads\['W'\]: expected shape \(3, 3\)"):
        opt.step({"W": np.ones(3)})
    with pytest.raises(ValueError, match=r"grads\['W'\]: expected finite"):
        opt.step({"W": np.full((3, 3), np.nan)})
    with pytest.raises(TypeError, match="grads"):
        opt.step([W])
    W_ro = W.copy()
    W_ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        R.SGD({"W": W_ro}, lr=0.1)
    W32 = W.astype(np.float32)
    R.SGD({"W": W32}, lr=0.1).step({"W": np.ones((3, 3))})
    assert W32.dtype == np.float32


# ------------------------------------------------------------------------------------------------ torch-compatible dale_
def test_dale_torch_golden_fixtures():
    """Fixtures produced by neurotorch.init.dale_ on torch 2.13 CPU (its random draws: see
    the neurotorch section of docs/upstream_differences.md), covering the serial
    float64 normal path (4x4), inh_first=False (6x6) and the 16-block float32 path with seed=None (100x100)."""
    W = R.dale_torch(4, 0.5, 0.75, True, seed=0)
    expected = np.array([[-0.465741, -1.6149589, -0.6563679, -0.0], [-1.2369006, -0.8305271, -0.9676695, -1.779389],
                         [0, 0, 0.9892026, 0], [0.1416832, 0.6889352, 1.2708682, 0.2101976]], dtype=np.float32)
    assert W.dtype == np.float32
    np.testing.assert_allclose(W, expected, rtol=2e-7, atol=0)
    np.testing.assert_array_equal(np.signbit(W[0, 3]), True)  # -0.0, as upstream
    S = np.sign(R.dale_torch(6, 0.5, 0.8, False, seed=42))
    np.testing.assert_array_equal(S, [[-1, 0, -1, -1, -1, -1], [-1] * 6, [1] * 6, [-1] * 6, [0, 1, 0, 1, 1, 1],
                                      [1, 0, 1, 1, 0, 1]])
    W = R.dale_torch(100)
    assert np.count_nonzero(W == 0) == 99 and np.sign(W).sum() == -9
    np.testing.assert_allclose(W[0, :4], [-0.2584208, -0.9412337, -0.4013096, -1.4009417], rtol=2e-7)


def test_dale_torch_bad_input_and_dale_law_compat():
    with pytest.raises(ValueError, match="n: expected a square shape"):
        R.dale_torch((4, 5))
    with pytest.raises(ValueError, match="seed"):
        R.dale_torch(4, seed=-1)
    with pytest.raises(ValueError, match="rho"):
        R.dale_torch(4, rho=1.5)
    W = np.ones((6, 6), dtype=np.float32)
    reg = R.DaleLawL2({"W": W}, alpha=0.0, compat="neurotorch", inh_ratio=0.5, rho=0.8, inh_first=False, rng=42)
    np.testing.assert_array_equal(reg.reference_signs["W"], np.sign(R.dale_torch(6, 0.5, 0.8, False, seed=42)))
    with pytest.raises(ValueError, match=r"params\['W'\]: compat='neurotorch'"):
        R.DaleLawL2({"W": np.ones((4, 5))}, compat="neurotorch")
    with pytest.raises(TypeError, match="rng"):
        R.DaleLawL2({"W": W}, compat="neurotorch", rng=np.random.default_rng(0))


def test_small_public_helpers_bad_input(rng):
    with pytest.raises(ValueError, match="n_rows"):
        R.dale_scale(0, 0.5)
    with pytest.raises(ValueError, match="rho"):
        R.dale_scale(10, 1.2)
    assert R.dale_scale(10, 0.0) == math.inf
    with pytest.raises(NotImplementedError, match="BaseRegularization"):
        R.BaseRegularization([rng.standard_normal(3)])()
    with pytest.raises(TypeError, match="alpha"):
        R.DaleLaw([rng.standard_normal((2, 2))], alpha=0.5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_regularization_list_of_three_sharing_one_array_keeps_children_grads(rng, dtype):
    """The list adds the third child's gradient into the sum it allocated for the first two, in place; no child's
    own .grads array is written to."""
    W = rng.standard_normal((5, 3)).astype(dtype)
    ref = rng.standard_normal((5, 3)).astype(dtype)
    kids = [R.L1({"W": W}, 0.1), R.DaleLawL2({"W": W}, 0.3, [ref], 0.1), R.ExcRatioTargetRegularization({"W": W}),
            R.Lp({"W": W}, 0.2, p="fro")]
    lst = R.RegularizationList(kids)
    _, grads = lst.value_and_grad(2.0)
    own = [k.grads["W"].copy() for k in kids]
    alone = [k.value_and_grad(2.0)[1]["W"] for k in kids]
    for a, b in zip(own, alone):
        np.testing.assert_array_equal(a, b)
    assert grads["0.W"].dtype == dtype
    expected = sum(a.astype(np.float64) for a in alone)
    eps = float(np.finfo(dtype).eps)
    np.testing.assert_allclose(grads["0.W"], expected, rtol=4 * eps, atol=8 * eps * np.abs(expected).max())
