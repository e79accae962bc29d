"""Naive twins of the similarity circuits: the convolution as loops, pynsm's loss, the fast dynamics.

Short, slow and obviously correct: every fast path (the Numba kernels and their CUDA twins) is tested against them
(STUMPY's ``tests/naive.py``).
"""

import numpy as np


def naive_conv2d(x, W, b, stride, padding, dilation):
    """Direct six-fold loop of u[b,o,h,w] = beta[o] + sum W[o,c,i,j] x_pad[b,c,s h + d i, s w + d j]."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    B, C, H, Wd = x.shape
    O, _, kh, kw = W.shape
    xp = np.zeros((B, C, H + 2 * ph, Wd + 2 * pw))
    xp[:, :, ph:ph + H, pw:pw + Wd] = x
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (Wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    u = np.zeros((B, O, Ho, Wo))
    for h in range(Ho):
        for w in range(Wo):
            patch = xp[:, :, h * sh:h * sh + dh * (kh - 1) + 1:dh, w * sw:w * sw + dw * (kw - 1) + 1:dw]
            u[:, :, h, w] = np.einsum("bcij,ocij->bo", patch, W)
    if b is not None:
        u += b[None, :, None, None]
    return u


def naive_loss(M, us, y, regs, params, broadcast=None):
    """The multi-encoder loss of refnsm.similarity.MultiSimilarityMatching written with einsum: us are the active
    encodings (already broadcast), params per encoder."""
    m, N = y.shape[1], y.size
    My = np.einsum("ij,bj...->bi...", M, y)
    b = sum(us)
    L = (2 * np.sum(y * My) - 4 * np.sum(y * b)) / N - np.sum(M**2) / m
    for u, r, ps in zip(us, regs, params):
        if r == "whiten":
            L += 2 * np.mean(u**2)
        elif r == "weight":
            L += sum(np.sum(p**2) for p in ps) * 2.0 / m
    return L


def naive_dynamics(M, b, eta, relu, n_iter):
    y = np.zeros_like(b)
    for _ in range(n_iter):
        y = y - eta * (np.einsum("ij,bj...->bi...", M, y) - b)
        if relu:
            y = np.maximum(y, 0)
    return y
