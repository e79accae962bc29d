"""Golden cases of :mod:`refnsm.similarity`: SM/NSM fast dynamics after k iterations, the loss and its gradients,
five training steps, the encoders' VJPs, the exact solvers, the Hebbian rule and the cost."""

from __future__ import annotations

import numpy as np

from .._case import Case, call, get, inp, new, obj
from ._common import exact_matmul, f32exact, normal, rng, value_case

F = "similarity"


def _grad_terms(out, inputs):
    """The bias and weight gradients are sums over the batch of (4/B) y_b-sized drive terms and regulariser terms
    that cancel near the fixed point; their scale is that of the drive term, (4/B) sum_b |y_b| (|x_b| for W)."""
    y, X = np.abs(out["y"]), np.abs(inputs["X"])
    B = X.shape[0]
    return {"d_b": 4.0 / B * float(np.max(y.sum(axis=0))), "d_W": 4.0 / B * float(np.max(y.T @ X)),
            "d_X": 4.0 / B * float(np.max(y @ np.abs(inputs["W0"])))}


def cases() -> list:
    out = []
    g = rng(31)
    B, n, m = 6, 5, 3
    X = normal(g, (B, n))
    X[3] = X[1]  # a duplicated sample
    W0 = normal(g, (m, n), 0.5)  # ~ 1/sqrt(n) = 0.45, a power of two
    b0 = normal(g, m, 0.125)
    for proj, reg, k, lr in ((None, "weight", 5, 0.2), ("relu", "weight", 40, 0.5), (None, "whiten", 20, 0.3),
                             ("relu", "none", 3, 1.0)):
        tag = f"{'nsm' if proj else 'sm'}-{reg}-k{k}"
        enc = new("Linear", n, m, True, as_="enc", weight=inp("W0"), bias_value=inp("b0"), dtype={"dtype": "run"})
        model = new("SimilarityMatching", obj("enc"), m, 0.5, 0.0, k, reg, lr, proj, as_="model")
        out.append(Case(f"{F}.SimilarityMatching.forward-loss-backward-{tag}",
                        [enc, model,
                         call("forward", inp("X"), on="model", as_="y", save={"y": []}),
                         call("loss", inp("X"), {"result": "y", "path": []}, on="model", save={"loss": []}),
                         call("backward", on="model", save={"d_X": [0]}),
                         get("grads", on="model", save={"d_W": ["encoders.0.weight"], "d_b": ["encoders.0.bias"],
                                                        "d_M": ["competitor.weight"]})],
                        {"X": X, "W0": W0, "b0": b0}, difficulty="hard" if proj else "basic",
                        term_scale={"d_b": lambda o, i: _grad_terms(o, i)["d_b"],
                                    "d_W": lambda o, i: _grad_terms(o, i)["d_W"],
                                    "d_X": lambda o, i: _grad_terms(o, i)["d_X"]},
                        tolerance_reason="d_X, d_W, d_b measured against the scale of the drive term (4/B) sum |y| "
                                         "(they cancel near the fixed point)",
                        targets=f"exactly {k} fast iterations with step {lr}; projection {proj}; regularization "
                                f"{reg!r}; pynsm's loss scaling (2/T, 4/T); raw gradients"))
        out.append(Case(f"{F}.SimilarityMatching.train-five-steps-{tag}",
                        [enc, model] + [call("train_step", inp("X"), on="model", lr=0.05) for _ in range(5)]
                        + [get("params", on="model", save={"W": ["encoders.0.weight"], "b": ["encoders.0.bias"],
                                                           "M": ["competitor.weight"]})],
                        {"X": X, "W0": W0, "b0": b0}, difficulty="hard",
                        targets="five slow steps: Hebbian W, anti-Hebbian M at lr/tau, in that order"))
    # supervised: the label drive, with the label encoder pinned (label_weight), multi-hot-free one-hot labels
    Lab = np.eye(3)[[0, 1, 2, 1, 0, 2]]
    Lw = normal(g, (m, 3), 0.5)
    for k in (3, 15):
        out.append(Case(f"{F}.SupervisedSimilarityMatching.forward-loss-backward-k{k}",
                        [new("Linear", n, m, False, as_="enc", weight=inp("W0"), dtype={"dtype": "run"}),
                         new("SupervisedSimilarityMatching", obj("enc"), 3, m, as_="model", max_iterations=k,
                             iteration_lr=0.3, label_weight=inp("Lw")),
                         call("forward", inp("X"), inp("L"), on="model", as_="y", save={"y": []}),
                         call("loss", inp("X"), inp("L"), {"result": "y", "path": []}, on="model",
                              save={"loss": []}),
                         call("backward", on="model", save={"d_X": [0]}),
                         get("grads", on="model", save={"d_W": ["encoders.0.weight"], "d_Lw": ["encoders.1.weight"],
                                                        "d_M": ["competitor.weight"]})],
                        {"X": X, "W0": W0, "L": Lab, "Lw": Lw}, difficulty="hard",
                        targets="label drive added to the input drive; ('weight', 'whiten') default regularizers "
                                "paired with the encoders in order"))
    # multi-input: two Linear encoders, then the second input skipped (None)
    X2 = normal(g, (B, 4))
    W2 = normal(g, (m, 4), 0.5)
    variants = [("two-inputs", False, "weight", None), ("skip-second", True, "weight", None),
                ("whiten-weight-two-inputs", False, ["whiten", "weight"], None),
                ("whiten-weight-two-inputs-compat-pynsm", False, ["whiten", "weight"], "pynsm")]
    for tag, skip, regs, compat in variants:
        xs = [inp("X"), None] if skip else [inp("X"), inp("X2")]
        extra = {"compat": compat} if compat else {}
        out.append(Case(f"{F}.MultiSimilarityMatching.forward-loss-backward-{tag}",
                        [new("Linear", n, m, False, as_="e1", weight=inp("W0"), dtype={"dtype": "run"}),
                         new("Linear", 4, m, False, as_="e2", weight=inp("W2"), dtype={"dtype": "run"}),
                         new("MultiSimilarityMatching", [obj("e1"), obj("e2")], m, 0.5, 0.0, 10, regs, 0.3,
                             as_="model", **extra),
                         call("forward", *xs, on="model", as_="y", save={"y": []}),
                         call("loss", *xs, {"result": "y", "path": []}, on="model", save={"loss": []}),
                         call("backward", on="model", save={"d_X": [0]}),
                         get("grads", on="model", save={"d_W1": ["encoders.0.weight"], "d_W2": ["encoders.1.weight"],
                                                        "d_M": ["competitor.weight"]})],
                        {"X": X, "W0": W0, "X2": X2, "W2": W2}, difficulty="edge", compat=compat,
                        targets=("pynsm's loss with two active encoders (the first encoding overwritten by the sum)"
                                 if compat else
                                 "drives of several encoders summed; a skipped input (None) contributes nothing "
                                 "and its regularizer is not applied; 'whiten' on the first encoding alone")))
    # encoders: forward and VJP, Linear and Conv2d (stride, padding, dilation)
    G = normal(g, (B, m))
    out.append(Case(f"{F}.Linear.forward-backward",
                    [new("Linear", n, m, True, as_="enc", weight=inp("W0"), bias_value=inp("b0"),
                         dtype={"dtype": "run"}),
                     call("forward", inp("X"), on="enc", save={"u": []}),
                     call("backward", inp("G"), on="enc", save={"d_X": []}),
                     get("grads", on="enc", save={"d_weight": ["weight"], "d_bias": ["bias"]})],
                    {"X": X, "W0": W0, "b0": b0, "G": G}, targets="torch's [out, in] weight layout: u = x W^T + b"))
    xi = normal(g, (2, 2, 6, 5))
    wc = normal(g, (3, 2, 3, 2), 0.25)
    bc = normal(g, 3, 0.125)
    for stride, pad, dil in ((1, 0, 1), (2, 1, 1), (1, 1, 2)):
        enc = new("Conv2d", 2, 3, [3, 2], stride, pad, dil, True, as_="enc", weight=inp("w"), bias_value=inp("b"),
                  dtype={"dtype": "run"})
        # the output shape, to draw a cotangent
        ho = (6 + 2 * pad - dil * 2 - 1) // stride + 1
        wo = (5 + 2 * pad - dil * 1 - 1) // stride + 1
        Gc = normal(g, (2, 3, ho, wo))
        out.append(Case(f"{F}.Conv2d.forward-backward-s{stride}p{pad}d{dil}",
                        [enc, call("forward", inp("x"), on="enc", save={"u": []}),
                         call("backward", inp("G"), on="enc", save={"d_x": []}),
                         get("grads", on="enc", save={"d_weight": ["weight"], "d_bias": ["bias"]})],
                        {"x": xi, "w": wc, "b": bc, "G": Gc}, difficulty="edge",
                        targets="cross-correlation (no kernel flip), stride/padding/dilation, col2im accumulation"))
    # exact solvers and the Hebbian rule
    A = normal(g, (m, m))
    Mpd = f32exact(exact_matmul(A, A.T) / 4.0 + np.eye(m))  # positive definite, built exactly
    bb = normal(g, (B, m))
    out.append(value_case(F, "solve_sm", "batch", {"M": Mpd, "b": bb}, [inp("M"), inp("b")],
                          targets="y = M^{-1} b per sample (rows)"))
    out.append(value_case(F, "solve_nsm", "batch-active-set", {"M": Mpd, "b": bb}, [inp("M"), inp("b")],
                          difficulty="edge", targets="non-negative QP: the active set, not relu(M^{-1} b)"))
    yy = np.abs(normal(g, (B, m)))
    out.append(value_case(F, "kkt_residual", "nsm", {"M": Mpd, "b": bb, "y": yy}, [inp("M"), inp("b"), inp("y")],
                          targets="complementarity residual of the NSM fixed point"))
    Mc = f32exact(np.eye(m) + 0.125 * (A + A.T))
    out.append(value_case(F, "hebbian_update", "with-bias", {"W": W0, "M": Mc, "x": X, "y": yy, "bias": b0},
                          [inp("W"), inp("M"), inp("x"), inp("y"), 0.1, 0.5, inp("bias")], fields=None,
                          targets="W += lr (y^T x / B - W), M += lr/tau (y^T y / B - M), bias rule"))
    out[-1].program[0]["save"] = {"W": [0], "bias": [1], "M": [2]}
    out.append(value_case(F, "similarity_matching_cost", "batch", {"X": X, "Y": yy}, [inp("X"), inp("Y")],
                          targets="-1/T^2 sum (x.x')(y.y') + ... normalisation"))
    out += _composite_encoders()
    out += _iteration_plugins()
    out += _optimizer_trajectories()
    return out


