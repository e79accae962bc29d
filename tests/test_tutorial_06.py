"""Tutorial 06 (structured linear maps) in quick mode: the spectra guarantees and the system-identification result."""


import numpy as np
import pytest



@pytest.fixture(scope="module")
def tutorial(load_tutorial):
    return load_tutorial("06_structured_linear_maps")


@pytest.fixture(scope="module")
def result(tutorial):
    return tutorial.main(quick=True)


def test_every_map_drawn_and_figures_written(tutorial, result):
    assert len(result["init_spectra"]) == 29
    for name in ("06_spectra.png", "06_sysid.png"):
        assert (tutorial.FIGURES / name).stat().st_size > 10_000


def test_spectra_show_the_guarantees(result):
    ev = result["init_spectra"]
    np.testing.assert_allclose(np.abs(ev["OrthogonalLinear"]), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.abs(ev["SchurDecompositionLinear"]), 1.0, atol=1e-10)  # gamma = 1 at init
    for name in ("RightStochasticLinear", "LeftStochasticLinear"):
        assert result["init_rho"][name] == pytest.approx(1.0, abs=1e-10)
    assert 0.8 < result["init_rho"]["PerronFrobeniusLinear"] < 1.0
    assert result["init_rho"]["SpectralLinear"] < 1.0
    assert np.all(np.abs(ev["SkewSymmetricLinear"].real) < 1e-12)
    g = ev["GershgorinLinear"]
    assert np.all(np.abs(g.imag) < 1e-12) and np.all((g.real > 0) & (g.real < 1))
    s = np.sort(np.abs(ev["SymplecticLinear"]))
    np.testing.assert_allclose(s * s[::-1], 1.0, rtol=1e-8)  # eigenvalues in pairs (lambda, 1/lambda)


def test_constrained_maps_stay_stable_where_unconstrained_does_not(result):
    r = result["sysid"]
    assert result["rho_true"] < 1
    lin = r["Linear (unconstrained)"]
    assert lin["rho"] > 1.1 and lin["rollout_err"] > 1e3  # overfits the noise, diverges
    for name in ("SpectralLinear σ∈(0,1)", "PerronFrobenius σ∈(0,1)"):
        assert r[name]["rho"] < 1.0  # exact guarantee
        assert r[name]["rollout_err"] < 2.0
    assert r["SpectralLinear σ∈(0,1)"]["spectral_norm"] < 1.0
    assert r["SVDLinear σ∈(0,1), soft"]["rho"] < 1.0
    assert lin["train_loss"] < r["SpectralLinear σ∈(0,1)"]["train_loss"]  # better fit of the training pairs
