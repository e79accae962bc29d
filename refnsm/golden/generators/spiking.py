"""Golden cases of :mod:`refnsm.spiking`: kernels, the spike-similarity loss over kernel x loss, TET and friends."""

from __future__ import annotations

import numpy as np

from .._case import Case, call, inp, new, obj
from ._common import binary, f32exact, normal, pair, rng, uniform, value_case

F = "spiking"
KERNEL_ARGS = {"linear": (), "polynomial": (2.0,), "sigmoid": (0.5,), "gaussian": (1.5,)}


def _spikes_edge(gen):
    """[N=6, M=4, T=3] binary spikes: a silent row, a duplicated row, two rows with disjoint support."""
    X = binary(gen, (6, 4, 3), 0.4)
    X[2] = 0.0  # silent neuron group: the cosine's 0/0 (eps) and the zero norm-gradient
    X[4] = X[1]  # duplicate: S_14 = cosine 1 (minus eps)
    X[0] = 0.0
    X[0, 0, 0] = X[0, 1, 1] = 1.0
    X[5] = 0.0
    X[5, 2, 2] = X[5, 3, 0] = 1.0  # rows 0 and 5 disjoint: S_05 = 0 exactly (a tie with Y_05 = 0 for l1)
    return X


def _labels_multihot():
    """Multi-hot labels: sample 1 and 4 share two classes (L L^T = 2, clamped to 1), sample 3 has none."""
    return np.array([[1, 0, 0], [0, 1, 1], [1, 0, 0], [0, 0, 0], [0, 1, 1], [0, 0, 1]], dtype=np.float64)


