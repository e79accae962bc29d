"""Golden cases of :mod:`refnsm.linear`: every structured map's effective_W, forward, backward (input and parameter
gradients) and reg_error, from given parameters (rectangular, square for the square maps, tall for the tall one);
and, for the maps whose numbers neuromancer computes differently, the same case with ``compat="neuromancer"``."""

from __future__ import annotations

import numpy as np

from .._case import INF, Case, call, get, inp, new, res
from ._common import f32exact, normal, pair, rng, uniform

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


#: explicit constants of an initialisation, kept as they are (identity, ones, sigma bounds 0.1 and 1)
_CONSTANTS = {"eye", "sigma_min", "sigma_max"}
#: scale (a power of two, near the initialisation's) of the parameters drawn at another scale than the default 0.5
_SCALES = {"qz_loga": 0.015625, "theta": 4.0, "p": 2.0,
           ("NonNegativeLinear", "weight"): 0.0625, ("SplitLinear", "B.weight"): 0.0625,
           ("SplitLinear", "C.weight"): 0.0625}
#: parameters that must be positive (a square root or a log is taken of them, or the map assumes it)
#: (u_param, v_param of the Lasso maps: non-negative at init, and neuromancer clamps them to >= 0 in forward, a
#: difference covered by the compat case; the default case keeps them in the domain where both agree)
_POSITIVE = {"sigma", "gamma", "scaling", "B.scaling", "C.scaling", "diag", "u_param", "v_param"}


def _param(g, cls_name, key, template):
    """An exactly reproducible value for the parameter ``key`` of the shape of ``template``.

    Constants of the initialisation (an identity, the sigma bounds, the all-ones Schur gamma, an identity-initialised
    weight) are kept; everything else is drawn by :func:`normal` at a power-of-two scale near the initialisation's.
    ``p`` of the spectral maps is spread (scale 2): at init p ~ 1e-3 N(0, 1), Sigma is almost a multiple of I, W ~ s I,
    and the gradient of the reflectors nearly cancels (an ill-chosen input, not a property of the map).
    """
    t = np.asarray(template, dtype=np.float64)
    if key in _CONSTANTS or (t.size and np.all((t == 0.0) | (t == 1.0)) and cls_name != "L0Linear"):
        return f32exact(t)  # 0.1 rounded to float32: a correctly rounded conversion of an explicit constant
    v = normal(g, t.shape, _SCALES.get((cls_name, key), _SCALES.get(key, 0.5)))
    if key in _POSITIVE:
        v = np.abs(v) + 0.25  # exact: both on the grid, and away from zero
    return v


def _case(L, cls, i, compat, options=None, tag=""):
    name = cls.__name__
    if cls in L.square_maps:
        n, m = 4, 4
    elif cls in L.tall_maps:
        n, m = 3, 5
    else:
        n, m = 5, 3
    bias = cls is not L.TrivialNullSpaceLinear
    # only to learn the parameters' keys and shapes (compat may change them); their values are drawn below, exactly
    # (the map's own initialisation uses sqrt, QR and BLAS, whose bits depend on the machine)
    options = options or {}
    py_opts = {k: (float(v["float"]) if isinstance(v, dict) and "float" in v else v) for k, v in options.items()}
    template = cls(n, m, bias=bias, rng=100 + i, compat=compat, **py_opts)
    g = rng(200 + i)
    params = {k: _param(g, name, k, v) for k, v in template.params.items()}
    ins = {f"param.{k}": v for k, v in params.items()}
    ins.update({"x": normal(g, (3, n)), "grad_y": normal(g, (3, m))})
    kw = {"params": {k: inp(f"param.{k}") for k in params}, "dtype": {"dtype": "run"}}
    if compat:
        kw["compat"] = compat
    kw.update(options)
    prog = [new(name, n, m, as_="map", bias=bias, **kw)]  # bias by keyword: PowerBoundLinear(n, m, max_p)
    if cls is L.L0Linear:
        ins["u"] = uniform(g, (n, m), 0.0625, 0.9375)
        prog.append(call("set_noise", inp("u"), on="map"))
    if cls is L.PowerBoundLinear:
        ins["a"], ins["b"] = normal(g, n), normal(g, n)
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
    variant = (f"{n}x{m}-bias" if bias else f"{n}x{m}") + tag
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
    i = classes.index(L.BoundedNormLinear)
    for p, tag in ((INF, "-pinf"), ("fro", "-pfro"), ("nuc", "-pnuc")):
        c = _case(L, L.BoundedNormLinear, i, None, {"p": p}, tag)
        c.targets = (f"p={tag[2:]!s}: the norm order option (max |A_ij| and its 1/k-free subgradient, Frobenius = 2, "
                     "nuclear norm with gradient U V^T), not the default p=2")
        out.append(c)
    out += _spectral_factors(L, classes.index(L.SpectralLinear))
    out += _helpers()
    # the standalone Butterfly module (issue 14; not in L.maps): its per-output bias, and neuromancer's scalar one
    j = len(classes) + 20  # seeds of its own (rng 100 + j, 200 + j), away from the maps'
    out.append(_case(L, L.Butterfly, j, None))
    out.append(_case(L, L.Butterfly, j, "neuromancer"))
    out += _eig_vjp()
    out += _method_vjps(L, classes)
    return out


