"""What one oracle case is, and how one evaluation is scored (shared by the fast tests and the ledger)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .measure import conditioning, error_in_eps


class Unavailable(Exception):
    """An upstream library cannot run this input (not installed, or it refuses the input); the message says why."""


@dataclass
class Case:
    family: str
    name: str  #: the public function (and its options), as it appears in docs/accuracy.md
    regimes: dict  #: regime name -> make_inputs(rng, dtype) -> dict of inputs
    refnsm: Callable  #: inputs -> {output name: array}
    exact: Callable  #: inputs -> {output name: (exact float64 array, term scale float64 array)}
    upstream: dict = field(default_factory=dict)  #: library label -> inputs -> {output name: array}
    dtypes: tuple = (np.float64, np.float32)


@dataclass
class Score:
    err: float  #: worst error over the outputs, in eps of the dtype, relative to the term scale
    output: str  #: the output where it occurs
    index: tuple  #: and the entry
    cond: float  #: the conditioning of that output (measure.conditioning)


def score(outputs, exact, dtype) -> Score:
    """The worst error of ``outputs`` (a dict of arrays) against ``exact`` (a dict of (value, scale))."""
    best = Score(0.0, "", (), 1.0)
    for key, (y, s) in exact.items():
        if key not in outputs:
            continue
        c = np.asarray(outputs[key])
        e, k = error_in_eps(c.reshape(np.shape(y)), y, s, dtype)
        if e > best.err or not best.output:
            idx = tuple(int(i) for i in np.unravel_index(k, np.shape(y))) if k >= 0 and np.ndim(y) else ()
            best = Score(e, key, idx, conditioning(y, s))
    return best
