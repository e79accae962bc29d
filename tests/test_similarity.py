"""Tests of refnsm.similarity: encoders, loss and gradients, fast dynamics, solvers, rules, metrics, bad input."""

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refnsm.gradcheck import gradcheck
from refnsm.similarity import (Conv2d, Identity, Linear, MultiSimilarityMatching, SimilarityMatching,
                               SupervisedSimilarityMatching, best_permutation_confusion, clustering_accuracy,
                               hebbian_update, kkt_residual, principal_angle_cosines, similarity_matching_cost,
                               solve_nsm, solve_sm, subspace_error)
from naive.similarity import naive_conv2d, naive_loss, naive_dynamics
from helpers import rel


def spd(rng, m, lo=0.5, hi=1.5):
    q, _ = np.linalg.qr(rng.standard_normal((m, m)))
    return (q * rng.uniform(lo, hi, m)) @ q.T


# ------------------------------------------------------------------------------------------------ gradcheck helpers
def model_gradcheck(model, xs, y, keys=None, wrt_inputs=()):
    """gradcheck of model.loss w.r.t. the named parameters and the listed input positions."""
    keys = list(model.params) if keys is None else keys
    xs = list(xs)

    def setp(vals):
        for k, v in zip(keys, vals[:len(keys)]):
            model.params[k][...] = v
        args = list(xs)
        for i, v in zip(wrt_inputs, vals[len(keys):]):
            args[i] = v
        return args

    orig = [model.params[k].copy() for k in keys]

    def f(*vals):
        args = setp(vals)
        return model.loss(*args, y)

    def vjp(g, *vals):
        args = setp(vals)
        model.loss(*args, y)
        gx = model.backward(g)
        out = tuple(model.grads[k].copy() for k in keys) + tuple(gx[i] for i in wrt_inputs)
        return out if len(out) > 1 else out[0]

    inputs = orig + [xs[i] for i in wrt_inputs]
    try:
        gradcheck(f, vjp, inputs, raise_on_fail=True, rtol=1e-6, atol=1e-9)
    finally:
        setp(orig + [xs[i] for i in wrt_inputs])


def random_M(rng, m):
    return spd(rng, m)


# ------------------------------------------------------------------------------------------------ encoders
@pytest.mark.parametrize("bias", [True, False])
def test_linear_encoder_forward_and_vjp(rng, bias):
    enc = Linear(4, 3, bias=bias, rng=rng)
    x = rng.standard_normal((5, 4))
    u = enc(x)
    ref = x @ enc.params["weight"].T + (enc.params["bias"] if bias else 0)
    assert rel(u, ref) <= 1e-12
    keys = list(enc.params)

    def f(x_, *ps):
        e = copy.deepcopy(enc)
        for k, p in zip(keys, ps):
            e.params[k] = p
        return e(x_)

    def vjp(g, x_, *ps):
        e = copy.deepcopy(enc)
        for k, p in zip(keys, ps):
            e.params[k] = p
        gx, grads = e.vjp(g, x_)
        return (gx,) + tuple(grads[k] for k in keys)

    gradcheck(f, vjp, [x] + [enc.params[k] for k in keys], raise_on_fail=True)


@pytest.mark.parametrize("stride,padding,dilation,bias", [(2, 1, 2, True), (1, 0, 1, False), ((2, 1), (0, 1), (1, 2), True)])
def test_conv_encoder_naive_twin_and_vjp(rng, stride, padding, dilation, bias):
    enc = Conv2d(2, 3, (3, 2), stride=stride, padding=padding, dilation=dilation, bias=bias, rng=rng)
    x = rng.standard_normal((2, 2, 7, 6))
    pair = lambda v: v if isinstance(v, tuple) else (v, v)
    u = enc(x)
    ref = naive_conv2d(x, enc.params["weight"], enc.params.get("bias"), pair(stride), pair(padding), pair(dilation))
    assert u.shape == ref.shape
    assert rel(u, ref) <= 1e-12
    keys = list(enc.params)

    def f(x_, *ps):
        return naive_conv2d(x_, ps[0], ps[1] if bias else None, pair(stride), pair(padding), pair(dilation))

    def vjp(g, x_, *ps):
        e = copy.deepcopy(enc)
        for k, p in zip(keys, ps):
            e.params[k] = p
        gx, grads = e.vjp(g, x_)
        return (gx,) + tuple(grads[k] for k in keys)

    gradcheck(f, vjp, [x] + [enc.params[k] for k in keys], raise_on_fail=True)


