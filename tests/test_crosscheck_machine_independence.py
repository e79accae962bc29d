"""The cross-check rows must pass or fail the same way on every CPU (no dependence on upstream's rounding bits).

These tests need no upstream library: they replace the upstream call by a stub that behaves as it does on a CPU
where torch's gaussian diagonal rounds to 1 + 2e-16 (it refuses every BCE input), and check that each row then
judges refnsm against the extended-precision value, passes for refnsm's real result and fails for a wrong one.
"""

import math

import numpy as np
import pytest

from refnsm import similarity as sim
from refnsm import spiking as sp
from refnsm.crosscheck import _exact
from refnsm.crosscheck import similarity as sim_adapter
from refnsm.crosscheck import spiking as adapter

REFUSAL = ("raise", "all elements of input should be between 0 and 1")


def _bce_cases(kernel_prefix):
    return [c for c in adapter.cases() if c.name.startswith(kernel_prefix) and "-bce-" in c.name]


@pytest.fixture
def upstream_refuses_bce(monkeypatch):
    monkeypatch.setattr(adapter, "_upstream_ssl", lambda X, labels, kernel, loss, args: REFUSAL)


@pytest.mark.parametrize("case", _bce_cases("ssl-gaussian"), ids=lambda c: c.name)
def test_refused_valid_input_is_judged_against_the_exact_value(case, upstream_refuses_bce):
    row = case.run()
    assert row.passed, str(row)
    assert "extended precision" in row.note


@pytest.mark.parametrize("case", _bce_cases("ssl-polynomial1.5") + _bce_cases("ssl-linear-bce-signed"),
                         ids=lambda c: c.name)
def test_refused_invalid_input_must_be_refused_by_refnsm_too(case, upstream_refuses_bce):
    row = case.run()
    assert row.passed and row.note == "both raise", str(row)


def test_a_wrong_refnsm_result_fails_the_exact_judgement(upstream_refuses_bce, monkeypatch):
    real = adapter._refnsm_ssl

    def off_by_1e9(*a, **k):
        value, grad, A, S = real(*a, **k)
        return value * (1 + 1e-9), grad, A, S

    monkeypatch.setattr(adapter, "_refnsm_ssl", off_by_1e9)
    row = _bce_cases("ssl-gaussian1.3")[1].run()
    assert not row.passed and row.value_err > adapter.TOL


@pytest.mark.parametrize("kernel,args", [("linear", ()), ("polynomial", (2.0,)), ("sigmoid", (0.3,)),
                                         ("gaussian", (1.3,))])
@pytest.mark.parametrize("loss", ["mse", "l1", "bce"])
def test_exact_evaluator_agrees_with_refnsm_on_well_conditioned_input(kernel, args, loss):
    # the evaluator is an independent, plain transcription of the math: on ordinary inputs the two must agree
    rng = np.random.default_rng(3)
    X = rng.random((5, 2, 3)) * (0.3 if kernel == "polynomial" else 1.0)
    lab = np.eye(3)[[0, 1, 2, 0, 1]]
    lab[0, 2] = 1  # a multi-hot sample
    value, grad, _, S = _exact.spike_similar_loss(X, lab, kernel, loss, args)
    assert math.isclose(float(sp.spike_similar_loss(X, lab, kernel, loss, *args)), value, rel_tol=1e-13)
    mine = sp.spike_similar_loss_vjp(None, X, lab, kernel, loss, *args)
    assert np.max(np.abs(mine - grad)) <= 1e-13 * np.max(np.abs(grad))
    np.testing.assert_allclose(sp.spike_similarity_matrix(X, kernel, *args), S, rtol=1e-14, atol=1e-15)


def test_exact_similarity_knows_which_inputs_bce_accepts():
    X = np.random.default_rng(0).standard_normal((4, 6))
    assert _exact.similarity_in_unit_interval(X, "gaussian", (1.3,))
    assert not _exact.similarity_in_unit_interval(X, "linear", ())  # signed: negative cosines
    with pytest.raises(ValueError, match="exact similarity"):
        _exact.spike_similar_loss(X, np.eye(4), "linear", "bce", ())


def _sm_model(tol):
    rng = np.random.default_rng(0)
    enc = sim.Linear(5, 3, bias=False, weight=0.3 * rng.standard_normal((3, 5)))
    return sim.SimilarityMatching(enc, 3, tau=0.5, max_iterations=100, tol=tol, iteration_lr=0.1), \
        [rng.standard_normal((20, 5))]


def test_stopping_margin_detects_a_tol_within_rounding_of_a_change():
    model, xs = _sm_model(0.0)
    model.max_iterations = 6
    states = []
    model.register_iteration_hook("iteration", lambda m: states.append(np.array(m.y, copy=True)) and False)
    model(*xs)
    fourth_change = float(np.max(np.abs(states[3] - states[2])))
    on_the_edge, _ = _sm_model(fourth_change)
    assert sim_adapter._stopping_margin(on_the_edge, xs) == 0.0
    clear, _ = _sm_model(1e-5)
    assert sim_adapter._stopping_margin(clear, xs) > sim_adapter.MIN_STOP_MARGIN
    untested, _ = _sm_model(0.0)
    assert sim_adapter._stopping_margin(untested, xs) == math.inf
