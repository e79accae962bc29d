r"""Modern (continuous) Hopfield memory: retrieval, energy and its gradients, and the two local plasticity rules.

Notation (the same as :mod:`refnsm.hopfield`): a batch of probes :math:`X \in \mathbb{R}^{B\times D}` (one probe
per row; a single probe may be passed as a 1-D array of length D), the memory matrix
:math:`W \in \mathbb{R}^{D\times H}` whose column :math:`w_j` is memory :math:`j`, the inverse temperature
:math:`\beta > 0`, and :math:`\mathrm{lse}_\beta(z) = \beta^{-1}\log\sum_j e^{\beta z_j}`.

Every function validates its arguments before any work and never writes to them.  float32 inputs (X and W both
float32) are computed and returned in float32; anything else in float64.

GPU: every function takes ``device="cuda"``: the code below runs unchanged, with the kernel module and the array
namespace that :func:`refnsm._backend.get` returns for that device (:mod:`refnsm.hopfield._cuda_kernels`, the twins
of :mod:`refnsm.hopfield._kernels`, imported only then).  Inputs may be NumPy arrays (copied over, results returned
as NumPy) or numba device arrays (kept on the device); the validation and its messages are the same.  The VJPs
compute on the host (NumPy expressions) and hand their results back on the inputs' side.  See ``docs/cuda.md``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _backend
from .. import _checks
from .._blas import matmul

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
DEVICES = _backend.DEVICES


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

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import hopfield as hp
    >>> r = hp.retrieve(np.array([[1.0, 0.0]]), np.eye(2), beta=1.0)
    >>> r._fields
    ('similarities', 'memory_weights', 'outputs')
    """

    similarities: np.ndarray
    memory_weights: np.ndarray
    outputs: np.ndarray


class IterateResult(NamedTuple):
    """Result of :func:`iterate`: the final state, the number of updates and the size of the last one.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import hopfield as hp
    >>> res = hp.iterate(np.array([[1.0, 0.2]]), np.eye(2), beta=20.0)
    >>> res.converged, np.round(res.outputs, 6)
    (True, array([[1., 0.]]))
    """

    outputs: np.ndarray
    n_iter: int
    last_change: float
    converged: bool


# ----------------------------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------------------------


# The validators take the array namespace ``xp`` of the device (refnsm._backend): the same checks and messages for
# NumPy and device arrays.
HOST = _backend.HOST


def _memory(W, name="W", dtype=None, xp=HOST):
    W = xp.asarray(W, name, ndim=2, shape_hint="[D, H] (column j is memory j)", dtype=dtype, allow_empty=False)
    return W


def _probes(X, name, D, dtype, xp=HOST):
    """Return (X as 2-D (B, D), was_1d)."""
    X = xp.asarray(X, name, dtype=dtype, shape_hint="[B, D] or [D]")
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


def _prep(X, W, xname="X", wname="W", xp=HOST):
    dtype = xp.dtype_of(X, W)
    W = _memory(W, wname, dtype, xp)
    X2, was_1d = _probes(X, xname, W.shape[0], dtype, xp)
    return X2, W, was_1d


def _beta(beta, name="beta"):
    return _checks.check_real(beta, name, positive=True)


def _compat(compat):
    return _backend.check_compat(compat, COMPAT)


def _iterate_args(tol, max_iter):
    return _checks.check_real(tol, "tol", nonnegative=True), _checks.check_int(max_iter, "max_iter", minimum=1)


def _retrieve_raw(kernels, xp, X, W, beta):
    """Kernel call on validated arrays; returns S, A, Xhat, rowmax, lse."""
    B, H = X.shape[0], W.shape[1]
    S = xp.empty((B, H), dtype=X.dtype)
    A = xp.empty((B, H), dtype=X.dtype)
    Xhat = xp.empty(X.shape, dtype=X.dtype)
    rowmax = xp.empty(B, dtype=np.float64)
    lse = xp.empty(B, dtype=np.float64)
    kernels.retrieve_into(X, W, beta, S, A, Xhat, rowmax, lse)
    return S, A, Xhat, rowmax, lse