def _bce_rounding_kappa(X, labels) -> float:
    """Metadata: sum_ij |dL/dS_ij| |S_ij| / |L| of the linear-kernel bce loss (the loss's condition number with respect
    to relative roundings of the similarity matrix S), from the cosine S = X X^T / (|x_i| |x_j| + 1e-8)."""
    Z = X.reshape(X.shape[0], -1)
    G = Z @ Z.T
    r = np.sqrt(np.diag(G))
    S = G / (np.outer(r, r) + 1e-8)
    Y = np.minimum(labels @ labels.T, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(Y > 0, -Y * np.maximum(np.log(S), -100.0), 0.0) + \
            np.where(Y < 1, -(1 - Y) * np.maximum(np.log1p(-S), -100.0), 0.0)
        dS = np.where((Y > 0) & (S > 0), Y / S, 0.0) + np.where((Y < 1) & (S < 1), (1 - Y) / (1 - S), 0.0)
    L = float(np.mean(term))
    return float(f"{float(np.sum(dS * S)) / S.size / abs(L):.2g}")


def cases() -> list:
    out = []
    gen = rng(11)
    # ---- kernel_dot_product: every kernel, rectangular where allowed, square for gaussian
    x = normal(gen, (5, 4), 0.75)
    y = normal(gen, (3, 4), 0.75)
    for kern, a in KERNEL_ARGS.items():
        if kern == "gaussian":
            yy = normal(gen, (5, 4), 0.75)
            ins, shape = {"x": x, "y": yy}, (5, 5)
        else:
            ins, shape = {"x": x, "y": y}, (5, 3)
        out += pair(F, "kernel_dot_product", f"{kern}-{'square' if shape[0] == shape[1] else 'rect'}", ins,
                    [inp("x"), inp("y"), kern, *a], grads=("x", "y"), cot=normal(gen, shape),
                    targets=f"{kern} kernel formula; x/y transposed in the VJP (rectangular shapes)")
    # polynomial with d = 3 and negative products (odd power keeps the sign)
    out += pair(F, "kernel_dot_product", "polynomial-d3-signed", {"x": x, "y": y},
                [inp("x"), inp("y"), "polynomial", 3.0], grads=("x", "y"), cot=normal(gen, (5, 3)),
                targets="d G^(d-1) factor in the VJP; abs() taken before the power")
    # ---- spike_similarity_matrix
    X = _spikes_edge(rng(12))
    for kern, a in KERNEL_ARGS.items():
        out += pair(F, "spike_similarity_matrix", f"{kern}-silent-duplicate", {"spikes": X},
                    [inp("spikes"), kern, *a], grads=("spikes",), cot=normal(rng(13), (6, 6)),
                    difficulty="edge",
                    targets="cosine eps placement (after the norm product), silent row (0 norm), both paths of "
                            "S = k(X, X) in the VJP (B + B^T)")
    # ---- label_similarity_matrix (not differentiable, but the clamp is the classic bug)
    out.append(value_case(F, "label_similarity_matrix", "multihot-clamp", {"labels": _labels_multihot()},
                          [inp("labels"), {"dtype": "run"}], difficulty="edge", targets="missing min(L L^T, 1) clamp"))
    # ---- spike_similar_loss: the kernel x loss matrix on edge spikes and multi-hot labels
    L = _labels_multihot()
    # unlabelled sample with bce, float64 only (see below)
    kappa_s = _bce_rounding_kappa(X, L)
    value, vjp = pair(F, "spike_similar_loss", "linear-bce-unlabelled-sample", {"spikes": X, "labels": L},
                      [inp("spikes"), inp("labels"), "linear", "bce"], grads=("spikes",), cot=None, difficulty="hard",
                      dtypes=("float64",), targets="Y_ii = 0 for a sample without labels, against S_ii just below 1",
                      tolerance_reason="float64 only: 1 - S_ii = 1e-8 relative is below float32's resolution.")
    # the loss holds -log(1 - S_ii) with 1 - S_ii ~ 1e-8: a rounding of S_ii by one ulp (which every implementation
    # makes when it forms S) moves the loss by kappa_s u; the input-perturbation estimate (binary spikes, S_ii stays
    # r^2/(r^2 + 1e-8)) does not see it.  refnsm itself is 4.9e-12 (2.2e4 eps) from the exact answer (tests/oracle,
    # tests/golden/test_certified.py), beyond the float64 floor 1e-13 an exact port would otherwise be held to.
    value.kappa = {"value": kappa_s}
    value.tolerance_reason += (f" Conditioning of the value set to {kappa_s:.3g}, that of the loss with respect to "
                               "the rounding of the similarities S (sum |dL/dS| |S| / |L|): forming S costs every "
                               "implementation up to that many u, and refnsm's value is 2.2e4 eps from the exact answer "
                               "(oracle-certified).")
    out += [value, vjp]
    # for bce every sample has a label: an unlabelled sample (Y_ii = 0) next to S_ii = r^2/(r^2 + 1e-8) puts
    # -log(1 - S_ii) = -log(1e-8) in the loss, and 1 - 1e-8 is not a float32 number (float32 gives the clamp, 100)
    Lb = L.copy()
    Lb[3, 0] = 1.0
    for kern, a in KERNEL_ARGS.items():
        for loss in ("mse", "l1", "bce"):
            if loss == "bce" and kern == "polynomial":
                continue  # (x.y)^2 of binary spikes leaves [0, 1]: refnsm refuses it, as torch does
            out += pair(F, "spike_similar_loss", f"{kern}-{loss}-multihot",
                        {"spikes": X, "labels": Lb if loss == "bce" else L},
                        [inp("spikes"), inp("labels"), kern, loss, *a], grads=("spikes",), cot=None,
                        difficulty="edge",
                        targets="mean over all N^2 pairs (diagonal included); label clamp; sign(0) = 0 in l1 "
                                "(S_05 = Y_05 = 0); bce log clamp at -100 and torch's eps in its gradient")
    # real-valued spikes (surrogate outputs) with the l1 and mse losses, and a grad_out != 1
    Xr = uniform(rng(14), (5, 6), 0.0, 1.0)
    Lr = np.array([[1, 0], [1, 1], [0, 1], [0, 0], [1, 0]], dtype=np.float64)
    for kern, a in KERNEL_ARGS.items():
        out += pair(F, "spike_similar_loss", f"{kern}-mse-real-gradout", {"spikes": Xr, "labels": Lr},
                    [inp("spikes"), inp("labels"), kern, "mse", *a], grads=("spikes",), cot=0.75, value=False,
                    targets="grad_out scaling of a scalar loss")
    # ---- TET cross-entropy: saturated logits (float32 exp overflows without the max shift), ignore_index
    gen = rng(15)
    T, N, C = 4, 5, 3
    xs = normal(gen, (T, N, C), 2.0)
    xs[:, 1, 0] += 120.0  # exp(120) overflows float32: a softmax without the max shift returns inf/nan
    xs[2, 3, :] = 95.0  # a three-way tie at a saturated value
    xs = f32exact(xs)  # exact sums, then a correctly rounded conversion
    tgt = np.array([0, 2, -100, 1, 2], dtype=np.int64)
    for fn in ("temporal_efficient_training_cross_entropy", "time_mean_cross_entropy"):
        out += pair(F, fn, "saturated-ignore", {"x_seq": xs, "target": tgt}, [inp("x_seq"), inp("target")],
                    grads=("x_seq",), cot=None, difficulty="hard",
                    targets="softmax max shift (float32 overflow); ignore_index excluded from the mean count; "
                            "mean over valid positions, not over N")
    # spatial dims and a custom ignore_index
    xsp = normal(gen, (3, 2, 4, 2, 3))
    tsp = np.array([[[0, 3, 7], [1, 1, 2]], [[7, 2, 0], [3, 7, 1]]], dtype=np.int64)
    for fn in ("temporal_efficient_training_cross_entropy", "time_mean_cross_entropy"):
        out += pair(F, fn, "spatial-ignore7", {"x_seq": xsp, "target": tsp}, [inp("x_seq"), inp("target"), 7],
                    grads=("x_seq",), cot=None, difficulty="edge",
                    targets="class axis 2 with trailing spatial dims; a non-default ignore_index")
    # ---- tet_loss with the regulariser, and the TETLoss object
    out += pair(F, "tet_loss", "lambda-0.25", {"x_seq": xs, "target": tgt},
                [inp("x_seq"), inp("target"), 1.0, 0.25], grads=("x_seq",), cot=None, difficulty="hard",
                targets="(1 - lambda) weight of the CE term; regulariser mean over every logit")
    out += pair(F, "tet_loss", "defaults", {"x_seq": xsp[:, :, :, 0, 0].copy(), "target": np.array([1, 3])},
                [inp("x_seq"), inp("target")], grads=("x_seq",), cot=None,
                targets="default phi = 1, lambda = 1e-3")
    out.append(Case(f"{F}.TETLoss.forward-backward",
                    [new("TETLoss", 0.5, 0.1, as_="loss"),
                     call("forward", inp("x_seq"), inp("target"), on="loss", save={"value": []}),
                     call("backward", None, on="loss", save={"d_x_seq": []})],
                    {"x_seq": xs, "target": tgt}, difficulty="hard",
                    targets="stateful TETLoss: mean and tet_lambda positional, backward after forward"))
    # TETLoss.base_criterion_loss: the time-averaged criterion alone (spikingjelly's name), saturated, ignore_index
    out.append(Case(f"{F}.TETLoss.base_criterion_loss-saturated-ignore",
                    [new("TETLoss", 0.5, 0.1, as_="loss"),
                     call("base_criterion_loss", inp("x_seq"), inp("target"), on="loss", save={"value": []}),
                     call("base_criterion_loss_vjp", None, inp("x_seq"), inp("target"), on="loss",
                          save={"d_x_seq": []})],
                    {"x_seq": xs, "target": tgt}, difficulty="hard",
                    targets="the base criterion averaged over T without the regulariser or the (1 - lambda) weight; "
                            "ignore_index excluded; softmax max shift"))
    # ---- firing_rate_mse
    sp = binary(rng(16), (6, 4, 3), 0.5)
    lab = np.array([0, 2, 1, 2], dtype=np.int64)
    out += pair(F, "firing_rate_mse", "binary", {"spikes_seq": sp, "labels": lab},
                [inp("spikes_seq"), inp("labels")], grads=("spikes_seq",), cot=None,
                targets="mean over N C (not N), the 1/T of the rate in the VJP")
    return out
