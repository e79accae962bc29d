"""The shape variants of the boundary tables replayed under NUMBA_BOUNDSCHECK=1 (a fresh Numba cache, so every
kernel is recompiled with bounds checks): no kernel is ever reached with shapes it does not own.  This is the fast
subset (the kernels indexed by argument-supplied shapes); ``make fuzz`` replays every spec."""

import run_fuzz

SUBSET = ["hh", "hh_vjp", "orth", "Hprod", "Hprod_vjp", "kdp_vjp[linear]", "retrieve_vjp", "cup", "tet_loss"]


def test_shape_variants_under_boundscheck():
    import fuzz_tables as F

    res = run_fuzz.boundscheck(SUBSET, timeout=600)
    assert res["returncode"] == 0, res["stderr_tail"]
    assert {r["spec"] for r in res["rows"]} == set(SUBSET)
    bad = [r for r in res["rows"] if r["outcome"] not in F.GOOD]
    assert not bad, bad
    assert any(r["case"].startswith("rank") for r in res["rows"])
