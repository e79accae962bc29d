r"""Dale's-law weight initialisation: :func:`dale` (new array) and :func:`dale_` (fills an array in place).

A weight matrix :math:`W \in \mathbb{R}^{N\times M}` obeys Dale's law when every presynaptic neuron (a row, the
"i to j" convention of neurotorch's ``dale_``) is either excitatory (all its outgoing weights
:math:`\ge 0`) or inhibitory (all :math:`\le 0`).  The generator draws

.. math::

    W_{ij} = s_i\, b_{ij}\, |z_{ij}|, \qquad z_{ij} \sim \mathcal N(0, \sigma^2),\quad
    \sigma = \frac{1}{\sqrt{N \rho (1-\rho)}},

with row signs :math:`s_i = -1` for :math:`\lfloor N\cdot\text{inh\_ratio}\rfloor` inhibitory rows (the first
ones when ``inh_first``, else a uniformly random subset) and :math:`+1` otherwise, and a connectivity mask
:math:`b` with exactly :math:`\lfloor (1-\rho) N M \rfloor` zeros placed uniformly at random (so the
connection density is :math:`\rho`).  This is the law of neurotorch 0.0.2's ``dale_`` (same row signs, same
:math:`\sigma`, zero fraction :math:`\approx 1-\rho`, half-normal magnitudes) without its defects: it works for
rectangular matrices (upstream raises for :math:`N<M` and leaves rows :math:`\ge M` uninitialised for
:math:`N>M`) and for float64 (upstream accepts float32 only), and ``seed=None`` draws fresh entropy
(upstream's ``seed=None`` always returns the same matrix).  The bits differ from torch's generator.

At :math:`\rho = 1` the formula for :math:`\sigma` is infinite (upstream fills the matrix with
:math:`\pm\infty`); refnsm then requires an explicit ``scale``.  At :math:`\rho = 0` the matrix is all zeros.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _checks

__all__ = ["dale", "dale_", "dale_scale"]


def dale_scale(n_rows: int, rho: float) -> float:
    r"""neurotorch's magnitude scale :math:`\sigma = 1/\sqrt{N\rho(1-\rho)}` (``inf`` at :math:`\rho\in\{0,1\}`).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> round(R.dale_scale(100, 0.99), 6)
    1.005038
    """
    n_rows = _checks.check_int(n_rows, "n_rows", minimum=1)
    rho = _checks.check_in_interval(rho, "rho", 0.0, 1.0)
    d = n_rows * rho * (1.0 - rho)
    return math.inf if d == 0 else 1.0 / math.sqrt(d)


def _check_args(inh_ratio, rho, inh_first, scale):
    inh_ratio = _checks.check_in_interval(inh_ratio, "inh_ratio", 0.0, 1.0)
    rho = _checks.check_in_interval(rho, "rho", 0.0, 1.0)
    if not isinstance(inh_first, (bool, np.bool_)):
        raise TypeError(f"inh_first: expected a bool, got {_checks._describe(inh_first)}")
    if scale is not None:
        scale = _checks.check_real(scale, "scale", positive=True)
    return inh_ratio, rho, bool(inh_first), scale


def _check_shape(shape):
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, (bool, np.bool_)):
        shape = (int(shape), int(shape))
    try:
        shape = tuple(_checks.check_int(s, "shape", minimum=1) for s in shape)
    except TypeError:
        raise TypeError(f"shape: expected an int N or a pair (N, M), got {_checks._describe(shape)}") from None
    if len(shape) != 2:
        raise ValueError(f"shape: expected 2 dimensions (N_pre, N_post), got {shape}")
    return shape


def _generate(shape, inh_ratio, rho, inh_first, rng, scale, dtype):
    n, m = shape
    if scale is None:
        scale = dale_scale(n, rho)
        if math.isinf(scale) and rho > 0:
            raise ValueError("scale: rho=1 makes neurotorch's scale 1/sqrt(N*rho*(1-rho)) infinite; pass scale= "
                             "explicitly (for example 1/sqrt(N))")
    total = n * m
    n_zero = int((1.0 - rho) * total)
    out = np.zeros(total, dtype=np.float64)
    if n_zero < total:
        keep = rng.permutation(total)[n_zero:]
        out[keep] = np.abs(rng.normal(0.0, scale, size=keep.size))
    out = out.reshape(n, m)
    n_inh = int(n * inh_ratio)
    rows = np.arange(n_inh) if inh_first else rng.permutation(n)[:n_inh]
    out[rows] *= -1.0
    return out.astype(dtype, copy=False)


def dale(shape, inh_ratio: float = 0.5, rho: float = 0.99, inh_first: bool = True, rng=None, *,
         scale: float | None = None, dtype=np.float64) -> np.ndarray:
    r"""A new Dale's-law weight matrix (module docstring for the law).

    Parameters
    ----------
    shape : int or (int, int)
        ``(N, M)``: N presynaptic neurons (rows, each with one sign) and M postsynaptic ones.  An int means square.
    inh_ratio : float in [0, 1]
        Fraction of inhibitory **rows** (neurons): :math:`\lfloor N\cdot\text{inh\_ratio}\rfloor` of them.
    rho : float in [0, 1]
        Connection density: :math:`\lfloor(1-\rho)NM\rfloor` entries are exactly 0.
    inh_first : bool
        Inhibitory rows are the first ones (default) or a random subset.
    rng : numpy.random.Generator, int or None
        Randomness (None: fresh entropy).
    scale : float, optional
        Standard deviation :math:`\sigma` of the normal magnitudes; default :math:`1/\sqrt{N\rho(1-\rho)}`.
    dtype : float32 or float64

    Returns
    -------
    ndarray of shape ``(N, M)``; row :math:`i` is :math:`\le 0` when inhibitory and :math:`\ge 0` otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> W = R.dale((4, 6), inh_ratio=0.5, rng=0)
    >>> W.shape, sorted(set(np.sign(W).sum(axis=1).astype(int).tolist()))   # each row has one sign
    ((4, 6), [-6, 6])
    """
    shape = _check_shape(shape)
    inh_ratio, rho, inh_first, scale = _check_args(inh_ratio, rho, inh_first, scale)
    dtype = _checks.check_float_dtype(dtype)
    rng = _checks.resolve_rng(rng)
    return _generate(shape, inh_ratio, rho, inh_first, rng, scale, dtype)


def dale_(tensor: np.ndarray, inh_ratio: float = 0.5, rho: float = 0.99, inh_first: bool = True, seed=None, *,
          scale: float | None = None) -> np.ndarray:
    r"""Fill ``tensor`` **in place** with :func:`dale` (the trailing underscore says so) and return it.

    The in-place twin of :func:`dale` for users porting ``neurotorch.init.dale_(tensor, ...)``: same arguments
    (``seed`` is a Generator, an int or None, and None means fresh entropy).  ``tensor`` must be a writeable
    2-D float32/float64 ndarray; unlike upstream, the array you pass holds the final (signed) result.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> W = np.zeros((4, 6))
    >>> R.dale_(W, inh_ratio=0.5, seed=0) is W    # in place, like torch's init functions
    True
    """
    if not isinstance(tensor, np.ndarray) or tensor.dtype not in _checks.FLOAT_DTYPES:
        raise TypeError(f"tensor: expected a float32/float64 numpy array to fill in place, "
                        f"got {_checks._describe(tensor)}")
    if tensor.ndim != 2:
        raise ValueError(f"tensor: expected 2 dimensions (N_pre, N_post), got shape {tensor.shape}")
    if not tensor.flags.writeable:
        raise ValueError("tensor: expected a writeable array")
    if tensor.size == 0:
        raise ValueError(f"tensor: expected a non-empty array, got shape {tensor.shape}")
    inh_ratio, rho, inh_first, scale = _check_args(inh_ratio, rho, inh_first, scale)
    rng = _checks.resolve_rng(seed)
    tensor[...] = _generate(tensor.shape, inh_ratio, rho, inh_first, rng, scale, tensor.dtype)
    return tensor
