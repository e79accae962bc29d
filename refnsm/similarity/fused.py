r"""A named optimisation: one training step of a single-``Linear`` circuit in one kernel call.

:meth:`MultiSimilarityMatching.train_step <refnsm.similarity.models.MultiSimilarityMatching.train_step>` is, in
general, ``forward`` (encode, fast dynamics), ``loss``, ``backward`` and ``step``: a dozen Python-level calls.  For
the commonest circuit (one :class:`~refnsm.similarity.encoders.Linear` encoder :math:`u = x W^\top + \beta`, no hooks,
no callable projection) the same math fits in one kernel, ``linear_train_step`` of :mod:`refnsm.similarity._kernels`
(and its twin in :mod:`refnsm.similarity._cuda_kernels`), which removes that overhead for online learning and small
minibatches:

.. math::

    U = xW^\top + \beta,\quad Y = \text{fast loop}(M, U),\quad C = Y^\top Y,\quad
    L = \tfrac1N\big(2\langle M, C\rangle - 4\langle Y, U\rangle\big) - \tfrac1m\|M\|^2 + R,

    G = -\tfrac4N Y\ (+\tfrac4N U \text{ for "whiten"}),\quad \bar W = G^\top x\ (+\tfrac4m W),\quad
    \bar\beta = \textstyle\sum_b G_b\ (+\tfrac4m\beta),\quad \bar M = \tfrac2N C - \tfrac2m M,

    W \leftarrow W - \mathrm{lr}\,\bar W,\quad \beta \leftarrow \beta - \mathrm{lr}\,\bar\beta,\quad
    M \leftarrow M + \mathrm{lr}_M\,\bar M,

with :math:`R` the regularizer (``"weight"``: :math:`\tfrac2m(\|W\|^2 + \|\beta\|^2)`; ``"whiten"``:
:math:`\tfrac2N\|U\|^2`; ``"none"``: 0) and :math:`N = Bm`.  ``tests/test_similarity.py::
test_fused_linear_train_step_equals_general_path`` holds it against the general path (set
``use_fused_step = False`` on a circuit to always take the general one).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["FusedStep", "linear_train_step", "REGULARIZATION_CODES"]

#: the kernels' integer code of each regularization
REGULARIZATION_CODES = {"weight": 0, "whiten": 1, "none": 2}


class FusedStep(NamedTuple):
    """What one fused step computed: the state ``Y`` ([B, m], where the kernels ran), the loss and the diagnostics
    of the fast loop, and the gradients (NumPy arrays, keyed ``weight``, ``bias``, ``competitor.weight``)."""

    Y: object
    L: float
    iterations: int
    change: float
    converged: bool
    residual: float
    energy: float
    diverged: bool
    grads: dict


def linear_train_step(kernels, ops, x, params, M, *, eta, relu, tol, max_iter, regularization, lr, lr_M):
    """One fused training step: ``params`` (``{"weight": W (m, n)[, "bias": beta (m,)]}``) and ``M`` (m, m), NumPy
    arrays, are updated in place; ``x`` (B, n) is a validated input where ``kernels`` run; ``ops`` are the
    array operations of that device (:mod:`refnsm.similarity._ops` or its twin)."""
    W = params["weight"]
    has_bias = "bias" in params
    m = W.shape[0]
    Wd = ops.from_host(W)
    bd = ops.from_host(params["bias"]) if has_bias else ops.empty(1, W.dtype)  # unused when there is no bias
    Md = ops.from_host(M)
    Y = ops.zeros((x.shape[0], m), W.dtype)
    L, iters, change, conv, res, energy, gW, gb, gM = kernels.linear_train_step(
        x, Wd, bd, has_bias, Md, eta, relu, tol, max_iter, REGULARIZATION_CODES[regularization], lr, lr_M, Y)
    ops.copy_back(W, Wd)  # the parameters live on the host (nothing to do when the kernels ran there)
    if has_bias:
        ops.copy_back(params["bias"], bd)
    ops.copy_back(M, Md)
    grads = {"weight": ops.to_host(gW), "competitor.weight": ops.to_host(gM)}
    if has_bias:
        grads["bias"] = ops.to_host(gb)
    return FusedStep(Y, L, int(iters), float(change), bool(conv), float(res), float(energy), not ops.all_finite(Y),
                     grads)
