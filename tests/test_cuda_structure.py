"""The layout the CUDA path keeps (issue 13): one code path per algorithm, twins beside their kernels.

Static checks on the source (no GPU, no simulator, nothing imported but the standard library):

* no import cycle among refnsm's modules (module-level imports, the ones that run at import time);
* no family module imports ``refnsm.cuda`` at module level (the device is imported only when asked for);
* no code in ``refnsm/cuda/`` reads another object's private attribute (``obj._name`` where ``obj`` is not ``self``,
  ``cls`` or a module of ``refnsm.cuda`` itself);
* each family's ``_cuda_kernels.py`` only defines names its ``_kernels.py`` also defines (plus private helpers and
  documented extras), so the two files can be read side by side.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "refnsm"
FAMILIES = ("hopfield", "similarity", "spiking", "linear", "regularization")


def _modname(path):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules():
    return {_modname(p): p for p in PKG.rglob("*.py")}


def _resolve(mod, is_pkg, node):
    """Absolute module names imported by an ``ImportFrom``/``Import`` node of module ``mod``."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    if node.level:
        base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module
    return [prefix] + [f"{prefix}.{a.name}" for a in node.names]


def _top_level_imports(path):
    """Imports executed when the module is imported: module body, including try/if blocks, not functions."""
    tree = ast.parse(path.read_text())
    out = []

    def walk(body):
        for n in body:
            if isinstance(n, (ast.Import, ast.ImportFrom)):
                out.append(n)
            elif isinstance(n, (ast.If, ast.Try, ast.With)):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    for sub in getattr(n, field, []) or []:
                        walk(sub.body if isinstance(sub, ast.ExceptHandler) else [sub])
    walk(tree.body)
    return out


def _all_imports(path):
    """Every import statement of the module, including those inside functions (run later, on first use)."""
    return [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, (ast.Import, ast.ImportFrom))]


def _graph(lazy=False):
    mods = _modules()
    graph = {}
    for mod, path in mods.items():
        deps = set()
        for node in (_all_imports(path) if lazy else _top_level_imports(path)):
            for name in _resolve(mod, path.name == "__init__.py", node):
                if name in mods and name != mod:
                    deps.add(name)
        graph[mod] = deps
    return graph


@pytest.mark.parametrize("lazy", [False, True], ids=["module-level", "including-imports-in-functions"])
def test_no_import_cycle(lazy):
    """No cycle among the imports that run at import time, nor when the imports inside functions are counted too
    (a function-level import that closes a cycle is a cycle in the design: base -> cuda/linear -> base was one)."""
    graph = _graph(lazy)
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            # importing a submodule imports its package first; a package importing its own submodules is not a cycle
            if state.get(d) == 1 and not m.startswith(d + "."):
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_family_modules_do_not_import_cuda_at_module_level():
    graph = _graph()
    bad = {m: sorted(d for d in deps if d == "refnsm.cuda" or d.startswith("refnsm.cuda."))
           for m, deps in graph.items()
           if m.split(".")[1:2] and m.split(".")[1] in FAMILIES and not m.rsplit(".", 1)[-1].startswith("_cuda_")}
    bad = {m: d for m, d in bad.items() if d}
    assert not bad, bad


def test_import_refnsm_imports_no_cuda_module():
    graph = _graph()
    seen, todo = set(), ["refnsm"]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo.extend(graph.get(m, ()))
    assert not [m for m in seen if m.startswith("refnsm.cuda") or "._cuda_" in m]


def test_cuda_package_reads_no_private_attribute_of_another_object():
    offenders = []
    for path in sorted((PKG / "cuda").glob("*.py")):
        tree = ast.parse(path.read_text())
        local_modules = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                         and n.level == 1 for a in n.names}
        for n in ast.walk(tree):
            if (isinstance(n, ast.Attribute) and n.attr.startswith("_") and not n.attr.startswith("__")
                    and not (isinstance(n.value, ast.Name) and n.value.id in ({"self", "cls"} | local_modules))):
                offenders.append(f"{path.relative_to(ROOT)}:{n.lineno}: .{n.attr}")
    assert not offenders, offenders


@pytest.mark.parametrize("family", [f for f in FAMILIES if (PKG / f / "_cuda_kernels.py").exists()])
def test_cuda_kernels_mirror_the_cpu_kernels(family):
    """Every public function of ``_cuda_kernels.py`` is a twin of a ``_kernels.py`` function of the same name and
    the same arguments (extras must be listed here, with the reason)."""
    extras = {"spiking": {"gram_matrix"},  # X X^T: formed by BLAS syrk outside the kernels on the host
              "linear": {"householder_matrix", "householder_matrix_vjp", "transpose", "spectral_factors",
                         "spectral_core_vjp",  # twins of the NumPy helpers of the maps with a device weight
                         "all_finite"},  # twin of refnsm._fastchecks.all_finite
              "hopfield": {"all_finite"}}
    def functions(path):
        tree = ast.parse(path.read_text())
        return {n.name: [a.arg for a in n.args.args] for n in tree.body
                if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")}

    cpu = functions(PKG / family / "_kernels.py")
    gpu = functions(PKG / family / "_cuda_kernels.py")
    unknown = sorted(set(gpu) - set(cpu) - extras.get(family, set()))
    assert not unknown, f"{family}/_cuda_kernels.py defines {unknown}, which {family}/_kernels.py does not"
    for name in set(gpu) & set(cpu):
        assert gpu[name] == cpu[name], (name, gpu[name], cpu[name])
