r"""Modern (continuous) Hopfield memory: retrieval, energy and its gradients, and the two local plasticity rules.

Notation (the same as :mod:`refnsm.hopfield`): a batch of probes :math:`X \in \mathbb{R}^{B\times D}` (one probe
per row; a single probe may be passed as a 1-D array of length D), the memory matrix
:math:`W \in \mathbb{R}^{D\times H}` whose column :math:`w_j` is memory :math:`j`, the inverse temperature
:math:`\beta > 0`, and :math:`\mathrm{lse}_\beta(z) = \beta^{-1}\log\sum_j e^{\beta z_j}`.

Every function validates its arguments before any work and never writes to them.  float32 inputs (X and W both
float32) are computed and returned in float32; anything else in float64.

GPU: :func:`retrieve`, :func:`iterate`, :func:`energy`, :func:`delta_update`, :func:`contrastive_update` and
:func:`evolve_step` take ``device="cuda"`` to run their CUDA twin (:mod:`refnsm.cuda.hopfield`, the same math and
the same validation); inputs may be NumPy arrays (copied over, results returned as NumPy) or numba device arrays
(kept on the device).  See ``docs/cuda.md``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _checks as C
from . import _kernels as K

__all__ = [
    "Retrieval",
    "IterateResult",
    "retrieve",
    "retrieve_vjp",
    "iterate",
    "energy",
    "energy_vjp",
    "delta_update",
    "contrastive_update",
    "evolve_step",
    "load_patterns",
    "COMPAT",
    "DEVICES",
]

COMPAT = (None, "ngclearn")
DEVICES = C.DEVICES


class Retrieval(NamedTuple):
    """The three quantities of one retrieval step (names of ngclearn's compartments).

    Attributes
    ----------
    similarities : ndarray (B, H)
        Max-shifted raw scores :math:`XW - \\max_j (XW)_{bj}` (each row's max is 0; before the factor beta).
    memory_weights : ndarray (B, H)
        :math:`A = \\mathrm{softmax}(\\beta X W)`, row-wise.
    outputs : ndarray (B, D)
        The retrieved probes :math:`\\hat X = A W^\\top`.
    """

    similarities: np.ndarray
    memory_weights: np.ndarray
    outputs: np.ndarray


class IterateResult(NamedTuple):
    """Result of :func:`iterate`: the final state, the number of updates and the size of the last one."""

    outputs: np.ndarray
    n_iter: int
    last_change: float
    converged: bool


# ----------------------------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------------------------


# The validators take the array converter (``conv``, default :func:`refnsm._checks.as_float_array`) and the dtype
# rule (``dtype_of``) as arguments, so that refnsm.cuda.hopfield runs exactly these checks, with these messages, on
# device arrays (its converter validates a device array from its metadata and a device NaN/Inf count).


def _cuda_twin(device, name):
    """The CUDA twin of a public function when ``device="cuda"`` (imported only then), else None."""
    return C.cuda_twin(device, "hopfield", name)


def _memory(W, name="W", dtype=None, conv=C.as_float_array):
    W = conv(W, name, ndim=2, shape_hint="[D, H] (column j is memory j)", dtype=dtype, allow_empty=False)
    return W


def _probes(X, name, D, dtype, conv=C.as_float_array):
    """Return (X as 2-D (B, D), was_1d)."""
    X = conv(X, name, dtype=dtype, shape_hint="[B, D] or [D]")
    if X.ndim not in (1, 2):
        raise ValueError(f"{name}: expected 1 or 2 dimensions [B, D] or [D], got shape {X.shape}")
    was_1d = X.ndim == 1
    X2 = X.reshape(1, X.shape[0]) if was_1d else X
    if X2.shape[1] != D:
        raise ValueError(
            f"{name}: expected probe width D={D} (the number of rows of W) along the last axis, "
            f"got shape {X.shape}"
        )
    if X2.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one probe (B >= 1), got shape {X.shape}")
    return X2, was_1d


def _prep(X, W, xname="X", wname="W", conv=C.as_float_array, dtype_of=C.result_float_dtype):
    dtype = dtype_of(X, W)
    W = _memory(W, wname, dtype, conv)
    X2, was_1d = _probes(X, xname, W.shape[0], dtype, conv)
    return X2, W, was_1d


def _beta(beta, name="beta"):
    return C.check_real(beta, name, positive=True)


def _compat(compat):
    if compat not in COMPAT:
        raise ValueError(f"compat: expected one of None, 'ngclearn'; got {C._describe(compat)}")
    return compat


def _iterate_args(tol, max_iter):
    return C.check_real(tol, "tol", nonnegative=True), C.check_int(max_iter, "max_iter", minimum=1)


def _retrieve_raw(X, W, beta):
    """Kernel call on validated arrays; returns S, A, Xhat, rowmax, lse."""
    B, H = X.shape[0], W.shape[1]
    S = np.empty((B, H), dtype=X.dtype)
    A = np.empty((B, H), dtype=X.dtype)
    Xhat = np.empty_like(X)
    rowmax = np.empty(B, dtype=np.float64)
    lse = np.empty(B, dtype=np.float64)
    K.retrieve_into(X, W, beta, S, A, Xhat, rowmax, lse)
    return S, A, Xhat, rowmax, lse


def _squeeze(arr, was_1d):
    return arr[0] if was_1d else arr


# ----------------------------------------------------------------------------------------------------------
# retrieval
# ----------------------------------------------------------------------------------------------------------


@C.finite_result
def retrieve(X, W, beta, *, device="cpu") -> Retrieval:
    r"""One retrieval (update) step of the modern Hopfield network, for a batch of probes.

    .. math::

        S = XW - \max_j (XW)_{\cdot j}, \qquad A = \mathrm{softmax}(\beta S) = \mathrm{softmax}(\beta X W),
        \qquad \hat X = A W^\top,

    i.e. per probe :math:`\hat x = W\,\mathrm{softmax}(\beta W^\top x)`, a convex combination of the memories.
    This is exactly one unit-step gradient-descent (and CCCP) step on the energy :func:`energy`:
    :math:`\hat x = x - \nabla_x E(x)`.

    Parameters
    ----------
    X : array_like, (B, D) or (D,)
        Probes, one per row.
    W : array_like, (D, H)
        Memory matrix, column j is memory j.
    beta : float > 0
        Inverse temperature.
    device : {"cpu", "cuda"}
        ``"cuda"`` runs the CUDA twin :func:`refnsm.cuda.hopfield.retrieve` (NumPy or device arrays).

    Returns
    -------
    Retrieval
        ``(similarities, memory_weights, outputs)``; 1-D when ``X`` was 1-D.
    """
    twin = _cuda_twin(device, "retrieve")
    if twin is not None:
        return twin(X, W, beta)
    X2, W, was_1d = _prep(X, W)
    beta = _beta(beta)
    S, A, Xhat, _, _ = _retrieve_raw(X2, W, beta)
    return Retrieval(_squeeze(S, was_1d), _squeeze(A, was_1d), _squeeze(Xhat, was_1d))


@C.finite_result
def retrieve_vjp(grad_out, X, W, beta):
    r"""VJP of the retrieved probes :math:`\hat X = \mathrm{softmax}(\beta XW)\,W^\top` in X, W and beta.

    With :math:`\bar{\hat X}` = ``grad_out`` (B, D), :math:`\bar A = \bar{\hat X} W` and
    :math:`T = A \odot (\bar A - \mathrm{rowsum}(A \odot \bar A)\,\mathbf 1^\top)` (the softmax VJP):

    .. math::

        \bar X = \beta\, T W^\top, \qquad
        \bar W = \bar{\hat X}^\top A + \beta\, X^\top T, \qquad
        \bar\beta = \sum_{b,j} (XW)_{bj} T_{bj}.

    (:math:`\sum_j T_{bj} = 0`, so the shifted scores :math:`S` give the same :math:`\bar\beta`.)

    Returns
    -------
    (gX, gW, gbeta) : ndarray, ndarray, float
        ``gX`` has the shape of ``X`` (1-D when X was 1-D).
    """
    X2, W, was_1d = _prep(X, W)
    beta = _beta(beta)
    G = C.as_float_array(grad_out, "grad_out", dtype=X2.dtype)
    expected = (X2.shape[1],) if was_1d else X2.shape
    if G.shape != expected:
        raise ValueError(f"grad_out: expected the shape of the outputs {expected}, got shape {G.shape}")
    G = G.reshape(X2.shape)
    S, A, _, _, _ = _retrieve_raw(X2, W, beta)
    Abar = G @ W
    T = A * (Abar - np.sum(A * Abar, axis=1, keepdims=True))
    gX = beta * (T @ W.T)
    gW = G.T @ A + beta * (X2.T @ T)
    gbeta = float(np.sum(S.astype(np.float64) * T))
    return _squeeze(gX, was_1d), gW, gbeta


@C.finite_result
def iterate(X, W, beta, *, tol: float = 1e-10, max_iter: int = 100, device="cpu") -> IterateResult:
    r"""Iterate the retrieval map :math:`x \leftarrow W\,\mathrm{softmax}(\beta W^\top x)` to a fixed point.

    Each step is a CCCP step, so the energy never increases:
    :math:`E(x^{t+1}) \le E(x^t) - \tfrac12\|x^{t+1} - x^t\|^2` (Yuille & Rangarajan 2003; Ramsauer et al. 2020).
    Stops when :math:`\max_{b,i} |x^{t+1}_{bi} - x^t_{bi}| \le` ``tol`` or after ``max_iter`` updates.
    The Numba kernel allocates its buffers once; nothing is allocated inside the loop.  ``device="cuda"`` runs
    the CUDA twin (the same stopping rule; one device-to-host copy of the update's max-norm per iteration).

    Returns
    -------
    IterateResult
        ``outputs`` (shape of X), ``n_iter`` updates applied, ``last_change`` (max-norm of the last update) and
        ``converged`` (``last_change <= tol``).
    """
    twin = _cuda_twin(device, "iterate")
    if twin is not None:
        return twin(X, W, beta, tol=tol, max_iter=max_iter)
    X2, W, was_1d = _prep(X, W)
    beta = _beta(beta)
    tol, max_iter = _iterate_args(tol, max_iter)
    B, H = X2.shape[0], W.shape[1]
    out = np.empty_like(X2)
    S = np.empty((B, H), dtype=X2.dtype)
    A = np.empty((B, H), dtype=X2.dtype)
    Xhat = np.empty_like(X2)
    rowmax = np.empty(B)
    lse = np.empty(B)
    n, change = K.iterate_into(X2, W, beta, tol, max_iter, out, S, A, Xhat, rowmax, lse)
    return IterateResult(_squeeze(out, was_1d), int(n), float(change), bool(change <= tol))


# ----------------------------------------------------------------------------------------------------------
# energy
# ----------------------------------------------------------------------------------------------------------


@C.finite_result
def energy(X, W, beta, *, compat=None, device="cpu"):
    r"""Hopfield energy of each probe.

    Default (Ramsauer et al. 2020, "Hopfield Networks is All You Need"):

    .. math::

        E(x; W, \beta) = -\mathrm{lse}_\beta(W^\top x) + \tfrac12 x^\top x + \beta^{-1}\log H + \tfrac12 M^2,
        \qquad M = \max_j \|w_j\|,

    which satisfies :math:`E \ge \tfrac12(\|x\| - M)^2 \ge 0` and decreases under retrieval.

    ``compat="ngclearn"`` returns the per-probe value that ngclearn's ``HopfieldSynapse`` averages into its
    ``energy`` compartment (evaluated at the probe, before the update):

    .. math::

        E_\mathrm{ngc}(x) = -\beta^{-1}\log\sum_j e^{\beta (z_j - \max z)} + \tfrac12 x^\top \hat x
        + \beta^{-1}\log H + \tfrac12 \max_i \|W_{i,:}\|^2, \qquad z = W^\top x,\ \hat x = W\,\mathrm{softmax}(\beta z),

    i.e. the max removed for stability is never added back, the quadratic uses the output :math:`\hat x`, and the
    norm is taken over the rows of W (input dimensions) instead of the memories.  It is not monotone under
    retrieval and can be negative.

    ``device="cuda"`` runs the CUDA twin :func:`refnsm.cuda.hopfield.energy`.

    Returns
    -------
    ndarray (B,) or float
        One energy per probe (a float when X is 1-D).
    """
    twin = _cuda_twin(device, "energy")
    if twin is not None:
        return twin(X, W, beta, compat=compat)
    X2, W, was_1d = _prep(X, W)
    beta = _beta(beta)
    compat = _compat(compat)
    _, _, Xhat, rowmax, lse = _retrieve_raw(X2, W, beta)
    variant = 1 if compat == "ngclearn" else 0
    m2, _ = K.row_sq_norm_max(W, 1 if variant else 0)
    out = np.empty(X2.shape[0], dtype=np.float64)
    K.energy_rows(X2, Xhat, rowmax, lse, beta, W.shape[1], 0.5 * m2, variant, out)
    out = out.astype(X2.dtype)
    return float(out[0]) if was_1d else out


@C.finite_result
def energy_vjp(grad_out, X, W, beta):
    r"""VJP of the Ramsauer energy :func:`energy` (per probe) in X, W and beta.

    With :math:`p_b = \mathrm{softmax}(\beta W^\top x_b)`, :math:`\hat x_b = W p_b`,
    :math:`j^* = \arg\max_j \|w_j\|` (the first one at ties: a valid subgradient of :math:`\tfrac12 M^2`) and
    :math:`g_b` = ``grad_out[b]``:

    .. math::

        \bar x_b = g_b (x_b - \hat x_b), \qquad
        \bar W = -\sum_b g_b\, x_b p_b^\top + \Big(\sum_b g_b\Big) w_{j^*} e_{j^*}^\top, \qquad
        \bar\beta = \sum_b g_b\, \beta^{-2}\big(\mathrm{Ent}(p_b) - \log H\big),

    where :math:`\mathrm{Ent}(p) = -\sum_j p_j \log p_j` (computed as
    :math:`\log\sum_j e^{\beta s_j} - \beta\, p^\top s` on the shifted scores, so no :math:`\log 0` occurs).

    Parameters
    ----------
    grad_out : array_like (B,), float, or None
        Upstream gradient of each probe's energy (None means 1 for every probe).

    Returns
    -------
    (gX, gW, gbeta) : ndarray, ndarray, float
    """
    X2, W, was_1d = _prep(X, W)
    beta = _beta(beta)
    B, H = X2.shape[0], W.shape[1]
    if grad_out is None:
        g = np.ones(B)
    else:
        g = C.as_float_array(grad_out, "grad_out", dtype=np.float64)
        if g.size != B or (g.ndim > 1) or (not was_1d and g.ndim != 1):
            raise ValueError(f"grad_out: expected one value per probe, shape ({B},), got shape {g.shape}")
        g = g.reshape(B)
    S, A, Xhat, _, lse = _retrieve_raw(X2, W, beta)
    gl = g.astype(X2.dtype)
    gX = gl[:, None] * (X2 - Xhat)
    gW = -(X2.T @ (gl[:, None] * A))
    _, jstar = K.row_sq_norm_max(W, 0)
    gW[:, jstar] += np.sum(gl) * W[:, jstar]
    gbeta = float(np.sum(g * _energy_dbeta(S, A, lse, beta, H)))
    return _squeeze(gX, was_1d), gW, gbeta


#: below this value of beta * max_j |s_j - mean(s)| the beta-gradient of the energy is taken from its cumulant series
#: (the direct form (Ent - log H) / beta^2 cancels: relative error ~1e-16 / x^2, the truncated series' ~x^4)
_DBETA_SERIES_BELOW = 1e-3


def _energy_dbeta(S, A, lse, beta, H):
    r""":math:`\partial E_b/\partialeta = eta^{-2}(\mathrm{Ent}(p_b) - \log H)` per probe, finite for every
    :math:`eta > 0`.

    With :math:`f(eta) = eta^{-1}\lograc1H\sum_j e^{eta s_j} = \sum_{n\ge1}\kappa_neta^{n-1}/n!` (the
    cumulants :math:`\kappa_n` of the scores under the uniform law), :math:`\partial E/\partialeta = -f'(eta)
    = -(\kappa_2/2 + \kappa_3eta/3 + \kappa_4eta^2/8 + \kappa_5eta^3/30 + \dots)`; rows where
    :math:`x = eta\max_j|s_j-ar s| <` ``_DBETA_SERIES_BELOW`` use that series (where the direct form would be
    0/0 at :math:`eta = 10^{-300}`), the others the direct form with :math:`eta^{-2}` applied as two divisions
    (:math:`eta^2` overflows at :math:`eta = 10^{300}`)."""
    S64 = S.astype(np.float64)
    ent = lse - beta * np.sum(A.astype(np.float64) * S64, axis=1)
    out = (ent - np.log(H)) / beta / beta
    c = S64 - S64.mean(axis=1, keepdims=True)
    small = beta * np.max(np.abs(c), axis=1, initial=0.0) < _DBETA_SERIES_BELOW
    if small.any():
        cs = c[small]
        m2, m3, m4, m5 = (np.mean(cs ** k, axis=1) for k in (2, 3, 4, 5))
        k4 = m4 - 3.0 * m2 * m2
        k5 = m5 - 10.0 * m3 * m2
        out[small] = -(m2 / 2.0 + beta * (m3 / 3.0 + beta * (k4 / 8.0 + beta * k5 / 30.0)))
    return out


# ----------------------------------------------------------------------------------------------------------
# plasticity
# ----------------------------------------------------------------------------------------------------------


def _batch_triplet(X, X_hat, A, W=None, conv=C.as_float_array, dtype_of=C.result_float_dtype):
    arrays = [X, X_hat, A] + ([W] if W is not None else [])
    dtype = dtype_of(*arrays)
    X = conv(X, "X", ndim=2, shape_hint="[B, D]", dtype=dtype, allow_empty=False)
    X_hat = conv(X_hat, "X_hat", ndim=2, shape_hint="[B, D]", dtype=dtype)
    C.check_shape(X_hat, "X_hat", X.shape, "the shape of X")
    A = conv(A, "A", ndim=2, shape_hint="[B, H]", dtype=dtype, allow_empty=False)
    C.check_same_dim(X, "X", 0, A, "A", 0, "batch size")
    if W is not None:
        W = _memory(W, "W", dtype, conv)
        C.check_shape(W, "W", (X.shape[1], A.shape[1]), "(D, H) from X and A")
    return X, X_hat, A, W


def _negative_beta(beta, neg_beta, compat):
    """Validate beta, compat and neg_beta of the contrastive rule; returns the negative-phase beta."""
    beta = _beta(beta)
    compat = _compat(compat)
    if neg_beta is not None and compat is not None:
        raise ValueError("neg_beta: pass either neg_beta or compat='ngclearn' (which fixes neg_beta=1), not both")
    return 1.0 if compat == "ngclearn" else (beta if neg_beta is None else _beta(neg_beta, "neg_beta"))


def _evolve_args(W, dW, eta, reg_lambda, l1_lambda, mask, conv=C.as_float_array, dtype_of=C.result_float_dtype):
    """Validated (W, dW, eta, reg_lambda, l1_lambda, mask or None) of :func:`evolve_step`."""
    dtype = dtype_of(W, dW)
    W = _memory(W, "W", dtype, conv)
    dW = conv(dW, "dW", ndim=2, dtype=dtype)
    C.check_shape(dW, "dW", W.shape, "the shape of W")
    eta = C.check_real(eta, "eta")
    reg_lambda = C.check_real(reg_lambda, "reg_lambda", nonnegative=True)
    l1_lambda = C.check_real(l1_lambda, "l1_lambda", nonnegative=True)
    if mask is not None:
        mask = conv(mask, "mask", ndim=2, dtype=dtype)
        C.check_shape(mask, "mask", W.shape, "the shape of W")
    return W, dW, eta, reg_lambda, l1_lambda, mask


@C.finite_result
def delta_update(X, X_hat, A, *, device="cpu"):
    r"""Delta (prescribed-error) rule of ngclearn's HopfieldSynapse, batch-averaged:

    .. math::

        \Delta W = \frac1B (X - \hat X)^\top A .

    It is exactly the negative gradient of the reconstruction loss
    :math:`L(W) = \frac{1}{2B}\|X - \mathrm{sg}(A) W^\top\|_F^2` with the softmax held fixed
    (:math:`\mathrm{sg}` = stop-gradient): column j moves towards the residuals of the probes it explains.

    Parameters
    ----------
    X : (B, D) probes; X_hat : (B, D) retrieved probes; A : (B, H) memory weights, all from one retrieval.
    device : {"cpu", "cuda"}
        ``"cuda"`` runs the CUDA twin :func:`refnsm.cuda.hopfield.delta_update`.

    Returns
    -------
    dW : ndarray (D, H)
    """
    twin = _cuda_twin(device, "delta_update")
    if twin is not None:
        return twin(X, X_hat, A)
    X, X_hat, A, _ = _batch_triplet(X, X_hat, A)
    B, D = X.shape
    dW = np.empty((D, A.shape[1]), dtype=X.dtype)
    K.delta_into(X, X_hat, A, np.empty_like(X), dW)
    return dW


@C.finite_result
def contrastive_update(X, X_hat, A, W, beta, *, neg_beta=None, compat=None, device="cpu"):
    r"""Contrastive Hebbian rule (Movellan 1991 style), batch-averaged:

    .. math::

        \Delta W = \frac1B \big(X^\top A - \hat X^\top \hat A\big), \qquad
        \hat A = \mathrm{softmax}(\beta' \hat X W),

    the positive (clamped) phase at the probes minus the negative (free) phase at the one-step reconstructions.
    It equals :math:`-\nabla_W\big[\bar E_\beta(X; W) - \bar E_{\beta'}(\mathrm{sg}(\hat X); W)\big]`, the gradient
    that lowers the energy at the data and raises it at the reconstructions (bars are batch means).

    ``neg_beta`` (:math:`\beta'`) defaults to ``beta``.  ``compat="ngclearn"`` uses :math:`\beta' = 1`: ngclearn
    computes ``softmax(S - max(S) * beta)``, where by operator precedence beta multiplies only the max, which
    softmax's shift invariance removes.  ``device="cuda"`` runs the CUDA twin
    :func:`refnsm.cuda.hopfield.contrastive_update`.

    Returns
    -------
    dW : ndarray (D, H)
    """
    twin = _cuda_twin(device, "contrastive_update")
    if twin is not None:
        return twin(X, X_hat, A, W, beta, neg_beta=neg_beta, compat=compat)
    if W is None:  # _batch_triplet reads None as "no W" (delta_update); here W is required
        raise TypeError("W: expected the memory matrix (D, H), got None")
    X, X_hat, A, W = _batch_triplet(X, X_hat, A, W)
    nb = _negative_beta(beta, neg_beta, compat)
    B, D = X.shape
    H = W.shape[1]
    dW = np.empty((D, H), dtype=X.dtype)
    K.contrastive_into(X, X_hat, A, W, nb, np.empty((B, H), X.dtype), np.empty((B, H), X.dtype),
                       np.empty(B), np.empty(B), np.empty((D, H), X.dtype), dW)
    return dW


@C.finite_result
def evolve_step(W, dW, eta, reg_lambda=0.0, l1_lambda=0.0, mask=None, *, device="cpu"):
    r"""Apply an update the way ngclearn's ``evolve`` does:

    .. math::

        W \leftarrow W + \eta\,\Delta W - \lambda W - \lambda_1 \mathrm{sign}(W)\quad(\text{then } W \leftarrow W \odot M
        \text{ if a mask is given}).

    The decay :math:`\lambda` = ``reg_lambda`` is *not* multiplied by :math:`\eta`.  Returns a new array.
    ``device="cuda"`` runs the CUDA twin :func:`refnsm.cuda.hopfield.evolve_step`.
    """
    twin = _cuda_twin(device, "evolve_step")
    if twin is not None:
        return twin(W, dW, eta, reg_lambda, l1_lambda, mask)
    W, dW, eta, reg_lambda, l1_lambda, M = _evolve_args(W, dW, eta, reg_lambda, l1_lambda, mask)
    use_mask = M is not None
    if not use_mask:
        M = np.empty((0, 0), dtype=W.dtype)
    out = np.empty_like(W)
    K.evolve_into(W, dW, eta, reg_lambda, l1_lambda, M, use_mask, out)
    return out


@C.finite_result
def load_patterns(W0, patterns, *, perm=None, rng=None):
    r"""Store patterns in a memory matrix the way ngclearn's ``initial_patterns`` does.

    With :math:`P` patterns (the **columns** of ``patterns``, shape (D, P)) and :math:`H` slots:

    * :math:`P = H`: the memory is exactly ``patterns``;
    * :math:`P < H`: concatenate ``[patterns, W0[:, :H-P]]`` and permute the columns,
      ``W[:, j] = concat[:, perm[j]]``, so pattern ``p`` lands in the slot j with ``perm[j] == p``;
      ``perm`` is a permutation of ``range(H)`` (default: drawn from ``rng``);
    * :math:`P > H`: an error (ngclearn silently resizes W to (D, P)).

    Returns a new (D, H) array.
    """
    W0 = _memory(W0, "W0")
    D, H = W0.shape
    P_ = _check_patterns(patterns, D, H, W0.dtype)
    gen = C.resolve_rng(rng)  # validated even when perm makes it unused (a Generator is not advanced)
    P = P_.shape[1]
    if P == H:
        if perm is not None:
            raise ValueError("perm: only used when there are fewer patterns than slots (P < H)")
        return P_.copy()
    perm = gen.permutation(H) if perm is None else _check_perm(perm, H)
    cat = np.concatenate([P_, W0[:, : H - P]], axis=1)
    return np.ascontiguousarray(cat[:, perm])


def _check_patterns(patterns, D, H, dtype, name="initial_patterns"):
    """Validate a (D, P) pattern matrix (columns are patterns, P <= H)."""
    P_ = C.as_float_array(patterns, name, ndim=2, dtype=dtype,
                          shape_hint="[D, P] (one pattern per column)", allow_empty=False)
    if P_.shape[0] != D:
        hint = (" (it looks transposed: patterns must be the columns, axis 0 has length D; pass patterns.T)"
                if P_.shape[1] == D else "")
        raise ValueError(
            f"{name}: expected shape (D={D}, P) with one pattern per column (axis 0 = the {D} "
            f"probe dimensions, axis 1 = patterns), got shape {P_.shape}{hint}"
        )
    if P_.shape[1] > H:
        raise ValueError(f"{name}: expected at most H={H} patterns (columns), got {P_.shape[1]} (shape {P_.shape})")
    return P_


def _check_perm(perm, H):
    perm = C.as_index_array(perm, "perm", ndim=1)
    if perm.shape != (H,) or not np.array_equal(np.sort(perm), np.arange(H)):
        raise ValueError(f"perm: expected a permutation of range(H={H}), got {perm!r}")
    return perm
