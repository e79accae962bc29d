"""refnsm.spiking: naive twins, finite-difference checks, torch conventions, properties and bad input."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refnsm import spiking as sp
from refnsm.gradcheck import gradcheck
from naive.spiking import naive_kernel, naive_similarity, naive_loss, naive_ce
from helpers import rel

KERNELS = [("linear", ()), ("polynomial", (2.0,)), ("polynomial", (3.0,)), ("polynomial", (1.5,)),
           ("sigmoid", (0.3,)), ("sigmoid", (-0.7,)), ("gaussian", (1.3,))]
EPS32_BCE = float(np.float32(1e-12))


@pytest.fixture
def data(rng):
    X = rng.random((6, 3, 4))
    labels = np.eye(3)[[0, 1, 2, 0, 1, 2]]
    labels[0, 1] = 1  # one multi-label sample
    return X, labels


def _for(data, kernel, loss):
    """Real-valued spikes, except binary ones for gaussian + bce: with real values the expanded squared distance
    can round a few ulp below 0, S_ii > 1, and BCE must refuse (the diagonal row of the spikingjelly table in
    docs/upstream_differences.md; tested below)."""
    X, labels = data
    if kernel == "gaussian" and loss == "bce":
        X = (X > 0.5).astype(np.float64)
    return X, labels


@pytest.mark.parametrize("kernel,args", KERNELS)
def test_kernel_dot_product_matches_naive(rng, kernel, args):
    x, y = rng.random((5, 7)), rng.random((5 if kernel == "gaussian" else 3, 7))
    assert rel(sp.kernel_dot_product(x, y, kernel, *args), naive_kernel(x, y, kernel, *args)) < 1e-12


@pytest.mark.parametrize("kernel,args", KERNELS)
@pytest.mark.parametrize("loss", ["mse", "l1", "bce"])
def test_spike_similar_loss_matches_naive(data, kernel, args, loss):
    X, labels = _for(data, kernel, loss)
    if loss == "bce" and kernel == "polynomial":
        with pytest.raises(ValueError, match="not normalised"):
            sp.spike_similar_loss(X, labels, kernel, loss, *args)
        return
    got = sp.spike_similar_loss(X, labels, kernel, loss, *args)
    assert got.shape == () and got.dtype == np.float64
    assert rel(got, naive_loss(X, labels, kernel, loss, *args)) < 1e-12


def test_similarity_vjp_matches_spec_formula(rng):
    """The pull-back through the cosine normalisation, as a dense NumPy expression of
    S = X X^T / (r r^T + 1e-8), r_i = |x_i| (the quotient rule, written out below)."""
    X = rng.random((5, 6))
    X[2] = 0.0
    A = rng.standard_normal((5, 5))
    r = np.linalg.norm(X, axis=1)
    P = np.outer(r, r) + 1e-8
    G = X @ X.T
    B, C = A / P, -A * G / P**2
    g = (C + C.T) @ r
    h = np.divide(g, r, out=np.zeros_like(r), where=r != 0)
    expected = (B + B.T) @ X + h[:, None] * X
    assert rel(sp.spike_similarity_matrix_vjp(A, X), expected) < 1e-12


def test_tet_equals_mean_of_per_step_ce(rng):
    x = rng.standard_normal((5, 4, 3))
    t = rng.integers(0, 3, 4)
    expected = np.mean([naive_ce(x[k], t) for k in range(5)])
    assert rel(sp.temporal_efficient_training_cross_entropy(x, t), expected) < 1e-12


def test_tet_spatial_matches_naive(rng):
    x = rng.standard_normal((3, 4, 5, 2, 3))  # [T, N, C, H, W]
    t = rng.integers(0, 5, (4, 2, 3))
    flat = x.transpose(0, 1, 3, 4, 2).reshape(3, -1, 5)  # positions (n, h, w) as rows
    expected = np.mean([naive_ce(flat[k], t.reshape(-1)) for k in range(3)])
    assert rel(sp.temporal_efficient_training_cross_entropy(x, t), expected) < 1e-12


def test_tet_ignore_index_drops_positions(rng):
    x = rng.standard_normal((3, 6, 4))
    t = rng.integers(0, 4, 6)
    t_ign = t.copy()
    t_ign[[1, 4]] = -100
    keep = t_ign != -100
    expected = sp.temporal_efficient_training_cross_entropy(x[:, keep], t[keep])
    assert rel(sp.temporal_efficient_training_cross_entropy(x, t_ign), expected) < 1e-12
    g = sp.temporal_efficient_training_cross_entropy_vjp(None, x, t_ign)
    assert np.all(g[:, ~keep] == 0)
    # a custom ignore_index works the same way
    t7 = np.where(keep, t, 7)
    assert sp.temporal_efficient_training_cross_entropy(x, t7, ignore_index=7) == sp.temporal_efficient_training_cross_entropy(x, t_ign)


def test_time_mean_ce_and_firing_rate_mse_match_naive(rng):
    x = rng.standard_normal((6, 5, 4))
    t = rng.integers(0, 4, 5)
    assert rel(sp.time_mean_cross_entropy(x, t), naive_ce(x.mean(0), t)) < 1e-12
    s = (rng.random((8, 5, 4)) < 0.3).astype(float)
    assert rel(sp.firing_rate_mse(s, t), np.mean((s.mean(0) - np.eye(4)[t]) ** 2)) < 1e-12


def test_tet_loss_combines_ce_and_mse(rng):
    x = rng.standard_normal((4, 3, 5))
    t = rng.integers(0, 5, 3)
    ce = sp.temporal_efficient_training_cross_entropy(x, t)
    expected = 0.7 * ce + 0.3 * np.mean((x - 0.5) ** 2)
    assert rel(sp.tet_loss(x, t, mean=0.5, tet_lambda=0.3), expected) < 1e-12
    assert sp.tet_loss(x, t, tet_lambda=0.0) == ce
    v, g = sp.temporal_efficient_training_cross_entropy_value_and_grad(x, t)
    assert v == ce and np.array_equal(g, sp.temporal_efficient_training_cross_entropy_vjp(None, x, t))
    loss = sp.TETLoss(mean=0.5, tet_lambda=0.3)
    assert loss(x, t) == sp.tet_loss(x, t, 0.5, 0.3)
    assert np.array_equal(loss.backward(), sp.tet_loss_vjp(None, x, t, 0.5, 0.3))
    assert np.array_equal(loss.backward(2.0), 2.0 * loss.backward())


# ------------------------------------------------------------------------------ finite-difference checks
@pytest.mark.parametrize("kernel,args", KERNELS)
def test_gradcheck_kernel_dot_product(rng, kernel, args):
    x, y = rng.random((4, 3)), rng.random((4 if kernel == "gaussian" else 3, 3))
    gradcheck(lambda a, b: sp.kernel_dot_product(a, b, kernel, *args),
              lambda g, a, b: sp.kernel_dot_product_vjp(g, a, b, kernel, *args), (x, y), raise_on_fail=True)


# the polynomial kernel is unnormalised, so bce refuses it (tested in test_spike_similar_loss_matches_naive)
@pytest.mark.parametrize("kernel,args,loss", [(k, a, l) for k, a in KERNELS for l in ("mse", "l1", "bce")
                                              if not (l == "bce" and k == "polynomial")])
def test_gradcheck_spike_similar_loss(data, kernel, args, loss):
    X, labels = _for(data, kernel, loss)
    gradcheck(lambda s: sp.spike_similar_loss(s, labels, kernel, loss, *args),
              lambda g, s: sp.spike_similar_loss_vjp(g, s, labels, kernel, loss, *args), (X,), raise_on_fail=True)


@pytest.mark.parametrize("kernel,args", KERNELS)
def test_gradcheck_similarity_matrix(rng, kernel, args):
    X = rng.random((4, 2, 3))
    gradcheck(lambda s: sp.spike_similarity_matrix(s, kernel, *args),
              lambda g, s: sp.spike_similarity_matrix_vjp(g, s, kernel, *args), (X,), raise_on_fail=True)


@pytest.mark.parametrize("kernel,args", [k for k in KERNELS if k[0] != "linear" and k[1] != (1.5,)])
def test_gradcheck_at_silent_rows(data, kernel, args):
    X, labels = data
    X = X.copy()
    X[1] = 0.0
    gradcheck(lambda s: sp.spike_similar_loss(s, labels, kernel, "mse", *args),
              lambda g, s: sp.spike_similar_loss_vjp(g, s, labels, kernel, "mse", *args), (X,), raise_on_fail=True)


def test_gradcheck_linear_silent_row_needs_a_step_below_the_epsilon(data):
    """At a silent row S_ij = x_i.x_j / (|x_i||x_j| + 1e-8) varies on the scale 1e-8, so the derivative (~1e8)
    is only seen by finite differences with a step well below 1e-8; the torch convention (the norm's gradient
    is 0 at r = 0) is what remains."""
    X, labels = data
    X = X.copy()
    X[1] = 0.0
    g = sp.spike_similar_loss_vjp(None, X, labels)
    assert np.abs(g[1]).max() > 1e6  # a silent row's gradient is O(1/eps), eps = 1e-8
    res = gradcheck(lambda s: sp.spike_similar_loss(s, labels), lambda gg, s: sp.spike_similar_loss_vjp(gg, s, labels),
                    (X,), eps=1e-12, rtol=1e-3, atol=1e-2)
    assert res.ok, res.report()


UNLABELED = [("linear", (), "mse"), ("linear", (), "bce"), ("sigmoid", (0.3,), "mse"), ("sigmoid", (0.3,), "bce"),
             ("gaussian", (1.3,), "mse")]


@pytest.mark.parametrize("kernel,args,loss", UNLABELED)
def test_gradcheck_unlabeled_sample(data, kernel, args, loss):
    """A sample with no label has Y_ii = 0.  For the cosine with BCE, 1 - S_ii = eps / (r^2 + eps): spikes are
    scaled down to r^2 ~ 1e-6 so that 1 - S_ii ~ 1e-2 and finite differences of log(1 - S_ii) can resolve the
    gradient (at r^2 ~ 1, 1 - S_ii ~ 3e-9 and the differences carry ~1e-2 rounding noise)."""
    X, labels = data
    labels = labels.copy()
    labels[2] = 0
    eps = 1e-6
    if kernel == "linear" and loss == "bce":
        X, eps = X * 1e-3, 1e-9  # the same relative step on the smaller scale
    gradcheck(lambda s: sp.spike_similar_loss(s, labels, kernel, loss, *args),
              lambda g, s: sp.spike_similar_loss_vjp(g, s, labels, kernel, loss, *args), (X,), eps=eps,
              raise_on_fail=True)


def test_unlabeled_gaussian_bce_follows_torch_not_the_clamped_derivative():
    """S_ii = 1 against Y_ii = 0: the forward is clamped at 100 (flat), but torch's gradient is
    (S - Y) / max(S (1 - S), eps) = 1/eps per element (torch's BCE backward clamps the
    denominator, not the log); refnsm follows torch."""
    from refnsm.spiking import _kernels as K

    X = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    labels = np.array([[0, 0], [1, 0], [0, 1]])  # sample 0 unlabeled
    S = sp.spike_similarity_matrix(X, "gaussian", 1.3)
    Y = sp.label_similarity_matrix(labels)
    assert S[0, 0] == 1.0 and Y[0, 0] == 0.0
    dS = K.pairwise_loss_grad(S, Y, K.BCE, 1.0, sp.losses.BCE_EPS)
    assert dS[0, 0] == 1.0 / EPS32_BCE / 9
    assert np.isfinite(sp.spike_similar_loss_vjp(None, X, labels, "gaussian", "bce", 1.3)).all()


def test_gradcheck_l1_at_ties():
    """Binary spikes under the polynomial kernel give S_ij == Y_ij exactly; sign(0) = 0 is the central
    difference of |.| at the kink.  There the difference quotient is O(eps) (|2ah + bh^2| - |-2ah + bh^2| = 2bh^2),
    not O(eps^2), hence atol = 1e-6 for eps = 1e-6."""
    X = np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    labels = np.eye(2)[[0, 0, 1, 1]]
    S = sp.spike_similarity_matrix(X, "polynomial", 2.0)
    Y = sp.label_similarity_matrix(labels)
    assert (S == Y).sum() >= 8  # the ties are there
    gradcheck(lambda s: sp.spike_similar_loss(s, labels, "polynomial", "l1", 2.0),
              lambda g, s: sp.spike_similar_loss_vjp(g, s, labels, "polynomial", "l1", 2.0), (X,), atol=1e-6,
              raise_on_fail=True)


@pytest.mark.parametrize("shape", [(5, 4, 3), (3, 4, 6, 2, 3), (1, 2, 3)])
def test_gradcheck_tet_family(rng, shape):
    x = rng.standard_normal(shape)
    t = rng.integers(0, shape[2], (shape[1],) + shape[3:])
    t.reshape(-1)[0] = -100
    for f, fv in [(sp.temporal_efficient_training_cross_entropy, sp.temporal_efficient_training_cross_entropy_vjp),
                  (sp.time_mean_cross_entropy, sp.time_mean_cross_entropy_vjp)]:
        gradcheck(lambda a: f(a, t), lambda g, a: fv(g, a, t), (x,), raise_on_fail=True)
    gradcheck(lambda a: sp.tet_loss(a, t, 0.5, 0.3), lambda g, a: sp.tet_loss_vjp(g, a, t, 0.5, 0.3), (x,),
              raise_on_fail=True)


def test_gradcheck_firing_rate_mse(rng):
    s = rng.random((4, 3, 5))
    t = rng.integers(0, 5, 3)
    gradcheck(lambda a: sp.firing_rate_mse(a, t), lambda g, a: sp.firing_rate_mse_vjp(g, a, t), (s,), raise_on_fail=True)


# --------------------------------------------------------------------------------- torch's conventions
def test_l1_sign_zero_is_zero():
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    labels = np.eye(2)
    # polynomial d=1 on orthonormal rows: S = I = Y exactly, so every residual is 0 and so is the gradient
    assert np.all(sp.spike_similar_loss_vjp(None, X, labels, "polynomial", "l1", 1.0) == 0)


def test_silent_row_norm_gradient_is_zero_and_similarity_row_is_zero():
    X = np.array([[1.0, 2.0], [0.0, 0.0], [2.0, 1.0]])
    S = sp.spike_similarity_matrix(X)
    assert np.all(S[1] == 0) and np.all(S[:, 1] == 0)
    assert S[0, 0] < 1.0  # r^2 / (r^2 + 1e-8)
    A = np.zeros((3, 3))
    A[1, 1] = 1.0  # only the silent diagonal entry: G_11 = 0 and the norm gradient is forced to 0 there
    assert np.all(sp.spike_similarity_matrix_vjp(A, X)[1] == 0)


def test_bce_endpoints_follow_torch_epsilon():
    """S = 0 against Y = 1 gives the per-element gradient -1/eps with eps = float32(1e-12) (torch's CPU kernel)."""
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    labels = np.array([[1, 0], [1, 0]])  # both share a label, but their spikes are orthogonal: S_01 = 0, Y_01 = 1
    S = sp.spike_similarity_matrix(X, "polynomial", 1.0)
    assert S[0, 1] == 0.0
    from refnsm.spiking import _kernels as K

    dS = K.pairwise_loss_grad(S, sp.label_similarity_matrix(labels), K.BCE, 1.0, sp.losses.BCE_EPS)
    assert dS[0, 1] == (0.0 - 1.0) / EPS32_BCE / 4
    assert sp.losses.BCE_EPS == 9.999999960041972e-13
    # and the forward is clamped at 100 per element there: (0, 1) and (1, 0) -> 100, the (1,1) diagonal -> 0
    assert sp.spike_similar_loss(X, labels, "polynomial", "bce", 1.0) == pytest.approx(200 / 4, rel=1e-15)


def test_polynomial_d0_has_zero_gradient(data):
    X, labels = data
    assert np.all(sp.spike_similar_loss_vjp(None, X, labels, "polynomial", "mse", 0.0) == 0)
    assert np.all(sp.spike_similarity_matrix(X, "polynomial", 0.0) == 1)


def test_gaussian_row_counts():
    x, y = np.ones((4, 3)), np.zeros((1, 3))
    with pytest.raises(ValueError, match="y: the gaussian kernel needs as many rows"):
        sp.kernel_dot_product(x, y, "gaussian", 1.0)
    with pytest.raises(ValueError, match="y: the gaussian kernel"):
        sp.kernel_dot_product(x, np.ones((3, 3)), "gaussian", 1.0)
    # x with one row is correct upstream and allowed
    assert sp.kernel_dot_product(y, x, "gaussian", 1.0).shape == (1, 4)
    # compat reproduces spikingjelly's [Nx, Nx] output for Ny = 1: every column is k(x_i, y_0)
    Kc = sp.kernel_dot_product(x, y, "gaussian", 1.0, compat="spikingjelly")
    assert Kc.shape == (4, 4)
    assert np.all(Kc == np.exp(-3.0 / 2.0))
    gx, gy = sp.kernel_dot_product_vjp(np.ones((4, 4)), x, y, "gaussian", 1.0, compat="spikingjelly")
    from refnsm.spiking import _kernels as K

    # the four identical columns' gradients add: the same as the [4, 1] kernel with the summed gradient
    gx1, gy1 = K.kernel_vjp(np.full((4, 1), 4.0), x, y, K.GAUSSIAN, 1.0)
    assert np.array_equal(gx, gx1) and np.array_equal(gy, gy1)


def test_gaussian_compat_vjp_is_the_gradient_of_the_tiled_output(rng):
    x, y = rng.random((3, 2)), rng.random((1, 2))
    gradcheck(lambda a, b: sp.kernel_dot_product(a, b, "gaussian", 0.8, compat="spikingjelly"),
              lambda g, a, b: sp.kernel_dot_product_vjp(g, a, b, "gaussian", 0.8, compat="spikingjelly"), (x, y),
              raise_on_fail=True)


def test_bce_works_in_float64_and_explains_range_errors(rng):
    X = (rng.random((5, 8)) < 0.5).astype(np.float64)
    X[:, 0] = 1.0
    labels = np.eye(2)[[0, 1, 0, 1, 0]]
    assert np.isfinite(sp.spike_similar_loss(X, labels, "linear", "bce"))
    with pytest.raises(ValueError, match="signed inputs"):
        sp.spike_similar_loss(rng.standard_normal((5, 8)), labels, "linear", "bce")
    with pytest.raises(ValueError, match="labels: .*non-negative"):
        sp.spike_similar_loss(X, labels * np.array([[1], [-1], [1], [1], [1]]), "sigmoid", "bce", 0.3)
    with pytest.raises(ValueError, match="not normalised"):
        sp.spike_similar_loss(X, labels, "polynomial", "bce", 2.0)


def _draw(rng, predicate, make, tries=100):
    for _ in range(tries):
        X = make(rng)
        if predicate(X):
            return X
    pytest.fail(f"no draw satisfied the condition in {tries} tries")


def test_exact_cosine_diagonal_is_closer_to_the_truth_than_torchs_rounding():
    """S_ii = n / (n + eps) for a binary row with n spikes, in exact rational arithmetic.  refnsm's closed form
    r r / (r r + eps) has two roundings (within ~1 ulp of the truth, and never above 1); torch's
    G_ii / (r_i r_i + eps) (compat) also carries the rounding of r_i r_i against the exact G_ii: up to ~3 ulp over
    these draws.  Near S = 1 one ulp changes -log(1 - S) by ~1e-8 relative, which is why the unlabeled-BCE
    cross-check row runs refnsm with compat rounding."""
    from fractions import Fraction

    rng = np.random.default_rng(0)
    worst = {None: 0.0, "spikingjelly": 0.0}
    for _ in range(300):
        X = (rng.random((8, 40)) < rng.random()).astype(np.float64)
        for compat in worst:
            diag = np.diag(sp.spike_similarity_matrix(X, compat=compat))
            for i, n in enumerate(X.sum(1).astype(int)):
                if n:
                    truth = n / (n + Fraction(1e-8))
                    ulp = Fraction(float(np.spacing(float(truth))))
                    worst[compat] = max(worst[compat], float(abs(Fraction(float(diag[i])) - truth) / ulp))
    assert worst[None] <= 1.1, worst
    assert worst["spikingjelly"] > 2 * worst[None], worst


def test_float32_cosine_diagonal_exact_by_default_and_upstream_rounding_under_compat():
    """torch rounds r^2 / (r^2 + 1e-8) above 1 in float32 for most inputs (76/100 binary draws, see the diagonal
    row of docs/upstream_differences.md), so BCE
    refuses; refnsm forms the diagonal so it cannot exceed 1 and BCE works, compat reproduces the refusal."""
    rng = np.random.default_rng(1)
    labels = np.eye(2)[[0, 1, 0, 1, 0, 1]]
    X = _draw(rng, lambda X: (np.diag(sp.spike_similarity_matrix(X, compat="spikingjelly")) > 1).any(),
              lambda r: (r.random((6, 10)) < 0.5).astype(np.float32) + np.eye(6, 10, dtype=np.float32))
    assert (np.diag(sp.spike_similarity_matrix(X)) <= 1).all()
    with pytest.raises(ValueError, match="float32 resolution"):
        sp.spike_similar_loss(X, labels, "linear", "bce", compat="spikingjelly")
    if (sp.spike_similarity_matrix(X) <= 1).all():
        assert np.isfinite(sp.spike_similar_loss(X, labels, "linear", "bce"))


def test_gaussian_diagonal_exact_by_default_and_cancellation_message_under_compat():
    """Real-valued rows make (|x|^2 + |x|^2) - 2 x.x a few ulp negative on the diagonal (in every float32 draw
    tried); refnsm's diagonal is exactly 1, compat reproduces torch's value and BCE's refusal."""
    rng = np.random.default_rng(3)
    labels = np.eye(16)
    X = _draw(rng, lambda X: (sp.spike_similarity_matrix(X, "gaussian", 1.0, compat="spikingjelly") > 1).any(),
              lambda r: r.random((16, 50)).astype(np.float32))
    assert (np.diag(sp.spike_similarity_matrix(X, "gaussian", 1.0)) == 1).all()
    with pytest.raises(ValueError, match="cancellation"):
        sp.spike_similar_loss(X, labels, "gaussian", "bce", 1.0, compat="spikingjelly")
    assert np.isfinite(sp.spike_similar_loss(X, labels, "gaussian", "bce", 1.0))


# ------------------------------------------------------------------------------------------ properties
spikes_strategy = hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=6),
                             elements=st.floats(-3, 3, allow_nan=False, width=64))


