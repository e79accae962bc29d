r"""A bit-compatible NumPy mirror of ``neurotorch.init.dale_`` on torch 2.13 CPU.

For reproducing, in NumPy, the exact Dale reference that neurotorch 0.0.2 generates (for example to compare a
``DaleLawL2`` loss with an upstream run bit for bit).  Use :func:`refnsm.regularization.dale` otherwise: this
mirror keeps every upstream restriction (square float32 matrices only; ``seed=None`` is the fixed seed
67280421310721) and depends on torch's CPU kernels, checked on torch 2.13 only.

What is mirrored (torch CPU internals, written from the spec, not from torch's code):

* the engine: MT19937 seeded with ``init_genrand(seed mod 2^32)``, which is NumPy's legacy seeding;
* ``torch.normal(0, sigma, (n,))`` in float32: for :math:`n \ge 16`, n 24-bit uniforms then Box-Muller in blocks of
  16 (:math:`r=\sqrt{-2\ln(1-u_j)}`, :math:`\theta = 2\pi u_{j+8}`), the last partial block recomputed from 16 fresh
  uniforms; for :math:`n < 16`, the serial float64 path (53-bit uniforms from two words, :math:`r\sin\theta` cached
  in the generator for the next draw);
* ``torch.randperm(n)``: the forward Fisher-Yates shuffle with ``word % (n - i)``.

Signs (all that ``DaleLawL2`` uses) are reproduced bit for bit.  Values: exact for tiny matrices (serial path);
for :math:`n \ge 16` normals torch's AVX2 kernel uses the approximate ``log256_ps``/``sincos256_ps`` of
avx_mathfun, so values differ by up to about 2e-6 absolute (measured on torch 2.13; the spec's "about one ulp"
is not what this machine shows).
"""

from __future__ import annotations

import math

import numpy as np

from .. import _checks

__all__ = ["dale_torch"]

TORCH_DEFAULT_SEED = 67280421310721


class _TorchCPUGenerator:
    """MT19937 with torch's CPU sampling routines (only those dale_ uses)."""

    def __init__(self, seed: int):
        self._bg = np.random.MT19937()
        self._bg._legacy_seeding(int(seed) & 0xFFFFFFFF)
        self._cached_normal = None

    def words(self, n: int) -> np.ndarray:
        return self._bg.random_raw(n).astype(np.uint64) if n else np.zeros(0, dtype=np.uint64)

    def _random64(self) -> int:
        hi, lo = (int(w) for w in self.words(2))
        return (hi << 32) | lo

    def _uniform53(self) -> float:
        return (self._random64() & ((1 << 53) - 1)) * 2.0 ** -53

    def normal_float32(self, n: int, std: float) -> np.ndarray:
        out = np.empty(n, dtype=np.float32)
        if n == 0:
            return out
        if n < 16:  # serial float64 path with the cached second Box-Muller sample
            for k in range(n):
                if self._cached_normal is not None:
                    z, self._cached_normal = self._cached_normal, None
                else:
                    u1 = self._uniform53()
                    u2 = self._uniform53()
                    r = math.sqrt(-2.0 * math.log1p(-u2))
                    theta = 2.0 * math.pi * u1
                    self._cached_normal = r * math.sin(theta)
                    z = r * math.cos(theta)
                with np.errstate(invalid="ignore", over="ignore"):
                    out[k] = np.float32(z * std)
            return out
        u = ((self.words(n) & np.uint64(0xFFFFFF)).astype(np.float32) * np.float32(2.0 ** -24))
        std32 = np.float32(std)
        for b in range(0, n - 15, 16):
            self._fill16(u, b, out, std32)
        if n % 16:
            tail = ((self.words(16) & np.uint64(0xFFFFFF)).astype(np.float32) * np.float32(2.0 ** -24))
            block = np.empty(16, dtype=np.float32)
            self._fill16(tail, 0, block, std32)
            out[n - 16:] = block
        return out

    @staticmethod
    def _fill16(u, b, out, std32):
        one = np.float32(1.0)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            u1 = one - u[b:b + 8]
            u2 = u[b + 8:b + 16]
            radius = np.sqrt(np.float32(-2.0) * np.log(u1))
            theta = (2.0 * math.pi * u2.astype(np.float64)).astype(np.float32)
            out[b:b + 8] = radius * np.cos(theta) * std32
            out[b + 8:b + 16] = radius * np.sin(theta) * std32

    def randperm(self, n: int) -> np.ndarray:
        a = np.arange(n, dtype=np.int64)
        w = self.words(max(n - 1, 0))
        for i in range(n - 1):
            z = int(w[i]) % (n - i)
            a[i], a[i + z] = a[i + z], a[i]
        return a


def dale_torch(n, inh_ratio: float = 0.5, rho: float = 0.99, inh_first: bool = True, seed=None) -> np.ndarray:
    r"""The float32 matrix that ``neurotorch.init.dale_(torch.empty(n, n), inh_ratio, rho, inh_first, seed)``
    returns on torch 2.13 CPU, computed in NumPy (module docstring).

    Parameters
    ----------
    n : int or (int, int)
        Size of the square matrix (upstream supports square matrices only; a non-square shape raises).
    inh_ratio, rho : float in [0, 1]
    inh_first : bool
    seed : int or None
        None means torch's fixed default seed 67280421310721 (so, as upstream, it is not random).

    Returns
    -------
    float32 ndarray of shape (n, n).  At ``rho == 1`` upstream's scale is infinite and so are the entries.
    Same signs as upstream; magnitudes to about 2e-6 (module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> W = R.dale_torch(4, inh_ratio=0.5, seed=0)
    >>> W.shape
    (4, 4)
    """
    if isinstance(n, (tuple, list)):
        shape = tuple(n)
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"n: expected a square shape (torch-compatible dale_ is defined for square matrices "
                             f"only; use refnsm.regularization.dale for others), got {shape}")
        n = shape[0]
    n = _checks.check_int(n, "n", minimum=1)
    inh_ratio = _checks.check_in_interval(inh_ratio, "inh_ratio", 0.0, 1.0)
    rho = _checks.check_in_interval(rho, "rho", 0.0, 1.0)
    if not isinstance(inh_first, (bool, np.bool_)):
        raise TypeError(f"inh_first: expected a bool, got {_checks._describe(inh_first)}")
    seed = TORCH_DEFAULT_SEED if seed is None else _checks.check_int(seed, "seed", minimum=0)

    g = _TorchCPUGenerator(seed)
    iu, ju = np.triu_indices(n)  # row-major, diagonal included
    T = iu.size
    n0 = int((1.0 - rho) * T)
    d = n * rho * (1.0 - rho)
    sigma = math.inf if d == 0 else 1.0 / math.sqrt(d)
    upper = np.concatenate([np.zeros(n0, dtype=np.float32), g.normal_float32(T - n0, sigma)])
    lower = np.concatenate([np.zeros(n0, dtype=np.float32), g.normal_float32(T - n0, sigma)])
    pu = g.randperm(T)
    pl = g.randperm(T)
    W = np.zeros((n, n), dtype=np.float32)
    W[iu, ju] = upper[pu]
    W[ju, iu] = lower[pl]
    out = np.abs(W)
    n_inh = int(n * inh_ratio)
    rows = np.arange(n_inh) if inh_first else g.randperm(n)[:n_inh]
    out[rows] *= np.float32(-1.0)
    return out
