"""Golden cases of :mod:`refnsm.linear`: every structured map's effective_W, forward, backward (input and parameter
gradients) and reg_error, from given parameters (rectangular, square for the square maps, tall for the tall one);
and, for the maps whose numbers neuromancer computes differently, the same case with ``compat="neuromancer"``."""

from __future__ import annotations

import numpy as np

from .._case import Case, call, get, inp, new, res
from ._common import f32exact, pair, rng

F = "linear"
#: the maps whose numbers neuromancer computes differently (refnsm reproduces them with compat="neuromancer")
NEUROMANCER_COMPAT = ("LassoLinear", "L0Linear", "SymplecticLinear", "SymmetricSVDLinear", "OrthogonalLinear",
                      "SpectralLinear", "SymmetricSpectralLinear", "ButterflyLinear")


def _classes():
    import refnsm.linear as L

    seen, out = set(), []
    for cls in L.maps.values():
        if cls not in seen:
            seen.add(cls)
            out.append(cls)
    return L, out


def _case(L, cls, i, compat):
    name = cls.__name__
    if cls in L.square_maps:
        n, m = 4, 4
    elif cls in L.tall_maps:
        n, m = 3, 5
    else:
        n, m = 5, 3
    bias = cls is not L.TrivialNullSpaceLinear
    # only to draw the parameters (and learn their keys, which compat may change); they become inputs
    template = cls(n, m, bias=bias, rng=100 + i, compat=compat)
    params = {k: f32exact(v) for k, v in template.params.items()}
    g = rng(200 + i)
    if name in ("SpectralLinear", "SymmetricSpectralLinear"):
        # spread the singular values: at init p ~ 1e-3 N(0, 1), Sigma is almost a multiple of I, W ~ s I, and the
        # gradient of the reflectors nearly cancels (an ill-chosen input, not a property of the map)
        params["p"] = f32exact(2.0 * g.normal(size=params["p"].shape))
    ins = {f"param.{k}": v for k, v in params.items()}
    ins.update({"x": f32exact(g.normal(size=(3, n))), "grad_y": f32exact(g.normal(size=(3, m)))})
    kw = {"params": {k: inp(f"param.{k}") for k in params}, "dtype": {"dtype": "run"}}
    if compat:
        kw["compat"] = compat
    prog = [new(name, n, m, as_="map", bias=bias, **kw)]  # bias by keyword: PowerBoundLinear(n, m, max_p)
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
    if kappa:
        why = ("reg_error of PowerBoundLinear: power-iteration estimate, conditioning set to 1 (its perturbation "
               "estimate measures the iteration, not rounding)")
    variant = f"{n}x{m}-bias" if bias else f"{n}x{m}"
    if compat:
        variant += f"-compat-{compat}"
    return Case(f"{F}.{name}.{variant}", prog, ins, dtypes=dtypes, difficulty="basic", kappa=kappa, term_scale=term,
                compat=compat,
                targets=("neuromancer's numbers where they differ from the intended math" if compat else
                         "W(theta) parametrisation, y = x W + b orientation ([insize, outsize]), chain rule into "
                         "every parameter, the penalty"),
                tolerance_reason=why)


def cases() -> list:
    L, classes = _classes()
    out = []
    for i, cls in enumerate(classes):
        out.append(_case(L, cls, i, None))
        if cls.__name__ in NEUROMANCER_COMPAT:
            out.append(_case(L, cls, i, "neuromancer"))
    out += _helpers()
    return out


def _helpers() -> list:
    """The public building blocks: Householder reflections and products, the straight-through ReLU."""
    g = rng(300)
    out = []
    x = f32exact(g.normal(size=(3, 5)))
    u = f32exact(g.normal(size=5))
    out += pair(F, "Hprod", "last3", {"x": x, "u": u}, [inp("x"), inp("u"), 3], grads=("x", "u"),
                cot=g.normal(size=(3, 5)), targets="reflection of the last k columns only, v = u[n-k:]")
    z = f32exact(g.normal(size=(4, 3)))
    z[0, 0], z[1, 2] = 0.0, 0.0
    out += pair(F, "straight_through_relu", "zeros-negatives", {"x": z}, [inp("x")], grads=("x",),
                cot=g.normal(size=(4, 3)), difficulty="edge", hold=("x",),
                targets="the gradient passes straight through where x < 0 (not relu's derivative)")
    U = f32exact(g.normal(size=(4, 4)))
    dQ = f32exact(g.normal(size=(4, 4)))
    for rev in (False, True):
        tag = "reverse" if rev else "forward"
        out.append(Case(f"{F}.householder_matrix.k3-{tag}", [call("householder_matrix", inp("U"), 3, rev,
                                                                   save={"Q": []})],
                        {"U": U}, targets="Q = H_0 H_1 H_2 (or reversed), reflector t from U[t, t:]"))
        out.append(Case(f"{F}.householder_matrix_vjp.k3-{tag}",
                        [call("householder_matrix", inp("U"), 3, rev, as_="Q"),
                         call("householder_matrix_vjp", inp("dQ"), res("Q"), inp("U"), 3, rev, save={"d_U": []})],
                        {"U": U, "dQ": dQ}, targets="gradient through the product of reflectors, in order"))
    return out
