"""The runner and the protocol: missing names are skipped, malformed answers fail with a clear message."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

import refnsm.golden as G
from refnsm.golden._cli import main as golden_main

CASE = "regularization.lp_norm.vector-p2"
VJP = "regularization.lp_norm_vjp.vector-p2"


def one(name):
    return [c for c in G.cases() if c.name == name]


def ref_fn(name):
    import refnsm.regularization as R
    return getattr(R, name)


def backend(**fns):
    return SimpleNamespace(regularization=SimpleNamespace(**fns))


def run(name, be, dtype="float64"):
    return G.verify(be, cases=one(name), dtype=dtype)


def test_correct_function_passes_both_dtypes():
    be = backend(lp_norm=ref_fn("lp_norm"))
    rep = G.verify(be, cases=one(CASE))
    assert rep.ok and rep.counts["passed"] == 2, rep.summary()


def test_missing_family_and_name_are_not_implemented():
    assert run(CASE, SimpleNamespace()).counts["not implemented"] == 1
    rep = run(CASE, backend(other=lambda: 0))
    assert rep.counts["not implemented"] == 1 and rep.ok
    assert "lp_norm" in rep.results[0].message


def test_wrong_value_fails_with_worst_index_and_both_values():
    be = backend(lp_norm=lambda x, p=1: np.asarray(np.linalg.norm(x, p) * (1 + 1e-9)))
    r = run(CASE, be).results[0]
    assert r.status == "failed"
    o = r.outputs["value"]
    assert o["rel"] > o["tol"] and o["got"] != o["expected"] and o["ulps"] > 1
    assert "got" in r.line() and "expected" in r.line()


@pytest.mark.parametrize("bad, words", [
    (lambda g, x, p=1: np.zeros(x.size + 1, x.dtype), "wrong shape"),
    (lambda g, x, p=1: np.zeros(x.shape, np.float64), "wrong dtype"),
    (lambda g, x, p=1: np.full(x.shape, np.nan, x.dtype), "NaN"),
    (lambda g, x, p=1: "x", "real array"),
])
def test_malformed_outputs(bad, words):
    rep = G.verify(backend(lp_norm_vjp=bad), cases=one(VJP), dtype="float32")
    r = rep.results[0]
    assert r.status == "failed" and words in r.message, r.message


def test_a_raising_backend_fails_with_its_message():
    def boom(*a, **k):
        raise RuntimeError("my port is broken")
    r = run(CASE, backend(lp_norm=boom)).results[0]
    assert r.status == "failed" and "RuntimeError: my port is broken" in r.message


def test_writing_into_an_input_fails():
    def mutating(x, p=1):
        v = np.linalg.norm(x)
        x[0] = 0
        return v
    r = run(CASE, backend(lp_norm=mutating)).results[0]
    assert r.status == "failed" and "wrote into its input 'x'" in r.message


def test_compat_cases_only_when_asked():
    names = [c.name for c in G.cases() if c.compat]
    assert names
    assert not any(c.compat for c in G.select(G.cases()))
    assert {c.name for c in G.select(G.cases(), compat="ngclearn")} >= {n for n in names if "ngclearn" in n}


def test_xfail_include_exclude(tmp_path):
    bad = backend(lp_norm=lambda x, p=1: np.asarray(0.0, x.dtype))
    rep = G.verify(bad, cases=one(CASE), xfail=CASE)
    assert rep.ok and rep.counts["xfailed"] == 2
    rep = G.verify(backend(lp_norm=ref_fn("lp_norm")), cases=one(CASE), xfail=CASE)
    assert not rep.ok and rep.counts["xpassed"] == 2
    f = tmp_path / "pats.txt"
    f.write_text("# comment\nregularization.lp_norm.vector-*\n")
    sel = G.select(G.cases(), include=str(f), exclude="*-pm1")
    assert sel and all(c.name.startswith("regularization.lp_norm.vector-") for c in sel)
    assert not any(c.name.endswith("-pm1") for c in sel)


def test_cli_exit_codes_and_report(tmp_path):
    be = tmp_path / "mybackend.py"
    be.write_text("import numpy as np\nfrom types import SimpleNamespace\n"
                  "regularization = SimpleNamespace(lp_norm=lambda x, p=1: np.asarray(np.linalg.norm(x, p), x.dtype))\n")
    out = tmp_path / "r.json"
    assert golden_main(["verify", "--backend", str(be), "--include", CASE, "--report", str(out)]) == 0
    rep = json.loads(out.read_text())
    for key in ("suite_version", "refnsm_version", "refnsm_commit", "platform", "device", "summary"):
        assert key in rep
    assert rep["counts"]["passed"] == 2
    # a wrong answer (p ignored): 1
    be.write_text("import numpy as np\nfrom types import SimpleNamespace\n"
                  "regularization = SimpleNamespace(lp_norm=lambda x, p=1: np.asarray(np.sum(np.abs(x)), x.dtype))\n")
    assert golden_main(["verify", "--backend", str(be), "--include", CASE]) == 1
    # usage errors and unloadable backends: 2
    assert golden_main(["verify", "--backend", str(tmp_path / "missing.py")]) == 2
    assert golden_main(["verify", "--backend", "no_such_module_xyz"]) == 2
    assert golden_main(["verify"]) == 2
    assert golden_main(["verify", "--backend", "refnsm", "--dtype", "float16"]) == 2
    bad = tmp_path / "syntax.py"
    bad.write_text("def (:\n")
    assert golden_main(["verify", "--backend", str(bad)]) == 2


def test_pytest_params_helper():
    params = G.pytest_params(family="spiking")
    assert params and all(p.id.startswith("spiking.") for p in params)


def test_the_refnsm_cli_delegates_golden(capsys):
    from refnsm.cli import main

    assert main(["golden", "--help"]) == 0
    assert main(["golden", "list", "--family", "linear"]) == 0
    assert "linear.Linear." in capsys.readouterr().out