def test_encoder_stateful_backward_and_identity(rng):
    enc = Linear(3, 2, rng=rng)
    x = rng.standard_normal((4, 3))
    enc.forward(x)
    g = rng.standard_normal((4, 2))
    gx = enc.backward(g)
    assert rel(gx, g @ enc.params["weight"]) <= 1e-15
    assert rel(enc.grads["weight"], g.T @ x) <= 1e-15
    ident = Identity()
    z = rng.standard_normal((2, 3, 4))
    assert np.array_equal(ident(z), z)
    gx, grads = ident.vjp(z * 2, z)
    assert np.array_equal(gx, z * 2) and grads == {}


def test_encoders_float32_kept(rng):
    x = rng.standard_normal((2, 1, 6, 6)).astype(np.float32)
    enc = Conv2d(1, 2, 3, dtype=np.float32, rng=0)
    u = enc(x)
    assert u.dtype == np.float32
    gx, grads = enc.vjp(np.ones_like(u), x)
    assert gx.dtype == np.float32 and grads["weight"].dtype == np.float32
    ref = naive_conv2d(x.astype(np.float64), enc.params["weight"].astype(np.float64),
                       enc.params["bias"].astype(np.float64), (1, 1), (0, 0), (1, 1))
    assert rel(u, ref) <= 1e-5


# ------------------------------------------------------------------------------------------------ loss: naive twin + gradcheck
def _sm(rng, reg="weight", bias=True, n=4, m=3, **kw):
    enc = Linear(n, m, bias=bias, rng=rng)
    model = SimilarityMatching(enc, m, regularization=reg, **kw)
    model.params["competitor.weight"][...] = random_M(rng, m)
    return model


@pytest.mark.parametrize("reg", ["weight", "whiten", "none"])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_loss_naive_twin_and_gradcheck(rng, reg, bias):
    model = _sm(rng, reg, bias)
    x = rng.standard_normal((6, 4))
    y = rng.standard_normal((6, 3))
    u = model.encoder(x)
    ref = naive_loss(model.M, [u], y, [reg], [list(model.encoder.params.values())])
    assert abs(model.loss(x, y) - ref) <= 1e-12 * abs(ref)
    model_gradcheck(model, [x], y, wrt_inputs=[0])


@pytest.mark.parametrize("reg", ["weight", "whiten"])
def test_conv_loss_gradcheck(rng, reg):
    enc = Conv2d(2, 3, 3, stride=2, padding=1, dilation=2, bias=True, rng=rng)
    model = SimilarityMatching(enc, 3, regularization=reg, iteration_projection="relu")
    model.params["competitor.weight"][...] = random_M(rng, 3)
    x = rng.standard_normal((2, 2, 7, 7))
    y = np.abs(rng.standard_normal(enc(x).shape))
    ref = naive_loss(model.M, [enc(x)], y, [reg], [list(enc.params.values())])
    assert abs(model.loss(x, y) - ref) <= 1e-12 * abs(ref)
    model_gradcheck(model, [x], y, wrt_inputs=[0])


@pytest.mark.parametrize("label_bias", [True, False])
def test_supervised_conv_loss_gradcheck(rng, label_bias):
    enc = Conv2d(1, 3, 3, stride=2, padding=1, dilation=2, rng=rng)
    model = SupervisedSimilarityMatching(enc, 4, 3, label_bias=label_bias, iteration_projection="relu", rng=rng)
    model.params["competitor.weight"][...] = random_M(rng, 3)
    x = rng.standard_normal((3, 1, 6, 6))
    lab = np.eye(4)[[0, 2, 3]]
    u = enc(x)
    y = np.abs(rng.standard_normal(u.shape))
    l = model.label_encoder(lab)
    lexp = np.broadcast_to(l[:, :, None, None], u.shape)
    ref = naive_loss(model.M, [u, lexp], y, ["weight", "whiten"], [list(enc.params.values()), []])
    assert abs(model.loss(x, lab, y) - ref) <= 1e-12 * abs(ref)
    model_gradcheck(model, [x, lab], y, wrt_inputs=[0, 1])
    # without labels only the image encoder takes part
    ref0 = naive_loss(model.M, [u], y, ["weight"], [list(enc.params.values())])
    assert abs(model.loss(x, y) - ref0) <= 1e-12 * abs(ref0)


