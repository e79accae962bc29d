"""Naive twins of the modern Hopfield kernels: retrieval and the two energies, as the formulas read.

Short, slow and obviously correct: every fast path (the Numba kernels and their CUDA twins) is tested against them
(STUMPY's ``tests/naive.py``).
"""

import numpy as np
from scipy.special import logsumexp, softmax


def naive_retrieve(X, W, beta):
    Z = X @ W
    S = Z - Z.max(axis=1, keepdims=True)
    A = softmax(beta * Z, axis=1)
    return S, A, A @ W.T


def naive_energy(X, W, beta):
    H = W.shape[1]
    return (-logsumexp(beta * (X @ W), axis=1) / beta + 0.5 * np.sum(X * X, axis=1) + np.log(H) / beta
            + 0.5 * np.max(np.sum(W * W, axis=0)))


def naive_energy_ngclearn(X, W, beta):
    # closed form of ngclearn's reading (refnsm.hopfield.energy's docstring)
    Z = X @ W
    _, _, Xh = naive_retrieve(X, W, beta)
    H = W.shape[1]
    return (-logsumexp(beta * Z, axis=1) / beta + Z.max(axis=1) + 0.5 * np.sum(X * Xh, axis=1)
            + np.log(H) / beta + 0.5 * np.max(np.sum(W * W, axis=1)))
