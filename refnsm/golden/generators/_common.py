"""Helpers shared by the case generators."""

from __future__ import annotations

import numpy as np

from .._case import Case, call, f32exact, inp

__all__ = ["Case", "call", "f32exact", "inp", "rng", "pair", "value_case", "binary"]


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def binary(gen, shape, p=0.5) -> np.ndarray:
    return (gen.random(shape) < p).astype(np.float64)


def value_case(family, fn, variant, inputs, args, kwargs=None, *, fields=None, **meta) -> Case:
    """``family.fn.variant``: one call, saving the result (or the named fields of a result object)."""
    save = {"value": []} if fields is None else {f: [f] for f in fields}
    return Case(f"{family}.{fn}.{variant}", [call(fn, *args, save=save, **(kwargs or {}))], inputs, **meta)


def pair(family, fn, variant, inputs, args, kwargs=None, *, grads, cot=None, fields=None, cot_name="grad_out",
         value=True, **meta) -> list:
    """The value case ``family.fn.variant`` and the VJP case ``family.fn_vjp.variant``.

    ``grads`` names the returned gradients in order (one name: the VJP returns an array; several: a tuple).
    ``cot`` is the cotangent array (None: a scalar loss, grad_out = None means 1).
    """
    out = []
    if value:
        out.append(value_case(family, fn, variant, inputs, args, kwargs, fields=fields, **meta))
    vin = dict(inputs)
    if cot is None:
        g = None
    elif isinstance(cot, (int, float)):
        g = float(cot)
    else:
        vin[cot_name] = f32exact(cot)
        g = inp(cot_name)
    save = {f"d_{grads[0]}": []} if len(grads) == 1 else {f"d_{n}": [i] for i, n in enumerate(grads)}
    out.append(Case(f"{family}.{fn}_vjp.{variant}", [call(f"{fn}_vjp", g, *args, save=save, **(kwargs or {}))], vin,
                    **meta))
    return out
