"""Cross-check of refnsm.similarity against pynsm 1.0.1 (torch; float64, plus one float32 case at 1e-5).

Every case builds the pynsm model in float64, copies its parameters into the refnsm model (no RNG is
reproduced), and compares on the same inputs:

* the output ``y`` after ``k`` fast iterations, and the number of iterations run;
* the loss ``model.loss(*xs, y)``;
* every parameter gradient (pynsm's ``competitor.weight.grad`` is ``-1/tau`` times refnsm's raw
  :math:`\\partial L/\\partial M`, because of its tensor hook);
* every parameter after 5 full training steps (``torch.optim.SGD(lr)`` on pynsm, ``train_step(lr=...)`` on
  refnsm), each on a fresh batch.

``value_err`` of a row is the worst normwise relative error over the outputs, losses and trained parameters,
``grad_err`` over the gradients.  Cases whose configuration triggers pynsm's loss bugs (docs/upstream_differences.md) run refnsm
with ``compat="pynsm"``; the corrected default is checked against the naive formula in the unit tests.
"""

from __future__ import annotations

import math

import numpy as np

from . import Case, CheckRow, rel_err
from . import _upstream

UPSTREAM = "pynsm"
FAMILY = "similarity"
TOL = 1e-10


def _np(t):
    return t.detach().cpu().numpy().copy()


def _copy_encoder(tmod, kind, dtype=np.float64):
    from refnsm import similarity as sim

    b = None if tmod.bias is None else _np(tmod.bias)
    if kind == "linear":
        return sim.Linear(tmod.in_features, tmod.out_features, bias=b is not None, weight=_np(tmod.weight),
                          bias_value=b, dtype=dtype)
    return sim.Conv2d(tmod.in_channels, tmod.out_channels, tmod.kernel_size, stride=tmod.stride,
                      padding=tmod.padding, dilation=tmod.dilation, bias=b is not None, weight=_np(tmod.weight),
                      bias_value=b, dtype=dtype)


def _run_case(name, build, make_inputs, *, steps=5, lr=0.05, seed=0, note="", dtype=np.float64, tol=TOL):
    """``build(torch, pynsm) -> (torch_model, refnsm_model)``; ``make_inputs(rng) -> list of arrays or None``."""
    torch = _upstream.torch()
    pynsm = _upstream.load("pynsm")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tm, rm = build(torch, pynsm)
    tm.to(torch.float64 if dtype == np.float64 else torch.float32)
    tau = rm.tau
    keys = [k for k, _ in tm.named_parameters()]
    if sorted(keys) != sorted(rm.params):
        raise AssertionError(f"parameter names differ: pynsm {keys}, refnsm {sorted(rm.params)}")
    rm.load_state_dict({k: _np(p) for k, p in tm.named_parameters()})

    def tens(xs):
        return [None if a is None else torch.from_numpy(a.copy()) for a in xs]

    verr, gerr = 0.0, 0.0
    cast = lambda xs: [None if a is None else a.astype(dtype) for a in xs]
    xs = cast(make_inputs(rng))
    margin = _stopping_margin(rm, xs)
    yt = tm(*tens(xs))
    yr = rm(*xs)
    verr = max(verr, rel_err(yr, _np(yt)))
    if tm.iteration_idx + 1 != rm.diagnostics.iterations:
        verr = math.inf
    for p in tm.parameters():
        p.grad = None
    Lt = tm.loss(*tens(xs), yt)
    Lt.backward()
    Lr = rm.loss(*xs, yr)
    rm.backward()
    verr = max(verr, rel_err(Lr, _np(Lt)))
    for k, p in tm.named_parameters():
        tg = np.zeros_like(rm.params[k]) if p.grad is None else _np(p.grad)
        ours = rm.grads[k] * (-1.0 / tau) if k == "competitor.weight" else rm.grads[k]
        gerr = max(gerr, rel_err(ours, tg))
    opt = torch.optim.SGD(tm.parameters(), lr=lr)
    for _ in range(steps):
        xs = cast(make_inputs(rng))
        xt = tens(xs)
        opt.zero_grad()
        yt = tm(*xt)
        L = tm.loss(*xt, yt)
        L.backward()
        opt.step()
        margin = min(margin, _stopping_margin(rm, xs))
        yr, Lr = rm.train_step(*xs, lr=lr)
        verr = max(verr, rel_err(yr, _np(yt)), rel_err(Lr, _np(L)))
    for k, p in tm.named_parameters():
        verr = max(verr, rel_err(rm.params[k], _np(p)))
    if margin < MIN_STOP_MARGIN:
        verr = math.inf
        note = (f"{note}; the tol test came within {margin:.1e} (relative) of flipping: another CPU's rounding "
                f"could stop at another iteration, so this input cannot be a cross-check").strip("; ")
    return CheckRow(FAMILY, name, "pynsm 1.0.1", verr, gerr, tol, note)