@pytest.mark.parametrize("compat", [None, "pynsm"])
@pytest.mark.parametrize("regs", [("whiten", "weight"), ("weight", "whiten"), ("whiten", "none")])
def test_two_encoder_loss_gradcheck(rng, compat, regs):
    e0, e1 = Linear(4, 3, rng=rng), Linear(2, 3, bias=False, rng=rng)
    model = MultiSimilarityMatching([e0, e1], 3, regularization=regs, compat=compat)
    model.params["competitor.weight"][...] = random_M(rng, 3)
    x0, x1 = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    y = rng.standard_normal((5, 3))
    model_gradcheck(model, [x0, x1], y, wrt_inputs=[0, 1])
    model_gradcheck(model, [None, x1], y, wrt_inputs=[1])
    u0, u1 = e0(x0), e1(x1)
    P = [list(e0.params.values()), list(e1.params.values())]
    if compat is None:
        ref = naive_loss(model.M, [u0, u1], y, regs, P)
        ref_skip = naive_loss(model.M, [u1], y, regs[1:], P[1:])
    else:  # pynsm: encoding 0 overwritten by the sum; regularizers zipped with the active encodings
        ref = naive_loss(model.M, [u0, u1], y, [], [])
        ref += sum(2 * np.mean(u**2) if r == "whiten" else (sum(np.sum(p**2) for p in ps) * 2 / 3 if r == "weight" else 0)
                   for u, r, ps in zip([u0 + u1, u1], regs, P))
        ref_skip = naive_loss(model.M, [u1], y, [], [])
        ref_skip += 2 * np.mean(u1**2) if regs[0] == "whiten" else (sum(np.sum(p**2) for p in P[0]) * 2 / 3 if regs[0] == "weight" else 0)
    assert abs(model.loss(x0, x1, y) - ref) <= 1e-12 * abs(ref)
    assert abs(model.loss(None, x1, y) - ref_skip) <= 1e-12 * abs(ref_skip)


def test_compat_only_changes_the_buggy_cases(rng):
    e0, e1 = Linear(4, 3, rng=rng), Linear(2, 3, rng=rng)
    a = MultiSimilarityMatching([e0, e1], 3, regularization=("weight", "whiten"))
    b = MultiSimilarityMatching([copy.deepcopy(e0), copy.deepcopy(e1)], 3, regularization=("weight", "whiten"),
                                compat="pynsm")
    x0, x1, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 2)), rng.standard_normal((5, 3))
    assert a.loss(x0, x1, y) == b.loss(x0, x1, y)  # supervised-style defaults: no bug
    c = MultiSimilarityMatching([e0, e1], 3, regularization=("whiten", "none"))
    d = MultiSimilarityMatching([e0, e1], 3, regularization=("whiten", "none"), compat="pynsm")
    assert abs(c.loss(x0, x1, y) - d.loss(x0, x1, y)) > 1e-3  # whiten on the aliased sum


def test_loss_example_value_from_spec(rng):
    # pynsm's loss: SM, linear, "whiten", eta = 1, M = I, one step gives y = Wx and then L = -1 exactly
    model = SimilarityMatching(Linear(4, 3, bias=False, rng=rng), 3, regularization="whiten", max_iterations=1)
    x = rng.standard_normal((5, 4))
    y = model(x)
    assert rel(y, model.encoder(x)) <= 1e-15
    assert abs(model.loss(x, y) + 1.0) <= 1e-15


def test_grad_M_formula(rng):
    model = _sm(rng)
    x, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    model.loss(x, y)
    model.backward()
    ref = 2 / y.size * y.T @ y - 2 / 3 * model.M
    assert rel(model.grads["competitor.weight"], ref) <= 1e-14


# ------------------------------------------------------------------------------------------------ fast dynamics
@pytest.mark.parametrize("relu", [False, True])
def test_dynamics_naive_twin_linear_and_conv(rng, relu):
    model = _sm(rng, iteration_projection="relu" if relu else None, max_iterations=17, iteration_lr=0.7)
    x = rng.standard_normal((5, 4))
    y = model(x)
    assert rel(y, naive_dynamics(model.M, model.encoder(x), 0.7, relu, 17)) <= 1e-12
    assert model.diagnostics.iterations == 17 and not model.diagnostics.converged
    enc = Conv2d(2, 3, 3, rng=rng)
    cm = SimilarityMatching(enc, 3, iteration_projection="relu" if relu else None, max_iterations=9)
    cm.params["competitor.weight"][...] = random_M(rng, 3)
    xc = rng.standard_normal((2, 2, 6, 5))
    assert rel(cm(xc), naive_dynamics(cm.M, enc(xc), 1.0, relu, 9)) <= 1e-12


