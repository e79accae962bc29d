"""refnsm._backend: the one place that knows which device runs (no GPU and no simulator needed)."""

import subprocess
import sys

import numpy as np
import pytest
from cuda_support import ROOT

from refnsm import _backend


def test_devices_defined_once_and_validated_before_importing_anything():
    assert _backend.DEVICES == ("cpu", "cuda")
    for bad in ("gpu", "CUDA", None, 0):
        with pytest.raises(ValueError, match=r"device: expected one of 'cpu', 'cuda'"):
            _backend.get("spiking", bad)
        with pytest.raises(ValueError, match=r"device: expected one of 'cpu', 'cuda'"):
            _backend.arrays(bad)


def test_cpu_gives_the_numba_kernels_and_the_host_namespace():
    from refnsm.hopfield import _kernels

    K, xp = _backend.get("hopfield", "cpu", np.ones(2))
    assert K is _kernels and xp is _backend.HOST and not xp.on_device
    x = np.arange(3.0)
    assert xp.give_back(x) is x and xp.to_host(x) is x and xp.from_host(x) is x
    with pytest.raises(ValueError, match="family: expected one of"):
        _backend.kernels("optics", "cpu")


def test_compat_is_validated_with_one_message():
    assert _backend.check_compat(None, (None, "pynsm")) is None
    with pytest.raises(ValueError, match=r"compat: expected None or 'pynsm', got 'torch'"):
        _backend.check_compat("torch", (None, "pynsm"))
    with pytest.raises(ValueError, match=r"compat: expected None or 'ngclearn', got int 3"):
        _backend.check_compat(3, (None, "ngclearn"))


def test_cpu_dispatch_imports_no_cuda():
    code = ("import sys, numpy as np\n"
            "from refnsm import _backend\n"
            "for f in ('hopfield', 'similarity', 'spiking', 'linear'): _backend.get(f, 'cpu')\n"
            "_backend.kernels('similarity', 'cpu', 'ops')\n"
            "print([m for m in sys.modules if m.startswith('numba.cuda') or m.startswith('refnsm.cuda')])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_similarity_ops_mirror_each_other():
    """The circuits' array operations: refnsm.similarity._cuda_ops defines what _ops defines (read as source)."""
    import ast

    def names(path):
        tree = ast.parse(path.read_text())
        out = {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")}
        out |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
                if isinstance(t, ast.Name) and not t.id.startswith("_") and t.id != "__all__"}
        out |= {(a.asname or a.name) for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names
                if not (a.asname or a.name).startswith("_") and n.module and n.module.endswith("encoders")}
        return out

    host = names(ROOT / "refnsm" / "similarity" / "_ops.py")
    device = names(ROOT / "refnsm" / "similarity" / "_cuda_ops.py")
    assert host == device, (sorted(host - device), sorted(device - host))