#: A row whose ``tol`` stopping test is decided by less than this relative margin depends on rounding bits.
MIN_STOP_MARGIN = 1e-6


def _stopping_margin(model, xs) -> float:
    """How far, relative to ``tol``, the stopping test of ``model(*xs)`` is from deciding otherwise.

    The fast loop stops at the first update ``t >= 1`` whose ``max|y^{t+1} - y^t|`` is below ``tol``, so the
    iteration count (and with it every later number) is a discontinuous function of the input.  Two libraries
    agree to rounding only if no tested change lies within rounding of ``tol``; this returns
    ``min_t |change_t - tol| / tol`` over the tested updates (``inf`` when ``tol = 0``), measured on a copy of
    the model, so the row can refuse an input whose outcome another CPU could flip."""
    import copy

    if model.tol == 0:
        return math.inf
    probe = copy.deepcopy(model)
    states = []
    probe.register_iteration_hook("iteration", lambda m: states.append(np.array(m.y, copy=True)) and False)
    probe(*xs)
    changes = [float(np.max(np.abs(b - a))) for a, b in zip([np.zeros_like(states[0])] + states[:-1], states)]
    tested = changes[1:]  # the test runs from the second update on
    return min((abs(c - model.tol) / model.tol for c in tested), default=math.inf)


# ---------------------------------------------------------------------------------------------- the cases
def _sm_linear():
    def build(torch, pynsm):
        from refnsm import similarity as sim

        enc = torch.nn.Linear(6, 3, bias=True).double()
        tm = pynsm.SimilarityMatching(enc, 3, tau=0.4, max_iterations=15, iteration_lr=0.3)
        rm = sim.SimilarityMatching(_copy_encoder(enc, "linear"), 3, tau=0.4, max_iterations=15, iteration_lr=0.3)
        return tm, rm

    return _run_case("SimilarityMatching(Linear, SM, weight)", build, lambda r: [r.standard_normal((8, 6))])


def _sm_tol():
    def build(torch, pynsm):
        from refnsm import similarity as sim

        enc = torch.nn.Linear(5, 3, bias=False).double()
        tm = pynsm.SimilarityMatching(enc, 3, tau=0.5, max_iterations=100, tol=1e-5, iteration_lr=0.1)
        rm = sim.SimilarityMatching(_copy_encoder(enc, "linear"), 3, tau=0.5, max_iterations=100, tol=1e-5,
                                    iteration_lr=0.1)
        return tm, rm

    return _run_case("SimilarityMatching(Linear, SM, tol=1e-5)", build, lambda r: [r.standard_normal((20, 5))],
                     lr=0.5)


def _nsm_linear_whiten():
    def build(torch, pynsm):
        from refnsm import similarity as sim

        enc = torch.nn.Linear(6, 4, bias=True).double()
        tm = pynsm.SimilarityMatching(enc, 4, max_iterations=25, regularization="whiten", iteration_lr=0.5,
                                      iteration_projection=torch.relu)
        rm = sim.SimilarityMatching(_copy_encoder(enc, "linear"), 4, max_iterations=25, regularization="whiten",
                                    iteration_lr=0.5, iteration_projection="relu")
        return tm, rm

    return _run_case("SimilarityMatching(Linear, NSM, whiten)", build, lambda r: [r.standard_normal((10, 6))])


def _nsm_conv():
    def build(torch, pynsm):
        from refnsm import similarity as sim

        enc = torch.nn.Conv2d(2, 4, 3, stride=2, padding=1, dilation=2, bias=True).double()
        tm = pynsm.SimilarityMatching(enc, 4, max_iterations=20, iteration_projection=torch.nn.ReLU())
        rm = sim.SimilarityMatching(_copy_encoder(enc, "conv"), 4, max_iterations=20, iteration_projection="relu")
        return tm, rm

    return _run_case("SimilarityMatching(Conv2d s2 p1 d2, NSM, weight)", build,
                     lambda r: [np.abs(r.standard_normal((3, 2, 9, 8)))])