def _encoder_program(enc_steps, x="x", grads=()):
    """The built encoder ``enc``'s forward, backward (input gradient) and, for ``grads``, its parameter gradients."""
    prog = list(enc_steps) + [call("forward", inp(x), on="enc", save={"u": []}),
                              call("backward", inp("G"), on="enc", save={f"d_{x}": []})]
    if grads:
        prog.append(get("grads", on="enc", save={f"d_{k}": [k] for k in grads}))
    return prog


def _composite_encoders() -> list:
    """The protocol encoders of :mod:`refnsm.similarity.composite` (issue 14): the elementwise nonlinearities,
    ``Sequential`` of a Linear and a nonlinearity, and the grouped convolution."""
    g = rng(32)
    out = []
    run = {"dtype": "run"}
    # elementwise: exact zeros for ReLU (torch's derivative 0 at 0, held), a wide range for the saturating ones
    X = normal(g, (4, 6), 2.0)
    X[0, 0], X[2, 3] = 0.0, 0.0
    G = normal(g, (4, 6))
    for name, xs, targets, hold in (
            ("ReLU", X, "derivative 1[x > 0]: 0 at x = 0 (torch), not 1 or 1/2", ("x",)),
            ("Tanh", normal(g, (4, 6), 4.0), "derivative 1 - tanh^2 x, saturating without overflow", ()),
            ("Sigmoid", normal(g, (4, 6), 4.0), "sigma(1 - sigma), saturating (|x| up to 12) without overflow", ())):
        out.append(Case(f"{F}.{name}.forward-backward",
                        _encoder_program([new(name, as_="enc", dtype=run)]),
                        {"x": xs, "G": G}, difficulty="edge" if hold else "basic", hold=hold, targets=targets))
    # Sequential: Linear -> nonlinearity, the parameters named "0.weight", "0.bias" as torch.nn.Sequential
    B, n, m = 5, 4, 3
    Xs = normal(g, (B, n))
    Ws = normal(g, (m, n), 0.5)
    bs = normal(g, m, 0.25)
    Gs = normal(g, (B, m))
    for act in ("ReLU", "Tanh"):
        steps = [new("Linear", n, m, True, as_="lin", weight=inp("W0"), bias_value=inp("b0"), dtype=run),
                 new(act, as_="act", dtype=run),
                 new("Sequential", obj("lin"), obj("act"), as_="enc")]
        out.append(Case(f"{F}.Sequential.linear-{act.lower()}-forward-backward",
                        _encoder_program(steps, "X", grads=("0.weight", "0.bias")),
                        {"X": Xs, "W0": Ws, "b0": bs, "G": Gs},
                        targets=f"u = {act.lower()}(x W^T + b): the stages' VJPs chained backwards, the parameters "
                                "under torch.nn.Sequential's names (\"0.weight\")"))
    # grouped convolution: groups 2, each output block sees its own input block only
    xi = normal(g, (2, 4, 6, 5))
    wg = normal(g, (6, 2, 3, 2), 0.25)
    bg = normal(g, 6, 0.125)
    for stride, pad, dil in ((2, 1, 1), (1, 1, 2)):
        ho = (6 + 2 * pad - dil * 2 - 1) // stride + 1
        wo = (5 + 2 * pad - dil * 1 - 1) // stride + 1
        steps = [new("GroupedConv2d", 4, 6, [3, 2], stride, pad, dil, 2, True, as_="enc", weight=inp("w"),
                     bias_value=inp("b"), dtype=run)]
        out.append(Case(f"{F}.GroupedConv2d.forward-backward-g2-s{stride}p{pad}d{dil}",
                        _encoder_program(steps, grads=("weight", "bias")),
                        {"x": xi, "w": wg, "b": bg, "G": normal(g, (2, 6, ho, wo))}, difficulty="edge",
                        targets="groups = 2: output channels 0-2 from input channels 0-1 only, 3-5 from 2-3; weight "
                                "(out, in/groups, kh, kw); stride/padding/dilation per block"))
    return out


