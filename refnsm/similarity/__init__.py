r"""Similarity matching (SM) and non-negative similarity matching (NSM), mirroring pynsm 1.0.1.

A similarity-matching circuit maps inputs :math:`x` to outputs :math:`y` whose pairwise similarities match the
inputs' (Pehlevan, Chklovskii and co-workers; Bahroun et al. 2023).  It solves the min-max problem

.. math::

    \min_{W} \max_{M}\; \frac{2}{T}\sum_t y_t^\top M y_t - \frac{4}{T}\sum_t y_t^\top W x_t
    + 2\,\mathrm{Tr}\,W^\top W - \mathrm{Tr}\,M^\top M

with two time scales: a **fast** recurrent dynamics that finds :math:`y` for fixed weights,

.. math::  y \leftarrow P\big(y - \eta (M y - W x)\big)

(:math:`P` the identity for SM, the ReLU for NSM), and a **slow** Hebbian (:math:`W`) / anti-Hebbian (:math:`M`)
update.  In refnsm every term carries pynsm's exact scaling: see :mod:`refnsm.similarity.models`.

Public API
----------
Circuits (pynsm's names, defaults and semantics; explicit ``step(lr)`` instead of a gradient hook):

* :class:`MultiSimilarityMatching` (several encoders, inputs may be ``None``),
  :class:`SimilarityMatching` (one encoder), :class:`SupervisedSimilarityMatching` (label drive broadcast over
  spatial positions);
* ``forward(*xs)`` (fast dynamics in Numba, with :class:`Diagnostics`), ``loss(*xs, y)``, ``backward()``
  (raw gradients of every encoder parameter and of :math:`M`), ``step(lr)``, ``train_step(*xs, lr=...)``,
  ``solve(*xs)`` (exact fixed point), iteration hooks ("pre", "iteration", "post").

Encoders with hand-derived VJPs: :class:`Linear`, :class:`Conv2d`, :class:`Identity`.

GPU: a circuit built with ``device="cuda"`` (or given ``model.device = "cuda"``) runs ``forward``, ``loss``,
``backward`` and ``train_step`` by the same code with the CUDA twins of the kernels and array operations,
:mod:`refnsm.similarity._cuda_kernels` beside :mod:`refnsm.similarity._kernels` and :mod:`refnsm.similarity._cuda_ops`
beside :mod:`refnsm.similarity._ops` (the fast loop with pynsm's stopping rule, the encoders' products, im2col/col2im,
the fused Linear step of :mod:`refnsm.similarity.fused`), and ``encoder(x, device="cuda")`` /
``encoder.vjp(grad_out, x, device="cuda")`` run an encoder there.  Inputs may be NumPy arrays or Numba device
arrays (results stay on their side); the parameters stay NumPy arrays.  ``import refnsm.similarity`` never imports
``numba.cuda``.  See ``docs/cuda.md``.

Exact solvers: :func:`solve_sm` (:math:`M^{-1}b`), :func:`solve_nsm` (non-negative QP), :func:`kkt_residual`.

Rules and metrics: :func:`hebbian_update`, :func:`similarity_matching_cost`, :func:`principal_angle_cosines`,
:func:`subspace_error`, :func:`clustering_accuracy`, :func:`best_permutation_confusion`.

Differences from pynsm 1.0.1 (correct by default, ``compat="pynsm"`` reproduces the loss bugs): see
``docs/upstream_differences.md`` (section pynsm).
"""

from .encoders import Conv2d, Encoder, Identity, Linear
from .metrics import (best_permutation_confusion, clustering_accuracy, principal_angle_cosines,
                      similarity_matching_cost, subspace_error)
from .models import Diagnostics, MultiSimilarityMatching, SimilarityMatching, SupervisedSimilarityMatching
from .rules import hebbian_update
from .solvers import kkt_residual, solve_nsm, solve_sm
from .iteration import (Adam, ExponentialLR, IterationLossModule, IterationModule, SGD, StepLR)
from .validation import extract_embeddings
from .composite import FunctionalEncoder, GroupedConv2d, ReLU, Sequential, Sigmoid, Tanh

__all__ = [
    "MultiSimilarityMatching", "SimilarityMatching", "SupervisedSimilarityMatching", "Diagnostics",
    "Encoder", "Linear", "Conv2d", "Identity",
    "solve_sm", "solve_nsm", "kkt_residual", "hebbian_update",
    "similarity_matching_cost", "principal_angle_cosines", "subspace_error", "clustering_accuracy",
    "best_permutation_confusion",
    "IterationModule", "IterationLossModule", "SGD", "Adam", "StepLR", "ExponentialLR", "extract_embeddings",
    "FunctionalEncoder", "ReLU", "Tanh", "Sigmoid", "Sequential", "GroupedConv2d",
]