def test_sm_converges_to_exact_solution(rng):
    model = _sm(rng, tol=1e-13, max_iterations=2000)
    x = rng.standard_normal((8, 4))
    y = model(x)
    d = model.diagnostics
    assert d.converged and d.iterations < 2000 and d.max_change < 1e-13
    assert rel(y, model.solve(x)) <= 1e-10
    assert rel(y, np.linalg.solve(model.M, model.encoder(x).T).T) <= 1e-10
    assert d.residual <= 1e-11


def test_nsm_converges_to_kkt_point(rng):
    model = _sm(rng, tol=1e-13, max_iterations=3000, iteration_projection="relu")
    x = rng.standard_normal((20, 4))
    y = model(x)
    b = model.encoder(x)
    assert (y >= 0).all() and (y == 0).any()  # some constraints active
    g = y @ model.M.T - b
    assert g.min() >= -1e-11 and np.max(np.abs(y * g)) <= 1e-11
    assert model.diagnostics.residual <= 1e-11
    assert abs(kkt_residual(model.M, b, y) - model.diagnostics.residual) <= 1e-14
    assert rel(y, model.solve(x)) <= 1e-9
    assert rel(y, solve_nsm(model.M, b)) <= 1e-9


def test_tol_rule_and_zero_iterations(rng):
    model = _sm(rng, tol=1e9)
    x = rng.standard_normal((3, 4))
    model(x)
    assert model.diagnostics.iterations == 2 and model.diagnostics.converged  # pynsm: at least two updates
    model.max_iterations = 0
    y = model(x)
    assert np.array_equal(y, np.zeros((3, 3))) and model.diagnostics.iterations == 0 and model.iteration_idx == -1


def test_hooks_order_early_stop_and_python_path(rng):
    model = _sm(rng, max_iterations=10, iteration_projection="relu")
    x = rng.standard_normal((3, 4))
    y_fast = model(x)
    log = []
    model.register_iteration_hook("pre", lambda mdl: log.append("pre"))
    model.register_iteration_hook("iteration", lambda mdl: log.append(mdl.iteration_idx))
    model.register_iteration_hook("post", lambda mdl: log.append("post"))
    y = model(x)
    assert log == ["pre"] + list(range(10)) + ["post"]
    assert rel(y, y_fast) == 0.0  # the hook path and the Numba loop agree bitwise
    model.register_iteration_hook("iteration", lambda mdl: mdl.iteration_idx == 3)
    log.clear()
    model(x)
    assert model.diagnostics.iterations == 4 and model.diagnostics.stopped_by_hook
    assert log == ["pre", 0, 1, 2, 3, "post"]
    snap = []
    model.hooks["iteration"] = [lambda mdl: snap.append(mdl.y.copy())]
    model(x)
    assert rel(snap[-1], y) == 0.0 and len(snap) == 10


def test_callable_projection_matches_relu(rng):
    a = _sm(rng, iteration_projection="relu", max_iterations=12)
    b = copy.deepcopy(a)
    b.iteration_projection = lambda z: np.maximum(z, 0.0)
    x = rng.standard_normal((4, 4))
    assert rel(b(x), a(x)) == 0.0
    assert abs(a.diagnostics.residual - b.diagnostics.residual) <= 1e-15


def test_float32_kept_through_forward_loss_backward(rng):
    enc = Linear(4, 3, rng=0, dtype=np.float32)
    model = SimilarityMatching(enc, 3, iteration_projection="relu")
    x = rng.standard_normal((5, 4)).astype(np.float32)
    y = model(x)
    assert y.dtype == np.float32
    m64 = SimilarityMatching(Linear(4, 3, rng=0), 3, iteration_projection="relu")
    assert rel(y, m64(x.astype(np.float64))) <= 1e-5
    L = model.loss(x, y)
    assert L.dtype == np.float32
    model.backward()
    assert all(g.dtype == np.float32 for g in model.grads.values())
    model.step(0.1)
    assert all(p.dtype == np.float32 for p in model.params.values())