def _nsm_conv_mnist_like():
    def build(torch, pynsm):
        from refnsm import similarity as sim

        enc = torch.nn.Conv2d(1, 8, 6, bias=False).double()
        tm = pynsm.SimilarityMatching(enc, 8, iteration_projection=torch.nn.ReLU())
        rm = sim.SimilarityMatching(_copy_encoder(enc, "conv"), 8, iteration_projection="relu")
        return tm, rm

    return _run_case("SimilarityMatching(Conv2d 6x6, NSM defaults)", build,
                     lambda r: [r.uniform(0, 1, (4, 1, 12, 12))])


def _multi(regs, skip_first, compat):
    def build(torch, pynsm):
        from refnsm import similarity as sim

        e0 = torch.nn.Linear(5, 3, bias=True).double()
        e1 = torch.nn.Linear(4, 3, bias=False).double()
        tm = pynsm.MultiSimilarityMatching([e0, e1], 3, max_iterations=12, iteration_lr=0.5, regularization=regs)
        rm = sim.MultiSimilarityMatching([_copy_encoder(e0, "linear"), _copy_encoder(e1, "linear")], 3,
                                         max_iterations=12, iteration_lr=0.5, regularization=regs, compat=compat)
        return tm, rm

    def inputs(r):
        x0, x1 = r.standard_normal((7, 5)), r.standard_normal((7, 4))
        return [None, x1] if skip_first else [x0, x1]

    label = f"MultiSimilarityMatching(2 Linear, {regs}{', x0=None' if skip_first else ''}"
    label += f", compat={compat!r})" if compat else ")"
    return _run_case(label, build, inputs)


def _supervised(conv, label_bias):
    def build(torch, pynsm):
        from refnsm import similarity as sim

        if conv:
            enc = torch.nn.Conv2d(1, 4, 3, stride=2, padding=1, bias=False).double()
        else:
            enc = torch.nn.Linear(6, 4).double()
        tm = pynsm.SupervisedSimilarityMatching(enc, 3, 4, label_bias=label_bias, max_iterations=15,
                                                iteration_projection=torch.relu)
        lab = tm.encoders[1]
        rm = sim.SupervisedSimilarityMatching(
            _copy_encoder(enc, "conv" if conv else "linear"), 3, 4, label_bias=label_bias, max_iterations=15,
            iteration_projection="relu", label_weight=_np(lab.weight),
            label_bias_value=None if lab.bias is None else _np(lab.bias))
        return tm, rm

    def inputs(r):
        x = np.abs(r.standard_normal((5, 1, 7, 7))) if conv else r.standard_normal((5, 6))
        return [x, np.eye(3)[r.integers(0, 3, 5)]]

    return _run_case(f"SupervisedSimilarityMatching({'Conv2d' if conv else 'Linear'}, label_bias={label_bias})",
                     build, inputs)


def _nsm_linear_float32():
    def build(torch, pynsm):
        from refnsm import similarity as sim

        enc = torch.nn.Linear(6, 4, bias=True)
        tm = pynsm.SimilarityMatching(enc, 4, max_iterations=20, iteration_lr=0.5, iteration_projection=torch.relu)
        rm = sim.SimilarityMatching(_copy_encoder(enc, "linear", np.float32), 4, max_iterations=20,
                                    iteration_lr=0.5, iteration_projection="relu")
        return tm, rm

    return _run_case("SimilarityMatching(Linear, NSM) float32", build, lambda r: [r.standard_normal((10, 6))],
                     dtype=np.float32, tol=1e-5, note="float32 on both sides")


# ---------------------------------------------------------------- issue 14: encoders, hooks, options, input grads
def _copy_any(tmod):
    """A refnsm encoder holding the parameters of a torch Linear / Conv2d (any groups) / ReLU / Tanh / Identity /
    Sequential of those."""
    import torch

    from refnsm import similarity as sim

    if isinstance(tmod, torch.nn.Sequential):
        return sim.Sequential(*[_copy_any(m) for m in tmod])
    if isinstance(tmod, torch.nn.ReLU):
        return sim.ReLU()
    if isinstance(tmod, torch.nn.Tanh):
        return sim.Tanh()
    if isinstance(tmod, torch.nn.Identity):
        return sim.Identity()
    if isinstance(tmod, torch.nn.Conv2d) and tmod.groups > 1:
        b = None if tmod.bias is None else _np(tmod.bias)
        return sim.GroupedConv2d(tmod.in_channels, tmod.out_channels, tmod.kernel_size, tmod.stride, tmod.padding,
                                 tmod.dilation, tmod.groups, b is not None, weight=_np(tmod.weight), bias_value=b)
    return _copy_encoder(tmod, "linear" if isinstance(tmod, torch.nn.Linear) else "conv")


