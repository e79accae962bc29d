"""Golden cases of :mod:`refnsm.hopfield`: retrieval, energy, plasticity, trajectories, classical baselines."""

from __future__ import annotations

import numpy as np

from .._case import Case, call, get, inp, new, res
from ._common import composition, exact_matmul, f32exact, normal, pair, rng, value_case

F = "hopfield"
FIELDS = ("similarities", "memory_weights", "outputs")


def _softmax(Z):
    Z = Z - Z.max(axis=1, keepdims=True)
    E = np.exp(Z)
    return E / E.sum(axis=1, keepdims=True)


def _vjp_terms(G, X, W, beta):
    """Scales of the terms that cancel in the retrieval VJP when the softmax saturates.

    T = A (Abar - rowsum(A Abar)) is a difference of two terms each of size |A| |Abar|; the scale of each output is
    that of its terms: d_X ~ beta (|A| |Abar|) |W|^T, d_W ~ |G|^T A + beta |X|^T (|A| |Abar|), d_beta ~ sum |XW| |A| |Abar|.
    """
    A = _softmax(beta * (X @ W))
    Abar = G @ W
    Tt = A * np.abs(Abar) + A * np.abs(np.sum(A * Abar, axis=1, keepdims=True))
    return {"d_X": float(np.max(beta * Tt @ np.abs(W).T)),
            "d_W": float(np.max(np.abs(G).T @ A + beta * np.abs(X).T @ Tt)),
            "d_beta": float(np.sum(np.abs(X @ W) * Tt))}


def _energy_terms(g, X, W, beta):
    """d_beta of the energy is sum_b g_b (Ent(p_b) - log H) / beta^2 with Ent(p) = lse(beta s) - beta p.s, a
    difference of two terms of size beta max|s| that cancel when p saturates: its scale is that of the terms."""
    Z = beta * (X @ W)
    A = _softmax(Z)
    lse = np.log(np.sum(np.exp(Z - Z.max(axis=1, keepdims=True)), axis=1)) + Z.max(axis=1)
    H = W.shape[1]
    return {"d_beta": float(np.sum(np.abs(g) * (np.abs(lse) + np.sum(A * np.abs(Z), axis=1) + np.log(H)))
                            / beta ** 2)}


