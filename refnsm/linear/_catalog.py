"""Example configurations of every map (used by the tests, the cross-check adapter and the tutorial).

``CATALOG`` lists, for each class, a name, the constructor keyword options, the shapes (insize, outsize) it is
exercised at, and whether its penalty is smooth enough at initialisation to be finite-difference checked there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import registry as R
from .basic import IdentityInitLinear, L0Linear, LassoLinearRELU
from .householder import SymmetricSpectralLinear
from .svd import SymmetricSVDLinear

SQUARE = [(4, 4)]
RECT = [(4, 4), (5, 3), (3, 5)]


@dataclass
class Entry:
    name: str
    cls: type
    kwargs: dict = field(default_factory=dict)
    shapes: list = field(default_factory=lambda: list(RECT))
    perturb: float = 0.0  # add N(0, perturb^2) to every parameter before gradient checks (SVD: leave orthogonality)
    compat_differs: bool = False  # has a compat="neuromancer" mode that changes the numbers

    def build(self, insize, outsize, *, bias=False, seed=0, dtype=np.float64, compat=None, **extra):
        kw = {**self.kwargs, **extra}
        m = self.cls(insize, outsize, bias=bias, dtype=dtype, rng=seed, compat=compat, **kw)
        if self.perturb:
            gen = np.random.default_rng(seed + 1000)
            m.load_params({k: v + self.perturb * gen.standard_normal(v.shape) for k, v in m.params.items()
                           if k in m.trainable})
        return m


def _e(name, cls, shapes=RECT, **kw):
    return Entry(name, cls, shapes=list(shapes), **kw)


CATALOG = [
    _e("linear", R.Linear),
    _e("identity_init", IdentityInitLinear),
    _e("identity", R.IdentityLinear),
    _e("bounded_Lp_norm", R.BoundedNormLinear, kwargs={"sigma_min": 0.1, "sigma_max": 0.5}),
    _e("bounded_Lp_norm_p3", R.BoundedNormLinear, kwargs={"sigma_min": 3.0, "sigma_max": 4.0, "p": 3}),
    _e("nneg", R.NonNegativeLinear),
    _e("split", R.SplitLinear),
    _e("lasso", R.LassoLinear, kwargs={"gamma": 0.7}),
    _e("lasso_relu", LassoLinearRELU, kwargs={"gamma": 0.7}, perturb=0.3),
    _e("l0", L0Linear),
    _e("lstochastic", R.LeftStochasticLinear),
    _e("rstochastic", R.RightStochasticLinear),
    _e("pf", R.PerronFrobeniusLinear),
    _e("stable_split", R.StableSplitLinear),
    _e("symmetric", R.SymmetricLinear, shapes=SQUARE),
    _e("skew_symmetric", R.SkewSymmetricLinear, shapes=SQUARE),
    _e("damp_skew_symmetric", R.DampedSkewSymmetricLinear, shapes=SQUARE),
    _e("psd", R.PSDLinear, shapes=SQUARE),
    _e("symplectic", R.SymplecticLinear, shapes=SQUARE, compat_differs=True),
    _e("gershgorin", R.GershgorinLinear, shapes=SQUARE),
    _e("gershgorin_complex", R.GershgorinLinear, shapes=SQUARE, kwargs={"real": False}),
    _e("softSVD", R.SVDLinear, perturb=0.05),
    _e("learnSVD", R.SVDLinearLearnBounds, perturb=0.05),
    _e("symmetric_svd", SymmetricSVDLinear, shapes=SQUARE, perturb=0.05, compat_differs=True),
    _e("orthogonal", R.OrthogonalLinear, shapes=SQUARE),
    _e("spectral", R.SpectralLinear, perturb=0.0),
    _e("symmetric_spectral", SymmetricSpectralLinear, shapes=SQUARE),
    _e("schur", R.SchurDecompositionLinear, shapes=SQUARE, perturb=0.1),
    _e("trivial_nullspace", R.TrivialNullSpaceLinear, shapes=[(4, 4), (3, 5)]),
    _e("Power_bound", R.PowerBoundLinear, shapes=SQUARE, kwargs={"pwr_iters": 0, "max_p": 0.1}),
    _e("butterfly", R.ButterflyLinear, shapes=[(4, 4), (5, 3), (3, 5), (2, 7)]),
    _e("butterfly_untied_dec", R.ButterflyLinear, shapes=[(4, 4), (5, 3), (3, 9)],
       kwargs={"tied_weight": False, "increasing_stride": False}),
]
