"""Expected values against the exact answer: every golden case that the extended-precision oracle (``tests/oracle``,
mpmath) certifies must hold its expected value within its own tolerance of the exact value, in every dtype it runs
in.  Otherwise a port more accurate than refnsm would fail the case: its tolerance must come from what any correct
implementation can reach (the case's conditioning, including that of the intermediate quantities every
implementation forms), or the expected value must be the exact one.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the oracle package

pytest.importorskip("mpmath")
from oracle.golden import _exact_for, certify  # noqa: E402

import refnsm.golden as G  # noqa: E402


def _certified():
    out = []
    for c in G.cases():
        if len(c.program) != 1:
            continue
        try:
            ex = _exact_for(c.program[0], c.inputs)
        except (ValueError, TypeError, KeyError, IndexError):
            ex = None
        if ex is not None:
            out.append((c, ex))
    return out


CERTIFIED = _certified()


def test_the_oracle_certifies_cases_of_two_families():
    fams = {c.family for c, _ in CERTIFIED}
    assert len(CERTIFIED) >= 50 and fams == {"spiking", "regularization"}, (len(CERTIFIED), fams)
    assert len(certify(G.cases())) == len(G.cases())


def _violations(case, exact):
    """[(output, dtype, error of the expected value against the exact answer, tolerance)] beyond tolerance."""
    bad = []
    for name, (y, _s) in zip(list(case.program[0]["save"]), exact):
        got = np.asarray(case.expected[name], dtype=np.float64).reshape(np.shape(y))
        err = float(np.max(np.abs(got - np.asarray(y, dtype=np.float64)))) / case.scales[name] if got.size else 0.0
        bad += [(name, d, err, case.tolerance[d][name]) for d in case.dtypes if not err <= case.tolerance[d][name]]
    return bad


@pytest.mark.parametrize("case,exact", CERTIFIED, ids=[c.name for c, _ in CERTIFIED])
def test_expected_value_is_within_its_tolerance_of_the_exact_answer(case, exact):
    bad = _violations(case, exact)
    assert not bad, "; ".join(f"{case.name}: expected {n!r} is {e:.3g} (of its scale) from the exact answer, beyond "
                              f"its {d} tolerance {t:.3g}: an exact port would fail it" for n, d, e, t in bad)


def test_the_check_catches_an_expected_value_off_by_more_than_its_tolerance():
    case, exact = next((c, e) for c, e in CERTIFIED if c.name == "spiking.spike_similar_loss.linear-mse-multihot")
    assert not _violations(case, exact)
    tol = max(t["value"] for t in case.tolerance.values())
    moved = G.Case(**{**case.__dict__, "expected": {"value": np.asarray(case.expected["value"])
                                                    + 3 * tol * case.scales["value"]}})
    assert [v[0] for v in _violations(moved, exact)] == ["value"] * len(case.dtypes)