@given(spikes_strategy, st.sampled_from(KERNELS[:3] + KERNELS[4:]))
def test_similarity_matrix_is_symmetric(X, kernel_args):
    kernel, args = kernel_args
    S = sp.spike_similarity_matrix(X, kernel, *args)
    scale = max(np.nanmax(np.abs(S)), 1.0) if np.isfinite(S).any() else 1.0
    assert np.allclose(S, S.T, rtol=0, atol=1e-12 * scale, equal_nan=True)


@given(hnp.arrays(np.int64, st.tuples(st.integers(1, 6), st.integers(1, 4)), elements=st.integers(0, 1)))
def test_label_matrix_is_symmetric_binary_and_diag_marks_labelled(labels):
    Y = sp.label_similarity_matrix(labels)
    assert np.array_equal(Y, Y.T)
    assert set(np.unique(Y)) <= {0.0, 1.0}
    assert np.array_equal(np.diag(Y), (labels.sum(1) > 0).astype(float))


@given(st.integers(1, 5), st.integers(1, 5), st.integers(2, 5), st.integers(0, 2**31 - 1))
def test_tet_is_the_mean_of_per_step_losses(T, N, C, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, N, C)) * 3
    t = rng.integers(0, C, N)
    per_step = [float(sp.temporal_efficient_training_cross_entropy(x[k:k + 1], t)) for k in range(T)]
    assert np.isclose(sp.temporal_efficient_training_cross_entropy(x, t), np.mean(per_step), rtol=1e-13, atol=0)


