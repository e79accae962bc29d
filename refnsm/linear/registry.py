"""Registries mirroring ``neuromancer.slim.maps``, ``square_maps`` and ``tall_maps``.

``maps`` holds neuromancer's 25 keys exactly (including its misspelling ``'skew_symetric'``), plus correctly
spelled aliases and the four classes neuromancer leaves out of its registry.
"""

from .basic import (BoundedNormLinear, IdentityInitLinear, IdentityLinear, L0Linear, LassoLinear, LassoLinearRELU,
                    Linear, NonNegativeLinear, SplitLinear)
from .butterfly import ButterflyLinear
from .householder import OrthogonalLinear, SchurDecompositionLinear, SpectralLinear, SymmetricSpectralLinear
from .stochastic import LeftStochasticLinear, PerronFrobeniusLinear, RightStochasticLinear, StableSplitLinear
from .svd import SVDLinear, SVDLinearLearnBounds, SymmetricSVDLinear
from .symmetric import (DampedSkewSymmetricLinear, GershgorinLinear, PowerBoundLinear, PSDLinear,
                        SkewSymmetricLinear, SymmetricLinear, SymplecticLinear, TrivialNullSpaceLinear)

__all__ = ["maps", "upstream_maps", "square_maps", "tall_maps"]

#: neuromancer 1.5.6's 25 registry keys, spelled as upstream spells them
upstream_maps = {
    "l0": L0Linear,
    "linear": Linear,
    "nneg": NonNegativeLinear,
    "lasso": LassoLinear,
    "lstochastic": LeftStochasticLinear,
    "rstochastic": RightStochasticLinear,
    "pf": PerronFrobeniusLinear,
    "symmetric": SymmetricLinear,
    "skew_symetric": SkewSymmetricLinear,
    "damp_skew_symmetric": DampedSkewSymmetricLinear,
    "split": SplitLinear,
    "stable_split": StableSplitLinear,
    "spectral": SpectralLinear,
    "softSVD": SVDLinear,
    "learnSVD": SVDLinearLearnBounds,
    "orthogonal": OrthogonalLinear,
    "psd": PSDLinear,
    "symplectic": SymplecticLinear,
    "butterfly": ButterflyLinear,
    "schur": SchurDecompositionLinear,
    "identity": IdentityLinear,
    "gershgorin": GershgorinLinear,
    "bounded_Lp_norm": BoundedNormLinear,
    "trivial_nullspace": TrivialNullSpaceLinear,
    "Power_bound": PowerBoundLinear,
}

#: the upstream keys, plus correct spellings and the classes neuromancer does not register
maps = dict(upstream_maps)
maps.update({
    "skew_symmetric": SkewSymmetricLinear,
    "lasso_relu": LassoLinearRELU,
    "identity_init": IdentityInitLinear,
    "symmetric_svd": SymmetricSVDLinear,
    "symmetric_spectral": SymmetricSpectralLinear,
    "power_bound": PowerBoundLinear,
})

#: maps that need insize == outsize (neuromancer's set)
square_maps = {SymmetricLinear, SkewSymmetricLinear, DampedSkewSymmetricLinear, PSDLinear, OrthogonalLinear,
               SymplecticLinear, SchurDecompositionLinear, SymmetricSpectralLinear, SymmetricSVDLinear,
               GershgorinLinear, PowerBoundLinear}

#: maps that need insize <= outsize
tall_maps = {TrivialNullSpaceLinear}
