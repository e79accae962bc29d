r"""Modern Hopfield memory (mirroring ngclearn's ``HopfieldSynapse``) and the classical baselines.

Notation: probes :math:`X \in \mathbb{R}^{B\times D}` (one per row), memory matrix :math:`W \in \mathbb{R}^{D\times H}`
(**column** :math:`w_j` is memory :math:`j`), inverse temperature :math:`\beta > 0`,
:math:`\mathrm{lse}_\beta(z) = \beta^{-1}\log\sum_j e^{\beta z_j}`.

Retrieval (one step; Ramsauer et al. 2020)
    :math:`\hat x = W\,\mathrm{softmax}(\beta W^\top x)`, or for a batch :math:`\hat X = \mathrm{softmax}(\beta XW)W^\top`
    (:func:`retrieve`, :func:`iterate` to a fixed point).

Energy (:func:`energy`, gradients :func:`energy_vjp`)
    .. math::

        E(x) = -\mathrm{lse}_\beta(W^\top x) + \tfrac12 x^\top x + \beta^{-1}\log H + \tfrac12 \max_j\|w_j\|^2,

    :math:`\nabla_x E = x - W p`, :math:`\nabla_W E = -x p^\top + w_{j^*}e_{j^*}^\top`,
    :math:`\partial_\beta E = \beta^{-2}(\mathrm{Ent}(p) - \log H)`, with :math:`p = \mathrm{softmax}(\beta W^\top x)`.
    The retrieval step is :math:`x^+ = x - \nabla_x E(x)`, and because :math:`-\mathrm{lse}` is concave,
    :math:`E(x^+) \le E(x) - \tfrac12\|x^+ - x\|^2` (a CCCP step).

Plasticity (ngclearn's two rules, batch-averaged, then :func:`evolve_step`)
    delta :math:`\Delta W = \tfrac1B (X - \hat X)^\top A` (:func:`delta_update`), the gradient of the reconstruction
    loss with the softmax held fixed; contrastive :math:`\Delta W = \tfrac1B(X^\top A - \hat X^\top \hat A)`
    (:func:`contrastive_update`), the gradient of :math:`\bar E_\beta(X) - \bar E_{\beta'}(\hat X)`;
    :math:`W \leftarrow W + \eta\Delta W - \lambda W - \lambda_1\mathrm{sign}(W)`.

Stateful shell: :class:`HopfieldSynapse` (ngclearn's compartments and parameter names).

GPU: ``device="cuda"`` on every function (VJPs included) and on :class:`HopfieldSynapse` runs the same code with the
CUDA twins of the kernels, :mod:`refnsm.hopfield._cuda_kernels` beside :mod:`refnsm.hopfield._kernels` (imported only
then; see ``docs/cuda.md``).
Baselines (:mod:`refnsm.hopfield.classical`): :func:`hebbian_weights`, :func:`classical_update`,
:func:`classical_energy` (Hopfield 1982) and :func:`dense_update`, :func:`dense_energy` (Krotov & Hopfield 2016).

Differences from ngclearn (energy reading, contrastive negative phase at beta=1, p_conn ignored, silent fall-backs)
are listed in ``docs/upstream_differences.md`` (section ngclearn); ``compat="ngclearn"`` reproduces the first two.
"""

from .classical import (
    INTERACTIONS,
    classical_energy,
    classical_update,
    dense_energy,
    dense_update,
    hebbian_weights,
)
from .modern import (
    IterateResult,
    Retrieval,
    contrastive_update,
    delta_update,
    energy,
    energy_vjp,
    evolve_step,
    iterate,
    load_patterns,
    retrieve,
    retrieve_vjp,
)
from . import initializers
from .synapse import HopfieldSynapse

__all__ = [
    "HopfieldSynapse",
    "initializers",
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
    "hebbian_weights",
    "classical_energy",
    "classical_update",
    "dense_energy",
    "dense_update",
    "INTERACTIONS",
]