def test_inputs_never_modified(rng):
    x0, x1 = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    c0, c1 = x0.copy(), x1.copy()
    model = MultiSimilarityMatching([Identity(), Identity()], 3, regularization="whiten", compat="pynsm")
    y = model(x0, x1)
    model.loss(x0, x1, y)
    model.backward()
    assert np.array_equal(x0, c0) and np.array_equal(x1, c1)  # pynsm overwrites x0 here (docs/upstream_differences.md)


# ------------------------------------------------------------------------------------------------ update rules
def test_step_is_sgd_with_ascent_on_M(rng):
    model = _sm(rng, tau=0.3)
    x = rng.standard_normal((6, 4))
    y = model(x)
    model.loss(x, y)
    model.backward()
    before = model.state_dict()
    grads = {k: v.copy() for k, v in model.grads.items()}
    model.step(0.05)
    for k in before:
        sign, lr = (1.0, 0.05 / 0.3) if k == "competitor.weight" else (-1.0, 0.05)
        assert rel(model.params[k], before[k] + sign * lr * grads[k]) <= 1e-15


def test_hebbian_rules_equal_step(rng):
    model = _sm(rng, tau=0.5, iteration_projection="relu")
    x = rng.standard_normal((7, 4))
    W, bvec, M = (model.params[k].copy() for k in ("encoders.0.weight", "encoders.0.bias", "competitor.weight"))
    y, _ = model.train_step(x, lr=0.02)
    W2, b2, M2 = hebbian_update(W, M, x, y, 0.02, 0.5, bias=bvec)
    assert rel(model.params["encoders.0.weight"], W2) <= 1e-13
    assert rel(model.params["encoders.0.bias"], b2) <= 1e-13
    assert rel(model.params["competitor.weight"], M2) <= 1e-13


def test_train_step_equals_forward_loss_backward_step_and_survives_deepcopy(rng):
    a = _sm(rng, iteration_projection="relu")
    b = a.copy()  # deepcopy keeps the update rule (pynsm's hook is lost)
    x = rng.standard_normal((5, 4))
    for _ in range(3):
        ya, La = a.train_step(x, lr=0.1)
        yb = b(x)
        Lb = b.loss(x, yb)
        b.backward()
        b.step(0.1)
        assert rel(ya, yb) <= 1e-13 and abs(La - Lb) <= 1e-13 * abs(Lb)
    for k in a.params:
        assert rel(a.params[k], b.params[k]) <= 1e-13


