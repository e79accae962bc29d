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


def _crosscheck_run(ci: str):
    import os

    env = dict(os.environ, CI=ci)
    return subprocess.run([sys.executable, "-m", "pytest", "tests/crosscheck/test_spiking.py", "-q", "-p",
                           "no:cacheprovider", "-k", "tet-1x2x3"], capture_output=True, text=True, env=env,
                          cwd=__import__("pathlib").Path(__file__).resolve().parent.parent)


def test_missing_upstream_skips_locally_and_fails_under_ci():
    import importlib.util

    import pytest

    if importlib.util.find_spec("spikingjelly") is not None:
        pytest.skip("spikingjelly is installed here; the policy is tested in the environment without it")
    local, ci = _crosscheck_run(""), _crosscheck_run("true")
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout
    assert ci.returncode == 1 and "1 failed" in ci.stdout and "cannot be imported" in ci.stdout, ci.stdout


def test_no_kernel_uses_numbas_threading_layer():
    """No ``parallel=True`` kernel: under Numba's OpenMP threading layer (the default where libgomp is installed) a
    process that used a parallel region and then forks (multiprocessing, data-loader workers) has its children
    terminated by the GNU OpenMP runtime ("fork() called from a process already using GNU OpenMP"), and the
    workqueue layer aborts on concurrent use.  refnsm's kernels stay single-threaded; BLAS brings the threads."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1] / "refnsm"
    offenders = [f"{p.relative_to(root)}:{i}" for p in root.rglob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if re.search(r"(jit|vectorize)\(.*parallel\s*=\s*True|\bprange\(|import.*\bprange\b",
                              line.split("#")[0])]
    assert not offenders, offenders
