r"""Square maps with an algebraic structure (symmetric, skew, PSD, symplectic, Gershgorin discs, power bound) and
the injective tall map.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_float_array, check_int, check_real, check_shape
from .base import LinearBase, SquareLinear
from .functional import check_bool, check_bounds, sigmoid, softmax

__all__ = [
    "SymmetricLinear",
    "SkewSymmetricLinear",
    "DampedSkewSymmetricLinear",
    "PSDLinear",
    "SymplecticLinear",
    "GershgorinLinear",
    "PowerBoundLinear",
    "TrivialNullSpaceLinear",
]


def _kaiming_uniform(gen, shape, fan):
    k = 1.0 / math.sqrt(fan)
    return gen.uniform(-k, k, size=shape)


class _SquareWeight(SquareLinear):
    def _init_params(self, gen):
        self.params["weight"] = _kaiming_uniform(gen, (self.insize, self.outsize), self.outsize)


class SymmetricLinear(_SquareWeight):
    r"""Symmetric map :math:`W = (P + P^\top)/2`, :math:`\partial P = (G + G^\top)/2`.

    Guarantee (exact): :math:`W = W^\top`, hence a real spectrum (unbounded).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.SymmetricLinear(3, 3, rng=0)
    >>> W = m.effective_W()
    >>> np.allclose(W, W.T)
    True
    >>> m.forward(np.ones((2, 3))).shape
    (2, 3)
    """

    def _weight(self):
        P = self.params["weight"]
        return 0.5 * (P + P.T), None

    def _weight_vjp(self, G, cache):
        return {"weight": 0.5 * (G + G.T)}


class SkewSymmetricLinear(_SquareWeight):
    r"""Skew-symmetric map :math:`W = \mathrm{triu}(P) - \mathrm{triu}(P)^\top` (triu with the diagonal, which cancels).

    .. math:: \partial P = \mathrm{triu}(G - G^\top)\quad(\text{zero on the diagonal and the strict lower triangle}).

    Guarantee (exact): :math:`W^\top = -W`; the eigenvalues are purely imaginary (:math:`\pm i\omega`, plus 0 when n
    is odd), so :math:`\|x W^k\|` neither grows nor decays in continuous time.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.SkewSymmetricLinear(3, 3, rng=0)
    >>> W = m.effective_W()
    >>> np.allclose(W, -W.T)
    True
    >>> m.forward(np.ones((2, 3))).shape
    (2, 3)
    """

    def _weight(self):
        T = np.triu(self.params["weight"])
        return T - T.T, None

    def _weight_vjp(self, G, cache):
        return {"weight": np.triu(G - G.T)}


class DampedSkewSymmetricLinear(SkewSymmetricLinear):
    r"""Skew-symmetric map shifted by a learnable multiple of the identity.

    Parameters ``weight`` :math:`P`, ``gamma`` :math:`\gamma` (1, 1) :math:`\sim U(\sigma_\min, \sigma_\max)`, and
    ``eye`` :math:`I_n` (frozen, kept because it is in neuromancer's state_dict).

    .. math:: W = \mathrm{triu}(P) - \mathrm{triu}(P)^\top + \gamma I,\qquad \partial\gamma = \operatorname{tr} G.

    Guarantee (exact): every eigenvalue has real part exactly :math:`\gamma` (:math:`\gamma` is free after
    initialisation; the bounds only set the initial law).  For a discrete-time map :math:`|\lambda| \ge |\gamma|`.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.DampedSkewSymmetricLinear(3, 3, rng=0)
    >>> W = m.effective_W()
    >>> D = W + W.T                      # twice the identity shift
    >>> np.allclose(D, D[0, 0] * np.eye(3))
    True
    >>> m.forward(np.ones((2, 3))).shape
    (2, 3)
    """

    def __init__(self, insize, outsize, bias=False, *, sigma_min=0.1, sigma_max=0.5, **kw):
        self.sigma_min, self.sigma_max = check_bounds(sigma_min, sigma_max, strict=False)
        super().__init__(insize, outsize, bias, **kw)

    def _init_params(self, gen):
        super()._init_params(gen)
        self.params["gamma"] = gen.uniform(self.sigma_min, self.sigma_max, size=(1, 1))
        self.params["eye"] = np.eye(self.insize)
        self._frozen = {"eye"}

    def _weight(self):
        T = np.triu(self.params["weight"])
        return T - T.T + self.params["gamma"][0, 0] * self.params["eye"], None

    def _weight_vjp(self, G, cache):
        return {"weight": np.triu(G - G.T), "gamma": np.array([[np.sum(G * self.params["eye"])]])}


class PSDLinear(_SquareWeight):
    r"""Positive semi-definite map :math:`W = P^\top P`, :math:`\partial P = P (G + G^\top)`.

    Guarantee (exact): :math:`W = W^\top \succeq 0`; the eigenvalues are the squared singular values of P.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.PSDLinear(3, 3, rng=0)
    >>> W = m.effective_W()
    >>> bool(np.linalg.eigvalsh(W).min() >= -1e-12)
    True
    >>> m.forward(np.ones((2, 3))).shape
    (2, 3)
    """

    def _weight(self):
        P = self.params["weight"]
        return P.T @ P, None

    def _weight_vjp(self, G, cache):
        P = self.params["weight"]
        return {"weight": P @ (G + G.T)}


class SymplecticLinear(SquareLinear):
    r"""Symplectic map: :math:`W^\top J W = J` with :math:`J = \begin{pmatrix}0 & I\\ -I & 0\end{pmatrix}`.

    Parameter ``weight`` :math:`P` of shape (n/2, n/2), :math:`N(0, 4/n)`; :math:`S = (P + P^\top)/2`.  The map is the
    product of a lower and an upper symplectic shear (each symplectic because S is symmetric):

    .. math::

        W = \begin{pmatrix} I & 0\\ S & I\end{pmatrix}\begin{pmatrix} I & S\\ 0 & I\end{pmatrix}
          = \begin{pmatrix} I & S\\ S & I + S^2\end{pmatrix},

        \partial S = G_{12} + G_{21} + G_{22}S + S G_{22},\qquad \partial P = (\partial S + \partial S^\top)/2 .

    Guarantee (exact): :math:`W^\top J W = J`, :math:`\det W = 1`; eigenvalues come in pairs
    :math:`\lambda, 1/\lambda`.

    ``compat="neuromancer"`` gives neuromancer's map :math:`W = \begin{pmatrix}0 & P\\ -P^\top & 0\end{pmatrix}`,
    which is skew-symmetric (eigenvalues :math:`\pm i\,\mathrm{sv}(P)`) but **not** symplectic unless
    :math:`P^2 = I`; its VJP is :math:`\partial P = G_{12} - G_{21}^\top`.  n must be even.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.SymplecticLinear(4, 4, rng=0)
    >>> W = m.effective_W()
    >>> J = np.block([[np.zeros((2, 2)), np.eye(2)], [-np.eye(2), np.zeros((2, 2))]])
    >>> np.allclose(W.T @ J @ W, J)
    True
    >>> m.forward(np.ones((2, 4))).shape
    (2, 4)
    """

    def _check_sizes(self):
        super()._check_sizes()
        if self.insize % 2:
            raise ValueError(f"insize: SymplecticLinear needs an even size, got {self.insize}")

    def _init_params(self, gen):
        m = self.insize // 2
        self.params["weight"] = gen.normal(0.0, math.sqrt(2.0 / m), size=(m, m))

    def _weight(self):
        P = self.params["weight"]
        m = P.shape[0]
        W = np.zeros((2 * m, 2 * m), dtype=self.dtype)
        if self.compat == "neuromancer":
            W[:m, m:] = P
            W[m:, :m] = -P.T
            return W, None
        S = 0.5 * (P + P.T)
        W[:m, :m] = np.eye(m)
        W[:m, m:] = S
        W[m:, :m] = S
        W[m:, m:] = np.eye(m) + S @ S
        return W, S

    def _weight_vjp(self, G, S):
        m = self.insize // 2
        if self.compat == "neuromancer":
            return {"weight": G[:m, m:] - G[m:, :m].T}
        G22 = G[m:, m:]
        dS = G[:m, m:] + G[m:, :m] + G22 @ S + S @ G22
        return {"weight": 0.5 * (dS + dS.T)}


class GershgorinLinear(SquareLinear):
    r"""Eigenvalues confined by Gershgorin discs (Zhou et al., arXiv:2011.13492).

    Parameters ``w`` (n, n), :math:`U[0, 1)` with a zero diagonal, and ``diag`` :math:`d` (n,), :math:`N(0, 1)`.
    With :math:`\mu = (\sigma_\min+\sigma_\max)/2` and :math:`\rho = (\sigma_\min - \sigma_\max)/2 < 0`:

    .. math::

        \omega = w + w^\top \text{ (real) or } w,\quad \pi = \mathrm{softmax}\big(\omega_{i\ne j}\big)
        \text{ (one softmax over all } n(n-1) \text{ off-diagonal entries, row-major)},

        W_{ij} = \tfrac{\rho}{2}\,\pi_{(ij)}\ (i \ne j),\qquad W_{ii} = \mu + \rho\,(\sigma(d_i) - \tfrac12).

    VJP: with :math:`g = G_{i\ne j}`, :math:`\partial\omega_{i\ne j} = \tfrac\rho2\,\pi\odot(g - \sum g\pi)`,
    :math:`\partial w = \partial\omega + \partial\omega^\top` (real) or :math:`\partial\omega`, zero diagonal;
    :math:`\partial d_i = G_{ii}\,\rho\,\sigma(d_i)(1-\sigma(d_i))`.

    Guarantee (exact): :math:`\sum_{j\ne i}|W_{ij}| \le |\rho|/2` and :math:`|W_{ii} - \mu| < |\rho|/2`, so every
    Gershgorin disc, hence every eigenvalue, lies in :math:`|\lambda - \mu| < |\rho|`: in the interval
    :math:`(\sigma_\min, \sigma_\max)` when ``real`` (W symmetric), in the complex disc otherwise.

    ``compat="neuromancer"``: ``w`` and ``diag`` are frozen (neuromancer never registers them as parameters, so the
    map has nothing to train); the numbers are the same.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.GershgorinLinear(3, 3, rng=0)
    >>> W = m.effective_W()
    >>> bool(np.abs(np.linalg.eigvals(W)).max() <= 1.0)
    True
    >>> m.forward(np.ones((2, 3))).shape
    (2, 3)
    """

    def __init__(self, insize, outsize, bias=False, *, sigma_min=0.0, sigma_max=1.0, real=True, **kw):
        self.sigma_min, self.sigma_max = check_bounds(sigma_min, sigma_max)
        self.real = check_bool(real, "real")
        super().__init__(insize, outsize, bias, **kw)
        self.mean = 0.5 * (self.sigma_min + self.sigma_max)
        self.radius = 0.5 * (self.sigma_min - self.sigma_max)

    def _init_params(self, gen):
        n = self.insize
        self.params["w"] = gen.uniform(0.0, 1.0, size=(n, n)) * (1 - np.eye(n))
        self.params["diag"] = gen.normal(0.0, 1.0, size=(n,))
        if self.compat == "neuromancer":
            self._frozen = {"w", "diag"}

    def _weight(self):
        n = self.insize
        mean, radius = 0.5 * (self.sigma_min + self.sigma_max), 0.5 * (self.sigma_min - self.sigma_max)
        w, d = self.params["w"], self.params["diag"]
        off = ~np.eye(n, dtype=bool)
        omega = w + w.T if self.real else w
        W = np.zeros((n, n), dtype=self.dtype)
        sd = sigmoid(d)
        W[np.diag_indices(n)] = mean + radius * (sd - 0.5)
        pi = softmax(omega[off], axis=0) if n > 1 else np.zeros(0, dtype=self.dtype)
        W[off] = 0.5 * radius * pi
        return W, (off, pi, sd, radius)

    def _weight_vjp(self, G, cache):
        off, pi, sd, radius = cache
        n = self.insize
        g = G[off]
        domega = np.zeros_like(G)
        domega[off] = 0.5 * radius * pi * (g - np.sum(g * pi))
        dw = domega + domega.T if self.real else domega
        dw = dw * off
        return {"w": dw, "diag": np.diag(G) * radius * sd * (1 - sd)}


class PowerBoundLinear(SquareLinear):
    r"""Unconstrained square map with a soft bound on its spectral radius, estimated by power iteration.

    Parameter ``W`` (n, n), :math:`U[0, 1)`; ``effective_W() = W`` (raw).  The penalty starts from two random
    vectors :math:`a, b \sim N(0, I)` (drawn from ``rng`` at each :meth:`reg_error` call, or pinned with
    :meth:`set_start`), runs ``pwr_iters`` steps :math:`a \leftarrow Wa,\ b \leftarrow Wb`, both divided by
    :math:`\sqrt{\|a\|^2+\|b\|^2}`, then treats the final :math:`a, b` as constants (a stop-gradient):

    .. math::

        v = \frac{\|Wa\|^2 + \|Wb\|^2}{\|a\|^2 + \|b\|^2} \approx \rho(W)^2,\qquad
        R = \mathrm{relu}(v - p_\max),\qquad
        \partial R/\partial W = \mathbb 1[v > p_\max]\,\frac{2W(aa^\top + bb^\top)}{\|a\|^2+\|b\|^2}.

    Guarantee (soft, stochastic): :math:`\rho(W)^2 \lesssim p_\max` only where the penalty vanishes.  ``v`` estimates :math:`\rho^2` (exactly when the dominant eigenvalue is real or W is
    normal); for a non-normal W with a complex dominant pair it oscillates.  :meth:`reg_error_vjp` uses the start
    vectors of the most recent :meth:`reg_error` call.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.PowerBoundLinear(3, 3, rng=0)
    >>> W = m.effective_W()
    >>> float(m.reg_error()) >= 0.0   # penalty on the spectral radius above max_p
    True
    >>> m.forward(np.ones((2, 3))).shape
    (2, 3)
    """

    exact = False

    def __init__(self, insize, outsize, max_p=1, pwr_iters=200, bias=False, *, rng=None, **kw):
        # neuromancer's positional order (insize, outsize, max_p, pwr_iters, bias), unlike the other maps
        from .._checks import resolve_rng

        if isinstance(max_p, (bool, np.bool_)):
            raise TypeError(f"max_p: expected a real number, got the bool {max_p!r} (PowerBoundLinear's third "
                            "positional argument is max_p, as in neuromancer; pass bias=... by keyword)")

        self.max_p = check_real(max_p, "max_p")
        self.pwr_iters = check_int(pwr_iters, "pwr_iters", minimum=0)
        self.rng = resolve_rng(rng)
        self._start = None
        self._last_start = None
        super().__init__(insize, outsize, bias, rng=self.rng, **kw)

    def _init_params(self, gen):
        self.params["W"] = gen.uniform(0.0, 1.0, size=(self.insize, self.insize))

    def _weight(self):
        return self.params["W"].copy(), None

    def _weight_vjp(self, G, cache):
        return {"W": G}

    def set_start(self, a, b=None) -> None:
        """Pin the power-iteration start vectors a, b (each (n,)); ``set_start(None)`` draws them from ``rng`` again."""
        if a is None:
            self._start = None
            return
        a = as_float_array(a, "a", ndim=1, dtype=self.dtype)
        b = as_float_array(b, "b", ndim=1, dtype=self.dtype)
        check_shape(a, "a", (self.insize,))
        check_shape(b, "b", (self.insize,))
        if not (np.any(a) or np.any(b)):
            raise ValueError("a: expected a and b not both zero")
        self._start = (a.copy(), b.copy())

    def power_vectors(self, a, b):
        """Run the power iteration from (a, b); returns the final (a, b)."""
        W = self.params["W"]
        a, b = a.copy(), b.copy()
        for _ in range(self.pwr_iters):
            a = W @ a
            b = W @ b
            nrm = math.sqrt(float(a @ a + b @ b))
            a = a / nrm
            b = b / nrm
        return a, b

    def _reg_from(self, start):
        W = self.params["W"]
        a, b = self.power_vectors(*start)
        den = float(a @ a + b @ b)
        Wa, Wb = W @ a, W @ b
        v = float(Wa @ Wa + Wb @ Wb) / den
        value = max(v - self.max_p, 0.0)
        grad = 2.0 * (np.outer(Wa, a) + np.outer(Wb, b)) / den if v > self.max_p else np.zeros_like(W)
        return value, {"W": grad}, v

    def _draw_start(self):
        if self._start is not None:
            return self._start
        n = self.insize
        return (self.rng.standard_normal(n).astype(self.dtype), self.rng.standard_normal(n).astype(self.dtype))

    def reg_error(self) -> float:
        self._last_start = self._draw_start()
        value, _, _ = self._reg_from(self._last_start)
        return float(value)

    def reg_error_vjp(self, grad_out=None) -> dict:
        from .._checks import scalar_grad_out

        s = scalar_grad_out(grad_out)
        if self._last_start is None or self._start is not None:
            self._last_start = self._draw_start()
        _, grads, _ = self._reg_from(self._last_start)
        return {k: s * v for k, v in self._full(grads).items()}

    def eig_v_estimate(self):
        """neuromancer's ``eig_v_estimate()``: the power-iteration vectors ``[a, b]`` (each (n,)) after ``pwr_iters``
        steps from start vectors drawn from ``rng`` (or pinned with :meth:`set_start`).  Not differentiated (upstream
        runs it under ``no_grad``)."""
        a, b = self.power_vectors(*self._draw_start())
        return [a, b]

    def rho_squared_estimate(self) -> float:
        """The power-iteration estimate v of :math:`\\rho(W)^2` (same start vectors rule as :meth:`reg_error`)."""
        return self._reg_from(self._draw_start())[2]


class TrivialNullSpaceLinear(LinearBase):
    r"""Injective tall map (eq. 2 of arXiv:1808.00924): :math:`x \mapsto xW` has a trivial null space.

    Parameters ``Gl1`` (rank, insize) and ``Gl2`` (outsize - insize, insize), both :math:`U[0,1)`;
    rank defaults to :math:`\lfloor (n_\text{in}+1)/2 \rfloor`.  Needs insize <= outsize and no bias.

    .. math::

        W = \big[\,G_{l1}^\top G_{l1} + \epsilon I \ \big|\ G_{l2}^\top\,\big],\qquad
        \partial G_{l1} = G_{l1}(G_a + G_a^\top),\ \ \partial G_{l2} = G_b^\top \quad (G = [G_a | G_b]).

    Guarantee (exact): the left block is symmetric positive definite with :math:`\lambda_\min \ge \epsilon`, so W has
    full row rank and :math:`\sigma_\min(W) \ge \epsilon`: the map is injective.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.TrivialNullSpaceLinear(3, 5, rng=0)
    >>> W = m.effective_W()
    >>> int(np.linalg.matrix_rank(W))   # x -> xW is injective
    3
    >>> m.forward(np.ones((2, 3))).shape
    (2, 5)
    """

    tall = True

    def __init__(self, insize, outsize, bias=False, *, rank=None, epsilon=0.1, **kw):
        if check_bool(bias, "bias"):
            raise ValueError("bias: TrivialNullSpaceLinear must have no bias (bias=False), got True")
        self.epsilon = check_real(epsilon, "epsilon", positive=True)
        self._rank = rank
        super().__init__(insize, outsize, bias, **kw)

    def _check_sizes(self):
        if self.insize > self.outsize:
            raise ValueError(
                f"outsize: TrivialNullSpaceLinear needs insize <= outsize, got insize {self.insize} > outsize {self.outsize}"
            )
        self.rank = (self.insize + 1) // 2 if self._rank is None else check_int(self._rank, "rank", minimum=1)

    def _init_params(self, gen):
        self.params["Gl1"] = gen.uniform(0.0, 1.0, size=(self.rank, self.insize))
        self.params["Gl2"] = gen.uniform(0.0, 1.0, size=(self.outsize - self.insize, self.insize))

    def _weight(self):
        A, B = self.params["Gl1"], self.params["Gl2"]
        upper = A.T @ A + self.epsilon * np.eye(self.insize, dtype=self.dtype)
        return np.concatenate([upper, B], axis=0).T.copy(), None

    def _weight_vjp(self, G, cache):
        n = self.insize
        Ga, Gb = G[:, :n], G[:, n:]
        return {"Gl1": self.params["Gl1"] @ (Ga + Ga.T), "Gl2": Gb.T}
