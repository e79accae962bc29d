"""Cross-check adapter: refnsm.linear against neuromancer 1.5.6 ``slim.linear`` (torch, float64).

Recipe for every case: build the neuromancer map, ``.double()`` it, copy its parameters into refnsm (never
reproduce torch's RNG), then compare in float64

* ``effective_W()``, ``forward(x)`` and ``reg_error()`` (values), and
* every gradient: of :math:`\\langle \\bar g, y\\rangle` with respect to x and every parameter, of
  :math:`\\langle G, W\\rangle` and of ``reg_error`` with respect to every parameter (torch autograd upstream,
  the hand-derived VJPs in refnsm).

Where neuromancer's numbers differ from the intended math, refnsm runs with ``compat="neuromancer"`` (listed in
``COMPAT``).  Special set-ups: L0 in eval mode, and in training mode with the same injected noise on both sides
(``get_eps`` replaced), with its float32 scalar buffers reset to the exact float64 constants; PowerBound with the
same power-iteration start vectors (torch's RNG re-seeded before ``reg_error``); Gershgorin's unregistered tensors
``w`` and ``diag`` made float64 leaves so that autograd can differentiate neuromancer's formula; the soft-SVD
factors perturbed away from exact orthogonality, where their penalty is not differentiable.
SchurDecompositionLinear is not cross-checked: neuromancer's class cannot run (see docs/upstream_differences.md, section neuromancer).
"""

from __future__ import annotations

import numpy as np

from . import Case, CheckRow, rel_err

UPSTREAM = "neuromancer"
FAMILY = "linear"
TOL = 1e-10

RECT = [(4, 4), (5, 3), (3, 5), (16, 16)]
SQUARE = [(4, 4), (16, 16)]

# key in neuromancer.slim.maps (or class name), refnsm class name, shapes, constructor kwargs, compat, options
SPECS = [
    ("linear", "Linear", RECT, {}, None),
    ("IdentityInitLinear", "IdentityInitLinear", RECT, {}, None),
    ("identity", "IdentityLinear", RECT, {}, None),
    ("bounded_Lp_norm", "BoundedNormLinear", RECT, {"sigma_min": 0.1, "sigma_max": 0.5}, None),
    ("nneg", "NonNegativeLinear", RECT, {}, None),
    ("split", "SplitLinear", RECT, {}, None),
    ("lasso", "LassoLinear", RECT, {"gamma": 0.7}, "neuromancer"),
    ("LassoLinearRELU", "LassoLinearRELU", RECT, {"gamma": 0.7}, None),
    ("l0", "L0Linear", RECT, {}, "neuromancer"),
    ("lstochastic", "LeftStochasticLinear", RECT, {}, None),
    ("rstochastic", "RightStochasticLinear", RECT, {}, None),
    ("pf", "PerronFrobeniusLinear", RECT, {}, None),
    ("stable_split", "StableSplitLinear", RECT, {}, None),
    ("symmetric", "SymmetricLinear", SQUARE, {}, None),
    ("skew_symetric", "SkewSymmetricLinear", SQUARE, {}, None),
    ("damp_skew_symmetric", "DampedSkewSymmetricLinear", SQUARE, {}, None),
    ("psd", "PSDLinear", SQUARE, {}, None),
    ("symplectic", "SymplecticLinear", SQUARE, {}, "neuromancer"),
    ("gershgorin", "GershgorinLinear", SQUARE, {}, None),
    ("softSVD", "SVDLinear", RECT, {}, None),
    ("learnSVD", "SVDLinearLearnBounds", RECT, {}, None),
    ("SymmetricSVDLinear", "SymmetricSVDLinear", SQUARE, {}, "neuromancer"),
    ("orthogonal", "OrthogonalLinear", SQUARE, {}, "neuromancer"),
    ("spectral", "SpectralLinear", RECT, {}, "neuromancer"),
    ("SymmetricSpectralLinear", "SymmetricSpectralLinear", SQUARE, {}, "neuromancer"),
    ("trivial_nullspace", "TrivialNullSpaceLinear", [(4, 4), (3, 5), (16, 16)], {}, None),
    ("Power_bound", "PowerBoundLinear", SQUARE, {"pwr_iters": 30}, None),
    ("butterfly", "ButterflyLinear", RECT + [(3, 9)], {}, "neuromancer"),
    ("butterfly", "ButterflyLinear", [(5, 3), (8, 8), (3, 9)], {"tied_weight": False, "increasing_stride": False},
     "neuromancer"),
]

COMPAT = {s[1]: s[4] for s in SPECS if s[4]}
_SVD = {"SVDLinear", "SVDLinearLearnBounds", "SymmetricSVDLinear"}


def _upstream_class(mod, key):
    return mod.maps[key] if key in mod.maps else getattr(mod, key)


