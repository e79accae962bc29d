"""Naive twins of the classical and dense binary Hopfield updates: one unit at a time, in the given order.

Short, slow and obviously correct: every fast path (the Numba kernels and their CUDA twins) is tested against them
(STUMPY's ``tests/naive.py``).
"""

import numpy as np


def naive_classical_async(s, W, theta, orders):
    s = s.copy()
    for order in orders:
        changed = False
        for i in order:
            h = W[i] @ s - theta[i]
            new = 1.0 if h > 0 else (-1.0 if h < 0 else s[i])
            changed |= new != s[i]
            s[i] = new
        if not changed:
            break
    return s


def F(x, kind, n):
    if kind == "poly":
        return x**n
    if kind == "rectified":
        return np.where(x > 0, x, 0.0) ** n
    return np.exp(x)


def naive_dense_async(s, Xi, kind, n, orders):
    s = s.copy()
    for order in orders:
        changed = False
        for i in order:
            r = Xi.T @ s - Xi[i] * s[i]
            diff = np.sum(F(r + Xi[i], kind, n) - F(r - Xi[i], kind, n))
            new = 1.0 if diff > 0 else (-1.0 if diff < 0 else s[i])
            changed |= new != s[i]
            s[i] = new
        if not changed:
            break
    return s
