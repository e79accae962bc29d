"""refnsm's own CPU path passes every golden case in both dtypes (one test per family, for readable failures)."""

import pytest

import refnsm.golden as G

FAMILIES = ("spiking", "similarity", "hopfield", "linear", "regularization")


@pytest.mark.parametrize("family", FAMILIES)
def test_refnsm_cpu_passes(family):
    rep = G.verify("refnsm", family=family, compat=["ngclearn", "spikingjelly", "pynsm", "neuromancer", "neurotorch"])
    assert rep.counts["not implemented"] == 0
    assert rep.ok, "\n".join(r.line() for r in rep.failures())
    assert rep.counts["passed"] > 10


def test_suite_covers_every_family_and_both_dtypes():
    cs = G.cases()
    per = {f: sum(c.family == f for c in cs) for f in FAMILIES}
    assert all(n >= 15 for n in per.values()), per
    assert sum("float32" in c.dtypes for c in cs) > 0.9 * len(cs)
    for c in cs:
        assert c.name.count(".") >= 2 and c.difficulty in ("basic", "edge", "hard")
        assert set(c.tolerance) == set(c.dtypes) and c.tolerance_reason
        for k in c.outputs():
            assert k in c.expected and c.conditioning[k] >= 1.0 and c.scales[k] > 0


def test_float_inputs_are_float32_exact_when_run_in_float32():
    import numpy as np
    for c in G.cases():
        if "float32" in c.dtypes:
            for k, v in c.inputs.items():
                if v.dtype.kind == "f":
                    assert np.array_equal(v.astype(np.float32).astype(np.float64), v), (c.name, k)
