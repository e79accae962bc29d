"""The boundary fuzzer's tables over every public name (tests/fuzz/fuzz_tables.py), as part of ``make test``.

For every spec: the valid call succeeds without writing its inputs; each bad input (one argument at a time) raises
a ValueError/TypeError naming the argument, writes no caller array and changes no state of the object; each
legitimate variant of an array argument (list, Fortran order, strided view, read-only, integers) gives bitwise
the same result.  ``make fuzz`` runs the same tables plus random valid calls and the NUMBA_BOUNDSCHECK replay."""

import warnings

import pytest

import fuzz_tables as F

TABLE = F.specs()
SPECS = [sp for name in TABLE for sp in TABLE[name]]


def test_every_public_name_is_fuzzed_or_listed_as_not_an_entry_point():
    assert F.coverage_gaps(TABLE) == [], "add these public names to tests/fuzz/fuzz_tables.py (specs or NOT_CALLED)"


@pytest.mark.parametrize("spec", SPECS, ids=[sp.label for sp in SPECS])
def test_boundary_contract(spec):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the contract is about what is raised or returned
        rows = F.run_spec(spec)
    bad = [f"{r['arg']} / {r['case']}: {r['outcome']} {r['detail']}" for r in F.unexpected(rows)]
    assert not bad, "\n".join(bad)
    assert any(r["outcome"] == F.CLEAN for r in rows) or all(a.kind == "fixed" for a in spec.args)
