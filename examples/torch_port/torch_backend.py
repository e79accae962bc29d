"""An independent PyTorch port of a few refnsm functions, written as a user would, as a golden-suite backend.

    python -m refnsm golden verify --backend examples/torch_port/torch_backend.py

Families: spiking (label matrix, spike-similarity loss for all kernels and losses, TET cross-entropies), hopfield
(retrieval, its VJP, the energy, the delta rule), regularization (Lp norms, Dale's law, E/I ratio, distance).
Values are computed with torch in the inputs' dtype; VJPs come from ``torch.autograd`` except
``dale_law_l2_vjp``, written by hand to show the pattern.  Everything else in the suite is "not implemented".

``make(bugs)`` builds the backend with typical porting bugs planted (see ``BUGS``); ``tests/golden/test_torch_port.py``
checks that the golden suite catches each of them.  ``REFNSM_TORCH_PORT_BUG=<name>`` plants one from the CLI.
"""

from __future__ import annotations

import math
import os
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as Fn

BUGS = {
    "no_label_clamp": "target similarity L L^T without the min(., 1) clamp",
    "loss_sum_not_mean": "spike-similarity loss summed over the pairs instead of averaged",
    "loss_mean_over_rows": "spike-similarity loss divided by N instead of N^2",
    "l1_sign0_is_one": "the L1 subgradient at 0 taken as +1",
    "bce_no_clamp": "binary cross-entropy written by hand, without the log clamp at -100",
    "gaussian_sigma_squared": "gaussian kernel exp(-d / sigma^2) instead of exp(-d / (2 sigma^2))",
    "softmax_no_shift": "Hopfield softmax without the max shift",
    "retrieve_transposed": "retrieved probes A W instead of A W^T (scores X W^T)",
    "energy_missing_logH": "Hopfield energy without the log(H)/beta constant",
    "delta_sum_not_mean": "delta rule summed over the batch instead of averaged",
    "tet_ignore_index_in_mean": "TET cross-entropy averaged over every position, ignored ones included",
    "tet_is_time_mean": "TET computed as the cross-entropy of the time-averaged logits",
    "lp_matrix_entrywise": "matrix p=1 norm computed entrywise (sum of abs(W)) instead of the induced norm",
    "dale_sign0_is_one": "sign(0) = +1 for the Dale reference (R >= 0)",
    "dale_vjp_missing_2": "hand-written Dale VJP: alpha W instead of 2 alpha W",
    "softsign_without_abs": "softsign x / (1 + x) instead of x / (1 + abs(x))",
}

EPS_COSINE = 1e-8


def _t(a, grad=False):
    t = torch.from_numpy(np.array(a, copy=True))
    if grad and t.is_floating_point():
        t.requires_grad_(True)
    return t


def _np(t):
    return t.detach().numpy()