def _squeeze(arr, was_1d):
    return arr[0] if was_1d else arr


# ----------------------------------------------------------------------------------------------------------
# retrieval
# ----------------------------------------------------------------------------------------------------------


@_checks.finite_result
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
        ``"cuda"`` runs the kernels' CUDA twins (NumPy or device arrays).

    Returns
    -------
    Retrieval
        ``(similarities, memory_weights, outputs)``; 1-D when ``X`` was 1-D.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import hopfield as hp
    >>> W = np.array([[1.0, -1.0], [1.0, 1.0]])   # two stored patterns as columns, D=2, H=2
    >>> r = hp.retrieve(np.array([[0.9, 1.1]]), W, beta=10.0)
    >>> np.round(r.outputs, 4)                      # ~ the second pattern
    array([[1., 1.]])
    """
    kernels, xp = _backend.get("hopfield", device, X, W)
    X2, W, was_1d = _prep(X, W, xp=xp)
    beta = _beta(beta)
    S, A, Xhat, _, _ = _retrieve_raw(kernels, xp, X2, W, beta)
    give_back = xp.give_back
    return Retrieval(give_back(_squeeze(S, was_1d)), give_back(_squeeze(A, was_1d)),
                     give_back(_squeeze(Xhat, was_1d)))


@_checks.finite_result
def retrieve_vjp(grad_out, X, W, beta, *, device="cpu"):
    r"""VJP of the retrieved probes :math:`\hat X = \mathrm{softmax}(\beta XW)\,W^\top` in X, W and beta.

    With :math:`\bar{\hat X}` = ``grad_out`` (B, D), :math:`\bar A = \bar{\hat X} W` and
    :math:`T = A \odot (\bar A - \mathrm{rowsum}(A \odot \bar A)\,\mathbf 1^\top)` (the softmax VJP):

    .. math::

        \bar X = \beta\, T W^\top, \qquad
        \bar W = \bar{\hat X}^\top A + \beta\, X^\top T, \qquad
        \bar\beta = \sum_{b,j} (XW)_{bj} T_{bj}.

    (:math:`\sum_j T_{bj} = 0`, so the shifted scores :math:`S` give the same :math:`\bar\beta`.)

    ``device="cuda"`` validates on the device, runs the retrieval there and forms the products above on the host;
    ``gX`` and ``gW`` go back on the inputs' side.

    Returns
    -------
    (gX, gW, gbeta) : ndarray, ndarray, float
        ``gX`` has the shape of ``X`` (1-D when X was 1-D).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import hopfield as hp
    >>> W = np.array([[1.0, -1.0], [1.0, 1.0]])
    >>> gX, gW, gbeta = hp.retrieve_vjp(np.ones((1, 2)), np.array([[0.9, 1.1]]), W, 10.0)
    >>> gX.shape, gW.shape, type(gbeta).__name__
    ((1, 2), (2, 2), 'float')
    """
    kernels, xp = _backend.get("hopfield", device, grad_out, X, W)
    X2, W, was_1d = _prep(X, W, xp=xp)
    beta = _beta(beta)
    G = xp.asarray(grad_out, "grad_out", dtype=X2.dtype)
    expected = (X2.shape[1],) if was_1d else X2.shape
    if G.shape != expected:
        raise ValueError(f"grad_out: expected the shape of the outputs {expected}, got shape {G.shape}")
    S, A, _, _, _ = _retrieve_raw(kernels, xp, X2, W, beta)
    G, S, A, X2, W = (xp.to_host(a) for a in (G, S, A, X2, W))
    G = G.reshape(X2.shape)
    # the products through the BLAS of the retrieval kernel (refnsm._blas: one OpenBLAS thread pool per call)
    Abar = matmul(G, W)
    T = A * (Abar - np.sum(A * Abar, axis=1, keepdims=True))
    gX = beta * matmul(T, W.T)
    gW = matmul(G.T, A) + beta * matmul(X2.T, T)
    gbeta = float(np.sum(S.astype(np.float64) * T))
    return xp.give_back_host(_squeeze(gX, was_1d)), xp.give_back_host(gW), gbeta


@_checks.finite_result
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

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import hopfield as hp
    >>> W = np.array([[1.0, -1.0], [1.0, 1.0]])
    >>> res = hp.iterate(np.array([[0.2, 0.9]]), W, beta=10.0)
    >>> res.converged, np.round(res.outputs, 4)
    (True, array([[1., 1.]]))
    """
    kernels, xp = _backend.get("hopfield", device, X, W)
    X2, W, was_1d = _prep(X, W, xp=xp)
    beta = _beta(beta)
    tol, max_iter = _iterate_args(tol, max_iter)
    B, H = X2.shape[0], W.shape[1]
    out = xp.empty(X2.shape, dtype=X2.dtype)
    S = xp.empty((B, H), dtype=X2.dtype)
    A = xp.empty((B, H), dtype=X2.dtype)
    Xhat = xp.empty(X2.shape, dtype=X2.dtype)
    rowmax = xp.empty(B, dtype=np.float64)
    lse = xp.empty(B, dtype=np.float64)
    n, change = kernels.iterate_into(X2, W, beta, tol, max_iter, out, S, A, Xhat, rowmax, lse)
    return IterateResult(xp.give_back(_squeeze(out, was_1d)), int(n), float(change), bool(change <= tol))


