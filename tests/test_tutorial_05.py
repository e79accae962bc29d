"""Tutorial 05 (Hopfield capacity) in quick mode: the reproduced numbers, asserted at a tolerance.

Thresholds come from the issue and from the published capacities of the classical, dense and modern Hopfield
models (the tutorial's table); the d=64,
N=4096 capacity point is cheap enough to assert here at full size.
"""


import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tutorial(load_tutorial):
    return load_tutorial("05_hopfield_capacity")


@pytest.fixture(scope="module")
def result(tutorial):
    return tutorial.main(quick=True)


def test_classical_bit_error_follows_theory(result):
    # one-step bit-error rate at alpha = 0.138 within 10% relative of Phi(-1/sqrt(alpha))
    assert result["p_err_rel_diff_0138"] <= 0.10
    sim, th = np.array(result["p_err_sim"]), np.array(result["p_err_theory"])
    big = th > 5e-4
    assert np.all(np.abs(sim[big] - th[big]) <= 0.15 * th[big])


def test_classical_retrieval_collapses_near_0138(result):
    a = np.array(result["alphas_overlap"])
    m = np.array(result["mean_overlap"])
    f = np.array(result["frac_overlap_095"])
    assert np.all(m[a <= 0.12] >= 0.98)
    assert m[a == 0.20][0] <= 0.75 and f[a == 0.25][0] <= 0.1
    assert m[a <= 0.12].min() - m[a == 0.20][0] >= 0.3


def test_modern_capacity(result):
    assert result["acc_d64_k13_N4096"] >= 0.98
    # d=32, k=6, N=16: every query whose nearest stored pattern is the true one is recovered exactly (the raw
    # accuracy can only miss queries that are closer to another pattern, which no memory can recover)
    assert result["acc_d32_k6_N16_nn_ok"] == 1.0
    assert result["acc_d32_k6_N16"] >= 0.98
    assert result["acc_d32_k6_N16"] == result["nn_bound_d32_k6_N16"]
    c32 = result["capacity_d32"]
    N = np.array(c32["N"])
    acc = np.array(c32["modern beta=1"])[N >= 16]
    assert np.all(np.diff(acc) <= 0) and acc[-1] <= 0.6  # d=32 collapses by N=4096
    # ... while d=64 still recovers almost everything: capacity grows exponentially with d
    assert result["capacity_d64"]["modern beta=1"][result["capacity_d64"]["N"].index(4096)] - acc[-1] >= 0.4


def test_modern_beats_dense_beats_classical(result):
    c = result["capacity_d64"]
    N = c["N"]
    i = N.index(16)
    assert c["classical"][i] <= 0.1  # load 0.25 > 0.138
    assert c["dense n=3"][i] >= 0.9
    j = N.index(256)
    assert c["modern beta=1"][j] == 1.0 and c["dense n=3"][j] <= 0.1


def test_digit_completion(tutorial, result):
    assert result["digits_fraction_best"] >= 0.95
    assert result["digits_fraction"][0.01] <= 0.1  # tiny beta: a blurred average, not a retrieval
    for name in ("05_classical.png", "05_capacity.png", "05_completion.png"):
        assert (tutorial.FIGURES / name).stat().st_size > 10_000