@pytest.mark.parametrize("proj,reg,bias,tol", [("relu", "weight", True, 0.0), (None, "whiten", False, 1e-6),
                                               ("relu", "none", True, 1e-4), (None, "weight", True, 0.0)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_linear_train_step_equals_general_path(rng, proj, reg, bias, tol, dtype):
    enc = Linear(6, 4, bias=bias, rng=rng, dtype=dtype)
    fused = SimilarityMatching(enc, 4, regularization=reg, iteration_projection=proj, tol=tol, iteration_lr=0.5,
                               max_iterations=60)
    general = copy.deepcopy(fused)
    general.register_iteration_hook("post", lambda mdl: None)  # any hook forces the general path
    xs = [rng.standard_normal((b, 6)).astype(dtype) for b in (1, 1, 7, 3)]
    tol_rel = 1e-13 if dtype == np.float64 else 1e-5
    for x in xs:
        yf, Lf = fused.train_step(x, lr=0.05)
        yg, Lg = general.train_step(x, lr=0.05)
        assert yf.dtype == dtype and Lf.dtype == dtype
        assert rel(yf, yg) <= tol_rel and abs(Lf - Lg) <= tol_rel * max(abs(Lg), 1)
        assert fused.diagnostics.iterations == general.diagnostics.iterations
        assert fused.diagnostics.converged == general.diagnostics.converged
        # gradients are sums of terms of size ~ (4/N) |y| |x| that may cancel ("whiten": (4/N)(u - y)^T x with
        # u ~ y at convergence), so their error is measured against the size of the terms, not of the result
        term = 4.0 * x.shape[0] * max(np.abs(yg).max(), 1.0) * max(np.abs(x).max(), 1.0) / yg.size
        for k in fused.params:
            assert fused.grads[k].dtype == dtype
            scale = np.abs(general.grads[k]).max() + term
            assert np.abs(fused.grads[k] - general.grads[k]).max() <= tol_rel * scale
            assert rel(fused.params[k], general.params[k]) <= tol_rel


# ------------------------------------------------------------------------------------------------ metrics
def test_similarity_matching_cost_naive_twin(rng):
    X, Y = rng.standard_normal((30, 5)), rng.standard_normal((30, 2))
    ref = np.sum((X @ X.T - Y @ Y.T) ** 2) / 30**2
    assert abs(similarity_matching_cost(X, Y) - ref) <= 1e-12 * ref


def test_principal_angles_known(rng):
    A = np.eye(4)[:, :2]
    th = 0.3
    B = np.stack([np.array([1, 0, 0, 0.0]), np.array([0, np.cos(th), np.sin(th), 0])], axis=1)
    c = principal_angle_cosines(A, B @ rng.standard_normal((2, 2)))
    assert np.allclose(c, [1.0, np.cos(th)], atol=1e-14)
    assert abs(subspace_error(A, B) - np.sin(th)) <= 1e-14
    assert subspace_error(A, A @ rng.standard_normal((2, 2))) <= 1e-7


def test_clustering_accuracy_best_permutation():
    t = np.array([0, 0, 1, 1, 2, 2, 2])
    p = np.array([5, 5, 3, 3, 4, 4, 3])
    assert clustering_accuracy(t, p) == pytest.approx(6 / 7)
    C, classes, clusters = best_permutation_confusion(t, p)
    assert list(clusters) == [5, 3, 4] and np.trace(C) == 6


@settings(max_examples=25)
@given(st.integers(0, 10_000), st.integers(1, 4))
def test_property_nsm_solver_is_kkt_point(seed, m):
    rng = np.random.default_rng(seed)
    M = spd(rng, m, 0.2, 3.0)
    b = rng.standard_normal((4, m))
    y = solve_nsm(M, b)
    assert (y >= 0).all()
    assert kkt_residual(M, b, y) <= 1e-9
    assert kkt_residual(M, b, solve_sm(M, b), nonnegative=False) <= 1e-9


# ------------------------------------------------------------------------------------------------ bad input
def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="out_channels"):
        SimilarityMatching(Linear(4, 3), 5)
    with pytest.raises(ValueError, match="regularization"):
        MultiSimilarityMatching([Linear(4, 3), Linear(2, 3)], 3, regularization=("weight",))
    with pytest.raises(ValueError, match="regularization"):
        SimilarityMatching(Linear(4, 3), 3, regularization="l2")
    with pytest.raises(ValueError, match="tol"):
        SimilarityMatching(Linear(4, 3), 3, tol=-1e-3)
    with pytest.raises(ValueError, match="max_iterations"):
        SimilarityMatching(Linear(4, 3), 3, max_iterations=-1)
    with pytest.raises(ValueError, match="tau"):
        SimilarityMatching(Linear(4, 3), 3, tau=0.0)
    with pytest.raises(ValueError, match="iteration_projection"):
        SimilarityMatching(Linear(4, 3), 3, iteration_projection="tanh")
    with pytest.raises(ValueError, match="compat"):
        SimilarityMatching(Linear(4, 3), 3, compat="torch")
    with pytest.raises(TypeError, match="encoders"):
        MultiSimilarityMatching([Linear(4, 3), Linear(2, 3, dtype=np.float32)], 3)
    with pytest.raises(ValueError, match="stride"):
        Conv2d(1, 2, 3, stride=0)
    with pytest.raises(ValueError, match="kind"):
        SimilarityMatching(Linear(4, 3), 3).register_iteration_hook("during", print)


def test_bad_call_arguments(rng):
    model = MultiSimilarityMatching([Linear(4, 3), Linear(2, 3)], 3)
    x0, x1 = rng.standard_normal((5, 4)), rng.standard_normal((6, 2))
    with pytest.raises(ValueError, match=r"xs\[1\]"):  # encodings disagree in shape (batch 5 vs 6)
        model(x0, x1)
    conv = MultiSimilarityMatching([Conv2d(1, 3, 3), Linear(2, 3)], 3)
    with pytest.raises(ValueError, match=r"xs\[1\]"):  # [B, 3, 4, 4] vs [B, 3]
        conv(rng.standard_normal((2, 1, 6, 6)), rng.standard_normal((2, 2)))
    with pytest.raises(ValueError, match="out_channels"):  # Identity producing 4 channels
        SimilarityMatching(Identity(), 3)(rng.standard_normal((2, 4)))
    bad = x0.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"xs\[0\]"):
        model(bad)
    assert np.isnan(bad[1, 2])
    with pytest.raises(ValueError, match="xs"):
        model(None, None)
    with pytest.raises(ValueError, match="xs"):
        model(x0, None, x0)
    with pytest.raises(ValueError, match=r"xs\[0\]"):
        model(rng.standard_normal((5, 5)))
    sm = SimilarityMatching(Linear(4, 3), 3)
    with pytest.raises(ValueError, match="x"):
        sm(np.full((2, 4), np.inf))
    with pytest.raises(ValueError, match="y"):
        sm.loss(x0, rng.standard_normal((5, 2)))
    with pytest.raises(ValueError, match="y"):
        sm.loss(x0, np.full((5, 3), np.nan))
    with pytest.raises(RuntimeError, match="backward"):
        SimilarityMatching(Linear(4, 3), 3).backward()
    with pytest.raises(ValueError, match="lr"):
        sm.step(-1.0)
    sup = SupervisedSimilarityMatching(Linear(4, 3), 2, 3)
    with pytest.raises(ValueError, match="label"):
        sup(x0, np.ones((4, 2)))
    with pytest.raises(ValueError, match="x"):
        sup(None, np.ones((5, 2)))