@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 8)), elements=st.sampled_from([0.0, 1.0])))
def test_binary_spikes_gaussian_kernel_is_at_most_one(X):
    assert sp.spike_similarity_matrix(X, "gaussian", 1.3).max() <= 1.0


# ----------------------------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("kernel,args", [("linear", ()), ("sigmoid", (0.3,)), ("gaussian", (1.3,))])
def test_float32_is_kept_and_close_to_float64(data, kernel, args):
    X, labels = data
    v64 = sp.spike_similar_loss(X, labels, kernel, "mse", *args)
    v32 = sp.spike_similar_loss(X.astype(np.float32), labels, kernel, "mse", *args)
    g64 = sp.spike_similar_loss_vjp(None, X, labels, kernel, "mse", *args)
    g32 = sp.spike_similar_loss_vjp(None, X.astype(np.float32), labels, kernel, "mse", *args)
    assert v32.dtype == np.float32 and g32.dtype == np.float32
    assert rel(v32, v64) < 1e-5 and rel(g32, g64) < 1e-5
    x = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    t = np.array([0, 4, 2, 1])
    assert sp.temporal_efficient_training_cross_entropy_vjp(None, x, t).dtype == np.float32
    assert sp.kernel_dot_product(x[0], x[1], kernel, *args).dtype == np.float32


