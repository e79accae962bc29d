"""The refnsm backend: the golden protocol mapped onto the package itself (CPU, or CUDA with ``device="cuda"``).

The protocol (``docs/golden.md``) asks a backend for one attribute per family holding callables with refnsm's
public names and signatures, NumPy arrays in and out.  refnsm's family modules already are that, so the CPU
backend is the modules themselves.  The CUDA backend wraps every public function and class of a family that
takes ``device`` so that it is called with ``device="cuda"``; names without a CUDA path run on the CPU, and a
class that refuses ``"cuda"`` (``NotImplementedError``) is reported as not implemented on that device.

Stateful objects follow the same rule: the case builds them with the family's public class
(``linear.SpectralLinear(insize, outsize, bias, params=..., dtype=...)``, ``similarity.SimilarityMatching(...)``)
and calls their public methods (``effective_W``, ``forward``, ``backward``, ``train_step``) and attributes
(``params``, ``grads``).
"""

from __future__ import annotations

import functools
import importlib
import inspect
from types import SimpleNamespace

from ._errors import FAMILIES, NotImplementedByBackend


def _takes_device(obj) -> bool:
    try:
        target = obj.__init__ if inspect.isclass(obj) else obj
        return "device" in inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False


def _on_cuda(name, obj):
    if inspect.isclass(obj):
        def build(*args, **kwargs):
            try:
                return obj(*args, device="cuda", **kwargs)
            except NotImplementedError as exc:
                raise NotImplementedByBackend(f"{name} has no CUDA path ({exc})") from None
        return build
    return functools.partial(obj, device="cuda")


def refnsm_backend(device: str = "cpu"):
    """A backend namespace running refnsm on ``device`` ("cpu" or "cuda")."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device: expected 'cpu' or 'cuda', got {device!r}")
    fams = {}
    for fam in FAMILIES:
        mod = importlib.import_module(f"refnsm.{fam}")
        if device == "cpu":
            fams[fam] = mod
            continue
        ns = {}
        for name in mod.__all__:
            obj = getattr(mod, name)
            ns[name] = _on_cuda(name, obj) if callable(obj) and _takes_device(obj) else obj
        fams[fam] = SimpleNamespace(**ns)
    return SimpleNamespace(BACKEND_NAME=f"refnsm ({device})", DEVICE=device, **fams)
