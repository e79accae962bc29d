"""The generated inputs are machine independent, so that comparing them bitwise with the shipped ones is legitimate.

Two checks: (1) a lint of the generators' source: no BLAS product, transcendental function, ``Generator.normal``,
``linalg`` or inexact division in the code that builds inputs (only the declared term-scale helpers, which produce
metadata, may use them); (2) the inputs regenerated in a subprocess with other SIMD kernels (NumPy's
``NPY_DISABLE_CPU_FEATURES``), another OpenBLAS kernel (``OPENBLAS_CORETYPE``) and one BLAS thread are bitwise the
shipped ones.  The helpers in ``generators/_common.py`` are checked against pure-Python recomputations.
"""

import ast
import hashlib
import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from refnsm.golden import _store
from refnsm.golden.generators import FAMILIES
from refnsm.golden.generators import _common as C

GEN = Path(C.__file__).resolve().parent
#: functions whose results are metadata (term scales of ill-conditioned outputs), never inputs
METADATA_HELPERS = {("spiking.py", "_bce_rounding_kappa"), ("hopfield.py", "_softmax"), ("hopfield.py", "_vjp_terms"), ("hopfield.py", "_energy_terms"),
                    ("similarity.py", "_grad_terms")}
FORBIDDEN_NAMES = {"exp", "expm1", "log", "log1p", "log2", "log10", "tanh", "sinh", "cosh", "sin", "cos", "tan",
                   "sqrt", "cbrt", "power", "dot", "matmul", "inner", "outer", "einsum", "tensordot", "linalg",
                   "normal", "standard_normal", "uniform", "exponential", "gamma", "mean", "std", "var"}


def _violations(path: Path) -> list:
    tree = ast.parse(path.read_text())
    bad = []

    def visit(node, scope):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            scope = node.name
        if (path.name, scope) in METADATA_HELPERS:
            return
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            bad.append(f"{path.name}:{node.lineno} '@' (BLAS) in {scope}")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            r = node.right
            ok = isinstance(r, ast.Constant) and isinstance(r.value, (int, float)) and r.value and \
                Fraction(r.value).numerator == 1 and not (Fraction(r.value).denominator & (Fraction(r.value).denominator - 1))
            ok = ok or (isinstance(r, ast.Constant) and isinstance(r.value, (int, float)) and
                        float(r.value).is_integer() and r.value > 0 and not (int(r.value) & (int(r.value) - 1)))
            if not ok:
                bad.append(f"{path.name}:{node.lineno} division not by a power of two in {scope}")
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_NAMES and path.name != "_common.py":
            bad.append(f"{path.name}:{node.lineno} .{node.attr} in {scope}")
        for child in ast.iter_child_nodes(node):
            visit(child, scope)

    visit(tree, "<module>")
    return bad


@pytest.mark.parametrize("fam", FAMILIES)
def test_generators_build_inputs_with_exact_operations_only(fam):
    bad = _violations(GEN / f"{fam}.py")
    assert not bad, "inexact (machine-dependent) operations building inputs:\n" + "\n".join(bad)


def test_the_lint_catches_a_blas_product_and_an_exp(tmp_path):
    p = tmp_path / "spiking.py"
    p.write_text("def cases():\n    A = X @ W\n    B = np.exp(A)\n    C = A / 3.0\n    D = g.normal(size=3)\n"
                 "    E = A / 4.0\n")
    bad = _violations(p)
    assert len(bad) == 4 and any("@" in b for b in bad) and any(".exp" in b for b in bad), bad


def test_normal_and_uniform_equal_a_pure_python_recomputation():
    gen = C.rng(5)
    got = C.normal(gen, (4, 3), 0.75)
    ref = C.rng(5).integers(-(1 << 19), (1 << 19) + 1, size=(3, 4, 3), dtype=np.int64)
    want = [[float(Fraction(int(ref[:, i, j].sum()) * 3, 4 << 19)) for j in range(3)] for i in range(4)]
    assert np.array_equal(got, np.array(want))
    u = C.uniform(C.rng(6), 7, 0.0625, 0.9375)
    k = C.rng(6).integers(1 << 15, (15 << 15) + 1, size=7, dtype=np.int64)
    assert np.array_equal(u, np.array([float(Fraction(int(v), 1 << 19)) for v in k]))
    assert np.array_equal(got.astype(np.float32).astype(np.float64), got)  # float32 numbers


def test_exact_matmul_equals_fractions_and_composition_rows_sum_to_one():
    a, b = C.normal(C.rng(7), (3, 4)), C.normal(C.rng(8), (4, 2), 0.625)
    got = C.exact_matmul(a, b)
    want = [[float(sum(Fraction(a[i, k]) * Fraction(b[k, j]) for k in range(4))) for j in range(2)] for i in range(3)]
    assert np.array_equal(got, np.array(want))
    A = C.composition(C.rng(9), 5, 6)
    assert np.all(A >= 0) and all(sum(Fraction(x) for x in row) == 1 for row in A)
    with pytest.raises(ValueError, match="dyadic"):
        C.normal(C.rng(1), 3, 0.7)


_HASH = r"""
import hashlib, json, sys
from importlib import import_module
import numpy as np
out = {}
for fam in sys.argv[1].split(","):
    for c in import_module(f"refnsm.golden.generators.{fam}").cases():
        h = hashlib.sha256()
        for k in sorted(c.inputs):
            a = np.ascontiguousarray(c.inputs[k])
            h.update(k.encode()); h.update(str(a.dtype).encode()); h.update(str(a.shape).encode()); h.update(a.tobytes())
        out[c.name] = h.hexdigest()
print(json.dumps(out))
"""


def _shipped_hashes():
    out = {}
    for c in _store.load()[1]:
        h = hashlib.sha256()
        for k in sorted(c.inputs):
            a = np.ascontiguousarray(c.inputs[k])
            h.update(k.encode()); h.update(str(a.dtype).encode()); h.update(str(a.shape).encode()); h.update(a.tobytes())
        out[c.name] = h.hexdigest()
    return out


@pytest.mark.parametrize("env", [
    {"NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR", "OPENBLAS_CORETYPE": "Sandybridge",
     "OPENBLAS_NUM_THREADS": "1"},
    {"OPENBLAS_CORETYPE": "SkylakeX", "OPENBLAS_NUM_THREADS": "2"},
], ids=["sse-sandybridge-1thread", "skylakex-2threads"])
def test_inputs_are_the_shipped_ones_under_other_simd_and_blas_kernels(env):
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        pytest.skip("the kernel switches named here are x86-64 ones")
    e = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[2]),
                                                                         os.environ.get("PYTHONPATH")]))}
    r = subprocess.run([sys.executable, "-c", _HASH, ",".join(FAMILIES)], env=e, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    fresh, shipped = json.loads(r.stdout.splitlines()[-1]), _shipped_hashes()
    assert set(fresh) == set(shipped)
    moved = sorted(n for n in fresh if fresh[n] != shipped[n])
    assert not moved, f"inputs that depend on the CPU's kernels: {moved[:10]}"