def test_bad_solver_and_metric_arguments(rng):
    with pytest.raises(ValueError, match="M"):
        solve_sm(np.ones((3, 2)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="b"):
        solve_nsm(np.eye(3), np.ones((2, 4)))
    with pytest.raises(ValueError, match="M"):
        solve_nsm(-np.eye(3), np.ones((2, 3)))
    with pytest.raises(ValueError, match="Y"):
        similarity_matching_cost(np.ones((4, 2)), np.ones((5, 2)))
    with pytest.raises(TypeError, match="labels_pred: expected a 1-D integer array"):
        clustering_accuracy(np.array([0, 1]), np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="y"):
        hebbian_update(np.ones((3, 4)), np.eye(3), np.ones((5, 4)), np.ones((5, 2)), 0.1, 0.5)


# ------------------------------------------------------------------------------------------------ kernels
def test_exact_fixed_point_skip_is_exact(rng):
    """Rows whose update changes nothing are skipped (both the tol = 0 and tol > 0 paths): same result as the
    naive iteration, including rows with non-positive drive (stay 0) and rows that converge bitwise."""
    from refnsm.similarity import _kernels

    m = 4
    M = spd(rng, m, 0.6, 1.2)
    D = rng.standard_normal((40, m))
    D[:10] = -np.abs(D[:10])              # NSM: these rows stay exactly 0
    MT = np.ascontiguousarray(M.T)
    for relu in (True, False):
        noskip = np.zeros_like(D)  # the same kernel arithmetic, one full sweep per update, nothing skipped
        for _ in range(300):
            last = _kernels.fast_step(MT, D, noskip, 0.9, relu)
        assert rel(noskip, naive_dynamics(M, D, 0.9, relu, 300)) <= 1e-12
        for tol in (0.0, 1e-300):
            Y = np.zeros_like(D)
            it, change, conv = _kernels.fast_loop(MT, D, Y, 0.9, relu, tol, 300)
            assert np.array_equal(Y, noskip), (relu, tol)
            assert it == 300 and not conv and change == last
    Y = np.zeros_like(D)
    it, change, conv = _kernels.fast_loop(np.ascontiguousarray(M.T), D, Y, 0.9, True, 1e-12, 300)
    assert conv and it < 300 and change < 1e-12


def test_sparse_matmul_kernels_naive_twin(rng):
    from refnsm.similarity import _kernels

    A = rng.standard_normal((30, 7)) * (rng.uniform(size=(30, 7)) < 0.4)
    B = rng.standard_normal((7, 5))
    out = np.empty((30, 5))
    _kernels.matmul_skip(A, B, out)
    assert rel(out, A @ B) <= 1e-13
    Z = rng.standard_normal((30, 5))
    out2 = np.empty((7, 5))
    _kernels.matmul_tn_skip(A, Z, out2)
    assert rel(out2, A.T @ Z) <= 1e-13
