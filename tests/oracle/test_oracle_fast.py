"""The fast oracle subset that ``make test`` runs: refnsm against the extended-precision oracle.

For every oracle case of every family, hypothesis draws a regime (the awkward ones included) and a seed; the
worst error over the value and every VJP must be within the goal (``measure.GOAL``, in eps of the dtype, relative
to the scale of the terms), except for the inputs listed with their reason in ``ledger.REASONS`` (the
ill-conditioned ones; see ``docs/accuracy.md``).  The full sweep, with the upstream libraries, is
``make accuracy``.
"""

import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oracle.cases import score
from oracle.ledger import FAMILIES, _reason
from oracle.measure import GOAL


def _all_cases():
    out = []
    for fam in FAMILIES:
        try:
            mod = importlib.import_module(f"oracle.{fam}")
        except ModuleNotFoundError as exc:
            if exc.name == f"oracle.{fam}":
                continue
            raise
        out += mod.cases()
    return out


CASES = _all_cases()


#: every case in each dtype it declares (a float64-only function, e.g. a learning-rate schedule, is not run twice)
PAIRS = [(c, np.dtype(d).type) for c in CASES for d in c.dtypes]


@pytest.mark.parametrize("case, dtype", PAIRS, ids=[f"{c.family}:{c.name}-{np.dtype(d).name}" for c, d in PAIRS])
@settings(max_examples=3, deadline=None, derandomize=True)
@given(data=st.data())
def test_within_goal_of_the_oracle(case, dtype, data):
    regime = data.draw(st.sampled_from(sorted(case.regimes)), label="regime")
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    inp = case.regimes[regime](np.random.default_rng(seed), dtype)
    try:
        ex = case.exact(inp)
    except ValueError:
        return  # the exact function is undefined there
    s = score(case.refnsm(inp), ex, dtype)
    if s.err > GOAL[np.dtype(dtype)] and _reason(case.name, np.dtype(dtype).name, regime) != "not yet explained":
        return  # a listed exception (docs/accuracy.md says why)
    assert s.err <= GOAL[np.dtype(dtype)], (regime, seed, s)


@pytest.mark.parametrize("case", CASES[::7], ids=[f"{c.family}:{c.name}" for c in CASES[::7]])
def test_the_measure_catches_a_wrong_answer(case):
    """A result off by 100 eps of its own term scale in one entry fails the goal (the test can fail)."""
    regime = sorted(case.regimes)[0]
    inp = case.regimes[regime](np.random.default_rng(0), np.float64)
    ex = case.exact(inp)
    out = {k: np.array(v, dtype=np.float64, copy=True) for k, v in case.refnsm(inp).items()}
    key = max(ex, key=lambda k: float(np.max(ex[k][1])))
    y, s = ex[key]
    k = int(np.argmax(s))
    bad = out[key].reshape(-1)
    bad[k] += 100 * np.finfo(np.float64).eps * float(np.reshape(s, -1)[k])
    assert score(out, ex, np.float64).err > GOAL[np.dtype(np.float64)]
