"""Golden cases of :mod:`refnsm.linear`: every structured map's effective_W, forward, backward (input and parameter
gradients) and reg_error, from given parameters, in a rectangular and (for square maps) a square shape."""

from __future__ import annotations

import numpy as np

from .._case import Case, call, get, inp, new
from ._common import f32exact, rng

F = "linear"


def _classes():
    import refnsm.linear as L

    seen, out = set(), []
    for key, cls in L.maps.items():
        if cls not in seen:
            seen.add(cls)
            out.append(cls)
    return L, out


def cases() -> list:
    L, classes = _classes()
    out = []
    for i, cls in enumerate(classes):
        name = cls.__name__
        if cls in L.square_maps:
            n, m = 4, 4
        elif cls in L.tall_maps:
            n, m = 3, 5
        else:
            n, m = 5, 3
        bias = cls is not L.TrivialNullSpaceLinear
        template = cls(n, m, bias=bias, rng=100 + i)  # only to draw the parameters; they become inputs
        params = {k: f32exact(v) for k, v in template.params.items()}
        g = rng(200 + i)
        x = f32exact(g.normal(size=(3, n)))
        gy = f32exact(g.normal(size=(3, m)))
        ins = {f"param.{k}": v for k, v in params.items()}
        ins.update({"x": x, "grad_y": gy})
        prog = [new(name, n, m, bias, as_="map", params={k: inp(f"param.{k}") for k in params},
                    dtype={"dtype": "run"})]
        if cls is L.L0Linear:
            ins["u"] = f32exact(g.uniform(0.05, 0.95, size=(n, m)))
            prog.append(call("set_noise", inp("u"), on="map"))
        if cls is L.PowerBoundLinear:
            ins["a"], ins["b"] = f32exact(g.normal(size=n)), f32exact(g.normal(size=n))
            prog.append(call("set_start", inp("a"), inp("b"), on="map"))
        prog += [call("effective_W", on="map", save={"W": []}),
                 call("forward", inp("x"), on="map", save={"y": []}),
                 call("backward", inp("grad_y"), on="map", save={"d_x": []}),
                 get("grads", on="map", save={f"d_{k}": [k] for k in template.trainable}),
                 call("reg_error", on="map", save={"reg_error": []})]
        kappa = {"reg_error": 1.0} if cls is L.PowerBoundLinear else {}
        # orthogonality penalties ||U^T U - I||: measured against ||I|| = 1 (float32-rounded U makes them ~1e-7)
        term = {"reg_error": 1.0} if name in ("SVDLinear", "SVDLinearLearnBounds", "SymmetricSVDLinear") else {}
        dtypes, why = ("float64", "float32"), ""
        if name == "SymmetricSpectralLinear":
            # measured: d_V of refnsm's own float32 path is off by 4e-4 of its scale; the reflector product loses
            # orthogonality in float32 and the symmetric VJP cancels it, which input perturbations cannot show
            dtypes, why = ("float64",), "float64 only: d_V cancels in float32 (V from float32 reflectors)"
        out.append(Case(f"{F}.{name}.{n}x{m}-bias" if bias else f"{F}.{name}.{n}x{m}", prog, ins, dtypes=dtypes,
                        difficulty="basic", kappa=kappa, term_scale=term,
                        targets="W(theta) parametrisation, y = x W + b orientation ([insize, outsize]), chain rule "
                                "into every parameter, the penalty",
                        tolerance_reason=why or ("reg_error of PowerBoundLinear: power-iteration estimate, "
                                                 "conditioning set to 1 (its perturbation estimate measures the "
                                                 "iteration, not rounding)" if kappa else "")))
    return out
