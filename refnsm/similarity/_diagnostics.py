"""The record of what a circuit's fast dynamics did (its own module so that the circuits in ``models`` and the
generic iteration bases in ``iteration`` can both build it without importing each other)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Diagnostics:
    """What the fast dynamics did in the last ``forward``.

    Attributes
    ----------
    iterations : int
        Updates run (pynsm's ``iteration_idx + 1``).
    max_change : float
        :math:`\\max|y^{t+1} - y^t|` of the last update (NaN if it was NaN; 0.0 when no update ran).
    converged : bool
        The ``tol`` rule stopped the loop.
    stopped_by_hook : bool
        An iteration hook returned a truthy value.
    residual : float
        Fixed-point residual of the final state, :math:`\\max|y - P(y - (My - b))|`: the KKT natural residual for
        NSM (ReLU), :math:`\\max|My - b|` for SM.
    energy : float
        :math:`\\tfrac12 \\sum y \\odot My - \\sum y \\odot b` of the final state (summed over samples and positions).
    diverged : bool
        The final state holds NaN or Inf.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> model = sim.SimilarityMatching(sim.Linear(3, 2, rng=0), 2, max_iterations=5)
    >>> y = model.forward(np.ones((2, 3)))
    >>> model.diagnostics.iterations
    5
    """

    iterations: int
    max_change: float
    converged: bool
    stopped_by_hook: bool
    residual: float
    energy: float
    diverged: bool
