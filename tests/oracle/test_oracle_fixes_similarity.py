"""Defects the oracle found in the similarity family, each pinned by a test that failed before its fix."""

import numpy as np
import pytest

from refnsm import similarity as sim

from oracle import similarity as osim
from oracle.measure import GOAL, error_in_eps


@pytest.mark.parametrize("kind", ["same span", "1e-9", "1e-5"])
def test_subspace_error_of_nearly_equal_subspaces_is_accurate(kind):
    """sqrt(sum(1 - cos^2)) cancels: cos = 1 - theta^2/2 rounds to 1 for theta below ~1e-8, so the error was 0 (or
    sqrt(eps) of noise) where the exact answer is 1e-9; ||Q_B - Q_A Q_A^T Q_B||_F has no cancellation."""
    rng = np.random.default_rng(5)
    A = rng.standard_normal((6, 3))
    B = A @ rng.standard_normal((3, 3)) if kind == "same span" else A + float(kind) * rng.standard_normal((6, 3))
    y, s = osim.angles_exact(A, B)["subspace_error"]
    err, _ = error_in_eps(np.float64(sim.subspace_error(A, B)), y, s)
    assert err <= GOAL[np.dtype(np.float64)], err
