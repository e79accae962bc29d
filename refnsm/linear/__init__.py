r"""Structured linear maps with hand-derived gradients, mirroring neuromancer 1.5.6 ``slim.linear``.

Every map is a weight parametrisation :math:`W = W(\theta)` of shape [insize, outsize] acting on row vectors,

.. math::

    y = xW + b,

whose structure carries a guarantee: a stochastic matrix whose rows really sum to 1
(:class:`RightStochasticLinear`), singular values really inside :math:`(\sigma_\min, \sigma_\max)`
(:class:`SpectralLinear`), a spectral radius really below 1 (:class:`PerronFrobeniusLinear`), and so on.  Each
class's docstring states its guarantee and whether it is **exact** (holds for every parameter value) or **soft**
(only encouraged by the penalty ``reg_error()``).

Common interface (:class:`LinearBase`)
--------------------------------------
``params`` (named like neuromancer's ``state_dict``), ``effective_W()``, ``effective_W_vjp(G)``, ``forward(x)``,
``backward(grad_y)`` (returns :math:`\partial L/\partial x`, fills ``grads``), ``reg_error()``,
``reg_error_vjp()``, ``eig()``, ``with_params(...)``.  Constructors take ``(insize, outsize, bias=False)`` then
keyword-only options, ``dtype``, ``rng``, ``params``, ``compat`` (``"neuromancer"`` reproduces upstream numbers
where they differ from the intended math; see ``docs/upstream_differences.md``) and ``device``.

GPU: every map built with ``device="cuda"`` (or given ``m.device = "cuda"``) runs ``effective_W``, ``effective_W_vjp``,
``forward`` and ``backward`` with the numba.cuda twins of :mod:`refnsm.linear._cuda_kernels` (imported only then):
:class:`Linear`, :class:`SpectralLinear`, :class:`OrthogonalLinear` and :class:`PerronFrobeniusLinear` build W on the
device, the others on the host (a cheap parametrisation) and multiply on the device.  See ``docs/cuda.md``.

Modules: :mod:`.basic` (plain, identity, norm, sparsity, L0), :mod:`.stochastic` (softmax and Perron–Frobenius),
:mod:`.symmetric` (symmetric, skew, PSD, symplectic, Gershgorin, power bound, trivial null space), :mod:`.svd`
(soft SVD), :mod:`.householder` (orthogonal, spectral, Schur), :mod:`.butterfly`, :mod:`.registry`.
Nothing is compiled at import; the Numba kernels (:mod:`._kernels`) compile on first use.
"""

from .base import LinearBase, SquareLinear
from .functional import Hprod, Hprod_vjp, eig_vjp, straight_through_relu, straight_through_relu_vjp
from .basic import (BoundedNormLinear, IdentityInitLinear, IdentityLinear, L0Linear, LassoLinear, LassoLinearRELU,
                    Linear, NonNegativeLinear, SplitLinear)
from .butterfly import Butterfly, ButterflyLinear
from .householder import (OrthogonalLinear, SchurDecompositionLinear, SpectralLinear, SymmetricSpectralLinear,
                          householder_matrix, householder_matrix_vjp)
from .registry import maps, square_maps, tall_maps, upstream_maps
from .stochastic import LeftStochasticLinear, PerronFrobeniusLinear, RightStochasticLinear, StableSplitLinear
from .svd import SVDLinear, SVDLinearLearnBounds, SymmetricSVDLinear, orthogonality_error
from .symmetric import (DampedSkewSymmetricLinear, GershgorinLinear, PowerBoundLinear, PSDLinear,
                        SkewSymmetricLinear, SymmetricLinear, SymplecticLinear, TrivialNullSpaceLinear)

#: alias of neuromancer's ``IdentityGradReLU`` (a torch autograd Function there, a function pair here)
IdentityGradReLU = straight_through_relu

__all__ = [
    "LinearBase", "SquareLinear", "Linear", "IdentityInitLinear", "IdentityLinear", "BoundedNormLinear",
    "NonNegativeLinear", "SplitLinear", "LassoLinear", "LassoLinearRELU", "L0Linear", "LeftStochasticLinear",
    "RightStochasticLinear", "PerronFrobeniusLinear", "SymmetricLinear", "SkewSymmetricLinear",
    "DampedSkewSymmetricLinear", "PSDLinear", "OrthogonalLinear", "SpectralLinear", "SymmetricSpectralLinear",
    "SVDLinear", "SVDLinearLearnBounds", "SymmetricSVDLinear", "StableSplitLinear", "GershgorinLinear",
    "PowerBoundLinear", "SchurDecompositionLinear", "SymplecticLinear", "TrivialNullSpaceLinear", "ButterflyLinear",
    "Butterfly",
    "maps", "upstream_maps", "square_maps", "tall_maps", "Hprod", "Hprod_vjp", "straight_through_relu",
    "straight_through_relu_vjp", "IdentityGradReLU", "householder_matrix", "householder_matrix_vjp",
    "orthogonality_error", "eig_vjp",
]
