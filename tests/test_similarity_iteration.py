"""pynsm's iteration bases, iteration optimizers/schedulers and extract_embeddings in refnsm.similarity (issue 14)."""

import numpy as np
import pytest

from refnsm import similarity as sim


class LinearSM(sim.IterationLossModule):
    """A similarity-matching fast loop built on the public base: y <- y - eta (M y - W x), from y = 0 (pynsm's
    SimilarityMatching with a linear encoder, written against the override points)."""

    def __init__(self, W, M, tol=0.0, **kw):
        super().__init__(**kw)
        self.W, self.M, self.tol = W, M, tol

    def pre_iteration(self, x):
        self.b = x @ self.W.T
        self.y = np.zeros_like(self.b)
        self._last = None
        super().pre_iteration(x)

    def iteration_parameters(self):
        return {"y": self.y}

    def iteration_loss(self, x):
        # 1/2 y.My - y.b summed over the batch, and its gradient My - b
        My = self.y @ self.M.T
        return 0.5 * np.sum(self.y * My) - np.sum(self.y * self.b), {"y": My - self.b}

    def converged(self, x):
        done = self._last is not None and np.abs(self.y - self._last).max() < self.tol
        self._last = self.y.copy()
        return done

    def post_iteration(self, x):
        return self.y.copy()


def _circuit_data(seed=0, n=6, m=3, B=5):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((m, n)) / np.sqrt(n)
    A = rng.standard_normal((m, m))
    M = np.eye(m) + 0.1 * (A + A.T)
    return W, M, rng.standard_normal((B, n))


@pytest.mark.parametrize("projection, nonneg", [(None, False), ("relu", True)])
def test_circuit_on_the_base_matches_the_built_in_fused_loop(projection, nonneg):
    W, M, x = _circuit_data()
    mine = LinearSM(W, M, iteration_lr=0.1, max_iterations=40,
                    iteration_projection=(lambda p: np.maximum(p, 0.0)) if nonneg else None)
    y = mine(x)
    ref = sim.SimilarityMatching(sim.Linear(6, 3, bias=False, weight=W), 3, iteration_lr=0.1,
                                 iteration_projection=projection)
    ref.load_state_dict({"encoders.0.weight": W, "competitor.weight": M})
    np.testing.assert_allclose(y, ref(x), rtol=1e-12, atol=1e-14)
    assert mine.iteration_idx == 39
    # the recorded loss is the energy at the iterate before the final step (y after 39 steps), computed here
    y39 = LinearSM(W, M, iteration_lr=0.1, max_iterations=39,
                   iteration_projection=(lambda p: np.maximum(p, 0.0)) if nonneg else None)(x)
    b = x @ W.T
    assert mine.last_iteration_loss == pytest.approx(0.5 * np.sum(y39 * (y39 @ M.T)) - np.sum(y39 * b), rel=1e-12)


def test_hook_order_early_stop_and_convergence():
    W, M, x = _circuit_data(1)
    calls = []
    m = LinearSM(W, M, tol=1e-3, iteration_lr=0.2, max_iterations=500)
    m.register_iteration_hook("pre", lambda mod: calls.append("pre"))
    m.register_iteration_hook("post", lambda mod: calls.append("post"))
    m.register_iteration_hook("iteration", lambda mod: calls.append(mod.iteration_idx) or False)
    m(x)
    assert calls[0] == "pre" and calls[-1] == "post" and calls[1:-1] == list(range(len(calls) - 2))
    assert 0 < m.iteration_idx < 499                     # stopped by converged()
    m.register_iteration_hook("iteration", lambda mod: mod.iteration_idx == 3)
    m(x)
    assert m.iteration_idx == 3
    with pytest.raises(ValueError, match="kind"):
        m.register_iteration_hook("after", print)
    with pytest.raises(TypeError, match="hook"):
        m.register_iteration_hook("pre", 3)
    with pytest.raises(NotImplementedError, match="iteration"):
        sim.IterationModule(2)(1)
    with pytest.raises(NotImplementedError, match="iteration_loss"):
        class Bare(sim.IterationLossModule):
            def iteration_parameters(self):
                return {"y": np.zeros(2)}
        Bare(max_iterations=1)()


def test_sgd_momentum_and_adam_closed_forms_on_a_constant_gradient():
    g = np.array([0.5, -2.0])
    for mu in (0.0, 0.9):
        p = np.zeros(2)
        opt = sim.SGD({"p": p}, lr=0.1, momentum=mu)
        for _ in range(5):
            opt.step({"p": g})
        # buf_t = g (1 - mu^t) / (1 - mu); p_T = -lr * sum_t buf_t
        total = sum((1 - mu ** t) / (1 - mu) if mu else 1.0 for t in range(1, 6))
        np.testing.assert_allclose(p, -0.1 * g * total, rtol=1e-14)
    p = np.zeros(2)
    opt = sim.Adam({"p": p}, lr=0.01, eps=0.0)
    for _ in range(4):
        opt.step({"p": g})
    np.testing.assert_allclose(p, -0.04 * np.sign(g), rtol=1e-12)   # bias-corrected: each step is lr * sign(g)
    p32 = np.zeros(2, np.float32)
    sim.Adam({"p": p32}, lr=0.01).step({"p": g})
    assert p32.dtype == np.float32