def test_integer_and_bool_spikes_are_accepted_as_float64():
    X = np.array([[1, 0, 1], [0, 1, 1]])
    labels = np.eye(2, dtype=int)
    v = sp.spike_similar_loss(X.astype(bool), labels)
    assert v.dtype == np.float64 and v == sp.spike_similar_loss(X.astype(float), labels)


def test_value_and_grad_matches_separate_calls(data):
    X, labels = data
    v, g = sp.spike_similar_loss_value_and_grad(X, labels, "sigmoid", "bce", 0.3)
    assert v == sp.spike_similar_loss(X, labels, "sigmoid", "bce", 0.3)
    assert np.array_equal(g, sp.spike_similar_loss_vjp(None, X, labels, "sigmoid", "bce", 0.3))


# ------------------------------------------------------------------------------------------- bad input
BAD_SSL = [
    (dict(spikes=np.ones(5)), ValueError, "spikes: expected at least 2 dimensions"),
    (dict(spikes=np.ones((0, 3))), ValueError, "spikes: expected at least one sample"),
    (dict(labels=np.ones(4)), ValueError, "labels: expected 2 dimensions"),
    (dict(labels=np.ones((3, 2))), ValueError, "labels: expected 4 rows"),
    (dict(spikes=np.full((4, 3), np.nan)), ValueError, "spikes: expected finite values"),
    (dict(labels=np.full((4, 2), np.inf)), ValueError, "labels: expected finite values"),
    (dict(kernel_type="rbf"), ValueError, "kernel_type: expected one of 'linear', 'polynomial'"),
    (dict(loss_type="huber"), ValueError, "loss_type: expected one of 'mse', 'l1', 'bce'"),
    (dict(kernel_type="gaussian"), TypeError, "kernel_type: 'gaussian' needs exactly one kernel argument, sigma"),
    (dict(kernel_type="gaussian", args=(0.0,)), ValueError, "sigma.*expected a positive number"),
    (dict(kernel_type="gaussian", args=(-1.0,)), ValueError, "sigma.*expected a positive number"),
    (dict(kernel_type="sigmoid", args=("a",)), TypeError, "alpha.*expected a real number"),
    (dict(kernel_type="linear", args=(1.0,)), TypeError, "kernel_type: 'linear' takes no kernel argument"),
    (dict(spikes=np.ones((4, 3), dtype=complex)), TypeError, "spikes: expected a real numeric array"),
    (dict(compat="torch"), ValueError, "compat: expected None or 'spikingjelly'"),
]


