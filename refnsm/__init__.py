"""refnsm: reference NumPy/Numba implementations of neuro-inspired learning algorithms.

Every algorithm comes with hand-derived gradients, each proven against finite differences
(:func:`refnsm.gradcheck.gradcheck`) and cross-checked in float64 against the upstream library it mirrors.

Families (imported lazily on first attribute access, so ``import refnsm`` compiles nothing):

==========================  ========================================  =====================
module                      what                                      upstream mirrored
==========================  ========================================  =====================
``refnsm.spiking``          spike similarity and TET losses           spikingjelly 2.0.0
``refnsm.similarity``       similarity matching (SM, NSM)             pynsm 1.0.1
``refnsm.hopfield``         modern Hopfield memory                    ngclearn 3.2.x
``refnsm.linear``           structured linear maps                    neuromancer 1.5.6
``refnsm.regularization``   connectome regularizers                   neurotorch 0.0.2
==========================  ========================================  =====================

Conventions (the same in every family)
--------------------------------------
* **Arrays in, arrays out.**  Inputs may be any array-like; they are converted once at the boundary and
  never written to.  float64 is the default precision; float32 inputs are computed and returned in float32.
  Integer and boolean inputs to a differentiable argument are converted to float64.
* **Gradients are vector-Jacobian products.**  Every differentiable function ``f(x, ...)`` has a twin
  ``f_vjp(grad_out, x, ...)``: the first argument is the upstream gradient :math:`\\bar y = \\partial L/\\partial y`
  (same shape as ``f``'s output), the remaining arguments are exactly ``f``'s, and it returns
  :math:`\\bar x = J^\\top \\bar y` for each differentiable array argument (a tuple when there are several,
  in argument order).  For a scalar loss ``grad_out`` may be ``None``, meaning 1.0.
  Stateful objects have ``forward(...)`` and ``backward(grad_out)``; ``backward`` returns the input gradient
  and fills ``.grads`` (same keys as ``.params``).
* **Errors** are raised before any work, name the argument, and say what was expected and received
  (:mod:`refnsm._checks`).
* **Upstream quirks**: the default is the mathematically correct behaviour; ``compat="<library>"`` reproduces an
  upstream bug where that is needed to match it.  Every difference is listed in ``docs/upstream_differences.md``.
"""

from importlib import import_module as _import_module

__version__ = "0.1.0"

_SUBMODULES = ("spiking", "similarity", "hopfield", "linear", "regularization", "gradcheck", "crosscheck")

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name):  # PEP 562: lazy submodules keep `import refnsm` fast and side-effect free
    if name in _SUBMODULES:
        module = _import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'refnsm' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