def _run(key, refname, shape, kwargs, compat, bias, mode, seed, skip=frozenset(), reg_sign=1.0):
    """``skip``: quantities not compared ("W": effective_W and its VJP, where upstream folds the bias into W);
    ``reg_sign``: -1 compares refnsm's penalty with minus upstream's (L0's log-prior, default mode)."""
    import torch

    from . import _upstream
    import refnsm.linear as L

    mod = _upstream.load(UPSTREAM)
    old_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        nin, nout = shape
        torch.manual_seed(seed)
        ucls = _upstream_class(mod, key)
        up_kw = dict(kwargs)
        if refname == "PowerBoundLinear":
            up = ucls(nin, nout, bias=bias, **up_kw)
        else:
            up = ucls(nin, nout, bias, **up_kw)
        up = up.double()
        gen = np.random.default_rng(seed)
        if refname == "L0Linear":
            with torch.no_grad():
                for name, val in (("limit_a", -0.1), ("limit_b", 1.1), ("epsilon", 1e-6), ("temperature", 2.0 / 3.0),
                                  ("prior_prec", 1.0), ("lamda", 1.0), ("droprate_init", 0.5)):
                    getattr(up, name).fill_(val)
            if mode == "eval":
                up.eval()
            else:
                u = gen.uniform(0.05, 0.95, size=(nin, nout))
                up.get_eps = lambda size, u=u: torch.tensor(u)
        if refname == "GershgorinLinear":
            up.w = torch.tensor(up.w.detach().numpy().astype(np.float64), requires_grad=True)
            up.diag = torch.tensor(up.diag.detach().numpy().astype(np.float64), requires_grad=True)
        if refname in _SVD:
            with torch.no_grad():
                for p in {id(p): p for p in up.parameters()}.values():
                    if p.dim() == 2 and p.shape[0] == p.shape[1] and p.shape[1] > 1:
                        p.add_(0.05 * torch.tensor(gen.standard_normal(tuple(p.shape))))

        if refname in ("SpectralLinear", "SymmetricSpectralLinear"):
            # spread the singular values: at init p ~ 0.001 N(0,1), so Sigma is almost a multiple of I and, for the
            # symmetric map W = Q Sigma Q^T ~ s I, the gradient of the reflectors nearly cancels (true values ~1e-3
            # with exact zeros that both sides compute as +-1e-15, inflating the normwise error; checked against an
            # 80-bit long-double reference)
            with torch.no_grad():
                up.p.copy_(torch.tensor(2.0 * gen.standard_normal(tuple(up.p.shape))))
        sd = up.state_dict(keep_vars=True)
        ref_cls = getattr(L, refname)
        ref_kw = dict(kwargs)
        ref = ref_cls(nin, nout, bias=bias, compat=compat, rng=0, **ref_kw)
        tensors = {}
        for k in ref.params:
            t = sd.get(k)
            if t is None:
                t = getattr(up, k)
            tensors[k] = t
        ref.load_params({k: t.detach().numpy().copy() for k, t in tensors.items()})
        if refname == "L0Linear":
            if mode == "eval":
                ref.eval()
            else:
                ref.set_noise(u)

        x = gen.standard_normal((7, nin))
        gy = gen.standard_normal((7, nout))
        GW = gen.standard_normal((nin, nout))
        leaves = {k: t for k, t in tensors.items() if t.requires_grad}

        def grads_of(scalar):
            for t in leaves.values():
                t.grad = None
            if not scalar.requires_grad:  # nothing trainable upstream (IdentityLinear's W)
                return {k: np.zeros(t.shape) for k, t in leaves.items()}
            scalar.backward()
            return {k: (np.zeros(t.shape) if t.grad is None else t.grad.detach().numpy().copy()) for k, t in leaves.items()}

        # forward and its gradients
        xt = torch.tensor(x, requires_grad=True)
        yt = up(xt)
        g_fwd = grads_of((yt * torch.tensor(gy)).sum())
        gx_up = xt.grad.detach().numpy()
        y_ref = ref.forward(x)
        gx_ref = ref.backward(gy)
        # effective_W and its gradients
        Wt = up.effective_W()
        g_W = grads_of((Wt * torch.tensor(GW)).sum())
        W_ref = ref.effective_W()
        gW_ref = ref.effective_W_vjp(GW)
        # reg_error and its gradients
        if refname == "PowerBoundLinear":
            torch.manual_seed(seed + 1)
            a0 = torch.normal(0, 1, (nin, 1))
            b0 = torch.normal(0, 1, (nin, 1))
            ref.set_start(a0.numpy()[:, 0], b0.numpy()[:, 0])
            torch.manual_seed(seed + 1)
        reg_t = up.reg_error()
        if torch.is_tensor(reg_t):
            reg_up = float(reg_t.detach().sum())
            g_reg = grads_of(reg_t.sum()) if reg_t.requires_grad else {k: np.zeros(t.shape) for k, t in leaves.items()}
        else:
            reg_up, g_reg = float(reg_t), {k: np.zeros(t.shape) for k, t in leaves.items()}
        reg_ref = reg_sign * ref.reg_error()
        greg_ref = {k: reg_sign * v for k, v in ref.reg_error_vjp().items()}

        value_err = max(0.0 if "W" in skip else rel_err(W_ref, Wt.detach().numpy()),
                        rel_err(y_ref, yt.detach().numpy()), rel_err(reg_ref, reg_up))
        grad_errs = [rel_err(gx_ref, gx_up)]
        worst = "x"
        for k in leaves:
            pairs = [(ref.grads[k], g_fwd[k]), (greg_ref[k], g_reg[k])]
            if "W" not in skip:
                pairs.append((gW_ref[k], g_W[k]))
            for ours, theirs in pairs:
                e = rel_err(ours, theirs)
                if e > max(grad_errs):
                    worst = k
                grad_errs.append(e)
        note = f"compat={compat}" if compat else ("default mode" if refname in COMPAT else "")
        if skip:
            note += f" (not compared: {', '.join(sorted(skip))})"
        if reg_sign != 1.0:
            note += " (reg: refnsm = -upstream)"
        if mode:
            note += f" mode={mode}"
        label = f"{nin}x{nout}" + (",bias" if bias else "") + (f",{mode}" if mode else "") + (
            ",default" if compat is None and refname in COMPAT else "")
        if kwargs.get("tied_weight", True) is False:
            label += ",untied,decreasing"
        return CheckRow(FAMILY, f"{refname}[{label}]", f"{UPSTREAM} {key}",
                        value_err, max(grad_errs), TOL, (note + f" worst grad: {worst}").strip())
    finally:
        torch.set_default_dtype(old_dtype)