def test_schedulers():
    opt = sim.SGD({"p": np.zeros(1)}, lr=1.0)
    s = sim.StepLR(opt, step_size=3, gamma=0.5)
    lrs = []
    for _ in range(7):
        s.step()
        lrs.append(opt.lr)
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]
    opt = sim.SGD({"p": np.zeros(1)}, lr=2.0)
    e = sim.ExponentialLR(opt, gamma=0.5)
    e.step(), e.step()
    assert opt.lr == 0.5 and e.get_last_lr() == [0.5]


def test_circuit_with_adam_and_a_schedule_uses_the_optimizer_protocol():
    W, M, x = _circuit_data(2)
    kw = {"betas": (0.8, 0.99)}
    a = LinearSM(W, M, iteration_optimizer="adam", iteration_scheduler="step", iteration_lr=0.05,
                 it_optim_kwargs=kw, it_sched_kwargs={"step_size": 5, "gamma": 0.5}, max_iterations=20)
    b = LinearSM(W, M, iteration_optimizer=sim.Adam, iteration_scheduler=sim.StepLR, iteration_lr=0.05,
                 it_optim_kwargs=kw, it_sched_kwargs={"step_size": 5, "gamma": 0.5}, max_iterations=20)
    np.testing.assert_array_equal(a(x), b(x))
    assert kw == {"betas": (0.8, 0.99)}                     # the caller's dict is not mutated (pynsm adds "lr")
    assert a.iteration_optimizer.lr == 0.05 * 0.5 ** 4
    c = LinearSM(W, M, iteration_lr=0.05, it_optim_kwargs={"lr": 0.2}, max_iterations=3)
    c(x)
    assert c.iteration_optimizer.lr == 0.2                  # pynsm's precedence: the dict's lr wins