def _optimizer_trajectories() -> list:
    """The iteration optimizers and schedulers called directly (issue 14): ``SGD`` / ``Adam`` on a dict of two
    parameters (given by ``{"copy": ...}``: the optimizer updates them in place), four ``step(grads)`` calls with
    given gradients, the parameters (and the learning rate when a scheduler runs) saved after every step."""
    g = rng(34)
    w0, v0 = normal(g, (3, 4)), normal(g, 5)
    T = 4
    # gradients shrinking by 2^-t, so that amsgrad's running max of v differs from v
    grads = {}
    for t in range(T):
        grads[f"gw{t}"] = normal(g, (3, 4), 2.0 ** -t)
        grads[f"gv{t}"] = normal(g, 5, 2.0 ** -t)
    variants = (
        ("SGD", "momentum-nesterov-weight-decay", {"lr": 0.125, "momentum": 0.5, "weight_decay": 0.25,
                                                   "nesterov": True}, None, {},
         "Nesterov: p -= lr (g + mu buf), buf = g at the first step then mu buf + g; L2 decay added to g first"),
        ("SGD", "momentum-dampening-maximize-exponentiallr", {"lr": 0.25, "momentum": 0.75, "dampening": 0.25,
                                                              "maximize": True}, "ExponentialLR", {"gamma": 0.5},
         "dampening (1 - d) g in the buffer except at the first step; maximize negates g; lr *= gamma per step"),
        ("Adam", "weight-decay-steplr", {"lr": 0.125, "betas": [0.75, 0.875], "weight_decay": 0.0625},
         "StepLR", {"step_size": 2, "gamma": 0.5},
         "bias corrections 1 - beta^t per parameter; eps outside the corrected sqrt(v); L2 decay (not AdamW); "
         "lr halved every 2 steps"),
        ("Adam", "amsgrad-exponentiallr", {"lr": 0.125, "betas": [0.5, 0.75], "amsgrad": True},
         "ExponentialLR", {"gamma": 0.75},
         "amsgrad: the running max of v (not of its bias-corrected value) in the denominator"),
    )
    out = []
    for opt, tag, okw, sched, skw, targets in variants:
        prog = [new(opt, {"w": {"copy": "w0"}, "v": {"copy": "v0"}}, as_="opt", **okw)]
        if sched:
            prog.append(new(sched, obj("opt"), as_="sched", **skw))
        for t in range(T):
            prog.append(call("step", {"w": inp(f"gw{t}"), "v": inp(f"gv{t}")}, on="opt"))
            if sched:
                prog.append(call("step", on="sched"))
            prog.append(get("params", on="opt", save={f"w{t + 1}": ["w"], f"v{t + 1}": ["v"]}))
            if sched:
                prog.append(get("lr", on="opt", save={f"lr{t + 1}": []}))
        out.append(Case(f"{F}.{opt}.trajectory-{tag}", prog, {"w0": w0, "v0": v0, **grads},
                        difficulty="edge", targets=targets + "; the parameters updated in place"))
    return out


