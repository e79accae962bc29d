"""Regression tests for the boundary-fuzz findings of issue 16, one block per finding.

Each test here failed before its fix: it states the contract (refuse with a clear error naming the argument, or
compute a defined value; never change state on a failed call) at the input the fuzzer found.
"""

import warnings

import numpy as np
import pytest

from refnsm import regularization as R


# ------------------------------------------------------------------------------------------ NaN/Inf let through
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_exc_ratio_sign_rejects_nonfinite(bad):
    w = np.array([1.0, -2.0, bad, 0.5])
    for fn in (lambda: R.exc_ratio_loss(w, sign_func="sign"),
               lambda: R.exc_ratio_loss_vjp(None, w, sign_func="sign")):
        with pytest.raises(ValueError, match=r"w: expected finite"):
            fn()
    reg = R.ExcRatioTargetRegularization({"w": w.copy()}, sign_func="sign")
    with pytest.raises(ValueError, match=r"params\['w'\]: expected finite"):
        reg.forward()


def test_sgd_rejects_nonfinite_params_and_overflowing_steps():
    with pytest.raises(ValueError, match=r"params\['w'\]: expected finite"):
        R.SGD({"w": np.array([1.0, np.inf])}, lr=0.1)
    w = np.array([1.0, 2.0])
    v = np.array([3.0])
    opt = R.SGD({"w": w, "v": v}, lr=1e300)
    w0, v0 = w.copy(), v.copy()
    with pytest.raises(ValueError, match=r"grads\['v'\]: .*overflows"):
        opt.step({"w": np.array([1.0, 1.0]), "v": np.array([1e300])})
    assert np.array_equal(w, w0) and np.array_equal(v, v0)  # nothing updated on failure
    w[0] = np.nan  # changed behind the optimiser's back
    with pytest.raises(ValueError, match=r"params\['w'\]: expected finite"):
        opt.step({"w": np.zeros(2)})


# ------------------------------------------------------------------------------------ NaN from valid input
from refnsm import spiking as S  # noqa: E402


def test_polynomial_non_integer_degree_refuses_negative_inputs():
    x = np.array([[1.0, -2.0], [0.5, 0.25]])
    y = np.array([[1.0, 1.0], [2.0, 0.0]])
    with pytest.raises(ValueError, match=r"x: the polynomial kernel with non-integer d = 1.5"):
        S.kernel_dot_product(x, y, "polynomial", 1.5)
    with pytest.raises(ValueError, match=r"x: the polynomial kernel with non-integer d"):
        S.kernel_dot_product_vjp(np.ones((2, 2)), x, y, "polynomial", 1.5)
    for fn in (S.spike_similarity_matrix, lambda X, *a: S.spike_similarity_matrix_vjp(np.ones((2, 2)), X, *a),
               lambda X, *a: S.spike_similar_loss(X, np.eye(2), "polynomial", "mse", *a[1:])):
        with pytest.raises(ValueError, match=r"spikes: the polynomial kernel with non-integer d"):
            fn(x, "polynomial", 1.5)
    # integer degrees and non-negative inputs stay defined, and match the direct formula
    assert np.array_equal(S.kernel_dot_product(x, y, "polynomial", 3), (x @ y.T) ** 3)
    xp = np.abs(x)
    np.testing.assert_allclose(S.kernel_dot_product(xp, y, "polynomial", 1.5), (xp @ y.T) ** 1.5, rtol=1e-15)


# ----------------------------------------------------------------------------------------- tiny valid values
@pytest.mark.parametrize("dtype,sigma", [(np.float64, 1e-300), (np.float32, 1e-30)])
def test_gaussian_sigma_whose_square_underflows_is_refused(dtype, sigma):
    x = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=dtype)
    for fn in (lambda: S.kernel_dot_product(x, x, "gaussian", sigma),
               lambda: S.kernel_dot_product_vjp(np.ones((2, 2), dtype), x, x, "gaussian", sigma),
               lambda: S.spike_similarity_matrix(x, "gaussian", sigma),
               lambda: S.spike_similar_loss_vjp(None, x, np.eye(2), "gaussian", "mse", sigma)):
        with pytest.raises(ValueError, match=r"sigma: 2 \* sigma\*\*2 underflows"):
            fn()
    # the smallest accepted sigma still gives a defined, finite kernel
    ok = float(np.sqrt(np.finfo(dtype).smallest_normal / 2)) * 1.01
    K = S.kernel_dot_product(x, x, "gaussian", ok)
    assert np.all(np.isfinite(K)) and K[0, 0] == 1 and K[0, 1] == 0


