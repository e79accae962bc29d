"""`python -m refnsm`: --version, plain-text --help, and a crosscheck that checked nothing does not pass."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args, env=None):
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "refnsm", *args], capture_output=True, text=True, env=env, cwd=ROOT)


def test_version_matches_the_package_and_pyproject():
    res = _cli("--version")
    assert res.returncode == 0, res.stderr
    declared = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert res.stdout.strip() == f"refnsm {declared}"
    import refnsm

    assert refnsm.__version__ == declared


def test_help_is_plain_text_and_lists_every_command():
    res = _cli("--help")
    assert res.returncode == 0, res.stderr
    for markup in ("``", ":func:", ":data:", ":mod:", "**"):
        assert markup not in res.stdout, markup
    for command in ("info", "demo", "crosscheck", "bench"):
        assert re.search(rf"^\s+{command}\b", res.stdout, re.M), command


def test_unknown_command_fails():
    assert _cli("frobnicate").returncode == 2


UPSTREAMS = ("spikingjelly", "pynsm", "ngclearn", "neuromancer", "neurotorch")


@pytest.mark.skipif(any(importlib.util.find_spec(m) for m in UPSTREAMS),
                    reason="an upstream library is installed here; tested in the environment without them")
def test_crosscheck_with_no_upstream_says_so_and_fails_unless_allowed():
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    strict = _cli("crosscheck", env=env)
    assert strict.returncode == 1
    assert "nothing was checked" in strict.stderr and "--allow-missing" in strict.stderr
    allowed = _cli("crosscheck", "--allow-missing", env=env)
    assert allowed.returncode == 0, allowed.stderr
    assert "nothing was checked" in allowed.stderr
    under_ci = _cli("crosscheck", "--allow-missing", env=dict(env, CI="true"))
    assert under_ci.returncode == 1


def test_blas_kernel_hint_names_a_narrow_openblas_on_an_avx512_cpu():
    from refnsm import cli

    haswell = [("libscipy_openblas64_.so", "0.3.31", "Haswell", 2)]
    wide = [("libscipy_openblas64_.so", "0.3.31", "SkylakeX", 2)]
    avx512 = {"avx2", "avx512f"}
    # forced by the environment: the hint names the variable and its value
    hint = cli.blas_kernel_hint(haswell, avx512, {"OPENBLAS_CORETYPE": "Haswell"})
    assert hint.startswith("note: OPENBLAS_CORETYPE=Haswell in the environment keeps OpenBLAS on its Haswell")
    # OpenBLAS's own choice
    hint = cli.blas_kernel_hint(haswell, avx512, {})
    assert hint.startswith("note: this CPU has AVX-512 but OpenBLAS chose its Haswell kernels")
    assert "OPENBLAS_CORETYPE=SkylakeX" in hint
    # nothing to say: AVX-512 kernels, a CPU without AVX-512, no OpenBLAS, an unknown kernel set
    assert cli.blas_kernel_hint(wide, avx512, {}) is None
    assert cli.blas_kernel_hint(haswell, {"avx2"}, {"OPENBLAS_CORETYPE": "Haswell"}) is None
    assert cli.blas_kernel_hint([("libmkl_rt.so", "2025", "?", 2)], avx512, {}) is None
    assert cli.blas_kernel_hint([("libscipy_openblas.so", "0.3.31", "?", 2)], avx512, {}) is None


def test_info_reports_the_blas_libraries(capsys):
    from refnsm import cli

    assert cli.main(["info", "--no-upstream"]) == 0
    out = capsys.readouterr().out
    libs = cli.blas_libraries()
    if libs:
        for lib, ver, arch, _ in libs:
            assert f"BLAS: {lib} {ver}, kernels {arch}" in out
    else:
        assert "BLAS: not reported (threadpoolctl is not installed; `pip install threadpoolctl`" in out