# ----------------------------------------------------------------------------------------------------------
# energy
# ----------------------------------------------------------------------------------------------------------


@_checks.finite_result
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

    ``device="cuda"`` runs the kernels' CUDA twins.

    Returns
    -------
    ndarray (B,) or float
        One energy per probe (a float when X is 1-D).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import hopfield as hp
    >>> W = np.eye(2)
    >>> np.round(hp.energy(np.array([[1.0, 0.0]]), W, beta=1.0), 6)
    array([0.379885])
    """
    kernels, xp = _backend.get("hopfield", device, X, W)
    X2, W, was_1d = _prep(X, W, xp=xp)
    beta = _beta(beta)
    compat = _compat(compat)
    _, _, Xhat, rowmax, lse = _retrieve_raw(kernels, xp, X2, W, beta)
    variant = 1 if compat == "ngclearn" else 0
    m2, _ = kernels.row_sq_norm_max(W, 1 if variant else 0)
    out = xp.empty(X2.shape[0], dtype=np.float64)
    kernels.energy_rows(X2, Xhat, rowmax, lse, beta, W.shape[1], 0.5 * m2, variant, out)
    out = xp.astype(out, X2.dtype)
    return float(xp.to_host(out)[0]) if was_1d else xp.give_back(out)


@_checks.finite_result
def energy_vjp(grad_out, X, W, beta, *, device="cpu"):
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

    device : {"cpu", "cuda"}
        ``"cuda"`` validates on the device, runs the retrieval there and forms the sums above on the host; ``gX``
        and ``gW`` go back on the inputs' side.

    Returns
    -------
    (gX, gW, gbeta) : ndarray, ndarray, float

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import hopfield as hp
    >>> gX, gW, gbeta = hp.energy_vjp(None, np.array([[1.0, 0.0]]), np.eye(2), 1.0)
    >>> gX.shape, gW.shape
    ((1, 2), (2, 2))
    """
    kernels, xp = _backend.get("hopfield", device, grad_out, X, W)
    X2, W, was_1d = _prep(X, W, xp=xp)
    beta = _beta(beta)
    B, H = X2.shape[0], W.shape[1]
    if grad_out is None:
        g = np.ones(B)
    else:
        g = xp.to_host(xp.asarray(grad_out, "grad_out", dtype=np.float64))
        if g.size != B or (g.ndim > 1) or (not was_1d and g.ndim != 1):
            raise ValueError(f"grad_out: expected one value per probe, shape ({B},), got shape {g.shape}")
        g = g.reshape(B)
    S, A, Xhat, _, lse = _retrieve_raw(kernels, xp, X2, W, beta)
    _, jstar = kernels.row_sq_norm_max(W, 0)
    S, A, Xhat, lse, X2, W = (xp.to_host(a) for a in (S, A, Xhat, lse, X2, W))
    gl = g.astype(X2.dtype)
    gX = gl[:, None] * (X2 - Xhat)
    gW = -matmul(X2.T, gl[:, None] * A)  # the retrieval kernel's BLAS (refnsm._blas)
    gW[:, jstar] += np.sum(gl) * W[:, jstar]
    gbeta = float(np.sum(g * _energy_dbeta(S, A, lse, beta, H)))
    return xp.give_back_host(_squeeze(gX, was_1d)), xp.give_back_host(gW), gbeta


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