@pytest.mark.parametrize("override,exc,match", BAD_SSL, ids=[b[2][:40] for b in BAD_SSL])
def test_spike_similar_loss_bad_input(override, exc, match):
    kw = dict(spikes=np.random.default_rng(0).random((4, 3)), labels=np.eye(2)[[0, 1, 0, 1]], kernel_type="linear",
              loss_type="mse", args=(), compat=None)
    kw.update(override)
    before = {k: np.array(v, copy=True) for k, v in kw.items() if isinstance(v, np.ndarray)}
    for fn in (sp.spike_similar_loss, lambda *a, **k: sp.spike_similar_loss_vjp(None, *a, **k)):
        with pytest.raises(exc, match=match):
            fn(kw["spikes"], kw["labels"], kw["kernel_type"], kw["loss_type"], *kw["args"], compat=kw["compat"])
    for k, v in before.items():
        assert np.array_equal(kw[k], v, equal_nan=True), f"{k} was modified"


def test_kernel_dot_product_bad_input():
    x = np.ones((3, 4))
    with pytest.raises(ValueError, match="y: expected 4 columns to match x"):
        sp.kernel_dot_product(x, np.ones((3, 5)))
    with pytest.raises(ValueError, match="x: expected 2 dimensions"):
        sp.kernel_dot_product(np.ones((3, 4, 1)), x)
    with pytest.raises(ValueError, match="grad_out: expected shape \\(3, 2\\)"):
        sp.kernel_dot_product_vjp(np.ones((3, 3)), x, np.ones((2, 4)))
    with pytest.raises(TypeError, match="kernel: 'polynomial' needs exactly one kernel argument, d"):
        sp.kernel_dot_product(x, x, "polynomial")
    with pytest.raises(ValueError, match="kernel: expected one of"):
        sp.kernel_dot_product(x, x, "cosine")
    with pytest.raises(ValueError, match="finite"):
        sp.kernel_dot_product(x, x, "sigmoid", np.nan)


BAD_TET = [
    (dict(x_seq=np.ones((4, 3))), ValueError, "x_seq: expected at least 3 dimensions"),
    (dict(target=np.zeros(3, dtype=float)), TypeError, "target: expected integer class indices, got dtype float64"),
    (dict(target=np.zeros((3, 2), dtype=int)), ValueError, "target: expected shape \\(3,\\)"),
    (dict(target=np.array([0, 5, 1])), ValueError, "target: class indices must be in \\[0, 5\\)|target: class indices must be in"),
    (dict(target=np.array([0, -1, 1])), ValueError, "target: class indices must be in"),
    (dict(target=np.array([-100, -100, -100])), ValueError, "target: no position to average over"),
    (dict(x_seq=np.full((2, 3, 4), np.nan)), ValueError, "x_seq: expected finite values"),
    (dict(ignore_index=1.5), TypeError, "ignore_index: expected an integer"),
]


