"""Naive twins of the regularizers: torch.linalg.norm's table, Dale's L2 and the excitatory ratio.

Short, slow and obviously correct: every fast path (the Numba kernels and their CUDA twins) is tested against them
(STUMPY's ``tests/naive.py``).
"""

import numpy as np


def naive_norm(x, p, mode="neurotorch"):
    """np.linalg.norm has torch.linalg.norm's 1-D/2-D semantics; an independent implementation."""
    x = np.asarray(x, dtype=np.float64)
    if mode == "entrywise":
        return np.linalg.norm(x.reshape(-1), 2 if p == "fro" else p)
    return np.linalg.norm(x, p)


def naive_dale_l2(W, Rf, alpha):
    return np.trace(W.T @ (alpha * W - (1 - alpha) * np.sign(Rf)))


def naive_exc(W, t, soft=True):
    phi = W / (1 + np.abs(W)) if soft else np.sign(W)
    return abs(phi.mean() + 1 - 2 * t)
