"""Import the upstream libraries for cross-checks, with the work-arounds each one needs.

None of this is imported by ``import refnsm``; only the cross-check adapters, their tests, the benchmarks and
``python -m refnsm info|crosscheck`` use it.  The recipe that installs the upstream libraries side by side is
in ``docs/crosscheck.md`` (``make peers``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

UPSTREAM = {
    # family           upstream distribution   version the specs were written against
    "spiking": ("spikingjelly", "2.0.0"),
    "similarity": ("pynsm", "1.0.1"),
    "hopfield": ("ngclearn", "3.2.1"),
    "linear": ("neuromancer", "1.5.6"),
    "regularization": ("neurotorch", "0.0.2"),
}

_cache: dict = {}
_keepalive: list = []


def torch():
    """torch, with float64 as the default dtype (cross-checks run in float64 on both sides)."""
    import torch as _torch

    return _torch


def _torchvision_shim():
    # torchvision 0.28.0 (the only release matching torch 2.13) is a CUDA build whose import fails with
    # "operator torchvision::nms does not exist".  neurotorch only uses torchvision's pure-Python parts, so we
    # define the two missing operator schemas before the first import.  The Library object must stay alive.
    if "torchvision" in sys.modules:
        return
    import torch as _torch

    lib = _torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _keepalive.append(lib)


def _neuromancer_namespace():
    # neuromancer's package __init__ imports lightning, cvxpy, casadi, wandb and pyts (40+ s of JIT).
    # neuromancer.slim needs only torch: register an empty package whose __path__ is the installed folder.
    if "neuromancer" in sys.modules:
        return
    spec = importlib.util.find_spec("neuromancer")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("neuromancer is not installed")
    pkg = types.ModuleType("neuromancer")
    pkg.__path__ = list(spec.submodule_search_locations)
    sys.modules["neuromancer"] = pkg


def load(name: str):
    """Import an upstream library by distribution name and return the module used by the adapters.

    ``spikingjelly`` -> ``spikingjelly.activation_based.functional``; ``pynsm`` -> ``pynsm``;
    ``ngclearn`` -> ``ngclearn`` (with ``jax_enable_x64``); ``neuromancer`` -> ``neuromancer.slim.linear``;
    ``neurotorch`` -> ``neurotorch.regularization``.  Raises ImportError when the library is missing.
    """
    if name in _cache:
        return _cache[name]
    if name == "spikingjelly":
        mod = importlib.import_module("spikingjelly.activation_based.functional")
    elif name == "pynsm":
        mod = importlib.import_module("pynsm")
    elif name == "ngclearn":
        import jax

        jax.config.update("jax_enable_x64", True)
        mod = importlib.import_module("ngclearn")
    elif name == "neuromancer":
        _neuromancer_namespace()
        mod = importlib.import_module("neuromancer.slim.linear")
    elif name == "neurotorch":
        _torchvision_shim()
        mod = importlib.import_module("neurotorch.regularization")
    else:
        raise ValueError(f"name: expected one of {sorted(v[0] for v in UPSTREAM.values())}, got {name!r}")
    _cache[name] = mod
    return mod


def version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None