def _method_vjps(L, classes) -> list:
    """Public methods with a VJP (issue 14): L0Linear's gate CDF ``cdf_qz`` and inverse CDF ``quantile_concrete``
    (into x and ``qz_loga``), and SVDLinear's ``orthogonal_error`` (into its matrix)."""
    g = rng(410)
    out = []
    n, m = 5, 3
    i = classes.index(L.L0Linear)
    template = L.L0Linear(n, m, bias=True, rng=100 + i)
    params = {k: _param(g, "L0Linear", k, v) for k, v in template.params.items()}
    ins = {f"param.{k}": v for k, v in params.items()}
    kw = {"params": {k: inp(f"param.{k}") for k in params}, "dtype": {"dtype": "run"}}
    for meth, lo, hi, what in (("cdf_qz", 0.0, 1.0, "clamp(sigmoid(beta logit((x - a)/(b - a)) - log alpha)), "
                                                   "inside the clamp"),
                               ("quantile_concrete", 0.0625, 0.9375, "(b - a) sigmoid((logit x + log alpha)/beta) "
                                                                     "+ a, the stretch limits a = -0.1, b = 1.1")):
        cin = {**ins, "x": uniform(g, (n, m), lo + 0.0625, hi - 0.0625), "grad_out": normal(g, (n, m))}
        out.append(Case(f"{F}.L0Linear.{meth}-vjp",
                        [new("L0Linear", n, m, as_="map", bias=True, **kw),
                         call(meth, inp("x"), on="map", save={"y": []}),
                         call(f"{meth}_vjp", inp("grad_out"), inp("x"), on="map",
                              save={"d_x": [0], "d_qz_loga": [1, "qz_loga"]})],
                        cin, targets=f"{meth}: {what}; its VJP into x and qz_loga (the sign of log alpha)"))
    j = classes.index(L.SVDLinear)
    template = L.SVDLinear(n, m, bias=True, rng=100 + j)
    params = {k: _param(g, "SVDLinear", k, v) for k, v in template.params.items()}
    ins = {f"param.{k}": v for k, v in params.items()}
    kw = {"params": {k: inp(f"param.{k}") for k in params}, "dtype": {"dtype": "run"}}
    A = f32exact(np.eye(4) + normal(g, (4, 4), 0.25))
    out.append(Case(f"{F}.SVDLinear.orthogonal_error-vjp",
                    [new("SVDLinear", n, m, as_="map", bias=True, **kw),
                     call("orthogonal_error", inp("A"), on="map", save={"value": []}),
                     call("orthogonal_error_vjp", None, inp("A"), on="map", save={"d_A": []})],
                    {**ins, "A": A}, targets="both Frobenius terms ||I - A A^T|| + ||I - A^T A|| (neuromancer's method) and their "
                            "gradient"))
    return out


