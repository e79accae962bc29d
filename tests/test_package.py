"""`import refnsm` is fast, compiles nothing and imports no heavy dependency; the CLI answers."""

import subprocess
import sys

CODE = """
import sys, time
t = time.perf_counter()
import refnsm
dt = time.perf_counter() - t
heavy = sorted(m for m in ("numba", "scipy", "matplotlib", "torch", "jax") if m in sys.modules)
print(dt, ",".join(heavy))
"""


def test_import_is_fast_and_side_effect_free():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True).stdout.split()
    assert float(out[0]) < 0.5
    assert len(out) == 1, f"import refnsm imported {out[1]}"


def test_families_load_lazily():
    import refnsm

    assert refnsm.spiking.spike_similar_loss is not None
    assert "spiking" in dir(refnsm)


def test_cli_info_runs():
    res = subprocess.run([sys.executable, "-m", "refnsm", "info", "--no-upstream"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "numba" in res.stdout and "CUDA" in res.stdout