@pytest.mark.parametrize("override,exc,match", BAD_TET, ids=[b[2][:40] for b in BAD_TET])
def test_tet_bad_input(override, exc, match):
    kw = dict(x_seq=np.ones((2, 3, 4)), target=np.array([0, 3, 1]), ignore_index=-100)
    kw.update(override)
    for fn in (sp.temporal_efficient_training_cross_entropy, sp.time_mean_cross_entropy, sp.tet_loss,
               lambda *a, **k: sp.temporal_efficient_training_cross_entropy_vjp(None, *a, **k)):
        with pytest.raises(exc, match=match):
            fn(kw["x_seq"], kw["target"], ignore_index=kw["ignore_index"])


def test_tet_loss_and_firing_rate_bad_input():
    x, t = np.ones((2, 3, 4)), np.array([0, 1, 2])
    with pytest.raises(ValueError, match="tet_lambda: expected a number in \\[0.0, 1.0\\]"):
        sp.TETLoss(tet_lambda=1.5)
    with pytest.raises(RuntimeError, match="call the loss"):
        sp.TETLoss().backward()
    with pytest.raises(ValueError, match="grad_out: expected a scalar"):
        sp.tet_loss_vjp(np.ones(3), x, t)
    with pytest.raises(ValueError, match="labels: expected 3 labels"):
        sp.firing_rate_mse(x, np.array([0, 1]))
    with pytest.raises(ValueError, match="labels: class indices must be in \\[0, 4\\)"):
        sp.firing_rate_mse(x, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match="spikes_seq: expected 3 dimensions"):
        sp.firing_rate_mse(np.ones((2, 3)), t)