def _batch_triplet(X, X_hat, A, W=None, xp=HOST):
    arrays = [X, X_hat, A] + ([W] if W is not None else [])
    dtype = xp.dtype_of(*arrays)
    X = xp.asarray(X, "X", ndim=2, shape_hint="[B, D]", dtype=dtype, allow_empty=False)
    X_hat = xp.asarray(X_hat, "X_hat", ndim=2, shape_hint="[B, D]", dtype=dtype)
    _checks.check_shape(X_hat, "X_hat", X.shape, "the shape of X")
    A = xp.asarray(A, "A", ndim=2, shape_hint="[B, H]", dtype=dtype, allow_empty=False)
    _checks.check_same_dim(X, "X", 0, A, "A", 0, "batch size")
    if W is not None:
        W = _memory(W, "W", dtype, xp)
        _checks.check_shape(W, "W", (X.shape[1], A.shape[1]), "(D, H) from X and A")
    return X, X_hat, A, W


def _negative_beta(beta, neg_beta, compat):
    """Validate beta, compat and neg_beta of the contrastive rule; returns the negative-phase beta."""
    beta = _beta(beta)
    compat = _compat(compat)
    if neg_beta is not None and compat is not None:
        raise ValueError("neg_beta: pass either neg_beta or compat='ngclearn' (which fixes neg_beta=1), not both")
    return 1.0 if compat == "ngclearn" else (beta if neg_beta is None else _beta(neg_beta, "neg_beta"))


def _evolve_args(W, dW, eta, reg_lambda, l1_lambda, mask, xp=HOST):
    """Validated (W, dW, eta, reg_lambda, l1_lambda, mask or None) of :func:`evolve_step`."""
    dtype = xp.dtype_of(W, dW)
    W = _memory(W, "W", dtype, xp)
    dW = xp.asarray(dW, "dW", ndim=2, dtype=dtype)
    _checks.check_shape(dW, "dW", W.shape, "the shape of W")
    eta = _checks.check_real(eta, "eta")
    reg_lambda = _checks.check_real(reg_lambda, "reg_lambda", nonnegative=True)
    l1_lambda = _checks.check_real(l1_lambda, "l1_lambda", nonnegative=True)
    if mask is not None:
        mask = xp.asarray(mask, "mask", ndim=2, dtype=dtype)
        _checks.check_shape(mask, "mask", W.shape, "the shape of W")
    return W, dW, eta, reg_lambda, l1_lambda, mask


@_checks.finite_result
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
        ``"cuda"`` runs the kernels' CUDA twins.

    Returns
    -------
    dW : ndarray (D, H)

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import hopfield as hp
    >>> X = np.array([[1.0, 0.0]])
    >>> r = hp.retrieve(X, np.eye(2), 2.0)
    >>> hp.delta_update(X, r.outputs, r.memory_weights).shape   # dW, shape of W
    (2, 2)
    """
    kernels, xp = _backend.get("hopfield", device, X, X_hat, A)
    X, X_hat, A, _ = _batch_triplet(X, X_hat, A, xp=xp)
    B, D = X.shape
    dW = xp.empty((D, A.shape[1]), dtype=X.dtype)
    kernels.delta_into(X, X_hat, A, xp.empty(X.shape, dtype=X.dtype), dW)
    return xp.give_back(dW)


@_checks.finite_result
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
    softmax's shift invariance removes.  ``device="cuda"`` runs the kernels' CUDA twins.

    Returns
    -------
    dW : ndarray (D, H)

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import hopfield as hp
    >>> X = np.array([[1.0, 0.0]])
    >>> W = np.eye(2)
    >>> r = hp.retrieve(X, W, 2.0)
    >>> hp.contrastive_update(X, r.outputs, r.memory_weights, W, 2.0).shape
    (2, 2)
    """
    if W is None:  # _batch_triplet reads None as "no W" (delta_update); here W is required
        raise TypeError("W: expected the memory matrix (D, H), got None")
    kernels, xp = _backend.get("hopfield", device, X, X_hat, A, W)
    X, X_hat, A, W = _batch_triplet(X, X_hat, A, W, xp=xp)
    nb = _negative_beta(beta, neg_beta, compat)
    B, D = X.shape
    H = W.shape[1]
    dW = xp.empty((D, H), dtype=X.dtype)
    kernels.contrastive_into(X, X_hat, A, W, nb, xp.empty((B, H), X.dtype), xp.empty((B, H), X.dtype),
                       xp.empty(B, np.float64), xp.empty(B, np.float64), xp.empty((D, H), X.dtype), dW)
    return xp.give_back(dW)