def _eig_vjp() -> list:
    r"""``eig_vjp`` (issue 14) on a matrix with well-separated real eigenvalues, built exactly: W = S T S^{-1} with T
    upper triangular (diagonal -2, -1/2, 1, 3) and S unit lower triangular with integer entries (S^{-1} is an integer
    matrix too, so the products are exact).  The eigenvalue cotangent is the eigenvalues themselves (the loss
    L = 1/2 sum lambda_i^2 = 1/2 tr W^2, so W_bar = W^T, W the map's effective_W): the pairing of cotangent and eigenvalue then does not depend
    on the order LAPACK returns them in, nor on the eigenvectors' signs (no eigenvector cotangent)."""
    from ._common import exact_matmul

    T = np.array([[-2.0, 1.0, 0.5, -1.0], [0.0, -0.5, 2.0, 1.0], [0.0, 0.0, 1.0, -0.5], [0.0, 0.0, 0.0, 3.0]])
    S = np.array([[1.0, 0, 0, 0], [1.0, 1, 0, 0], [-1.0, 2, 1, 0], [0.0, -1, 1, 1]])
    Si = np.array([[1.0, 0, 0, 0], [-1.0, 1, 0, 0], [3.0, -2, 1, 0], [-4.0, 3, -1, 1]])  # S^{-1}, checked below
    if not np.array_equal(exact_matmul(S, Si, 0, 0), np.eye(4)):
        raise AssertionError("S^{-1} is not the integer inverse")
    W = f32exact(exact_matmul(exact_matmul(S, T, 0, 1), Si, 1, 0))
    prog = [new("Linear", 4, 4, as_="map", bias=False, params={"weight": inp("W")}, dtype={"dtype": "run"}),
            call("effective_W", on="map", as_="W_eff"),
            call("eig", on="map", as_="eig"),
            call("eig_vjp", res("eig", 0), None, res("W_eff"), save={"d_W": []})]
    return [Case(f"{F}.eig_vjp.eigenvalues-real-separated", prog, {"W": W}, difficulty="edge",
                 targets="the eigenvalue term Re[V^{-H} diag(lambda_bar) V^H] of numpy.linalg.eig's VJP (real part "
                         "taken, no transpose/conjugate slip): here effective_W^T for lambda_bar = lambda")]


def _spectral_factors(L, i) -> list:
    """SpectralLinear's Umultiply / Vmultiply (x Q_U, x Q_V) and their VJPs into x and the reflectors."""
    n, m = 5, 3
    template = L.SpectralLinear(n, m, bias=True, rng=100 + i)
    g = rng(400)
    params = {k: _param(g, "SpectralLinear", k, v) for k, v in template.params.items()}
    ins = {f"param.{k}": v for k, v in params.items()}
    kw = {"params": {k: inp(f"param.{k}") for k in params}, "dtype": {"dtype": "run"}}
    out = []
    for meth, size, key in (("Umultiply", n, "U"), ("Vmultiply", m, "V")):
        cin = {**ins, "x": normal(g, (4, size)), "grad_out": normal(g, (4, size))}
        out.append(Case(f"{F}.SpectralLinear.{meth}-vjp",
                        [new("SpectralLinear", n, m, as_="map", bias=True, **kw),
                         call(meth, inp("x"), on="map", save={"y": []}),
                         call(f"{meth}_vjp", inp("grad_out"), inp("x"), on="map",
                              save={"d_x": [0], f"d_{key}": [1, key]})],
                        cin, targets=f"{meth}: x Q_{key} with the reflectors in neuromancer's order (U first to last, "
                                     f"V last to first); its VJP y_bar Q_{key}^T and the reflectors' gradient"))
    return out


def _helpers() -> list:
    """The public building blocks: Householder reflections and products, the straight-through ReLU."""
    g = rng(300)
    out = []
    x = normal(g, (3, 5))
    u = normal(g, 5)
    out += pair(F, "Hprod", "last3", {"x": x, "u": u}, [inp("x"), inp("u"), 3], grads=("x", "u"),
                cot=normal(g, (3, 5)), targets="reflection of the last k columns only, v = u[n-k:]")
    z = normal(g, (4, 3))
    z[0, 0], z[1, 2] = 0.0, 0.0
    out += pair(F, "straight_through_relu", "zeros-negatives", {"x": z}, [inp("x")], grads=("x",),
                cot=normal(g, (4, 3)), difficulty="edge", hold=("x",),
                targets="the gradient passes straight through where x < 0 (not relu's derivative)")
    U = normal(g, (4, 4))
    dQ = normal(g, (4, 4))
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
