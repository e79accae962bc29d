r"""ngclearn-style weight initialiser specifications for :class:`~refnsm.hopfield.HopfieldSynapse` (``weight_init=``).

ngclearn 3.2.x passes an initialiser made by ``DistributionGenerator.uniform(low, high, **params)``,
``.gaussian(mean, std, **params)`` or ``.constant(value, **params)``; ngclearn 1.x passed a dict such as
``{"dist": "uniform", "amin": 0.025, "amax": 0.8}`` or ``{"dist": "gaussian", "mu": 0.0, "sigma": 0.1}``.  refnsm
accepts both spellings, as a dict (what :func:`uniform`, :func:`gaussian` and :func:`constant` return) or as a
tuple ``("uniform", low, high)``, ``("gaussian", mean, std)``, ``("constant", value)``:

==============  ================================================  =======================================
``dist``        law of every entry                                parameters (3.x name / 1.x name)
==============  ================================================  =======================================
``uniform``     :math:`U[\text{low}, \text{high})`                ``low``/``amin`` (0), ``high``/``amax`` (1)
``gaussian``    :math:`\mathcal N(\text{mean}, \text{std}^2)`      ``mean``/``mu`` (0), ``std``/``sigma`` (1)
``constant``    ``value``                                          ``value`` (required)
==============  ================================================  =======================================

and ngclearn's post-processing, in its order: clip to ``amin``/``amax`` (for ``uniform`` given by ``amin``/``amax``
these are its bounds, and clipping to them changes nothing), ``lower_triangle`` / ``upper_triangle`` (keep that
triangle), ``hollow`` (zero diagonal), ``eye`` (diagonal only).  The draws come from the synapse's ``rng``: the same
law as ngclearn, not the same bits (ngclearn draws from a JAX key; its default law is ``uniform(0.025, 0.8)``).
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import _checks

__all__ = ["uniform", "gaussian", "constant", "make_weights", "DISTS"]

DISTS = ("uniform", "gaussian", "constant")
_FLAGS = ("lower_triangle", "upper_triangle", "hollow", "eye")
_CLIP = ("amin", "amax")
_NAMES = {"uniform": (("low", "amin", 0.0), ("high", "amax", 1.0)),
          "gaussian": (("mean", "mu", 0.0), ("std", "sigma", 1.0)),
          "constant": (("value", None, None),)}


def uniform(low: float = 0.0, high: float = 1.0, **params) -> dict:
    """Spec of ``DistributionGenerator.uniform(low, high, **params)``: entries :math:`U[\\text{low}, \\text{high})`."""
    return {"dist": "uniform", "low": low, "high": high, **params}


def gaussian(mean: float = 0.0, std: float = 1.0, **params) -> dict:
    """Spec of ``DistributionGenerator.gaussian(mean, std, **params)``: entries :math:`\\mathcal N(\\text{mean},
    \\text{std}^2)`."""
    return {"dist": "gaussian", "mean": mean, "std": std, **params}


def constant(value: float, **params) -> dict:
    """Spec of ``DistributionGenerator.constant(value, **params)``: every entry equal to ``value``."""
    return {"dist": "constant", "value": value, **params}


def _normalise(spec, name):
    if isinstance(spec, tuple):
        if not spec or not isinstance(spec[0], str):
            raise TypeError(f"{name}: expected a tuple (dist, *parameters) with dist one of {DISTS}, got {spec!r}")
        dist, args = spec[0], spec[1:]
        if dist not in _NAMES:
            raise ValueError(f"{name}: unknown distribution {dist!r}; expected one of {DISTS}")
        names = _NAMES[dist]
        if len(args) > len(names) or (dist == "constant" and len(args) != 1):
            raise ValueError(f"{name}: ({dist!r}, ...) takes {'exactly 1' if dist == 'constant' else 'at most 2'} "
                             f"parameters {[n[0] for n in names]}, got {len(args)}")
        return dist, {n[0]: a for n, a in zip(names, args)}, {}
    if not isinstance(spec, dict):
        raise TypeError(f"{name}: expected an array (D, H), a dict spec such as {{'dist': 'uniform', 'low': 0, 'high': 1}}, "
                        f"a tuple such as ('gaussian', 0.0, 0.1), or a callable (shape, rng) -> array; "
                        f"got {_checks._describe(spec)}")
    spec = dict(spec)
    dist = spec.pop("dist", None)
    if dist not in _NAMES:
        raise ValueError(f"{name}['dist']: expected one of {DISTS}, got {dist!r}")
    law = {}
    for new, old, default in _NAMES[dist]:
        if new in spec and old in spec and old not in _CLIP:
            raise ValueError(f"{name}: {new!r} and {old!r} are the same parameter (ngclearn 3.x and 1.x names); "
                             "give one")
        if new in spec:
            law[new] = spec.pop(new)
        elif old is not None and old in spec and old not in _CLIP:
            law[new] = spec.pop(old)
        elif dist == "uniform" and old in spec:
            law[new] = spec[old]  # 1.x bounds; also kept as the (no-op) clip
        elif default is None:
            raise ValueError(f"{name}: the {dist!r} distribution needs {new!r}")
        else:
            law[new] = default
    post = {}
    for k in list(spec):
        if k in _CLIP or k in _FLAGS:
            post[k] = spec.pop(k)
    if spec:
        raise ValueError(f"{name}: unsupported parameter(s) {sorted(spec)} for {dist!r}; expected "
                         f"{[n[0] for n in _NAMES[dist]] + list(_CLIP) + list(_FLAGS)}")
    return dist, law, post


def _real(v, name):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Real, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a real number, got {_checks._describe(v)}")
    v = float(v)
    if not np.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {v}")
    return v


def make_weights(spec, shape, dtype, rng, name: str = "weight_init") -> np.ndarray:
    """Draw a (D, H) weight matrix of ``dtype`` from an initialiser spec (see the module docstring) with ``rng``.

    Everything is validated before anything is drawn.  A callable ``spec(shape, rng) -> array`` is also accepted
    (its result is checked like an array).
    """
    if callable(spec):
        W = _checks.as_float_array(spec(tuple(shape), rng), name, ndim=2, dtype=dtype)
        _checks.check_shape(W, name, tuple(shape), "shape")
        _checks.check_finite(W, name)
        return np.array(W, dtype=dtype, copy=True)
    dist, law, post = _normalise(spec, name)
    law = {k: _real(v, f"{name}[{k!r}]") for k, v in law.items()}
    if dist == "uniform" and not law["low"] < law["high"]:
        raise ValueError(f"{name}: expected low < high, got low={law['low']}, high={law['high']}")
    if dist == "gaussian" and not law["std"] >= 0.0:
        raise ValueError(f"{name}['std']: expected std >= 0, got {law['std']}")
    clip = {k: _real(post[k], f"{name}[{k!r}]") for k in _CLIP if post.get(k) is not None}
    if "amin" in clip and "amax" in clip and clip["amin"] > clip["amax"]:
        raise ValueError(f"{name}: expected amin <= amax, got amin={clip['amin']}, amax={clip['amax']}")
    flags = {}
    for k in _FLAGS:
        v = post.get(k, False)
        if not isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{name}[{k!r}]: expected a bool, got {_checks._describe(v)}")
        flags[k] = bool(v)
    if flags["lower_triangle"] and flags["upper_triangle"]:
        raise ValueError(f"{name}: lower_triangle and upper_triangle are mutually exclusive")

    if dist == "uniform":
        W = rng.uniform(law["low"], law["high"], size=shape)
    elif dist == "gaussian":
        W = law["mean"] + law["std"] * rng.standard_normal(shape)
    else:
        W = np.full(shape, law["value"])
    if "amin" in clip:
        W = np.maximum(W, clip["amin"])
    if "amax" in clip:
        W = np.minimum(W, clip["amax"])
    if flags["lower_triangle"]:
        W = np.tril(W)
    if flags["upper_triangle"]:
        W = np.triu(W)
    if flags["hollow"]:
        W = (1.0 - np.eye(*shape)) * W
    if flags["eye"]:
        W = np.eye(*shape) * W
    return np.ascontiguousarray(W, dtype=dtype)