# ----------------------------------------------------------------------------- wrong answers without an error
def _ce_entry_points(x, t):
    yield lambda: S.temporal_efficient_training_cross_entropy(x, t)
    yield lambda: S.temporal_efficient_training_cross_entropy_vjp(None, x, t)
    yield lambda: S.temporal_efficient_training_cross_entropy_value_and_grad(x, t)
    yield lambda: S.time_mean_cross_entropy(x, t)
    yield lambda: S.time_mean_cross_entropy_vjp(None, x, t)
    yield lambda: S.tet_loss(x, t)
    yield lambda: S.tet_loss_vjp(None, x, t)
    yield lambda: S.TETLoss()(x, t)


def test_uint64_targets_do_not_wrap_onto_ignore_index():
    x = np.zeros((2, 3, 4))
    t = np.array([1, 2, 2**64 - 100], dtype=np.uint64)  # wraps to -100 = ignore_index in int64
    n = 0
    for fn in _ce_entry_points(x, t):
        with pytest.raises(ValueError, match=r"target: expected class indices that fit in int64"):
            fn()
        n += 1
    assert n == 8
    ok = np.array([1, 2, 3], dtype=np.uint64)
    assert S.tet_loss(x, ok) == S.tet_loss(x, ok.astype(np.int64))


@pytest.mark.parametrize("bad", [2**63, -(2**63) - 1, 2**64, 10**30])
def test_unbounded_integers_are_refused_with_the_argument_name(bad):
    x = np.zeros((2, 3, 4))
    t = np.array([1, 2, 3])
    with pytest.raises(ValueError, match=r"ignore_index: expected an integer in"):
        S.tet_loss(x, t, ignore_index=bad)
    with pytest.raises(ValueError, match=r"ignore_index: expected an integer in"):
        S.TETLoss(ignore_index=bad)


# truthiness: a flag must be a bool ("no" is truthy)
from refnsm import hopfield as H  # noqa: E402
from refnsm import linear as LIN  # noqa: E402
from refnsm import similarity as SIM  # noqa: E402
from refnsm.gradcheck import gradcheck  # noqa: E402


def _sum_sq(x):
    return float((x ** 2).sum())


def _sum_sq_vjp(g, x):
    return 2 * g * x


@pytest.mark.parametrize("call,name", [
    (lambda: H.HopfieldSynapse("s", (3, 3), 0.1, keep_mask="no", rng=0), "keep_mask"),
    (lambda: SIM.kkt_residual(np.eye(2), np.ones((1, 2)), np.ones((1, 2)), nonnegative="no"), "nonnegative"),
    (lambda: gradcheck(_sum_sq, _sum_sq_vjp, [np.ones(2)], raise_on_fail="no"), "raise_on_fail"),
    (lambda: H.load_patterns(np.zeros((3, 3)), np.ones((3, 2)), perm=[0, 1, 2], rng="junk"), "rng"),
    (lambda: LIN.Linear(3, 3, rng=True), "rng"),
])
def test_truthy_flags_and_junk_rng_are_refused(call, name):
    with pytest.raises(TypeError, match=rf"^{name}: expected"):
        call()


def test_similarity_backward_inputs_flag_is_a_bool():
    model = SIM.SimilarityMatching(SIM.Linear(3, 2, rng=0), 2, max_iterations=3)
    x = np.random.default_rng(0).standard_normal((4, 3))
    y = model(x)
    model.loss(x, y)
    grads = {k: v.copy() for k, v in model.grads.items()}
    with pytest.raises(TypeError, match=r"^inputs: expected a bool"):
        model.backward(inputs="no")
    assert all(np.array_equal(grads[k], model.grads[k]) for k in grads)  # nothing filled on failure