def test_iteration_bad_input():
    with pytest.raises(ValueError, match="iteration_optimizer: expected one of 'sgd', 'adam'"):
        sim.IterationLossModule(iteration_optimizer="rmsprop")
    with pytest.raises(TypeError, match="iteration_scheduler"):
        sim.IterationLossModule(iteration_scheduler=3)
    with pytest.raises(TypeError, match="it_optim_kwargs"):
        sim.IterationLossModule(it_optim_kwargs=[("lr", 1)])
    with pytest.raises(TypeError, match="iteration_projection"):
        sim.IterationLossModule(iteration_projection="relu")
    with pytest.raises(ValueError, match="max_iterations"):
        sim.IterationModule(-1)
    p = np.zeros(3)
    with pytest.raises(ValueError, match="nesterov"):
        sim.SGD({"p": p}, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        sim.Adam({"p": p}, betas=(1.0, 0.9))
    with pytest.raises(TypeError, match="params"):
        sim.SGD([p], lr=0.1)
    with pytest.raises(TypeError, match=r"params\['p'\]"):
        sim.SGD({"p": [1.0]}, lr=0.1)
    opt = sim.SGD({"p": p}, lr=0.1)
    with pytest.raises(ValueError, match=r"grads\['p'\]: expected shape"):
        opt.step({"p": np.ones(2)})
    with pytest.raises(ValueError, match="grads: key 'q'"):
        opt.step({"q": np.ones(3)})
    with pytest.raises(ValueError, match=r"grads\['p'\]"):
        opt.step({"p": np.array([1.0, np.nan, 0.0])})
    np.testing.assert_array_equal(p, 0.0)                   # nothing changed by a refused step
    with pytest.raises(ValueError, match="step_size"):
        sim.StepLR(opt, step_size=0)
    with pytest.raises(TypeError, match="optimizer"):
        sim.ExponentialLR("sgd", 0.9)


def test_extract_embeddings():
    W, M, x = _circuit_data(3)
    model = sim.SimilarityMatching(sim.Linear(6, 3, bias=False, weight=W), 3)
    model.load_state_dict({"encoders.0.weight": W, "competitor.weight": M})
    batches = [(x[:2], np.array([0, 1])), (x[2:], np.array([1, 0, 1]))]
    seen = []

    def progress(it):
        seen.append(True)
        return it

    out = sim.extract_embeddings(model, batches, progress)
    assert seen == [True]
    np.testing.assert_array_equal(out.label, [0, 1, 1, 0, 1])
    np.testing.assert_allclose(out.output, np.concatenate([model(x[:2]), model(x[2:])]), rtol=0, atol=0)
    with pytest.raises(TypeError, match="model"):
        sim.extract_embeddings(3, batches)
    with pytest.raises(TypeError, match="loader"):
        sim.extract_embeddings(model, 5)
    with pytest.raises(ValueError, match="loader: batch 0"):
        sim.extract_embeddings(model, [x])
    with pytest.raises(ValueError, match="at least one"):
        sim.extract_embeddings(model, [])
    with pytest.raises(TypeError, match="progress"):
        sim.extract_embeddings(model, batches, progress=1)


# ------------------------------------------------------------------- the override points of the built-in circuits
def _sm(W, M, cls=None, **kw):
    cls = cls or sim.SimilarityMatching
    m = cls(sim.Linear(W.shape[1], W.shape[0], bias=False, weight=W.copy()), W.shape[0], **kw)
    m.load_state_dict({"encoders.0.weight": W, "competitor.weight": M})
    return m


class Stepwise(sim.SimilarityMatching):
    """Forces the step-by-step loop without changing the math (overrides converged by calling the base)."""

    def converged(self, *xs):
        return super().converged(*xs)


@pytest.mark.parametrize("proj", [None, "relu", lambda y: np.clip(y, -0.2, 0.3)])
@pytest.mark.parametrize("tol", [0.0, 1e-4])
def test_step_by_step_loop_matches_the_fused_loop(proj, tol):
    W, M, x = _circuit_data(6)
    kw = dict(iteration_lr=0.2, tol=tol, max_iterations=200, iteration_projection=proj)
    fused, slow = _sm(W, M, **kw), _sm(W, M, Stepwise, **kw)
    y1, y2 = fused(x), slow(x)
    np.testing.assert_allclose(y2, y1, rtol=1e-12, atol=1e-15)
    d1, d2 = fused.diagnostics, slow.diagnostics
    assert d1.iterations == d2.iterations and d1.converged == d2.converged
    assert d2.energy == pytest.approx(d1.energy, rel=1e-10) and d2.residual == pytest.approx(d1.residual, abs=1e-12)


def test_hooks_see_the_iterate_in_the_step_by_step_loop():
    W, M, x = _circuit_data(7)
    seen = []
    m = _sm(W, M, Stepwise, iteration_lr=0.2)
    m.register_iteration_hook("iteration", lambda mod: seen.append(mod.y.copy()) or mod.iteration_idx == 4)
    y = m(x)
    assert len(seen) == 5 and m.diagnostics.stopped_by_hook
    np.testing.assert_array_equal(seen[-1], y)


def test_a_new_circuit_by_overriding_the_gradient():
    """A leaky circuit, y <- y - eta((M + lam I) y - b), built by overriding iteration_set_gradients, equals SM with
    the competitor M + lam I."""
    W, M, x = _circuit_data(8)
    lam = 0.3

    class Leaky(sim.SimilarityMatching):
        def iteration_set_gradients(self, *xs):
            g = super().iteration_set_gradients(*xs)
            return {"y": g["y"] + lam * self.iteration_parameters()["y"]}

    y = _sm(W, M, Leaky, iteration_lr=0.2)(x)
    np.testing.assert_allclose(y, _sm(W, M + lam * np.eye(3), iteration_lr=0.2)(x), rtol=1e-12, atol=1e-15)


def test_circuit_iteration_loss_and_plugins():
    W, M, x = _circuit_data(9)
    m = _sm(W, M, iteration_optimizer="adam", iteration_scheduler="exponential", it_sched_kwargs={"gamma": 0.9},
            iteration_lr=0.05)
    y = m(x)
    assert isinstance(m.iteration_optimizer, sim.Adam) and m.iteration_optimizer.lr == pytest.approx(0.05 * 0.9 ** 40)
    b = x @ W.T
    assert m.diagnostics.energy == pytest.approx(0.5 * np.sum(y * (y @ M.T)) - np.sum(y * b), rel=1e-12)
    m2 = _sm(W, M, iteration_optimizer=sim.SGD, it_optim_kwargs={"momentum": 0.5}, iteration_lr=0.1)
    assert not np.allclose(m2(x), _sm(W, M, iteration_lr=0.1)(x))       # momentum changes the path
    with pytest.raises(ValueError, match="iteration_optimizer: expected one of"):
        _sm(W, M, iteration_optimizer="rmsprop")
    with pytest.raises(TypeError, match="it_sched_kwargs"):
        _sm(W, M, iteration_scheduler="step", it_sched_kwargs=3)
    with pytest.raises(TypeError, match="unexpected keyword"):
        _sm(W, M, iteration_optimiser="adam")