def test_empty_arrays():
    # zero rows: an empty kernel matrix and empty gradients
    assert sp.kernel_dot_product(np.ones((0, 3)), np.ones((2, 3))).shape == (0, 2)
    gx, gy = sp.kernel_dot_product_vjp(np.ones((0, 2)), np.ones((0, 3)), np.ones((2, 3)))
    assert gx.shape == (0, 3) and np.all(gy == 0)
    # zero features: every sample is silent, S = 0, and the loss is the mean of Y^2
    labels = np.eye(3)
    assert sp.spike_similar_loss(np.ones((3, 0)), labels) == np.mean(np.eye(3))
    assert sp.spike_similar_loss_vjp(None, np.ones((3, 0)), labels).shape == (3, 0)
    # no time step or no sample: the mean cross-entropy is over nothing
    with pytest.raises(ValueError, match="target: no position to average over \\(0 time steps"):
        sp.temporal_efficient_training_cross_entropy(np.ones((0, 3, 4)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="0 of 0 targets"):
        sp.temporal_efficient_training_cross_entropy(np.ones((2, 0, 4)), np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match="spikes_seq: expected non-empty"):
        sp.firing_rate_mse(np.ones((0, 2, 3)), np.array([0, 1]))


def test_similarity_and_label_matrix_bad_input():
    X = np.random.default_rng(0).random((4, 3))
    with pytest.raises(ValueError, match="spikes: expected at least 2 dimensions"):
        sp.spike_similarity_matrix(np.ones(4))
    with pytest.raises(ValueError, match="spikes: expected finite values"):
        sp.spike_similarity_matrix(np.full((2, 3), np.inf))
    with pytest.raises(TypeError, match="kernel_type: 'gaussian' needs exactly one kernel argument"):
        sp.spike_similarity_matrix(X, "gaussian")
    with pytest.raises(ValueError, match="compat: expected None or 'spikingjelly'"):
        sp.spike_similarity_matrix(X, compat="torch")
    with pytest.raises(ValueError, match=r"grad_out: expected shape \(4, 4\)"):
        sp.spike_similarity_matrix_vjp(np.ones((3, 3)), X)
    with pytest.raises(ValueError, match="labels: expected 2 dimensions"):
        sp.label_similarity_matrix(np.ones(3))
    with pytest.raises(ValueError, match="labels: expected finite values"):
        sp.label_similarity_matrix(np.full((2, 2), np.nan))
    with pytest.raises(TypeError, match="dtype: expected float32 or float64, got int64"):
        sp.label_similarity_matrix(np.eye(2), dtype=np.int64)
    before = X.copy()
    sp.spike_similarity_matrix_vjp(np.ones((4, 4)), X, "sigmoid", 0.5)
    assert np.array_equal(X, before)


def test_dot_lifted_equals_the_product_without_subnormal_arithmetic():
    """The float32 pull-back product lifts subnormal entries by an exact power of two: the result is the product
    of the stored entries within one unit of the smallest subnormal where it is itself subnormal, and equal to
    BLAS's where W has no subnormal entry (float64 is passed through)."""
    from refnsm.spiking import _kernels as K

    rng = np.random.default_rng(3)
    W = (rng.standard_normal((40, 40)) * 1e-40).astype(np.float32)  # subnormal float32 entries
    W[3, :] = rng.standard_normal(40).astype(np.float32) * 1e-20    # normal ones beside them
    X = (rng.random((40, 30)) < 0.3).astype(np.float32)
    exact = W.astype(np.float64) @ X.astype(np.float64)
    out = K.dot_lifted(W, X, 1.0)
    assert out.dtype == np.float32
    tiny = float(np.finfo(np.float32).smallest_subnormal)
    err = np.abs(out.astype(np.float64) - exact)
    terms = np.abs(W.astype(np.float64)) @ np.abs(X.astype(np.float64))  # the float32 sum's error scale
    assert np.all(err <= 40 * 2.0 ** -24 * terms + tiny)
    sub = np.abs(exact) < float(np.finfo(np.float32).tiny)  # rows 0-2, 4-39: the subnormal outputs
    assert sub.sum() > 1000 and np.all(err[sub] <= tiny)  # the lifted sum is exact there, then rounded once
    Wn = rng.standard_normal((8, 8)).astype(np.float32)
    Xn = rng.standard_normal((8, 5)).astype(np.float32)
    np.testing.assert_array_equal(K.dot_lifted(Wn, Xn, float(np.abs(Xn).max())), Wn @ Xn)
    W64 = W.astype(np.float64)
    np.testing.assert_array_equal(K.dot_lifted(W64, X.astype(np.float64), 1.0), W64 @ X.astype(np.float64))


def _fused_by_full_matrices(X, L, kind, p, exact_diagonal, loss, g):
    """The loss kernel as it was composed before the upper-triangle pass: every N^2 entry formed by the
    full-matrix kernels (similarity_forward, similarity_complement, pairwise_loss(_exact)(_grad), similarity_vjp)."""
    from refnsm.spiking import _kernels as K

    G = np.dot(X, X.T)
    G = np.triu(G) + np.triu(G, 1).T  # the symmetric G the fused kernel forms
    S, r = K.similarity_forward(X, G, kind, p, 1e-8, exact_diagonal)
    Y = K.label_matrix(L, X)
    if exact_diagonal and kind in (K.SIGMOID, K.GAUSSIAN):
        C = K.similarity_complement(X, G, kind, p)
        value = K.pairwise_loss_exact(S, C, Y, loss, 1e-12)
        A = K.pairwise_loss_grad_exact(S, C, Y, loss, g, 1e-12)
    else:
        value = K.pairwise_loss(S, Y, loss, 1e-12)
        A = K.pairwise_loss_grad(S, Y, loss, g, 1e-12)
    return value, K.similarity_vjp(A, X, S, G, r, kind, p, 1e-8)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind,p", [(0, 0.0), (1, 2.0), (1, 0.0), (2, 0.3), (2, 0.02), (3, 4.0), (3, 0.5)])
@pytest.mark.parametrize("loss", [0, 1, 2])
@pytest.mark.parametrize("exact_diagonal", [True, False])
def test_fused_upper_triangle_equals_full_matrices(dtype, kind, p, loss, exact_diagonal):
    """The fused loss forms S, C, A and the couplings on the upper triangle and mirrors them: the gradient is the
    full-matrix composition's bit for bit, the value (its compensated sum adds each off-diagonal term once,
    doubled) within an ulp; with duplicate rows (near gaussian pairs, ties), a silent row, and N = 1."""
    from refnsm.spiking import _kernels as K

    rng = np.random.default_rng(7)
    for N, D in [(9, 13), (1, 5), (33, 40)]:
        X = (rng.random((N, D)) < 0.3).astype(dtype)
        if N > 2:
            X[1] = X[0]      # duplicate rows: S = 1 off the diagonal
            X[2] = 0.0       # a silent row
        L = np.eye(4)[rng.integers(0, 4, N)].astype(dtype)
        if loss == 2 and kind in (0, 1):
            continue  # bce needs S in [0, 1]: the polynomial is unnormalised; the cosine is covered by mse/l1
        status, value, grad = K.spike_similar_loss_fused(X, np.zeros((0, 0), dtype), L, kind, p, 1e-8,
                                                         exact_diagonal, loss, 0.7, 1e-12, True)
        assert status == 0
        v0, g0 = _fused_by_full_matrices(X, L, kind, p, exact_diagonal, loss, 0.7)
        np.testing.assert_array_equal(grad, g0)
        assert abs(value - v0) <= 2 * np.finfo(np.float64).eps * abs(v0)
        status, v1, empty = K.spike_similar_loss_fused(X, np.zeros((0, 0), dtype), L, kind, p, 1e-8,
                                                       exact_diagonal, loss, 0.7, 1e-12, False)
        assert v1 == value and empty.size == 0


def test_fused_bce_range_status_and_nonfinite_still_raise():
    """The upper-triangle path keeps the bce range refusal (status 1/2 -> ValueError) and NaN input refusal."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((6, 2, 3))
    lab = np.eye(3)[rng.integers(0, 3, 6)]
    with pytest.raises(ValueError, match="spikes"):
        sp.spike_similar_loss(X, lab, "linear", "bce")       # signed inputs: cosine below 0
    with pytest.raises(ValueError, match="labels"):
        neg = lab.copy()
        neg[0] = -neg[0]  # L L^T is -1 between sample 0 and every sample of its class
        neg[1] = lab[0]
        sp.spike_similar_loss(np.abs(X), neg, "gaussian", "bce", 2.0)
    Xn = np.abs(X)
    Xn[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="spikes"):
        sp.spike_similar_loss_value_and_grad(Xn, lab, "sigmoid", "bce", 0.3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_max_abs_by_bits_equals_numpy(dtype):
    """max |x| from the sign-masked bit patterns: numpy's value on signed, tied, subnormal, huge, Inf and empty
    inputs; a NaN gives NaN."""
    from refnsm.spiking import _kernels as K

    rng = np.random.default_rng(5)
    fi = np.finfo(dtype)
    for x in [rng.standard_normal((7, 9)).astype(dtype), -np.abs(rng.standard_normal((3, 4))).astype(dtype),
              np.array([[fi.smallest_subnormal, -fi.smallest_subnormal]], dtype), np.array([[-fi.max, 1.0]], dtype),
              np.array([[2.0, -2.0, 0.0, -0.0]], dtype), np.array([[np.inf, -1.0]], dtype),
              np.array([[-np.inf]], dtype), np.zeros((0, 3), dtype), np.zeros((2, 2), dtype)]:
        expected = float(np.max(np.abs(x))) if x.size else 0.0
        assert K.max_abs(np.ascontiguousarray(x)) == expected
    assert np.isnan(K.max_abs(np.array([[1.0, np.nan, -np.inf]], dtype)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_label_matrix_skipping_zero_labels_equals_the_triple_loop(dtype):
    """label_matrix skips the zero entries of row i: the same bits as the plain sum over k (one-hot, multi-hot,
    soft, signed and all-zero rows; N = 1; no classes)."""
    from refnsm.spiking import _kernels as K

    def triple_loop(L):
        n, c = L.shape
        Y = np.empty((n, n), dtype=dtype)
        for i in range(n):
            for j in range(n):
                acc = L.dtype.type(0.0)
                for k in range(c):
                    acc = L.dtype.type(acc + L[i, k] * L[j, k])
                Y[i, j] = min(acc, L.dtype.type(1.0))
        return Y

    rng = np.random.default_rng(9)
    soft = rng.standard_normal((12, 5)).astype(dtype)
    soft[rng.random((12, 5)) < 0.4] = 0.0
    soft[3] = 0.0
    for L in [np.eye(4, dtype=dtype)[rng.integers(0, 4, 10)], (rng.random((9, 6)) < 0.3).astype(dtype), soft,
              (rng.random((1, 3)) * 0.3).astype(dtype), np.zeros((4, 0), dtype)]:
        Y = K.label_matrix(L, np.empty(0, dtype))
        ref = triple_loop(L)
        np.testing.assert_array_equal(Y, ref)
        assert np.array_equal(np.signbit(Y), np.signbit(ref))


# ------------------------------------------------------ the CPU fast path of the loss (spike_similar_loss_checked)
class _SubArray(np.ndarray):
    """An ndarray subclass: not an exact ndarray, so it always takes the full validation path."""


_SSL_FUNCS = [
    lambda X, L, *a: sp.spike_similar_loss(X, L, *a),
    lambda X, L, *a: sp.spike_similar_loss_vjp(None, X, L, *a),
    lambda X, L, *a: sp.spike_similar_loss_value_and_grad(X, L, *a),
]
_SSL_SETTINGS = [("linear", "mse"), ("linear", "bce"), ("polynomial", "l1", 2.0), ("sigmoid", "bce", 0.3),
                 ("gaussian", "mse", 4.0), ("gaussian", "bce", 2.0)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("setting", _SSL_SETTINGS)
def test_ssl_fast_path_same_bits_as_the_validated_path(dtype, setting):
    """Exact arrays take the one-call path; an ndarray subclass takes the full validation path.  Both give the same
    value and gradient, bit for bit, float64 labels with float32 spikes included (converted the same way)."""
    gen = np.random.default_rng(5)
    X = (gen.random((9, 4, 6)) < 0.3).astype(dtype)
    L = np.eye(3)[gen.integers(0, 3, 9)]
    from refnsm.spiking import losses

    # the two paths are the ones compared: exact arrays take the one-call path, the subclass does not
    assert losses._ssl_fast(X, L, setting[0], setting[1], setting[2:], 1.0, True) is not None
    assert losses._ssl_fast(X.view(_SubArray), L, setting[0], setting[1], setting[2:], 1.0, True) is None
    for f in _SSL_FUNCS:
        fast = f(X, L, *setting)
        slow = f(X.view(_SubArray), L.view(_SubArray), *setting)
        for a, b in zip(fast if isinstance(fast, tuple) else (fast,), slow if isinstance(slow, tuple) else (slow,)):
            assert type(a) is np.ndarray and a.dtype == dtype
            np.testing.assert_array_equal(a, b)


def _bad_ssl_inputs():
    gen = np.random.default_rng(6)
    X = (gen.random((6, 2, 5)) < 0.4).astype(np.float64)
    L = np.eye(2)[gen.integers(0, 2, 6)]
    for where, value in [((1, 0, 3), np.nan), ((0, 1, 0), np.inf), ((5, 1, 4), -np.inf)]:
        bad = X.copy()
        bad[where] = value
        yield "spikes", bad, L, ("linear", "mse")
    bad = L.copy()
    bad[2, 1] = np.nan
    yield "labels", X, bad, ("linear", "mse")
    yield "bce outside [0, 1]", X, L, ("polynomial", "bce", 2.0)
    signed = L.copy()
    signed[0] = [-1.0, 1.0]  # Y = min(L L^T, 1) is -1 for a pair whose other row has class 0
    yield "signed labels for bce", X, signed, ("sigmoid", "bce", 0.3)
    yield "batch mismatch", X, L[:5], ("linear", "mse")


@pytest.mark.parametrize("k", range(len(_SSL_FUNCS)))
def test_ssl_fast_path_raises_the_validation_error(k):
    """A bad value on the one-call path raises the full validation's error, with the same message."""
    f = _SSL_FUNCS[k]
    for label, X, L, setting in _bad_ssl_inputs():
        with pytest.raises(ValueError) as fast:
            f(X, L, *setting)
        with pytest.raises(ValueError) as slow:
            f(X.view(_SubArray), L.view(_SubArray), *setting)
        assert str(fast.value) == str(slow.value), label


def test_ssl_fast_path_rescales_like_the_validated_path():
    """Cosine inputs large enough for X X^T to overflow are rescaled (the one-call path steps aside for them), and
    a result that overflows for other reasons is refused by the result check on both paths."""
    from refnsm._checks import NonFiniteResultError

    gen = np.random.default_rng(7)
    X = 1e300 * gen.random((5, 3, 4))
    L = np.eye(2)[gen.integers(0, 2, 5)]
    fast = sp.spike_similar_loss_value_and_grad(X, L, "linear", "mse")
    slow = sp.spike_similar_loss_value_and_grad(X.view(_SubArray), L.view(_SubArray), "linear", "mse")
    assert np.isfinite(fast[0]) and np.all(np.isfinite(fast[1]))
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])
    big = 1e10 * gen.random((5, 3, 4))  # (x_i . x_j)^40 overflows
    for Xb in (big, big.view(_SubArray)):
        with pytest.raises(NonFiniteResultError, match="spike_similar_loss_value_and_grad"):
            sp.spike_similar_loss_value_and_grad(Xb, L, "polynomial", "mse", 40.0)


