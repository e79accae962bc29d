"""Count the upstream API items in scope and how many refnsm has (run inside ``.venv-peers``).

    PYTHONPATH=$PWD .venv-peers/bin/python tools/api_inventory.py            # the table
    PYTHONPATH=$PWD .venv-peers/bin/python tools/api_inventory.py --missing  # plus every absent / inexact item

Nothing here is typed by hand except the *scope* (which upstream objects a port may use, below) and the two
small tables that say where refnsm deliberately spells an item differently.  The items are found by
introspecting the installed upstream packages:

* every public object in scope (class or function) is one item;
* every parameter of its constructor / signature (not ``self``, not ``*args``/``**kwargs``) is one item;
* every public method, property or attribute defined by the class or its in-scope bases is one item
  (torch ``nn.Module`` / ngcsimlib plumbing excluded); for ngclearn's component also its compartments,
  read from a constructed instance.

An item is **present** when refnsm's counterpart (same name, in the family module) has it: the parameter is
in the counterpart's signature, the method or attribute exists on the class or on a small instance.  It is
**exact** when it is present under the same name and (parameters) has the same default, or (methods) accepts
every parameter name of the upstream method.  Behaviour differences are not measured here; they are listed in
``docs/upstream_differences.md``.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import sys
import textwrap

import numpy as np

_EMPTY = inspect.Parameter.empty
_VAR = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)

# methods every torch / ngcsimlib object has, which are plumbing rather than this API
_PLUMBING = {"compartments", "to_json", "compile", "extra_repr", "training", "dump_patches", "call_super_init"}


def _params(obj):
    """Upstream (name, default) pairs of a callable, unwrapping decorators that hide the signature."""
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return []
    names = [p for p in sig.parameters.values() if p.name not in ("self", "cls") and p.kind not in _VAR]
    if not names and any(p.kind in _VAR for p in sig.parameters.values()):
        # a wrapper (*args, **kwargs): read the def's own parameter list from the source
        try:
            src = inspect.getsource(obj)
        except (OSError, TypeError):
            return []
        tree = ast.parse(textwrap.dedent(src))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == "__init__":
                args = node.args.args[1:]
                defaults = [None] * (len(args) - len(node.args.defaults)) + list(node.args.defaults)
                return [(a.arg, _EMPTY if d is None else ast.literal_eval(d)) for a, d in zip(args, defaults)]
        return []
    return [(p.name, p.default) for p in names]


def _members(cls, in_scope):
    out = []
    for klass in cls.__mro__:
        if not in_scope(klass):
            continue
        for name in vars(klass):
            if not name.startswith("_") and name not in _PLUMBING and name not in out:
                out.append(name)
    return out


def _same_default(a, b):
    if a is _EMPTY or b is _EMPTY:
        return a is b
    try:
        return type(a) is type(b) and bool(a == b) or (isinstance(a, float) and isinstance(b, float) and a == b)
    except Exception:
        return False


# --------------------------------------------------------------------------------------------- scope
def _scope_spikingjelly():
    f = importlib.import_module("spikingjelly.activation_based.functional.loss")
    tet = importlib.import_module("spikingjelly.activation_based.examples.memopt.loss").TETLoss
    objs = {n: getattr(f, n) for n in ("kernel_dot_product", "spike_similar_loss",
                                         "temporal_efficient_training_cross_entropy")}
    objs["TETLoss"] = tet
    return "spiking", objs, lambda k: k.__module__.startswith("spikingjelly"), {}


def _scope_pynsm():
    import pynsm

    objs = {n: getattr(pynsm, n) for n in pynsm.__all__ if not n.startswith("_")}
    return "similarity", objs, lambda k: k.__module__.startswith("pynsm"), {}


def _scope_ngclearn():
    from refnsm.crosscheck._upstream import load

    load("ngclearn")
    from ngclearn.components.synapses.competitive.hopfieldSynapse import HopfieldSynapse

    from refnsm.crosscheck.hopfield import build_ngclearn

    hop = build_ngclearn(3, 2, eta=0.1, reg_lambda=0.0, beta=2.0, update_rule="delta", W0=None)[0]
    compartments = sorted(n for n, v in vars(hop).items()
                          if not n.startswith("_") and type(v).__name__ == "Compartment")
    # the deprecated spellings ngclearn still accepts (``@deprecate_args(resist_scale='g_conduct_factor')``)
    deprecated = {}
    tree = ast.parse(textwrap.dedent(inspect.getsource(HopfieldSynapse)))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "deprecate_args":
            deprecated.update({kw.arg: _EMPTY for kw in node.keywords if not kw.arg.startswith("_")})
    # ngclearn's DenseSynapse / JaxComponent (save, load, help) are part of the component's API
    return ("hopfield", {"HopfieldSynapse": HopfieldSynapse},
            lambda k: k.__module__.startswith("ngclearn"), {"HopfieldSynapse": compartments},
            {"HopfieldSynapse": deprecated})


def _scope_neuromancer():
    from refnsm.crosscheck._upstream import load

    L = load("neuromancer")
    objs = {}
    for n in dir(L):
        o = getattr(L, n)
        if n.startswith("_"):
            continue
        if (inspect.isclass(o) or inspect.isfunction(o)) and getattr(o, "__module__", "").startswith("neuromancer"):
            objs[n] = o
        elif n in ("maps", "square_maps", "tall_maps"):
            objs[n] = o
    import torch

    def in_scope(k):
        return k.__module__.startswith("neuromancer") and not issubclass(k, torch.autograd.Function)

    return "linear", objs, in_scope, {}


def _scope_neurotorch():
    from refnsm.crosscheck._upstream import load

    R = load("neurotorch")
    import neurotorch.init as init
    from neurotorch.callbacks.base_callback import BaseCallback

    import neurotorch.regularization.connectome as C

    objs = {n: getattr(R, n) for n in ("BaseRegularization", "RegularizationList", "Lp", "L1", "L2")}
    objs.update({n: getattr(C, n) for n in ("DaleLawL2", "DaleLaw", "WeightsDistance", "ExcRatioTargetRegularization",
                                            "InhRatioTargetRegularization")})
    objs["dale_"] = init.dale_

    # BaseCallback is trainer plumbing: only the hooks the regularizers themselves define are in scope, plus the
    # callback constructor arguments that BaseRegularization forwards through **kwargs
    def in_scope(k):
        return k.__module__.startswith("neurotorch") and k is not BaseCallback

    extra = {"BaseRegularization": [f"param:{n}" for n, _ in _params(BaseCallback)]}
    return "regularization", objs, in_scope, extra, {"BaseRegularization": dict(_params(BaseCallback))}


SCOPES = {
    "spikingjelly 2.0.0": _scope_spikingjelly,
    "pynsm 1.0.1": _scope_pynsm,
    "ngclearn 3.2.1": _scope_ngclearn,
    "neuromancer 1.5.6": _scope_neuromancer,
    "neurotorch 0.0.2": _scope_neurotorch,
}

# small instances of refnsm classes, so that attributes set in __init__ are seen
def _instance(family, name, cls):
    try:
        if family == "linear":
            return cls(4, 4)
        if family == "regularization":
            if name == "RegularizationList":
                return cls([])
            W = {"W": np.ones((3, 3))}
            if name == "WeightsDistance":
                return cls(W, [np.zeros((3, 3))])
            if name in ("DaleLaw", "DaleLawL2"):
                return cls(W, reference_weights=[np.ones((3, 3))])
            return cls(W)
        if family == "hopfield":
            return cls("h", (3, 2), 0.1)
        if family == "spiking":
            return cls()
    except Exception:
        return None
    return None


def inventory():
    rows = {}
    import refnsm  # noqa: F401

    for label, scope in SCOPES.items():
        got = scope()
        family, objs, in_scope, extra = got[:4]
        extra_defaults = got[4] if len(got) > 4 else {}
        mod = importlib.import_module(f"refnsm.{family}")
        items = []  # (item, present, exact)
        for name, up in objs.items():
            ours = getattr(mod, name, None)
            items.append((name, ours is not None, ours is not None))
            if not (inspect.isclass(up) or inspect.isfunction(up)):
                continue
            try:
                our_sig = inspect.signature(ours) if ours is not None else None
            except (TypeError, ValueError):
                our_sig = None
            our_params = {} if our_sig is None else {p.name: p.default for p in our_sig.parameters.values()
                                                       if p.kind not in _VAR}
            ups = list(_params(up)) + list(extra_defaults.get(name, {}).items())
            for pname, pdef in ups:
                ok = pname in our_params
                same = ok and (pdef is _EMPTY and pname in extra_defaults.get(name, {})
                               or _same_default(pdef, our_params[pname]))
                items.append((f"{name}({pname}=)", ok, same))
            if inspect.isclass(up):
                inst = _instance(family, name, ours) if inspect.isclass(ours) else None
                members = _members(up, in_scope) + [m for m in extra.get(name, []) if not m.startswith("param:")]
                for m in members:
                    ok = ours is not None and (hasattr(ours, m) or (inst is not None and hasattr(inst, m)))
                    exact = ok
                    up_m = inspect.getattr_static(up, m, None)
                    if ok and inspect.isfunction(up_m):
                        want = {n for n, _ in _params(up_m)}
                        our_m = getattr(ours, m, None) if hasattr(ours, m) else getattr(inst, m)
                        try:
                            have = {p.name for p in inspect.signature(our_m).parameters.values()}
                            exact = want <= have
                        except (TypeError, ValueError):
                            exact = True
                    items.append((f"{name}.{m}", ok, exact))
        rows[label] = items
    return rows


def undocumented(rows, doc_path=None) -> list:
    """The absent or inexact items whose object *and* member names are not both mentioned (in backquotes) in
    ``docs/upstream_differences.md``: each remaining difference must be listed there with its reason."""
    import os
    import re

    doc_path = doc_path or os.path.join(os.path.dirname(__file__), os.pardir, "docs", "upstream_differences.md")
    with open(doc_path, encoding="utf-8") as f:
        text = f.read()
    quoted = " ".join(re.findall(r"`([^`]*)`", text))
    out = []
    for label, items in rows.items():
        for item, present, exact in items:
            if exact:
                continue
            obj = re.split(r"[.(]", item)[0]
            member = item[len(obj):].strip(".()=")
            if obj not in quoted or (member and member not in quoted):
                out.append(f"{label}: {item}")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--missing", action="store_true", help="list every absent or inexact item")
    args = ap.parse_args(argv)
    rows = inventory()
    print("| upstream | items | present | exact |")
    print("|---|---|---|---|")
    tot = [0, 0, 0]
    for label, items in rows.items():
        n, p, e = len(items), sum(i[1] for i in items), sum(i[2] for i in items)
        tot = [tot[0] + n, tot[1] + p, tot[2] + e]
        print(f"| {label} | {n} | {p} ({100 * p / n:.0f}%) | {e} ({100 * e / n:.0f}%) |")
    n, p, e = tot
    print(f"| **all** | {n} | {p} ({100 * p / n:.0f}%) | {e} ({100 * e / n:.0f}%) |")
    missing_docs = undocumented(rows)
    print(f"\nabsent or inexact items not mentioned in docs/upstream_differences.md: {len(missing_docs)}")
    for item in missing_docs:
        print("  " + item)
    if args.missing:
        for label, items in rows.items():
            for item, present, exact in items:
                if not exact:
                    print(f"{label}: {item}: {'present, not exact' if present else 'ABSENT'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
