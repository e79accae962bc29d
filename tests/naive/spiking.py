"""Naive twins of the spiking losses: the kernels, the similarity matrix, the loss and the cross-entropy.

Short, slow and obviously correct: every fast path (the Numba kernels and their CUDA twins) is tested against them
(STUMPY's ``tests/naive.py``).
"""

import numpy as np


def naive_kernel(x, y, kernel, *a):
    G = x @ y.T
    if kernel == "linear":
        return G
    if kernel == "polynomial":
        return G ** a[0]
    if kernel == "sigmoid":
        return 1 / (1 + np.exp(-a[0] * G))
    d2 = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)  # the distance formed as a difference
    return np.exp(-d2 / (2 * a[0] ** 2))


def naive_similarity(X, kernel, *a):
    X = X.reshape(len(X), -1)
    S = naive_kernel(X, X, kernel, *a)
    if kernel == "linear":
        r = np.linalg.norm(X, axis=1)
        S = S / (np.outer(r, r) + 1e-8)
    return S


def naive_loss(X, labels, kernel, loss, *a):
    S = naive_similarity(X, kernel, *a)
    Y = np.minimum(labels @ labels.T, 1.0)
    if loss == "mse":
        return np.mean((S - Y) ** 2)
    if loss == "l1":
        return np.mean(np.abs(S - Y))
    with np.errstate(divide="ignore"):  # log(0) = -inf is clamped at -100, as torch does
        return np.mean(-(Y * np.maximum(np.log(S), -100) + (1 - Y) * np.maximum(np.log1p(-S), -100)))


def naive_ce(logits, target):  # logits [N, C], target [N]
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return -logp[np.arange(len(target)), target].mean()