def test_bit_scans_give_the_smallest_nonzero_and_largest_magnitude():
    """The integer scans behind dot_lifted (refnsm._bits32) give the float scan's answer: signs, zeros and
    subnormals included."""
    from refnsm import _bits32 as B

    gen = np.random.default_rng(8)
    for _ in range(200):
        w = (gen.standard_normal(gen.integers(1, 300)) * 10.0 ** gen.integers(-46, 30)).astype(np.float32)
        w[gen.random(w.size) < 0.3] = 0.0
        if gen.random() < 0.3:
            w[gen.integers(0, w.size)] = -np.float32(1e-45)  # the smallest subnormal, negative
        lo, hi = B.min_abs_bits32(w), B.max_abs_bits32(w)
        a = np.abs(w)
        nz = a[a != 0]
        if nz.size:
            assert np.uint32(lo).view(np.float32) == nz.min() and B.abs_bits_value(lo) == float(nz.min())
        else:
            assert lo == 0x80000000
        assert np.uint32(hi).view(np.float32) == a.max() and B.abs_bits_value(hi) == float(a.max())
    assert B.max_abs_bits32(np.array([1.0, -np.inf], np.float32)) == B.BITS_INF32
    assert B.max_abs_bits32(np.array([1.0, np.nan], np.float32)) > B.BITS_INF32  # dot_lifted then takes no lift


def test_dot_lifted_passes_non_finite_weights_through():
    from refnsm.spiking import _kernels as K

    W = np.array([[1e-42, 0.0], [np.inf, 1.0]], np.float32)
    X = np.ones((2, 3), np.float32)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(K.dot_lifted(W, X, 2.0), np.dot(W, X))