def make(bugs=()):
    bugs = set(bugs)
    unknown = bugs - set(BUGS)
    if unknown:
        raise ValueError(f"bugs: unknown {sorted(unknown)}; known: {sorted(BUGS)}")

    # ------------------------------------------------------------------------------------------ spiking
    def label_similarity_matrix(labels, dtype=np.float64, *, compat=None):
        L = _t(np.asarray(labels, dtype=dtype))
        Y = L @ L.T
        return _np(Y if "no_label_clamp" in bugs else torch.clamp(Y, max=1.0))

    def _similarity(X, kernel, args):
        G = X @ X.T
        if kernel == "linear":
            r = torch.linalg.vector_norm(X, dim=1)
            S = G / (torch.outer(r, r) + EPS_COSINE)
            # the diagonal in closed form: G_ii / (r_i^2 + eps) can round above 1 and make BCE refuse it
            diag = r * r / (r * r + EPS_COSINE)
            return S - torch.diag(torch.diagonal(S)) + torch.diag(diag)
        if kernel == "polynomial":
            return G ** args[0]
        if kernel == "sigmoid":
            return torch.sigmoid(args[0] * G)
        if kernel == "gaussian":
            sq = torch.diagonal(G)
            D = sq[:, None] + sq[None, :] - 2 * G
            den = args[0] ** 2 if "gaussian_sigma_squared" in bugs else 2 * args[0] ** 2
            S = torch.exp(-D / den)
            return S - torch.diag(torch.diagonal(S)) + torch.eye(S.shape[0], dtype=S.dtype)
        raise ValueError(f"kernel_type: {kernel!r}")

    def _ssl(spikes, labels, kernel_type, loss_type, args):
        N = spikes.shape[0]
        X = spikes.reshape(N, -1)
        S = _similarity(X, kernel_type, args)
        L = torch.as_tensor(np.asarray(labels), dtype=X.dtype)
        Y = L @ L.T
        if "no_label_clamp" not in bugs:
            Y = torch.clamp(Y, max=1.0)
        if loss_type == "mse":
            E = (S - Y) ** 2
        elif loss_type == "l1":
            d = S - Y
            E = torch.where(d >= 0, d, -d) if "l1_sign0_is_one" in bugs else torch.abs(d)
        elif loss_type == "bce":
            if "bce_no_clamp" in bugs:
                E = -(Y * torch.log(S) + (1 - Y) * torch.log(1 - S))
            else:
                E = Fn.binary_cross_entropy(S, Y, reduction="none")
        else:
            raise ValueError(f"loss_type: {loss_type!r}")
        if "loss_sum_not_mean" in bugs:
            return E.sum()
        if "loss_mean_over_rows" in bugs:
            return E.sum() / N
        return E.mean()

    def spike_similar_loss(spikes, labels, kernel_type="linear", loss_type="mse", *args):
        return _np(_ssl(_t(spikes), labels, kernel_type, loss_type, args))

    def spike_similar_loss_vjp(grad_out, spikes, labels, kernel_type="linear", loss_type="mse", *args):
        x = _t(spikes, grad=True)
        loss = _ssl(x, labels, kernel_type, loss_type, args)
        (g,) = torch.autograd.grad(loss, x)
        return _np(g * (1.0 if grad_out is None else float(grad_out)))

    def _ce(x, target, ignore_index):
        tgt = torch.as_tensor(np.asarray(target), dtype=torch.long)
        if "tet_ignore_index_in_mean" in bugs:
            return Fn.cross_entropy(x, tgt, ignore_index=ignore_index, reduction="sum") / tgt.numel()
        return Fn.cross_entropy(x, tgt, ignore_index=ignore_index)

    def _tet(x, target, ignore_index):
        if "tet_is_time_mean" in bugs:
            return _ce(x.mean(0), target, ignore_index)
        return sum(_ce(x[t], target, ignore_index) for t in range(x.shape[0])) / x.shape[0]

    def _grad(fn, x_seq, grad_out):
        x = _t(x_seq, grad=True)
        (g,) = torch.autograd.grad(fn(x), x)
        return _np(g * (1.0 if grad_out is None else float(grad_out)))

    def temporal_efficient_training_cross_entropy(x_seq, target, ignore_index=-100):
        return _np(_tet(_t(x_seq), target, ignore_index))

    def temporal_efficient_training_cross_entropy_vjp(grad_out, x_seq, target, ignore_index=-100):
        return _grad(lambda x: _tet(x, target, ignore_index), x_seq, grad_out)

    def time_mean_cross_entropy(x_seq, target, ignore_index=-100):
        return _np(_ce(_t(x_seq).mean(0), target, ignore_index))

    def time_mean_cross_entropy_vjp(grad_out, x_seq, target, ignore_index=-100):
        return _grad(lambda x: _ce(x.mean(0), target, ignore_index), x_seq, grad_out)

    def _tet_loss(x, target, mean, lam, ignore_index):
        return (1 - lam) * _tet(x, target, ignore_index) + lam * ((x - mean) ** 2).mean()

    def tet_loss(x_seq, target, mean=1.0, tet_lambda=1e-3, ignore_index=-100):
        return _np(_tet_loss(_t(x_seq), target, mean, tet_lambda, ignore_index))

    def tet_loss_vjp(grad_out, x_seq, target, mean=1.0, tet_lambda=1e-3, ignore_index=-100):
        return _grad(lambda x: _tet_loss(x, target, mean, tet_lambda, ignore_index), x_seq, grad_out)

    spiking = SimpleNamespace(**{k: v for k, v in locals().items() if not k.startswith("_") and callable(v)
                                 and k not in ("make",)})

    # ------------------------------------------------------------------------------------------ hopfield
    class Retrieval(NamedTuple):
        similarities: np.ndarray
        memory_weights: np.ndarray
        outputs: np.ndarray

    def _softmax(Z):
        if "softmax_no_shift" in bugs:
            E = torch.exp(Z)
            return E / E.sum(dim=1, keepdim=True)
        return torch.softmax(Z, dim=1)

    def _retrieve(X, W, beta):
        one = X.ndim == 1
        X2 = X.reshape(1, -1) if one else X
        Z = X2 @ W.T if "retrieve_transposed" in bugs else X2 @ W
        A = _softmax(beta * Z)
        out = A @ W if "retrieve_transposed" in bugs else A @ W.T
        S = Z - Z.max(dim=1, keepdim=True).values
        if one:
            return S[0], A[0], out[0]
        return S, A, out

    def retrieve(X, W, beta):
        return Retrieval(*(_np(t) for t in _retrieve(_t(X), _t(W), beta)))

    def retrieve_vjp(grad_out, X, W, beta):
        x, w = _t(X, grad=True), _t(W, grad=True)
        b = torch.tensor(float(beta), dtype=x.dtype, requires_grad=True)
        out = _retrieve(x, w, b)[2]
        gx, gw, gb = torch.autograd.grad(out, (x, w, b), grad_outputs=_t(grad_out))
        return _np(gx), _np(gw), float(gb)

    def _energy(X, W, beta):
        X2 = X.reshape(1, -1) if X.ndim == 1 else X
        H = W.shape[1]
        lse = torch.logsumexp(beta * (X2 @ W), dim=1) / beta
        norms = (W * W).sum(0)
        m2 = norms[torch.argmax(norms)]  # first maximum at ties
        e = -lse + 0.5 * (X2 * X2).sum(1) + 0.5 * m2
        if "energy_missing_logH" not in bugs:
            e = e + math.log(H) / beta
        return e

    def energy(X, W, beta):
        e = _np(_energy(_t(X), _t(W), beta))
        return float(e[0]) if np.ndim(X) == 1 else e

    def energy_vjp(grad_out, X, W, beta):
        x, w = _t(X, grad=True), _t(W, grad=True)
        b = torch.tensor(float(beta), dtype=torch.float64, requires_grad=True)
        e = _energy(x, w, b.to(x.dtype))
        g = torch.ones_like(e) if grad_out is None else _t(grad_out).to(e.dtype).reshape(e.shape)
        gx, gw, gb = torch.autograd.grad(e, (x, w, b), grad_outputs=g)
        return _np(gx), _np(gw), float(gb)

    def delta_update(X, X_hat, A):
        X, Xh, A = _t(X), _t(X_hat), _t(A)
        dW = (X - Xh).T @ A
        return _np(dW if "delta_sum_not_mean" in bugs else dW / X.shape[0])

    hopfield = SimpleNamespace(retrieve=retrieve, retrieve_vjp=retrieve_vjp, energy=energy, energy_vjp=energy_vjp,
                               delta_update=delta_update)

    # ------------------------------------------------------------------------------------ regularization
    def _ord(p):
        return p if isinstance(p, str) else float(p)

    def _norm(x, p, mode):
        if mode == "entrywise":
            return torch.linalg.vector_norm(x.reshape(-1), ord=_ord(p))
        if x.ndim == 2 and p == 1 and "lp_matrix_entrywise" in bugs:
            return x.abs().sum()
        return torch.linalg.norm(x, ord=_ord(p))

    def lp_norm(x, p=1, *, mode="neurotorch"):
        return _np(_norm(_t(x), p, mode))

    def lp_norm_vjp(grad_out, x, p=1, *, mode="neurotorch"):
        return _grad(lambda t: _norm(t, p, mode), x, grad_out)

    def _dale_sign(R):
        return torch.where(R >= 0, 1.0, -1.0).to(R.dtype) if "dale_sign0_is_one" in bugs else torch.sign(R)

    def dale_law_l2(w, reference, alpha=0.8):
        W, R = _t(w), _t(reference)
        return _np(alpha * (W * W).sum() - (1 - alpha) * (W * _dale_sign(R)).sum())

    def dale_law_l2_vjp(grad_out, w, reference, alpha=0.8):
        W, R = _t(w), _t(reference)
        k = 1.0 if "dale_vjp_missing_2" in bugs else 2.0
        g = k * alpha * W - (1 - alpha) * _dale_sign(R)
        return _np(g * (1.0 if grad_out is None else float(grad_out)))

    def _exc(W, t, sign_func):
        if sign_func == "sign":
            phi = torch.sign(W)
        elif "softsign_without_abs" in bugs:
            phi = W / (1 + W)
        else:
            phi = W / (1 + W.abs())
        return (phi.mean() + 1 - 2 * t).abs()

    def exc_ratio_loss(w, exc_target_ratio=0.8, *, sign_func="softsign"):
        return _np(_exc(_t(w), exc_target_ratio, sign_func))

    def exc_ratio_loss_vjp(grad_out, w, exc_target_ratio=0.8, *, sign_func="softsign"):
        return _grad(lambda t: _exc(t, exc_target_ratio, sign_func), w, grad_out)

    def weights_distance(w, reference, p=1, *, mode="neurotorch"):
        return _np(_norm((_t(w) - _t(reference)).abs(), p, mode))

    def weights_distance_vjp(grad_out, w, reference, p=1, *, mode="neurotorch"):
        R = _t(reference)
        g = _grad(lambda t: _norm((t - R).abs(), p, mode), w, grad_out)
        return g, -g

    regularization = SimpleNamespace(lp_norm=lp_norm, lp_norm_vjp=lp_norm_vjp, dale_law_l2=dale_law_l2,
                                     dale_law_l2_vjp=dale_law_l2_vjp, exc_ratio_loss=exc_ratio_loss,
                                     exc_ratio_loss_vjp=exc_ratio_loss_vjp, weights_distance=weights_distance,
                                     weights_distance_vjp=weights_distance_vjp)
    return SimpleNamespace(BACKEND_NAME=f"torch port{' with ' + ','.join(sorted(bugs)) if bugs else ''}",
                           DEVICE="cpu (torch)", spiking=spiking, hopfield=hopfield, regularization=regularization)


_default = make([b for b in os.environ.get("REFNSM_TORCH_PORT_BUG", "").split(",") if b])
BACKEND_NAME, DEVICE = _default.BACKEND_NAME, _default.DEVICE
spiking, hopfield, regularization = _default.spiking, _default.hopfield, _default.regularization