# --------------------------------------------------------------------------------------------- unclear errors
@pytest.mark.parametrize("call", [
    lambda: LIN.Linear(3, 3, rng=-1),
    lambda: SIM.Linear(3, 2, rng=-1),
    lambda: H.HopfieldSynapse("s", (3, 3), 0.1, rng=-1),
    lambda: R.dale((3, 3), 0.5, rng=-1),
    lambda: gradcheck(_sum_sq, _sum_sq_vjp, [np.ones(2)], rng=-1),
])
def test_negative_seed_is_named(call):
    with pytest.raises(ValueError, match=r"^rng: expected a non-negative int seed"):
        call()


@pytest.mark.parametrize("call", [
    lambda: LIN.Linear(3, 3, dtype="bogus"),
    lambda: SIM.Linear(3, 2, dtype="bogus"),
    lambda: SIM.Identity(dtype="bogus"),
    lambda: H.HopfieldSynapse("s", (3, 3), 0.1, dtype="bogus"),
    lambda: R.dale((3, 3), 0.5, dtype="bogus"),
    lambda: S.label_similarity_matrix(np.eye(2), dtype="bogus"),
])
def test_unknown_dtype_is_named(call):
    with pytest.raises(TypeError, match=r"^dtype: expected float32 or float64, got 'bogus'"):
        call()


def test_supervised_sm_names_its_own_label_arguments():
    enc = SIM.Linear(3, 2, rng=0)
    with pytest.raises(ValueError, match=r"^label_weight: expected shape \(2, 2\)"):
        SIM.SupervisedSimilarityMatching(enc, 2, 2, label_weight=np.ones((5, 5)))
    with pytest.raises(TypeError, match=r"^label_bias: expected a bool"):
        SIM.SupervisedSimilarityMatching(enc, 2, 2, label_bias="no")
    with pytest.raises(ValueError, match=r"^label_bias_value: given, but label_bias=False"):
        SIM.SupervisedSimilarityMatching(enc, 2, 2, label_bias_value=np.zeros(2))


@pytest.mark.parametrize("cls", ["SimilarityMatching", "MultiSimilarityMatching"])
def test_regularization_none_is_named(cls):
    enc = SIM.Linear(3, 2, rng=0)
    args = (enc,) if cls == "SimilarityMatching" else ([enc],)
    with pytest.raises(TypeError, match=r"^regularization: expected one of 'weight'"):
        getattr(SIM, cls)(*args, 2, regularization=None)


@pytest.mark.parametrize("kwargs,err,match", [
    (dict(eps="x"), TypeError, r"^eps: expected a real number"),
    (dict(eps=np.nan), ValueError, r"^eps: expected a finite number"),
    (dict(rtol=-1.0), ValueError, r"^rtol: expected a non-negative"),
    (dict(atol=np.inf), ValueError, r"^atol: expected a finite"),
    (dict(wrt=[0, 0]), ValueError, r"^wrt: expected distinct indices"),
    (dict(wrt=[1.5]), TypeError, r"^wrt: expected an integer"),
    (dict(wrt="0"), TypeError, r"^wrt: expected a sequence"),
    (dict(rng="junk"), TypeError, r"^rng: expected a numpy.random.Generator"),
    (dict(grad_out=np.ones(3)), ValueError, r"^grad_out: expected fun's output shape"),
])
def test_gradcheck_validates_its_own_arguments(kwargs, err, match):
    calls = []

    def fun(x):
        calls.append(1)
        return x * 2

    with pytest.raises(err, match=match):
        gradcheck(fun, lambda g, x: 2 * g, [np.ones(2)], **kwargs)
    if err is TypeError or "grad_out" not in kwargs:
        assert not calls  # refused before fun ran


def test_gradcheck_refuses_bad_callables_and_inputs():
    with pytest.raises(TypeError, match=r"^fun: expected a callable"):
        gradcheck("f", _sum_sq_vjp, [np.ones(2)])
    with pytest.raises(TypeError, match=r"^vjp: expected a callable"):
        gradcheck(_sum_sq, None, [np.ones(2)])
    with pytest.raises(TypeError, match=r"^inputs: expected a sequence"):
        gradcheck(_sum_sq, _sum_sq_vjp, np.ones(2))
    with pytest.raises(ValueError, match=r"^inputs\[0\]: expected finite"):
        gradcheck(_sum_sq, _sum_sq_vjp, [np.array([1.0, np.nan])])


