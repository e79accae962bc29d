"""`python -m refnsm crosscheck` also runs the golden cases through the upstream adapters, as rows of its own table
(refnsm/cli.py `_golden_rows`): statuses map onto pass/fail without upstream libraries installed (a fake adapter)."""

from refnsm import cli
from refnsm.golden import upstream as U
from refnsm.golden._runner import CaseResult, Report


def _out(rel, tol):
    return {"rel": rel, "tol": tol}


def test_golden_results_become_crosscheck_rows(monkeypatch):
    results = [CaseResult("spiking.kernel_dot_product.linear-rect", "float64", "passed", "", {"value": _out(1e-16, 1e-13)}),
               CaseResult("linear.Linear.5x3-bias", "float64", "failed", "y off", {"y": _out(0.3, 1e-13),
                                                                               "d_x": _out(1e-16, 1e-13)}),
               CaseResult("linear.L0Linear.5x3-bias", "float64", "xfailed", "documented", {"reg_error": _out(2.0, 1e-13)}),
               CaseResult("linear.OrthogonalLinear.4x4-bias", "float64", "xpassed", "unexpected pass", {}),
               CaseResult("hopfield.retrieve.basic", "float64", "not implemented", "no retrieve", {})]
    calls = []
    monkeypatch.setattr(U, "BACKENDS", {"fake": None})
    monkeypatch.setattr(U, "run", lambda lib, dtype: calls.append((lib, dtype)) or Report(results, {}))
    rows = cli._golden_rows(["fake", "not-a-golden-backend"])
    assert calls == [("fake", "float64"), ("fake", "float32")]
    assert len(rows) == 8  # 4 implemented results x 2 dtypes; "not implemented" is left out
    by = {r.function: r for r in rows}
    ok = by["golden kernel_dot_product[linear-rect, float64]"]
    assert ok.passed and ok.value_err == 1e-16 and ok.tol == 1e-13 and ok.family == "spiking" and ok.upstream == "fake"
    bad = by["golden Linear[5x3-bias, float64]"]
    assert not bad.passed and bad.value_err == 0.3 and "y off" in bad.note
    xf = by["golden L0Linear[5x3-bias, float64]"]
    assert xf.passed and "documented difference" in xf.note
    assert not by["golden OrthogonalLinear[4x4-bias, float64]"].passed


def test_an_adapter_that_cannot_start_is_a_failed_row(monkeypatch):
    def boom(lib, dtype):
        raise ImportError("no torch")

    monkeypatch.setattr(U, "BACKENDS", {"fake": None})
    monkeypatch.setattr(U, "run", boom)
    rows = cli._golden_rows(["fake"])
    assert len(rows) == 2 and not any(r.passed for r in rows) and "no torch" in rows[0].note
