"""`python -m refnsm warmup` compiles every kernel of every family into the Numba cache.

That it leaves no kernel unreached is enforced where it runs in full: `make test` runs it first, and it exits 1
listing any kernel it did not reach (a new kernel must be exercised in refnsm/_warmup.py)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _warmup(cache, *args):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "refnsm", "warmup", *args], capture_output=True, text=True, env=env, cwd=ROOT)


def _unreached(cache):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    code = "from refnsm import _warmup; print('\\n'.join(_warmup.unreached()))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return [line for line in res.stdout.splitlines() if line]


def test_an_empty_cache_has_every_kernel_unreached(tmp_path):  # the check below can fail
    missing = _unreached(tmp_path)
    assert len(missing) >= 60 and "refnsm.spiking._kernels.spike_similar_loss_checked" in missing
    # an inline="always" helper is compiled into its callers only, so it never counts as missed
    assert "refnsm.hopfield._kernels._sq32" not in missing


def test_warmup_of_one_family_fills_its_cache_and_reports(tmp_path):
    res = _warmup(tmp_path, "--family", "regularization", "--dtype", "float64")
    assert res.returncode == 0, res.stderr
    assert "refnsm warmup: compiled or loaded 1 families in" in res.stdout and str(tmp_path) in res.stdout
    assert "warmup [1/1] regularization float64" in res.stderr and "1/1 done" in res.stderr  # progress, one task
    left = _unreached(tmp_path)
    assert not [k for k in left if ".regularization." in k], left
    assert [k for k in left if ".spiking." in k]  # other families untouched
    again = _warmup(tmp_path, "--family", "regularization", "--dtype", "float64", "--quiet")  # the second run loads from the cache
    assert again.returncode == 0 and again.stderr == ""