def _iteration_plugins() -> list:
    """The fast dynamics run step by step by the iteration optimizers and schedulers (issue 14), through
    ``SimilarityMatching(iteration_optimizer=, iteration_scheduler=, it_optim_kwargs=, it_sched_kwargs=)``."""
    g = rng(33)
    B, n, m = 6, 5, 3
    X = normal(g, (B, n))
    W0 = normal(g, (m, n), 0.5)
    b0 = normal(g, m, 0.125)
    run = {"dtype": "run"}
    variants = (
        ("sgd-momentum-steplr", None, 12, 0.25, "sgd", {"momentum": 0.5, "weight_decay": 0.125},
         "step", {"step_size": 4, "gamma": 0.5},
         "SGD momentum (buffer = grad at the first step, then mu buf + grad) with L2 weight decay; StepLR halving "
         "the rate every 4 steps"),
        ("nsm-sgd-nesterov-exponentiallr", "relu", 10, 0.5, "sgd", {"momentum": 0.75, "nesterov": True},
         "exponential", {"gamma": 0.875},
         "Nesterov momentum (grad + mu buf), the ReLU projection after each step; ExponentialLR after each step"),
        ("adam-steplr", None, 8, 0.125, "adam", {"betas": [0.75, 0.875]}, "step", {"step_size": 3, "gamma": 0.5},
         "Adam (torch's bias corrections, lerp form of the first moment); StepLR every 3 steps"),
        ("adam-amsgrad-exponentiallr", None, 8, 0.125, "adam",
         {"betas": [0.5, 0.75], "amsgrad": True, "weight_decay": 0.0625}, "exponential", {"gamma": 0.75},
         "Adam with amsgrad (the running max of v in the denominator) and L2 weight decay; ExponentialLR"),
    )
    out = []
    for tag, proj, k, lr, opt, okw, sched, skw, targets in variants:
        enc = new("Linear", n, m, True, as_="enc", weight=inp("W0"), bias_value=inp("b0"), dtype=run)
        model = new("SimilarityMatching", obj("enc"), m, 0.5, 0.0, k, "weight", lr, proj, as_="model",
                    iteration_optimizer=opt, iteration_scheduler=sched, it_optim_kwargs=okw, it_sched_kwargs=skw)
        out.append(Case(f"{F}.SimilarityMatching.forward-loss-backward-iteration-{tag}",
                        [enc, model,
                         call("forward", inp("X"), on="model", as_="y", save={"y": []}),
                         call("loss", inp("X"), {"result": "y", "path": []}, on="model", save={"loss": []}),
                         call("backward", on="model", save={"d_X": [0]}),
                         get("grads", on="model", save={"d_W": ["encoders.0.weight"], "d_b": ["encoders.0.bias"],
                                                        "d_M": ["competitor.weight"]})],
                        {"X": X, "W0": W0, "b0": b0}, difficulty="hard",
                        term_scale={"d_b": lambda o, i: _grad_terms(o, i)["d_b"],
                                    "d_W": lambda o, i: _grad_terms(o, i)["d_W"],
                                    "d_X": lambda o, i: _grad_terms(o, i)["d_X"]},
                        tolerance_reason="d_X, d_W, d_b measured against the scale of the drive term (4/B) sum |y| "
                                         "(they cancel near the fixed point)",
                        targets=f"exactly {k} fast iterations, each: gradient My - b, optimizer step, scheduler "
                                f"step, projection ({proj}); " + targets))
    return out