def _generic(name, make_enc, m, make_inputs, *, hook_stop=None, **kw):
    """SimilarityMatching on any encoder, with options ``kw`` given to both sides (``iteration_projection`` as a
    (torch, numpy) pair), optionally an "iteration" hook that stops both loops at ``hook_stop``."""
    def build(torch, pynsm):
        from refnsm import similarity as sim

        enc = make_enc(torch).double()
        up_kw, ref_kw = dict(kw), dict(kw)
        if "iteration_projection" in kw:
            up_kw["iteration_projection"], ref_kw["iteration_projection"] = kw["iteration_projection"]
        tm = pynsm.SimilarityMatching(enc, m, **up_kw)
        rm = sim.SimilarityMatching(_copy_any(enc), m, **ref_kw)
        if hook_stop is not None:
            tm.register_iteration_hook("iteration", lambda mod: mod.iteration_idx == hook_stop)
            rm.register_iteration_hook("iteration", lambda mod: mod.iteration_idx == hook_stop)
        return tm, rm

    return _run_case(name, build, make_inputs)


def _input_gradients(name, make_enc, m, make_inputs, **kw):
    """The input gradients returned by ``backward()`` against torch's ``x.grad`` of pynsm's loss (value: y and the
    loss; grad: every input gradient)."""
    torch = _upstream.torch()
    pynsm = _upstream.load("pynsm")
    from refnsm import similarity as sim

    torch.manual_seed(21)
    rng = np.random.default_rng(21)
    encs = [f(torch).double() for f in make_enc]
    tm = (pynsm.MultiSimilarityMatching(encs, m, **kw) if len(encs) > 1 else
          pynsm.SimilarityMatching(encs[0], m, **kw)).double()
    rm = (sim.MultiSimilarityMatching([_copy_any(e) for e in encs], m, **kw) if len(encs) > 1 else
          sim.SimilarityMatching(_copy_any(encs[0]), m, **kw))
    xs = make_inputs(rng)
    xt = [torch.tensor(a.copy(), requires_grad=True) for a in xs]
    yt = tm(*[t.detach() for t in xt])
    Lt = tm.loss(*xt, yt)
    Lt.backward()
    yr = rm(*xs)
    Lr = rm.loss(*xs, yr)
    gxs = rm.backward()
    verr = max(rel_err(yr, _np(yt)), rel_err(Lr, _np(Lt)))
    gerr = max(rel_err(g, _np(t.grad)) for g, t in zip(gxs, xt))
    return CheckRow(FAMILY, name, "pynsm 1.0.1", verr, gerr, TOL, "grad: input gradients returned by backward()")


def _api_cases():
    r6 = lambda r: [r.standard_normal((8, 6))]  # noqa: E731
    img = lambda r: [r.standard_normal((3, 4, 7, 7))]  # noqa: E731
    return [
        Case(FAMILY, "mlp_sequential_relu", lambda: _generic(
            "SimilarityMatching(Sequential(Linear, ReLU, Linear))",
            lambda t: t.nn.Sequential(t.nn.Linear(6, 5), t.nn.ReLU(), t.nn.Linear(5, 3)), 3, r6, iteration_lr=0.3,
            max_iterations=20)),
        Case(FAMILY, "conv_grouped_tanh", lambda: _generic(
            "SimilarityMatching(Sequential(Conv2d(groups=2), Tanh))",
            lambda t: t.nn.Sequential(t.nn.Conv2d(4, 6, 3, padding=1, groups=2), t.nn.Tanh()), 6, img,
            iteration_lr=0.3, max_iterations=15, iteration_projection=(lambda y: y.relu(), "relu"))),
        Case(FAMILY, "identity_encoder", lambda: _generic(
            "SimilarityMatching(Identity)", lambda t: t.nn.Identity(), 4, lambda r: [r.standard_normal((9, 4))],
            iteration_lr=0.2, max_iterations=25)),
        Case(FAMILY, "callable_projection", lambda: _generic(
            "SimilarityMatching(Linear, callable projection clamp[-0.2, 0.3])", lambda t: t.nn.Linear(6, 3), 3, r6,
            iteration_lr=0.3, max_iterations=20,
            iteration_projection=(lambda y: y.clamp(-0.2, 0.3), lambda y: np.clip(y, -0.2, 0.3)))),
        Case(FAMILY, "regularization_none", lambda: _generic(
            "SimilarityMatching(Linear, regularization='none')", lambda t: t.nn.Linear(6, 3), 3, r6,
            iteration_lr=0.3, max_iterations=20, regularization="none")),
        Case(FAMILY, "iteration_hook_stop", lambda: _generic(
            "SimilarityMatching(Linear) stopped by an iteration hook at step 5", lambda t: t.nn.Linear(6, 3), 3, r6,
            iteration_lr=0.3, max_iterations=40, hook_stop=5)),
        Case(FAMILY, "input_grads_linear", lambda: _input_gradients(
            "backward() input gradient, SimilarityMatching(Linear)", [lambda t: t.nn.Linear(6, 3)], 3, r6,
            iteration_lr=0.3, max_iterations=20)),
        Case(FAMILY, "input_grads_conv_whiten", lambda: _input_gradients(
            "backward() input gradient, SimilarityMatching(Conv2d, whiten)",
            [lambda t: t.nn.Conv2d(4, 3, 3, stride=2)], 3, img, iteration_lr=0.3, max_iterations=15,
            regularization="whiten")),
        Case(FAMILY, "input_grads_multi", lambda: _input_gradients(
            "backward() input gradients, MultiSimilarityMatching(Linear, Linear)",
            [lambda t: t.nn.Linear(6, 3), lambda t: t.nn.Linear(4, 3, bias=False)], 3,
            lambda r: [r.standard_normal((8, 6)), r.standard_normal((8, 4))], iteration_lr=0.3, max_iterations=20,
            regularization=("weight", "weight"))),
    ]