def cases() -> list[Case]:
    out = []
    for i, (key, refname, shapes, kwargs, compat) in enumerate(SPECS):
        bias = refname not in ("TrivialNullSpaceLinear",)
        modes = ["eval", "train"] if refname == "L0Linear" else [None]
        tag = "-untied-dec" if kwargs.get("tied_weight", True) is False else ""
        for shape in shapes:
            for mode in modes:
                name = f"{refname}{tag}-{shape[0]}x{shape[1]}" + (f"-{mode}" if mode else "")
                out.append(Case(FAMILY, name, lambda a=(key, refname, shape, kwargs, compat, bias, mode, 100 + i):
                                _run(*a)))
    # bias=False variants (neuromancer's default) where upstream runs without a bias
    for key, refname, compat in (("linear", "Linear", None), ("pf", "PerronFrobeniusLinear", None),
                                 ("spectral", "SpectralLinear", "neuromancer"),
                                 ("butterfly", "ButterflyLinear", "neuromancer"), ("psd", "PSDLinear", None)):
        out.append(Case(FAMILY, f"{refname}-nobias-5x5", lambda a=(key, refname, (5, 5), {}, compat, False, None, 7):
                        _run(*a)))
    # default mode (compat=None) of the maps above that have a compat mode, wherever upstream computes the same
    # quantity: Lasso (upstream's in-place projection is a no-op on its non-negative parameters), L0 (the same
    # gates and weights; the penalty is minus upstream's log-prior), Orthogonal / Spectral / SymmetricSpectral
    # with a bias (forward, its gradients and reg_error; upstream's effective_W folds the bias in), Butterfly
    # without a bias (upstream's scalar bias is the only difference).  SymplecticLinear and SymmetricSVDLinear are
    # wrong upstream (not symplectic, not symmetric): no default row.
    defaults = [
        ("lasso", "LassoLinear", (4, 4), {"gamma": 0.7}, True, None, {}),
        ("lasso", "LassoLinear", (5, 3), {"gamma": 0.7}, True, None, {}),
        ("l0", "L0Linear", (4, 4), {}, True, "eval", {"reg_sign": -1.0}),
        ("l0", "L0Linear", (5, 3), {}, True, "train", {"reg_sign": -1.0}),
        ("orthogonal", "OrthogonalLinear", (4, 4), {}, True, None, {"skip": frozenset({"W"})}),
        ("spectral", "SpectralLinear", (5, 3), {}, True, None, {"skip": frozenset({"W"})}),
        ("spectral", "SpectralLinear", (4, 4), {}, True, None, {"skip": frozenset({"W"})}),
        ("SymmetricSpectralLinear", "SymmetricSpectralLinear", (4, 4), {}, True, None, {"skip": frozenset({"W"})}),
        ("butterfly", "ButterflyLinear", (5, 3), {}, False, None, {}),
        ("butterfly", "ButterflyLinear", (8, 8), {"tied_weight": False, "increasing_stride": False}, False, None, {}),
    ]
    for j, (key, refname, shape, kwargs, bias, mode, extra) in enumerate(defaults):
        tag = "-untied-dec" if kwargs.get("tied_weight", True) is False else ""
        name = f"{refname}{tag}-{shape[0]}x{shape[1]}" + (f"-{mode}" if mode else "") + "-default"
        out.append(Case(FAMILY, name, lambda a=(key, refname, shape, kwargs, None, bias, mode, 300 + j), e=extra:
                        _run(*a, **e)))
    return out
