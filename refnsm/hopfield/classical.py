r"""Teaching baselines: the classical binary Hopfield network and the dense associative memory.

Same orientation as the modern memory: patterns are the **columns** of a (N, P) matrix of ±1 entries and
states are the rows of a (B, N) matrix (a single state may be a 1-D array of length N).

Classical Hopfield network (Hopfield 1982)
------------------------------------------
Hebbian storage :math:`W = \frac1N \sum_\mu \xi^\mu \xi^{\mu\top}` with :math:`W_{ii} = 0`; energy
:math:`E(s) = -\tfrac12 s^\top W s + \theta^\top s`; update :math:`s_i \leftarrow \mathrm{sgn}(\sum_j W_{ij} s_j -
\theta_i)`, all units at once (synchronous: may fall into 2-cycles) or one at a time (asynchronous: E never
increases because W is symmetric with a zero diagonal).  One-step bit-error rate from a stored pattern at load
:math:`\alpha = P/N`: :math:`\Phi(-1/\sqrt\alpha)`; retrieval collapses at :math:`\alpha_c \approx 0.138`.

Dense associative memory (Krotov & Hopfield 2016; Demircigil et al. 2017)
-------------------------------------------------------------------------
:math:`E(\sigma) = -\sum_\mu F(\xi^{\mu\top}\sigma)` with :math:`F(x) = x^n` ("poly"), :math:`\max(x, 0)^n`
("rectified") or :math:`e^x` ("exp").  Asynchronous update: unit i takes the sign with the lower energy,
:math:`\sigma_i \leftarrow \mathrm{sgn}\sum_\mu [F(\xi^\mu_i + r_\mu) - F(-\xi^\mu_i + r_\mu)]`,
:math:`r_\mu = \sum_{j\ne i}\xi^\mu_j\sigma_j`.  Capacity grows like :math:`N^{n-1}` (polynomial) and
:math:`2^{N/2}` (exponential).  For n = 2 this is the classical network up to the diagonal and a constant.

Ties (a field of exactly 0) leave the unit unchanged, in every update.

Device: every function takes ``device="cpu"`` (default) or ``"cuda"``.  These baselines run on the host for either
(the asynchronous sweeps are sequential over the units; see docs/cuda.md): with ``"cuda"`` the arguments may be
numba device arrays, they are copied to the host, and array results go back to the device when an input was one.

Computed in float64; results are returned in the inputs' float dtype (float32 only if every float input is
float32, rounded once at the end), like the rest of the package.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _backend, _checks
from . import _kernels

__all__ = [
    "hebbian_weights",
    "classical_energy",
    "classical_update",
    "dense_energy",
    "dense_update",
    "INTERACTIONS",
]

INTERACTIONS = ("poly", "rectified", "exp")


def _on_host(device, *arrays):
    """``(xp, host arrays)`` for a ``device="cuda"`` call: the array namespace that hands results back, host copies."""
    xp = _backend.arrays(device, *arrays)
    return xp, [xp.to_host(a) for a in arrays]


def _give_back(xp, result):
    return result if isinstance(result, float) else xp.give_back_host(result)


def _patterns(patterns, name="patterns"):
    P = _checks.as_float_array(patterns, name, ndim=2, shape_hint="[N, P] (one ±1 pattern per column)",
                         dtype=np.float64, allow_empty=False)
    return P


def _states(S, N, name="S"):
    S = _checks.as_float_array(S, name, dtype=np.float64, shape_hint="[B, N] or [N]", allow_empty=False)
    if S.ndim not in (1, 2):
        raise ValueError(f"{name}: expected 1 or 2 dimensions [B, N] or [N], got shape {S.shape}")
    was_1d = S.ndim == 1
    S2 = S.reshape(1, -1) if was_1d else S
    if S2.shape[1] != N:
        raise ValueError(f"{name}: expected state width N={N} along the last axis, got shape {S.shape}")
    if not np.all(np.abs(S2) == 1.0):
        raise ValueError(f"{name}: expected entries in {{-1, +1}}")
    return S2, was_1d


def _theta(theta, N):
    if theta is None:
        return np.zeros(N)
    th = _checks.as_float_array(theta, "theta", ndim=1, dtype=np.float64)
    _checks.check_shape(th, "theta", (N,), "one threshold per unit")
    return th


#: the unit orders of an asynchronous run are drawn in chunks of sweeps of at most this many int64 entries, only
#: as far as some state is still changing (a run that converges in its first sweeps draws a few permutations, not
#: ``n_sweeps`` of them; ``n_sweeps`` may be as large as int64 allows)
_ORDER_CHUNK_ENTRIES = 1 << 20


def _order_args(order, rng):
    """Validate ``order`` and ``rng`` (in every mode, so a junk value is never accepted silently)."""
    _checks.check_option(order, "order", ("random", "sequential"))
    gen = _checks.resolve_rng(rng)
    return gen if order == "random" else None


def _async_run(kernel, S2, n_sweeps, N, gen):
    """Run ``kernel(S, orders, out, sweeps_done)`` sweep chunk by sweep chunk; ``gen`` None means sequential order.

    Sweep k of every row uses the k-th permutation drawn from ``gen``, exactly as if all ``n_sweeps`` were drawn
    first: a row still changing at the end of a chunk continues from its state with the next chunk, so the
    result is bitwise that of one call with every order (a row that reached its fixed point on the chunk's last
    sweep only repeats one unchanged sweep)."""
    out = S2.copy()
    rows = np.arange(S2.shape[0])
    left, chunk = n_sweeps, 4
    cap = max(1, _ORDER_CHUNK_ENTRIES // max(N, 1))
    while rows.size and left:
        L = min(left, chunk, cap)
        if gen is None:
            orders = np.tile(np.arange(N, dtype=np.int64), (L, 1))
        else:
            orders = np.stack([gen.permutation(N) for _ in range(L)]).astype(np.int64)
        S_in = np.ascontiguousarray(out[rows])
        res = np.empty_like(S_in)
        done = np.empty(rows.size, np.int64)
        kernel(S_in, orders, res, done)
        out[rows] = res
        rows = rows[done == L]  # the others stopped after a sweep with no change
        left -= L
        chunk *= 2
    return out


@_checks.finite_result
def hebbian_weights(patterns, *, device="cpu"):
    r"""Hebbian outer-product storage :math:`W = \frac1N \sum_\mu \xi^\mu\xi^{\mu\top}`, zero diagonal.

    Parameters
    ----------
    patterns : array_like (N, P)
        One pattern per column (any real values; ±1 for the classical model).

    Returns
    -------
    W : ndarray (N, N), symmetric.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import hopfield as hp
    >>> P = np.array([[1.0, -1.0, 1.0]]).T   # one pattern, N=3
    >>> hp.hebbian_weights(P)
    array([[ 0.        , -0.33333333,  0.33333333],
           [-0.33333333,  0.        , -0.33333333],
           [ 0.33333333, -0.33333333,  0.        ]])
    """
    if device != "cpu":
        xp, (patterns,) = _on_host(device, patterns)
        return _give_back(xp, hebbian_weights(patterns))
    dt = _checks.result_float_dtype(patterns)
    P = _patterns(patterns)
    N = P.shape[0]
    W = (P @ P.T) / N
    np.fill_diagonal(W, 0.0)
    return W.astype(dt, copy=False)


def _square(W, name="W"):
    W = _checks.as_float_array(W, name, ndim=2, dtype=np.float64, allow_empty=False)
    if W.shape[0] != W.shape[1]:
        raise ValueError(f"{name}: expected a square (N, N) matrix, got shape {W.shape}")
    return W


@_checks.finite_result
def classical_energy(S, W, theta=None, *, device="cpu"):
    r"""Energy :math:`E(s) = -\tfrac12 s^\top W s + \theta^\top s` of each state (a float for a 1-D state).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import hopfield as hp
    >>> P = np.array([[1.0, -1.0, 1.0]]).T
    >>> W = hp.hebbian_weights(P)
    >>> round(float(hp.classical_energy(P[:, 0], W)), 12)
    -1.0
    """
    if device != "cpu":
        xp, (S, W, theta) = _on_host(device, S, W, theta)
        return _give_back(xp, classical_energy(S, W, theta))
    dt = _checks.result_float_dtype(S, W, *(() if theta is None else (theta,)))
    W = _square(W)
    S2, was_1d = _states(S, W.shape[0])
    th = _theta(theta, W.shape[0])
    e = -0.5 * np.einsum("bi,ij,bj->b", S2, W, S2) + S2 @ th
    return float(e[0]) if was_1d else e.astype(dt, copy=False)


@_checks.finite_result
def classical_update(S, W, theta=None, *, mode="sync", n_sweeps=1, order="random", rng=None, device="cpu"):
    r"""Update states of the classical Hopfield network.

    ``mode="sync"``: ``n_sweeps`` synchronous steps :math:`s \leftarrow \mathrm{sgn}(W s - \theta)`.
    ``mode="async"``: up to ``n_sweeps`` sweeps over the units in a random (``order="random"``, a fresh
    permutation per sweep, shared by the batch) or the natural order, each unit updated with the current state of
    the others; stops early after a sweep with no change (a fixed point).

    Returns
    -------
    ndarray
        The new states, same shape as ``S``.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import hopfield as hp
    >>> P = np.array([[1.0, -1.0, 1.0, -1.0]]).T
    >>> W = hp.hebbian_weights(P)
    >>> hp.classical_update(np.array([1.0, -1.0, 1.0, 1.0]), W, mode="sync")   # one flipped bit is repaired
    array([ 1., -1.,  1., -1.])
    """
    if device != "cpu":
        xp, (S, W, theta) = _on_host(device, S, W, theta)
        return _give_back(xp, classical_update(S, W, theta, mode=mode, n_sweeps=n_sweeps, order=order, rng=rng))
    dt = _checks.result_float_dtype(S, W, *(() if theta is None else (theta,)))
    W = _square(W)
    N = W.shape[0]
    S2, was_1d = _states(S, N)
    th = _theta(theta, N)
    _checks.check_option(mode, "mode", ("sync", "async"))
    n_sweeps = _checks.check_int(n_sweeps, "n_sweeps", minimum=1)
    gen = _order_args(order, rng)
    if mode == "sync":
        out = S2.copy()
        N1 = N + 1
        for _ in range(n_sweeps):
            h = out @ W - th  # W is symmetric
            # the terms W_ij s_j and theta_i are exact, so the float sum errs by at most N eps times their absolute
            # sum; within that bound of 0 (a Hebbian tie rounds to +-1e-16) the sign is taken from the exactly
            # rounded sum (math.fsum), so that a field of exactly 0 leaves the unit unchanged
            near = np.abs(h) <= 2.0 * N1 * np.finfo(np.float64).eps * (np.abs(out) @ np.abs(W) + np.abs(th))
            for b, i in zip(*np.nonzero(near)):
                h[b, i] = math.fsum([*(W[:, i] * out[b]).tolist(), -float(th[i])])
            new = np.where(h > 0, 1.0, np.where(h < 0, -1.0, out))
            if np.array_equal(new, out):  # a fixed point: every further step gives the same states
                break
            out = new
    else:
        out = _async_run(lambda S_, o, r, d: _kernels.classical_async(S_, W, th, o, r, d), S2, n_sweeps, N, gen)
    out = out.astype(dt, copy=False)  # ±1 entries: exact in float32
    return out[0] if was_1d else out


def _interaction(interaction, n):
    _checks.check_option(interaction, "interaction", INTERACTIONS)
    n = _checks.check_int(n, "n", minimum=1)
    return INTERACTIONS.index(interaction), n


@_checks.finite_result
def dense_energy(S, patterns, *, interaction="poly", n=3, device="cpu"):
    r"""Energy :math:`E(\sigma) = -\sum_\mu F(\xi^{\mu\top}\sigma)` of the dense associative memory.

    ``interaction``: ``"poly"`` :math:`F(x) = x^n`, ``"rectified"`` :math:`F(x) = \max(x,0)^n`,
    ``"exp"`` :math:`F(x) = e^x` (``n`` unused).  A float for a 1-D state.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import hopfield as hp
    >>> P = np.array([[1.0, -1.0, 1.0, -1.0]]).T
    >>> float(hp.dense_energy(P[:, 0], P, interaction="poly", n=3))
    -64.0
    """
    if device != "cpu":
        xp, (S, patterns) = _on_host(device, S, patterns)
        return _give_back(xp, dense_energy(S, patterns, interaction=interaction, n=n))
    dt = _checks.result_float_dtype(S, patterns)
    Xi = _patterns(patterns)
    S2, was_1d = _states(S, Xi.shape[0])
    kind, n = _interaction(interaction, n)
    m = S2 @ Xi
    if kind == 0:
        F = m**n
    elif kind == 1:
        F = np.where(m > 0, m, 0.0) ** n
    else:
        F = np.exp(m)
    e = -F.sum(axis=1)
    return float(e[0]) if was_1d else e.astype(dt, copy=False)


@_checks.finite_result
def dense_update(S, patterns, *, interaction="poly", n=3, n_sweeps=1, order="random", rng=None, device="cpu"):
    r"""Asynchronous sweeps of the dense associative memory (see the module docstring).

    Up to ``n_sweeps`` sweeps (stopping early at a fixed point); each unit takes the sign of lower energy given
    the others.  Cost O(N P) per sweep (the overlaps are updated incrementally).

    Returns
    -------
    ndarray
        The new states, same shape as ``S``.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import hopfield as hp
    >>> P = np.array([[1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0]]).T
    >>> hp.dense_update(np.array([1.0, -1.0, 1.0, 1.0]), P, n=3, rng=0)
    array([ 1., -1.,  1., -1.])
    """
    if device != "cpu":
        xp, (S, patterns) = _on_host(device, S, patterns)
        return _give_back(xp, dense_update(S, patterns, interaction=interaction, n=n, n_sweeps=n_sweeps, order=order,
                                           rng=rng))
    dt = _checks.result_float_dtype(S, patterns)
    Xi = _patterns(patterns)
    N, P = Xi.shape
    S2, was_1d = _states(S, N)
    kind, n = _interaction(interaction, n)
    n_sweeps = _checks.check_int(n_sweeps, "n_sweeps", minimum=1)
    gen = _order_args(order, rng)
    m = np.empty(P)
    out = _async_run(lambda S_, o, r, d: _kernels.dense_async(S_, Xi, kind, n, o, m, r, d), S2, n_sweeps, N, gen)
    out = out.astype(dt, copy=False)  # ±1 entries: exact in float32
    return out[0] if was_1d else out