def cases():
    return _api_cases() + [
        Case(FAMILY, "nsm_linear_float32", _nsm_linear_float32),
        Case(FAMILY, "sm_linear", _sm_linear),
        Case(FAMILY, "sm_linear_tol", _sm_tol),
        Case(FAMILY, "nsm_linear_whiten", _nsm_linear_whiten),
        Case(FAMILY, "nsm_conv_s2p1d2", _nsm_conv),
        Case(FAMILY, "nsm_conv_6x6_defaults", _nsm_conv_mnist_like),
        Case(FAMILY, "multi_weight_weight", lambda: _multi(("weight", "weight"), False, None)),
        Case(FAMILY, "multi_weight_whiten", lambda: _multi(("weight", "whiten"), False, None)),
        Case(FAMILY, "multi_whiten_aliasing_compat", lambda: _multi(("whiten", "weight"), False, "pynsm")),
        Case(FAMILY, "multi_skip_misaligned_compat", lambda: _multi(("weight", "whiten"), True, "pynsm")),
        Case(FAMILY, "supervised_linear", lambda: _supervised(False, False)),
        Case(FAMILY, "supervised_conv_label_bias", lambda: _supervised(True, True)),
    ]


def bug_demonstration(regs=("whiten", "weight"), skip_first=False):
    """The loss and gradients of pynsm, refnsm default and refnsm ``compat="pynsm"`` on one two-encoder batch.

    Returns ``(err_default, err_compat)``: normwise relative differences from pynsm, worst over loss and grads.
    """
    torch = _upstream.torch()
    pynsm = _upstream.load("pynsm")
    from refnsm import similarity as sim

    torch.manual_seed(3)
    rng = np.random.default_rng(3)
    e0 = torch.nn.Linear(5, 3).double()
    e1 = torch.nn.Linear(4, 3, bias=False).double()
    tm = pynsm.MultiSimilarityMatching([e0, e1], 3, regularization=regs).double()
    x0, x1 = rng.standard_normal((7, 5)), rng.standard_normal((7, 4))
    xs = [None, x1] if skip_first else [x0, x1]
    y = rng.standard_normal((7, 3))
    Lt = tm.loss(*[None if a is None else torch.from_numpy(a) for a in xs], torch.from_numpy(y))
    Lt.backward()
    out = []
    for compat in (None, "pynsm"):
        rm = sim.MultiSimilarityMatching([_copy_encoder(e0, "linear"), _copy_encoder(e1, "linear")], 3,
                                         regularization=regs, compat=compat)
        L = rm.loss(*xs, y)
        rm.backward()
        err = rel_err(L, _np(Lt))
        for k, p in tm.named_parameters():
            if k == "competitor.weight":
                continue
            tg = np.zeros_like(rm.params[k]) if p.grad is None else _np(p.grad)
            err = max(err, rel_err(rm.grads[k], tg))
        out.append(err)
    return tuple(out)
