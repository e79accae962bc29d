r"""Connectome regularizers: weight penalties that encode biology, mirroring neurotorch 0.0.2.

Every penalty has an exact value and a hand-derived gradient (torch's conventions at the non-smooth
points), as plain functions with VJPs (:mod:`refnsm.regularization.functional`) and as regularizer objects that
hold parameter arrays by reference (:mod:`refnsm.regularization.regularizers`).  Rows of a weight matrix are
presynaptic neurons ("i to j").  For parameters :math:`P_1,\dots,P_K` and weight :math:`\Lambda`:

======================================  ===========================================================================
class                                    loss
======================================  ===========================================================================
:class:`Lp` (``L1``, ``L2``)             :math:`\Lambda\sum_k\|P_k\|_p`, ``torch.linalg.norm`` semantics: vector norm
                                         for 1-D, **induced matrix norm** for 2-D (``L1`` = max abs column sum,
                                         ``L2`` = :math:`\sigma_{\max}`), or ``mode="entrywise"``
:class:`DaleLawL2`                       :math:`\Lambda\sum_k \alpha\|W_k\|_F^2 - (1-\alpha)\langle W_k,
                                         \mathrm{sign}(R_k)\rangle`
:class:`DaleLaw`                         the same with :math:`\alpha = 0`
:class:`ExcRatioTargetRegularization`    :math:`\Lambda\sum_k |\overline{\varphi(P_k)} + 1 - 2t|`,
                                         :math:`\varphi(x) = x/(1+|x|)` (softsign) or sign
:class:`InhRatioTargetRegularization`    the same with :math:`t = 1 - t_{\mathrm{inh}}`
:class:`WeightsDistance`                 :math:`\Lambda\sum_k \|\,|P_k - R_k|\,\|_p`
:class:`RegularizationList`              the sum of its children (each with its own :math:`\Lambda`)
======================================  ===========================================================================

:func:`dale` / :func:`dale_` generate Dale's-law reference weights (any shape, float32/float64, honest
randomness); :func:`dale_torch` reproduces neurotorch's ``dale_`` bit for bit (torch 2.13 CPU).
:class:`SGD` and :func:`regularization_step` are the training-loop glue (neurotorch's
``on_optimization_end`` without its pitfalls).

Example
-------
>>> import numpy as np
>>> from refnsm.regularization import DaleLawL2, SGD, regularization_step
>>> W = np.array([[1.0, -2.0], [2.0, 1.0]])
>>> reg = DaleLawL2({"W": W}, alpha=0.5, reference_weights=[np.ones((2, 2))])
>>> float(reg())                      # 0.5 * ||W||_F^2 - 0.5 * <W, 1> = 0.5 * 10 - 0.5 * 2
4.0
>>> loss = regularization_step(reg, lr=0.1)   # W <- W - 0.1 * (W - 0.5)  (in place)
>>> W
array([[ 0.95, -1.75],
       [ 1.85,  0.95]])
"""

from .functional import (
    dale_law_l2,
    dale_law_l2_vjp,
    exc_ratio_loss,
    exc_ratio_loss_vjp,
    lp_norm,
    lp_norm_vjp,
    weights_distance,
    weights_distance_vjp,
)
from .init import dale, dale_, dale_scale
from .torch_compat import dale_torch
from .regularizers import (
    L1,
    L2,
    SGD,
    BaseRegularization,
    DaleLaw,
    DaleLawL2,
    ExcRatioTargetRegularization,
    InhRatioTargetRegularization,
    Lp,
    RegularizationList,
    WeightsDistance,
    regularization_step,
)

__all__ = [
    "BaseRegularization", "RegularizationList", "Lp", "L1", "L2", "DaleLawL2", "DaleLaw",
    "ExcRatioTargetRegularization", "InhRatioTargetRegularization", "WeightsDistance",
    "SGD", "regularization_step",
    "dale", "dale_", "dale_scale", "dale_torch",
    "lp_norm", "lp_norm_vjp", "dale_law_l2", "dale_law_l2_vjp", "exc_ratio_loss", "exc_ratio_loss_vjp",
    "weights_distance", "weights_distance_vjp",
]