def cases() -> list:
    out = []
    g = rng(21)
    B, D, H = 4, 5, 6
    X = normal(g, (B, D))
    W = normal(g, (D, H), 0.625)
    Gx = normal(g, (B, D))
    # saturated: beta * scores ~ 60 * 5 = 300 > log(float32 max) = 88.7; without the max shift exp overflows
    Xs = f32exact(X * 2.0)
    beta_s = 60.0
    # a tie: memories 1 and 4 identical (equal softmax weights), norms tied with memory 0 for the energy's max
    Wt = np.round(normal(g, (D, H), 4.0)) / 8.0
    Wt[:, 4] = Wt[:, 1]
    Wt[:, 0] = Wt[::-1, 1]  # same entries reversed: exactly the same squared norm (dyadic values)
    Wt = f32exact(Wt)
    for variant, x, w, beta, diff, tgt in (
            ("basic", X, W, 2.0, "basic", "softmax over memories (axis), W^T vs W"),
            ("saturated-beta60", Xs, W, beta_s, "hard", "softmax max shift (float32 exp overflow at beta 60)"),
            ("tied-memories", X, Wt, 3.0, "edge", "duplicate memories share the weight; argmax ties"),
            ("square-beta1", normal(g, (6, 6)), normal(g, (6, 6), 0.5), 1.0, "basic",
             "square X W: transposes that a rectangular case would catch by shape only")):
        ins = {"X": x, "W": w}
        term = _vjp_terms(Gx if x.shape == Gx.shape else np.ones_like(x), x, w, beta)
        cot = Gx if x.shape == Gx.shape else np.ones_like(x)
        out += pair(F, "retrieve", variant, ins, [inp("X"), inp("W"), beta], grads=("X", "W", "beta"), cot=cot,
                    fields=FIELDS, difficulty=diff, targets=tgt, term_scale=term,
                    hold=("W",) if variant == "tied-memories" else (),
                    tolerance_reason="VJP errors measured against the scale of the terms of the softmax VJP "
                                     "(|A| |Abar|), which cancel when the softmax saturates")
    out.append(value_case(F, "retrieve", "single-probe-1d", {"x": X[0].copy(), "W": W}, [inp("x"), inp("W"), 4.0],
                          fields=FIELDS, difficulty="edge", targets="a 1-D probe returns 1-D results"))
    # ---- iterate to a fixed point, and exactly three steps
    out.append(value_case(F, "iterate", "fixed-point", {"X": X, "W": W}, [inp("X"), inp("W"), 8.0],
                          {"tol": 1e-12, "max_iter": 200}, fields=("outputs",), difficulty="basic",
                          targets="iteration of x <- W softmax(beta W^T x) to its fixed point"))
    out.append(value_case(F, "iterate", "three-steps", {"X": X, "W": W}, [inp("X"), inp("W"), 0.5],
                          {"tol": 0.0, "max_iter": 3}, fields=("outputs",), targets="exactly max_iter updates"))
    # ---- energy and its VJP
    ge = normal(g, B)
    for variant, w, beta, diff, tgt, hold in (
            ("basic", W, 2.0, "basic", "lse / beta, + log(H)/beta, + max norm / 2 constants", ()),
            ("tied-max-norm", Wt, 3.0, "edge", "the max-norm subgradient goes to the first of tied memories",
             ("W",)),
            ("saturated-beta60", W, beta_s, "hard", "lse without the max shift overflows", ())):
        xx = Xs if variant.startswith("saturated") else X
        out += pair(F, "energy", variant, {"X": xx, "W": w}, [inp("X"), inp("W"), beta], grads=("X", "W", "beta"),
                    cot=ge, difficulty=diff, targets=tgt, hold=hold, term_scale=_energy_terms(ge, xx, w, beta),
                    tolerance_reason=("W held in the conditioning estimate: perturbing it breaks the exact norm tie. "
                                      if hold else "") + "d_beta measured against the scale of the entropy's terms "
                                                         "lse and beta p.s, which cancel when p saturates")
    out.append(value_case(F, "energy", "compat-ngclearn", {"X": X, "W": W}, [inp("X"), inp("W"), 2.0],
                          {"compat": "ngclearn"}, compat="ngclearn", targets="ngclearn's energy reading"))
    # ---- plasticity: delta and contrastive rules, evolve_step
    # a retrieval's memory weights and reconstructions, built exactly (no exp, no BLAS): rows of A are dyadic and
    # sum to 1, X_hat = A W^T in integers, then rounded to float32
    A = composition(g, B, H)
    Xh = f32exact(exact_matmul(A, W.T))
    ins = {"X": X, "X_hat": Xh, "A": A}
    out.append(value_case(F, "delta_update", "batch4", ins, [inp("X"), inp("X_hat"), inp("A")],
                          targets="batch mean (1/B), (X - X_hat)^T A orientation"))
    out.append(value_case(F, "contrastive_update", "default-neg-beta", {**ins, "W": W},
                          [inp("X"), inp("X_hat"), inp("A"), inp("W"), 2.0],
                          targets="negative phase at beta' = beta on the reconstructions"))
    out.append(value_case(F, "contrastive_update", "neg-beta-0.5", {**ins, "W": W},
                          [inp("X"), inp("X_hat"), inp("A"), inp("W"), 2.0], {"neg_beta": 0.5},
                          targets="neg_beta used in the negative phase only"))
    out.append(value_case(F, "contrastive_update", "compat-ngclearn", {**ins, "W": W},
                          [inp("X"), inp("X_hat"), inp("A"), inp("W"), 2.0], {"compat": "ngclearn"},
                          compat="ngclearn", targets="ngclearn's beta' = 1"))
    Wz = W.copy()
    Wz[0, :3] = 0.0  # sign(0) = 0 in the L1 shrinkage
    dW = normal(g, (D, H))
    mask = (g.random((D, H)) < 0.7).astype(np.float64)
    out.append(value_case(F, "evolve_step", "decay-l1-zeros", {"W": Wz, "dW": dW}, [inp("W"), inp("dW"), 0.5, 0.125,
                          0.0625], difficulty="edge", targets="decay not multiplied by eta; sign(0) = 0", hold=("W",)))
    out.append(value_case(F, "evolve_step", "mask", {"W": W, "dW": dW, "mask": mask},
                          [inp("W"), inp("dW"), 0.25, 0.0, 0.0, inp("mask")], targets="mask applied after the update"))
    # ---- trajectories: five plasticity steps of each rule, functional and through the synapse
    for rule in ("delta", "contrastive"):
        prog, prev = [], inp("W0")
        for k in range(5):
            prog.append(call("retrieve", inp("X"), prev, 2.0, as_=f"r{k}"))
            if rule == "delta":
                prog.append(call("delta_update", inp("X"), res(f"r{k}", "outputs"), res(f"r{k}", "memory_weights"),
                                 as_=f"d{k}"))
            else:
                prog.append(call("contrastive_update", inp("X"), res(f"r{k}", "outputs"),
                                 res(f"r{k}", "memory_weights"), prev, 2.0, as_=f"d{k}"))
            last = k == 4
            prog.append(call("evolve_step", prev, res(f"d{k}"), 0.5, 0.01, as_=f"W{k + 1}",
                             save={"W5": []} if last else None))
            prev = res(f"W{k + 1}")
        out.append(Case(f"{F}.evolve_step.{rule}-five-steps", prog, {"X": X, "W0": W}, difficulty="hard",
                        targets=f"{rule} rule chained 5 times: retrieval, update, decay, in that order"))
        for compat in (None, "ngclearn"):
            extra = {"compat": compat} if compat else {}
            out.append(Case(f"{F}.HopfieldSynapse.{rule}-five-evolves" + (f"-compat-{compat}" if compat else ""),
                            [new("HopfieldSynapse", "h", [D, H], 0.5, 0.01, 2.0, None, rule, as_="syn",
                                 weight_init=inp("W0"), batch_size=B, dtype={"dtype": "run"}, **extra)]
                            + sum([[call("advance_state", inp("X"), on="syn"), call("evolve", on="syn")]
                                   for _ in range(5)], [])
                            + [call("advance_state", inp("X"), on="syn", save={"outputs": []}),
                               get("memory_weights", on="syn", save={"memory_weights": []}),
                               get("weights", on="syn", save={"weights": []})],
                            {"X": X, "W0": W}, difficulty="hard", compat=compat,
                            targets="the stateful synapse: compartments, evolve after advance_state"
                                    + (", ngclearn's contrastive negative phase at beta' = 1" if compat else "")))
    out.append(Case(f"{F}.HopfieldSynapse.backward",
                    [new("HopfieldSynapse", "h", [D, H], 0.5, 0.01, 2.0, as_="syn", weight_init=inp("W0"),
                         batch_size=B, dtype={"dtype": "run"}),
                     call("forward", inp("X"), on="syn", save={"outputs": []}),
                     call("backward", inp("G"), on="syn", save={"d_X": []}),
                     get("grads", on="syn", save={"d_weights": ["weights"]})],
                    {"X": X, "W0": W, "G": Gx}, targets="the synapse as a layer: retrieval VJP into grads"))
    # ---- classical baselines (float64 by design)
    P = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1], [1, 1], [1, -1]], dtype=np.float64)
    Wh = exact_matmul(P, P.T) / 8.0  # Hebbian outer products (scaled by 1/8, not 1/N, so that it stays exact)
    np.fill_diagonal(Wh, 0.0)
    S = np.array([[1, -1, 1, 1, -1, 1], [1, 1, 1, 1, 1, 1], [-1, 1, 1, -1, 1, -1]], dtype=np.float64)
    f64 = {"dtypes": ("float64",)}
    out.append(value_case(F, "hebbian_weights", "pm1-6x2", {"patterns": P}, [inp("patterns")], **f64,
                          targets="1/N scaling and the zero diagonal"))
    out.append(value_case(F, "classical_energy", "theta", {"S": S, "W": Wh, "theta": normal(g, 6)},
                          [inp("S"), inp("W"), inp("theta")], **f64, targets="-1/2 s^T W s + theta^T s"))
    out.append(value_case(F, "classical_update", "sync-zero-field", {"S": S, "W": Wh}, [inp("S"), inp("W")],
                          {"mode": "sync", "n_sweeps": 2}, **f64, difficulty="edge",
                          targets="a unit with zero local field keeps its state (not sign(0) = 0 or +1)"))
    out.append(value_case(F, "classical_update", "async-sequential", {"S": S, "W": Wh}, [inp("S"), inp("W")],
                          {"mode": "async", "n_sweeps": 3, "order": "sequential"}, **f64,
                          targets="asynchronous updates see the units already updated"))
    Pd = np.sign(normal(g, (6, 3)))
    for inter, n in (("poly", 3), ("rectified", 2), ("exp", 1)):
        out.append(value_case(F, "dense_energy", inter, {"S": S, "patterns": Pd}, [inp("S"), inp("patterns")],
                              {"interaction": inter, "n": n}, **f64, targets=f"F = {inter}"))
        out.append(value_case(F, "dense_update", f"{inter}-sequential", {"S": S, "patterns": Pd},
                              [inp("S"), inp("patterns")], {"interaction": inter, "n": n, "n_sweeps": 2,
                                                            "order": "sequential"}, **f64,
                              targets="energy difference of the two signs of a unit"))
    out += _weight_init_specs()
    return out


