"""The upstream libraries run through the golden runner (refnsm/golden/upstream.py): the same cases, comparison
and report as any backend.  Cases where upstream deliberately differs run as compat=<library> cases; the default
cases upstream is documented not to pass (upstream.DIFFERS) run as xfail, so an unexpected pass fails too."""

import pytest

from refnsm.golden import upstream as U


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("library", sorted(U.BACKENDS))
def test_upstream_through_the_golden_runner(library, dtype, upstream):
    upstream(library)
    rep = U.run(library, dtype)
    assert rep.ok, "\n".join(r.line() for r in rep.failures())
    assert rep.counts["passed"] >= 3, rep.summary()


def test_every_documented_difference_names_a_compat_case():
    import refnsm.golden as G

    names = {c.name for c in G.cases()}
    for lib, pats in U.DIFFERS.items():
        for pat in pats:
            assert pat in names, pat
            if lib in ("neuromancer", "pynsm"):
                assert f"{pat}-compat-{lib}" in names, pat
