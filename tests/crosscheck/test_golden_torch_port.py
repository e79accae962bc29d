"""examples/torch_port: an independent PyTorch port passes the golden suite in float64 and float32, and each of the
typical porting bugs planted into it, one at a time, is caught.  Skips where torch is absent (runs in
`make crosscheck`, whose .venv-peers has torch)."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("torch")

import refnsm.golden as G  # noqa: E402

PORT = Path(__file__).resolve().parents[2] / "examples" / "torch_port" / "torch_backend.py"


def _port():
    spec = importlib.util.spec_from_file_location("refnsm_example_torch_port", PORT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


PORT_MOD = _port()
# the family whose functions each bug touches (only that family is run, to keep the cross-check short)
FAMILY_OF = {"spiking": ("no_label", "loss_", "l1_", "bce_", "gaussian_", "tet_"),
             "hopfield": ("softmax_", "retrieve_", "energy_", "delta_"),
             "regularization": ("lp_", "dale_", "softsign_")}


@pytest.fixture(scope="module")
def clean_report():
    return G.verify(PORT_MOD.make())


def test_port_passes_both_dtypes(clean_report):
    rep = clean_report
    assert rep.ok, "\n".join(r.line() for r in rep.failures())
    per_dtype = {d: sum(r.status == "passed" and r.dtype == d for r in rep.results) for d in ("float64", "float32")}
    assert per_dtype["float64"] > 100 and per_dtype["float32"] > 100, per_dtype
    fams = {r.name.split(".")[0] for r in rep.results if r.status == "passed"}
    assert fams >= {"spiking", "hopfield", "regularization"}


@pytest.mark.parametrize("bug", sorted(PORT_MOD.BUGS))
def test_each_planted_bug_is_caught(bug):
    family = next(f for f, prefixes in FAMILY_OF.items() if bug.startswith(prefixes))
    rep = G.verify(PORT_MOD.make([bug]), family=family)
    failed = rep.failures()
    assert failed, f"planted bug {bug!r} ({PORT_MOD.BUGS[bug]}) was not caught: {rep.summary()}"


def test_at_least_twelve_bugs():
    assert len(PORT_MOD.BUGS) >= 12