def _weight_init_specs() -> list:
    """ngclearn-style ``weight_init`` specifications (issue 14).  Only ``constant`` is deterministic: ``uniform`` and
    ``gaussian`` draw from the synapse's ``rng`` (the same law as ngclearn, not the same bits), so they have no golden
    value.  The constant spec with ngclearn's post-processing (triangle, hollow, 1.x clip), then one retrieval from
    those weights (no plasticity step: a backend may update the saved weights in place)."""
    g = rng(57)
    D, H, B = 4, 4, 3
    X = normal(g, (B, D))
    specs = (("constant-lower-triangle", {"dist": "constant", "value": 0.25, "lower_triangle": True},
              "ngclearn's lower_triangle: W_ij kept for i >= j (np.tril), zero above"),
             ("constant-clip-hollow", {"dist": "constant", "value": 1.5, "amax": 0.75, "hollow": True},
              "post-processing order: clip to amax first, then the zero diagonal"))
    out = []
    for tag, spec, targets in specs:
        out.append(Case(f"{F}.HopfieldSynapse.weight-init-{tag}",
                        [new("HopfieldSynapse", "h", [D, H], 0.5, 0.0, 2.0, as_="syn", weight_init=spec,
                             batch_size=B, dtype={"dtype": "run"}),
                         get("weights", on="syn", save={"weights_init": []}),
                         call("advance_state", inp("X"), on="syn", save={"outputs": []})],
                        {"X": X}, targets=targets))
    return out