# energy_vjp's beta-gradient at extreme but valid beta
def _dbeta_exact(X, W, beta):
    """sum_b (Ent(p_b) - log H) / beta^2 in extended arithmetic (mpmath), p_b = softmax(beta W^T x_b)."""
    import mpmath as mp

    # KL(p || uniform) ~ beta^2: the digits must cover log H down to beta^2 * log H
    mp.mp.dps = 40 + 2 * max(0, int(-np.log10(beta)))
    b = mp.mpf(beta)
    total = mp.mpf(0)
    for z in X @ W:
        e = [mp.exp(b * mp.mpf(float(v))) for v in z]
        Z = mp.fsum(e)
        ent = -mp.fsum((ei / Z) * mp.log(ei / Z) for ei in e)
        total += (ent - mp.log(len(z))) / b ** 2
    return float(total)


@pytest.mark.parametrize("beta", [1e300, 1e10, 10.0, 1.0, 2e-3, 5e-4, 1e-5, 1e-100, 1e-300])
def test_energy_vjp_beta_gradient_is_finite_and_accurate_at_extreme_beta(beta):
    rng = np.random.default_rng(3)
    X, W = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    gX, gW, gbeta = H.energy_vjp(None, X, W, beta)
    assert np.isfinite(gbeta) and np.all(np.isfinite(gX)) and np.all(np.isfinite(gW))
    exact = _dbeta_exact(X, W, beta)
    np.testing.assert_allclose(gbeta, exact, rtol=1e-9, atol=1e-300)


# ----------------------------------------------------------------------------------- state changed by failed calls
def _snapshot(obj):
    import copy
    return copy.deepcopy(obj.__dict__)


