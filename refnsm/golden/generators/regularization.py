"""Golden cases of :mod:`refnsm.regularization`: every norm order and mode, Dale's law, E/I ratio, distance,
and the regularizer objects (value and gradients of each)."""

from __future__ import annotations

import numpy as np

from .._case import INF, NEG_INF, Case, call, inp, new
from ._common import f32exact, normal, pair, rng

F = "regularization"
P_ALL = ((1, "1"), (-1, "m1"), (2, "2"), (-2, "m2"), (INF, "inf"), (NEG_INF, "minf"))


def cases() -> list:
    out = []
    g = rng(41)
    v = normal(g, 7)
    # a vector with a zero and a tied maximum |.|: sign(0) = 0, the 1/k split of the max gradient
    vt = np.array([0.5, -1.25, 0.0, 1.25, 0.75, -0.25], dtype=np.float64)
    M = normal(g, (4, 3))
    # a matrix with tied max column sums (dyadic values: the sums are exact) and a zero entry
    Mt = np.array([[0.5, -0.25, 0.75], [0.25, 1.0, 0.0], [-0.5, 0.5, 0.5]], dtype=np.float64)
    for p, tag in P_ALL:
        out += pair(F, "lp_norm", f"vector-p{tag}", {"x": v}, [inp("x"), p], grads=("x",), cot=0.5,
                    targets="torch.linalg.norm vector semantics; p < 0 are not norms but must match")
        out += pair(F, "lp_norm", f"matrix-p{tag}", {"x": M}, [inp("x"), p], grads=("x",), cot=None,
                    targets="induced matrix norm for 2-D (max column sum for p=1, sigma_max for p=2), "
                            "not the entrywise norm")
    for p, tag in ((1, "1"), (INF, "inf")):
        out += pair(F, "lp_norm", f"vector-ties-zero-p{tag}", {"x": vt}, [inp("x"), p], grads=("x",), cot=None,
                    difficulty="edge", hold=("x",), targets="sign(0) = 0; a tied max shares the gradient 1/k",
                    tolerance_reason="x held in the conditioning estimate: perturbing it breaks the exact tie")
    for p, tag in ((1, "1"), (INF, "inf"), (-1, "m1")):
        out += pair(F, "lp_norm", f"matrix-ties-p{tag}", {"x": Mt}, [inp("x"), p], grads=("x",), cot=None,
                    difficulty="edge", hold=("x",), targets="tied column/row sums share the gradient",
                    tolerance_reason="x held in the conditioning estimate: perturbing it breaks the exact tie")
    for p, tag in (("fro", "fro"), ("nuc", "nuc")):
        out += pair(F, "lp_norm", f"matrix-{tag}", {"x": M}, [inp("x"), p], grads=("x",), cot=None,
                    targets=f"{tag} norm and its gradient")
    T3 = normal(g, (2, 3, 2))
    for p, tag in ((1, "1"), (2, "2"), (INF, "inf")):
        out += pair(F, "lp_norm", f"entrywise-3d-p{tag}", {"x": T3}, [inp("x"), p], {"mode": "entrywise"},
                    grads=("x",), cot=None, targets="mode='entrywise' flattens any rank")
    # ---- Dale's law
    W = normal(g, (5, 4))
    R = np.sign(normal(g, (5, 4)))
    R[0, 0] = R[3, 2] = 0.0  # sign(0) = 0: neither excitatory nor inhibitory
    for alpha, tag in ((0.8, "alpha0.8"), (0.0, "alpha0"), (1.0, "alpha1")):
        out += pair(F, "dale_law_l2", tag, {"w": W, "reference": R}, [inp("w"), inp("reference"), alpha],
                    grads=("w",), cot=None, targets="alpha ||W||^2 - (1 - alpha) <W, sign(R)>, sign(0) = 0")
    # ---- E/I ratio
    Wr = normal(g, (6, 3))
    Wr[1, 1] = 0.0
    for sf in ("softsign", "sign"):
        for t in (0.8, 0.25):
            out += pair(F, "exc_ratio_loss", f"{sf}-t{t}", {"w": Wr}, [inp("w"), t], {"sign_func": sf},
                        grads=("w",), cot=None, targets="|mean(phi(W)) + 1 - 2t|; softsign x/(1+|x|); "
                                                        "the sign function's zero gradient")
    # ---- distance to a reference, with exactly equal entries (|0| subgradient)
    Rd = W.copy()
    Rd[::2] += normal(g, (3, 4))
    Rd = f32exact(Rd)  # exact sums, then a correctly rounded conversion
    for p, tag in ((1, "1"), (2, "2"), (INF, "inf"), ("fro", "fro")):
        out += pair(F, "weights_distance", f"matrix-p{tag}-equal-rows", {"w": W, "reference": Rd},
                    [inp("w"), inp("reference"), p], grads=("w", "reference"), cot=None, difficulty="edge",
                    hold=("w", "reference"),
                    targets="norm of |W - R| (induced for 2-D), zero gradient where W = R",
                    tolerance_reason="w and reference held in the conditioning estimate: the equal rows are exact")
    out += pair(F, "weights_distance", "entrywise-p2-equal-rows", {"w": W, "reference": Rd}, [inp("w"), inp("reference"), 2],
                {"mode": "entrywise"}, grads=("w", "reference"), cot=None, hold=("w", "reference"),
                targets="entrywise mode; zero gradient where W = R",
                tolerance_reason="w and reference held in the conditioning estimate: the equal rows are exact")
    # ---- regularizer objects: the value and the gradients of each parameter
    b = normal(g, 4)
    params = {"W": inp("W"), "b": inp("b")}
    objs = [
        ("L1", [params, 0.5], {}, "Lambda scaling; vector norm for b, induced norm for W"),
        ("L2", [params, 2.0], {"mode": "entrywise"}, "entrywise L2"),
        ("Lp", [params, 1.0, -2], {}, "p = -2"),
        ("ExcRatioTargetRegularization", [params, 0.7, 0.5], {}, "a sum over parameters"),
        ("InhRatioTargetRegularization", [params, 0.3, 0.5], {"sign_func": "sign"}, "t = 1 - inh ratio"),
    ]
    for cls, args, kw, tgt in objs:
        out.append(Case(f"{F}.{cls}.forward-backward",
                        [new(cls, *args, as_="reg", **kw), call("forward", on="reg", save={"value": []}),
                         call("backward", 0.5, on="reg", save={"d_W": ["W"], "d_b": ["b"]})],
                        {"W": W, "b": b}, targets=tgt))
    out.append(Case(f"{F}.DaleLawL2.forward-backward",
                    [new("DaleLawL2", {"W": inp("W")}, 0.6, [inp("R")], 0.5, as_="reg"),
                     call("forward", on="reg", save={"value": []}),
                     call("backward", None, on="reg", save={"d_W": ["W"]})],
                    {"W": W, "R": R}, targets="explicit reference weights, Lambda"))
    out.append(Case(f"{F}.WeightsDistance.forward-backward",
                    [new("WeightsDistance", {"W": inp("W")}, [inp("R")], 1.5, 2, as_="reg"),
                     call("forward", on="reg", save={"value": []}),
                     call("backward", None, on="reg", save={"d_W": ["W"]})],
                    {"W": W, "R": Rd}, hold=("W",), targets="spectral norm of |W - R|"))
    return out