@_checks.finite_result
def evolve_step(W, dW, eta, reg_lambda=0.0, l1_lambda=0.0, mask=None, *, device="cpu"):
    r"""Apply an update the way ngclearn's ``evolve`` does:

    .. math::

        W \leftarrow W + \eta\,\Delta W - \lambda W - \lambda_1 \mathrm{sign}(W)\quad(\text{then } W \leftarrow W \odot M
        \text{ if a mask is given}).

    The decay :math:`\lambda` = ``reg_lambda`` is *not* multiplied by :math:`\eta`.  Returns a new array.
    ``device="cuda"`` runs the kernels' CUDA twins.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import hopfield as hp
    >>> W = np.eye(2)
    >>> hp.evolve_step(W, np.ones((2, 2)), eta=0.1)   # W + eta * dW (no decay)
    array([[1.1, 0.1],
           [0.1, 1.1]])
    """
    kernels, xp = _backend.get("hopfield", device, W, dW, mask)
    W, dW, eta, reg_lambda, l1_lambda, mask = _evolve_args(W, dW, eta, reg_lambda, l1_lambda, mask, xp=xp)
    use_mask = mask is not None
    if not use_mask:
        mask = W  # not read by the kernel
    out = xp.empty(W.shape, dtype=W.dtype)
    kernels.evolve_into(W, dW, eta, reg_lambda, l1_lambda, mask, use_mask, out)
    return xp.give_back(out)


@_checks.finite_result
def load_patterns(W0, patterns, *, perm=None, rng=None):
    r"""Store patterns in a memory matrix the way ngclearn's ``initial_patterns`` does.

    With :math:`P` patterns (the **columns** of ``patterns``, shape (D, P)) and :math:`H` slots:

    * :math:`P = H`: the memory is exactly ``patterns``;
    * :math:`P < H`: concatenate ``[patterns, W0[:, :H-P]]`` and permute the columns,
      ``W[:, j] = concat[:, perm[j]]``, so pattern ``p`` lands in the slot j with ``perm[j] == p``;
      ``perm`` is a permutation of ``range(H)`` (default: drawn from ``rng``);
    * :math:`P > H`: an error (ngclearn silently resizes W to (D, P)).

    Returns a new (D, H) array.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import hopfield as hp
    >>> W0 = np.zeros((3, 2))
    >>> W = hp.load_patterns(W0, np.array([[1.0], [2.0], [3.0]]), rng=0)   # patterns are columns [D, P]
    >>> W.shape
    (3, 2)
    """
    W0 = _memory(W0, "W0")
    D, H = W0.shape
    P_ = _check_patterns(patterns, D, H, W0.dtype, name="patterns")
    gen = _checks.resolve_rng(rng)  # validated even when perm makes it unused (a Generator is not advanced)
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
    P_ = _checks.as_float_array(patterns, name, ndim=2, dtype=dtype,
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
    perm = _checks.as_index_array(perm, "perm", ndim=1)
    if perm.shape != (H,) or not np.array_equal(np.sort(perm), np.arange(H)):
        raise ValueError(f"perm: expected a permutation of range(H={H}), got {perm!r}")
    return perm