def _same_state(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_state(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, np.random.Generator):
        return a.bit_generator.state == b.bit_generator.state
    return True  # objects without array state (encoders, hooks) are compared through their dicts above


def test_l0_effective_W_vjp_validates_before_drawing_noise():
    m = LIN.L0Linear(3, 2, rng=0)
    state = m.rng.bit_generator.state
    with pytest.raises(ValueError, match=r"^grad_W: expected shape \(3, 2\)"):
        m.effective_W_vjp(np.ones((2, 2)))
    assert m.rng.bit_generator.state == state


@pytest.mark.parametrize("fused", [True, False])
def test_similarity_train_step_and_loss_refuse_an_empty_batch_before_any_work(fused):
    model = SIM.SimilarityMatching(SIM.Linear(3, 2, rng=0), 2, max_iterations=3)
    if not fused:
        model.register_iteration_hook("post", lambda m: None)  # takes the general path
    x = np.random.default_rng(0).standard_normal((4, 3))
    model.train_step(x, lr=0.1)
    before = _snapshot(model)
    with pytest.raises(ValueError, match=r"^x: train_step needs a non-empty batch"):
        model.train_step(np.zeros((0, 3)), lr=0.1)
    with pytest.raises(ValueError, match=r"^lr_M: expected a non-negative"):
        model.train_step(x, lr=0.1, lr_M=-1.0)
    with pytest.raises(ValueError, match=r"^x: loss needs a non-empty batch"):
        model.loss(np.zeros((0, 3)), np.zeros((0, 2)))
    assert _same_state(before, _snapshot(model))


# ------------------------------------------------------------------------------------------------ unbounded work
from refnsm.hopfield import _kernels as HK  # noqa: E402


def _eager(model, S, arr, n_sweeps, order, seed, **kw):
    """The pre-fix algorithm: every sweep's order drawn first, one kernel call (the reference for bitwise equality)."""
    N = S.shape[1]
    gen = np.random.default_rng(seed)
    if order == "sequential":
        orders = np.tile(np.arange(N, dtype=np.int64), (n_sweeps, 1))
    else:
        orders = np.stack([gen.permutation(N) for _ in range(n_sweeps)]).astype(np.int64)
    out = np.empty_like(S)
    if model == "classical":
        HK.classical_async(S, arr, np.zeros(N), orders, out, np.empty(S.shape[0], np.int64))
    else:
        HK.dense_async(S, arr, kw["kind"], kw["n"], orders, np.empty(arr.shape[1]), out, np.empty(S.shape[0], np.int64))
    return out


@pytest.mark.parametrize("order", ["random", "sequential"])
@pytest.mark.parametrize("n_sweeps", [1, 3, 5, 40])
def test_async_updates_draw_orders_lazily_with_bitwise_the_same_result(order, n_sweeps):
    rng = np.random.default_rng(7)
    N, P, B = 24, 3, 6
    Xi = np.where(rng.standard_normal((N, P)) > 0, 1.0, -1.0)
    S = np.where(rng.standard_normal((B, N)) > 0, 1.0, -1.0)
    W = H.hebbian_weights(Xi)
    got = H.classical_update(S, W, mode="async", n_sweeps=n_sweeps, order=order, rng=11)
    assert np.array_equal(got, _eager("classical", S, W, n_sweeps, order, 11))
    got = H.dense_update(S, Xi, n=3, n_sweeps=n_sweeps, order=order, rng=11)
    assert np.array_equal(got, _eager("dense", S, Xi, n_sweeps, order, 11, kind=0, n=3))


def test_huge_n_sweeps_costs_only_the_sweeps_run():
    import tracemalloc

    rng = np.random.default_rng(1)
    N = 64
    Xi = np.where(rng.standard_normal((N, 2)) > 0, 1.0, -1.0)
    S = np.where(rng.standard_normal((3, N)) > 0, 1.0, -1.0)
    W = H.hebbian_weights(Xi)
    H.classical_update(S, W, mode="async", n_sweeps=2)  # compile outside the measurement
    H.dense_update(S, Xi, n_sweeps=2)
    tracemalloc.start()
    for mode in ("async", "sync"):
        H.classical_update(S, W, mode=mode, n_sweeps=2**63 - 1, rng=0)
    H.dense_update(S, Xi, n_sweeps=2**63 - 1, rng=0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20  # the eager version allocated n_sweeps * N * 8 bytes (here: impossible)
    with pytest.raises(ValueError, match=r"^n_sweeps: expected an integer in \[1, "):
        H.classical_update(S, W, mode="async", n_sweeps=2**64)


def test_update_order_and_rng_validated_in_every_mode():
    S = np.ones((1, 4))
    W = H.hebbian_weights(np.ones((4, 1)))
    with pytest.raises(ValueError, match=r"^order: expected one of"):
        H.classical_update(S, W, mode="sync", order="bogus")
    with pytest.raises(TypeError, match=r"^rng: expected"):
        H.classical_update(S, W, mode="sync", rng="junk")


# ------------------------------------------------------------------------------------------------ overflow policy
@pytest.mark.parametrize("dtype,big", [(np.float64, 2.0 ** 996), (np.float32, 2.0 ** 100)])
def test_cosine_similarity_is_scale_invariant_at_huge_inputs(dtype, big):
    """The linear-kernel (cosine) similarity and its loss are computed from exactly rescaled inputs: at X * 2^k the
    values are those at X (up to the epsilon term, negligible at both scales) and the gradients those at X / 2^k."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((4, 6)).astype(dtype)
    X[2] = 0.0  # a silent row: S row and column 0, as at any scale
    Y = np.eye(4)[:, :2].astype(dtype)
    Xb = X * dtype(big)
    S1, Sb = S.spike_similarity_matrix(X), S.spike_similarity_matrix(Xb)
    assert np.all(np.isfinite(Sb)) and np.array_equal(Sb[2], np.zeros(4, dtype))
    np.testing.assert_allclose(Sb, S1, rtol=2e-7 if dtype == np.float32 else 1e-7, atol=0)
    G = rng.standard_normal((4, 4)).astype(dtype)
    gb = S.spike_similarity_matrix_vjp(G, Xb)
    assert np.all(np.isfinite(gb))
    for loss in ("mse", "l1"):
        vb, gl = S.spike_similar_loss_value_and_grad(Xb, Y, "linear", loss)
        assert np.isfinite(vb) and np.all(np.isfinite(gl))
        np.testing.assert_allclose(vb, S.spike_similar_loss(X, Y, "linear", loss), rtol=1e-6)


@pytest.mark.parametrize("call", [
    lambda: S.kernel_dot_product(np.full((2, 3), 1e300), np.full((2, 3), 1e300)),
    lambda: S.spike_similarity_matrix(np.full((2, 3), 1e300), "polynomial", 2),
    lambda: R.weights_distance(np.full(3, 1e308), np.full(3, -1e308), 1),
    lambda: H.energy(np.full((1, 3), 1e300), np.full((3, 2), 1e300), 1.0),
    lambda: LIN.Linear(3, 2).with_params(weight=np.full((2, 3), 1e300)).forward(np.full((1, 3), 1e300)),
])
@pytest.mark.parametrize("warnings_as", ["error", "ignore"])
def test_overflow_elsewhere_raises_naming_the_function(call, warnings_as):
    import warnings

    from refnsm._checks import NonFiniteResultError

    with warnings.catch_warnings():
        warnings.simplefilter(warnings_as, RuntimeWarning)
        with pytest.raises(NonFiniteResultError, match=r"^[A-Za-z_.]+: .*overflow"):
            call()


@pytest.mark.parametrize("scale", [1e-300, 1e-160, 1.0, 1e160, 1e300])
def test_vector_2norm_has_no_intermediate_overflow(scale):
    x = np.array([3.0, -4.0, 0.0]) * scale
    v = R.lp_norm(x, 2)
    assert np.isfinite(v)
    np.testing.assert_allclose(v, 5.0 * scale, rtol=1e-15)


@pytest.mark.parametrize("fused", [True, False])
def test_similarity_train_step_that_diverges_leaves_the_parameters_unchanged(fused):
    from refnsm._checks import NonFiniteResultError

    model = SIM.SimilarityMatching(SIM.Linear(3, 2, rng=0), 2, max_iterations=5)
    if not fused:
        model.register_iteration_hook("post", lambda m: None)
    params = {k: v.copy() for k, v in model.params.items()}
    import warnings

    with warnings.catch_warnings(), pytest.raises(NonFiniteResultError, match=r"train_step: the step diverged"):
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow warning is not the contract
        model.train_step(np.full((4, 3), 1e300), lr=0.1)
    assert all(np.array_equal(params[k], model.params[k]) for k in params)


# ------------------------------------------------------------------------------ found by the hypothesis layer
def test_solve_nsm_without_output_channels_returns_the_empty_solution():
    # M of shape (0, 0) reached scipy's nnls with zero columns: "double free detected", the interpreter aborted
    # (run in a child so that a regression fails this test instead of killing the suite)
    import subprocess
    import sys

    code = ("import numpy as np; from refnsm import similarity as s; "
            "y = s.solve_nsm(np.zeros((0, 0), np.float32), np.zeros((3, 0), np.float32)); "
            "assert y.shape == (3, 0) and y.dtype == np.float32, (y.shape, y.dtype); print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-1000:]


@pytest.mark.parametrize("fn", ["matrix", "vjp"])
def test_householder_float32_refuses_reflectors_whose_norm_underflows_float32(fn):
    # |v|^2 ~ 1e-60 is inside the float64 range [2**-500, 2**500] but underflows the float32 kernels
    # (ZeroDivisionError from inside the kernel before the fix)
    from refnsm import linear as L

    U = (np.triu(np.random.default_rng(0).standard_normal((4, 4))) * 1e-30).astype(np.float32)
    call = (lambda: L.householder_matrix(U)) if fn == "matrix" else (
        lambda: L.householder_matrix_vjp(np.ones((4, 4), np.float32), np.eye(4, dtype=np.float32), U))
    with pytest.raises(ValueError, match=r"^U: Householder vector U\[0, 0:\] is of squared norm .*2\*\*-60"):
        call()
    Q = L.householder_matrix(U.astype(np.float64))  # the same vectors in float64 are fine (scale-invariant)
    Q32 = L.householder_matrix((U.astype(np.float64) * 1e30).astype(np.float32))
    assert Q32.dtype == np.float32 and np.allclose(Q32, Q, atol=1e-5)


def test_load_patterns_errors_name_the_argument():
    from refnsm import hopfield as H

    with pytest.raises(ValueError, match=r"^patterns: expected a non-empty array"):
        H.load_patterns(np.zeros((1, 1)), np.zeros((1, 0)), rng=0)


def test_float32_kept_by_the_classical_baselines_and_principal_angles():
    from refnsm import hopfield as H
    from refnsm import similarity as SIM

    rng = np.random.default_rng(0)
    Xi = np.where(rng.standard_normal((6, 2)) > 0, 1.0, -1.0)
    S = np.where(rng.standard_normal((3, 6)) > 0, 1.0, -1.0)
    W = H.hebbian_weights(Xi)
    f = np.float32
    got = {"hebbian_weights": H.hebbian_weights(Xi.astype(f)),
           "classical_energy": H.classical_energy(S.astype(f), W.astype(f)),
           "classical_update": H.classical_update(S.astype(f), W.astype(f), mode="async", rng=0),
           "classical_update[1-D]": H.classical_update(S[0].astype(f), W.astype(f)),
           "dense_energy": H.dense_energy(S.astype(f), Xi.astype(f)),
           "dense_update": H.dense_update(S.astype(f), Xi.astype(f), rng=0),
           "principal_angle_cosines": SIM.principal_angle_cosines(rng.standard_normal((5, 2)).astype(f),
                                                                 rng.standard_normal((5, 2)).astype(f))}
    assert {k: v.dtype for k, v in got.items()} == {k: np.dtype(f) for k in got}
    # float64 (and mixed) inputs are unchanged: float64 out, the values the float32 results round
    ref = {"hebbian_weights": H.hebbian_weights(Xi), "classical_energy": H.classical_energy(S, W),
           "classical_update": H.classical_update(S, W, mode="async", rng=0),
           "dense_energy": H.dense_energy(S, Xi), "dense_update": H.dense_update(S, Xi, rng=0)}
    for k, v in ref.items():
        assert v.dtype == np.float64
        np.testing.assert_array_equal(got[k], v.astype(f))
    assert H.classical_energy(S.astype(f), W).dtype == np.float64


@pytest.mark.parametrize("dtype,scale", [(np.float64, 1e-160), (np.float64, 1e160), (np.float32, 1e-25)])
def test_hprod_refuses_reflectors_whose_squared_norm_leaves_the_range(dtype, scale):
    # Hprod was finite at |u|^2 ~ 4e-320 (float64) while Hprod_vjp returned NaN/Inf (it divides by |u|^4): the
    # reflector is scale-invariant, so both now refuse the vector the way householder_matrix does
    from refnsm import linear as L

    x, g, u = np.ones((2, 4), dtype), np.ones((2, 4), dtype), np.full(4, scale, dtype)
    for call in (lambda: L.Hprod(x, u, 3), lambda: L.Hprod_vjp(g, x, u, 3)):
        with pytest.raises(ValueError, match=r"^u: Householder vector u\[n-k:\] is of squared norm"):
            call()
    y = L.Hprod(x, np.full(4, 1.0, dtype), 3)  # the same reflector at unit scale
    gx, gu = L.Hprod_vjp(g, x, np.full(4, 1.0, dtype), 3)
    assert y.dtype == gx.dtype == gu.dtype == dtype and np.isfinite(gu).all()


def _matmul_flag_warns(x):
    # what NumPy does when a BLAS kernel raises the invalid flag on finite operands (some OpenBLAS kernels do)
    warnings.warn("invalid value encountered in matmul", RuntimeWarning, stacklevel=1)
    return x


@pytest.mark.parametrize("guard", ["finite_result", "finite_result_verified"])
def test_blas_invalid_flag_on_finite_operands(guard):
    # a CI machine raised "invalid value encountered in matmul" in Hprod on a float32 [3, 5] @ [5] product of
    # entries below 5: under -W error the guard names the flag as a possible cause instead of claiming overflow,
    # and with the warning not an error the call returns its (checked) result
    from refnsm import _checks

    x = np.ones(3)
    fn = (_checks.finite_result(_matmul_flag_warns) if guard == "finite_result"
          else _checks.finite_result_verified(lambda x: (_matmul_flag_warns(x), False)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(_checks.NonFiniteResultError,
                           match=r"invalid value encountered in matmul.*BLAS raised the invalid flag on finite operands"):
            fn(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert fn(x) is x


def test_the_suite_ignores_only_the_blas_invalid_flag():
    # pyproject.toml's filters: NumPy's report of the BLAS flag is not an error, refnsm's other RuntimeWarnings are
    kw = {"category": RuntimeWarning, "filename": "refnsm/linear/functional.py", "lineno": 1,
          "module": "refnsm.linear.functional"}
    with warnings.catch_warnings(record=True) as rec:
        warnings.warn_explicit("invalid value encountered in matmul", **kw)
    assert rec == []
    for msg in ("overflow encountered in matmul", "invalid value encountered in divide"):
        with pytest.raises(RuntimeWarning, match=msg):
            warnings.warn_explicit(msg, **kw)
