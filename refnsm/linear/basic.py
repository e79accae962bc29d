r"""Plain, identity, norm-bounded and elementwise/sparsity maps.

Each class states its guarantee and whether it is *exact* (true for every parameter value) or *soft* (only
encouraged by ``reg_error``).  Kinks follow torch's conventions: :math:`\mathrm{relu}'(0) = 0`,
:math:`|x|'(0) = 0`, :math:`\mathrm{hardtanh}'` is 1 only on the open interval, :math:`\mathrm{clamp}'` is 1 on the
closed one.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_float_array, check_int, check_real, check_shape, resolve_rng
from .base import LinearBase
from .functional import check_bool, check_bounds, sigmoid

__all__ = [
    "Linear",
    "IdentityInitLinear",
    "IdentityLinear",
    "BoundedNormLinear",
    "NonNegativeLinear",
    "SplitLinear",
    "LassoLinear",
    "LassoLinearRELU",
    "L0Linear",
]


def _kaiming_uniform(gen, shape, fan):
    """neuromancer's LinearBase weight init: kaiming_uniform_(a=sqrt 5) = U(-1/sqrt(fan), 1/sqrt(fan))."""
    k = 1.0 / math.sqrt(fan)
    return gen.uniform(-k, k, size=shape)


def _real_or_inf(p):
    """A real order, infinities included (``check_real`` refuses them)."""
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"p: expected a real >= 1, inf, -inf, 'fro' or 'nuc', got {type(p).__name__} {p!r}")
    p = float(p)
    if math.isnan(p):
        raise ValueError("p: expected a real >= 1, inf, -inf, 'fro' or 'nuc', got nan")
    return p


def _reduce_to(g, shape):
    """Sum a broadcast gradient back to ``shape`` (the adjoint of NumPy broadcasting)."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for i, n in enumerate(shape):
        if n == 1 and g.shape[i] != 1:
            g = g.sum(axis=i, keepdims=True)
    return g


class Linear(LinearBase):
    r"""Unconstrained dense map (``torch.nn.Linear`` layout).

    Parameters ``weight`` :math:`A` (outsize, insize) and ``bias`` (outsize,), both :math:`U(\pm 1/\sqrt{n_\text{in}})`.

    .. math:: W = A^\top, \qquad \partial A = G^\top .

    Guarantee: none, exact or soft (the reference point for the structured maps).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.Linear(3, 2, bias=True, rng=0)
    >>> W = m.effective_W()
    >>> x = np.ones((1, 3))
    >>> np.allclose(m.forward(x), x @ W + m.params['bias'])
    True
    >>> m.forward(np.ones((2, 3))).shape
    (2, 2)
    """

    def _init_bias(self, gen):
        if self.use_bias:
            k = 1.0 / math.sqrt(self.insize)
            self.params["bias"] = gen.uniform(-k, k, size=(self.outsize,))

    def _init_params(self, gen):
        self.params["weight"] = _kaiming_uniform(gen, (self.outsize, self.insize), self.insize)

    def _weight(self):
        return self.params["weight"].T.copy(), None

    def _weight_vjp(self, G, cache):
        return {"weight": G.T}

    def _device_weight(self, K, p):
        return K.transpose(p["weight"]), None

    def _device_weight_vjp(self, K, G, cache, p):
        return {"weight": K.transpose(G)}


class IdentityInitLinear(Linear):
    r"""A :class:`Linear` map initialised to :math:`W = I_{n_\text{in}\times n_\text{out}}` and :math:`b = 0` (both trainable).

    Guarantee: :math:`W = I` at initialisation only.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.IdentityInitLinear(3, 3, rng=0)
    >>> W = m.effective_W()
    >>> np.array_equal(W, np.eye(3))
    True
    >>> m.forward(np.ones((2, 3))).shape
    (2, 3)
    """

    def _init_params(self, gen):
        self.params["weight"] = np.eye(self.outsize, self.insize)
        if self.use_bias:
            self.params["bias"] = np.zeros(self.outsize)


class IdentityLinear(IdentityInitLinear):
    r"""The fixed map :math:`W = I_{n_\text{in}\times n_\text{out}}`, :math:`b = 0`: copies the first min(in, out) features
    and zero-pads the rest.  Nothing is trainable (``trainable == ()``; gradients are zeros).
    Guarantee (exact): W = I always.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.IdentityLinear(3, 4)
    >>> m.forward(np.array([[1.0, 2.0, 3.0]]))   # copies, then zero-pads
    array([[1., 2., 3., 0.]])
    """

    def _init_params(self, gen):
        super()._init_params(gen)
        self._frozen = set(self.params)


class BoundedNormLinear(Linear):
    r"""A :class:`Linear` map with a soft bound on the entrywise :math:`p`-norm of :math:`A` (Frobenius for p = 2).

    .. math::

        n = \|A\|_p = \Big(\sum_{ij} |A_{ij}|^p\Big)^{1/p}, \qquad
        R = \max(n - \sigma_\max, 0) + \max(\sigma_\min - n, 0),

        \partial R/\partial A = (\mathbb 1[n > \sigma_\max] - \mathbb 1[n < \sigma_\min])\,
        \operatorname{sign}(A)|A|^{p-1}/n^{p-1}

    (a tie :math:`n = \sigma_{\max}` or :math:`n = \sigma_{\min}` contributes 1/2, like torch's binary max).
    Guarantee (soft): :math:`\sigma_\min \le n \le \sigma_\max` only where R = 0.  Note: the entrywise norm, not the spectral norm.

    ``p`` is a real :math:`\ge 1` or one of the other orders ``torch.norm`` accepts: ``inf`` (:math:`\max|A_{ij}|`),
    ``-inf`` (:math:`\min|A_{ij}|`, not a norm), ``'fro'`` (= 2) and ``'nuc'`` (the nuclear norm
    :math:`\sum_k\sigma_k(A)`, gradient :math:`UV^\top` from the thin SVD: a subgradient, and not unique, when A is
    rank-deficient).  For :math:`\pm\infty` the gradient is shared equally among tied entries (torch's
    ``amax``/``amin`` rule).
    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.BoundedNormLinear(3, 3, rng=0)
    >>> W = m.effective_W()
    >>> float(m.reg_error()) >= 0.0   # the soft bound's penalty
    True
    >>> m.forward(np.ones((2, 3))).shape
    (2, 3)
    """

    exact = False

    def __init__(self, insize, outsize, bias=False, *, sigma_min=0.1, sigma_max=1.0, p=2, **kw):
        self.sigma_min, self.sigma_max = check_bounds(sigma_min, sigma_max, strict=False)
        if isinstance(p, str):
            if p not in ("fro", "nuc"):
                raise ValueError(f"p: expected a real >= 1, inf, -inf, 'fro' or 'nuc', got {p!r}")
            self.p = 2.0 if p == "fro" else p
        else:
            self.p = _real_or_inf(p)
            if self.p < 1 and self.p != -math.inf:
                raise ValueError(f"p: expected p >= 1 (a norm), inf or -inf, got {self.p}")
        super().__init__(insize, outsize, bias, **kw)

    def _norm_grad(self, A):
        """(n, dn/dA) for the chosen order."""
        p = self.p
        if p == "nuc":
            U, sv, Vt = np.linalg.svd(A, full_matrices=False)
            return float(sv.sum()), U @ Vt
        absA = np.abs(A)
        if math.isinf(p):
            n = float(absA.max() if p > 0 else absA.min())
            hit = absA == n
            return n, np.sign(A) * hit / np.count_nonzero(hit)
        n = float(np.sum(absA ** p) ** (1.0 / p))
        return n, (np.sign(A) * absA ** (p - 1) / n ** (p - 1) if n > 0 else np.zeros_like(A))

    def _reg(self):
        A = self.params["weight"]
        p = self.p
        if p == "nuc" or math.isinf(p):
            n, dn = self._norm_grad(A)
            value = max(n - self.sigma_max, 0.0) + max(self.sigma_min - n, 0.0)
            tie = lambda a, b: 1.0 if a > b else (0.5 if a == b else 0.0)  # noqa: E731
            coef = tie(n, self.sigma_max) - tie(self.sigma_min, n)
            return value, ({} if coef == 0.0 else {"weight": coef * dn})
        n = float(np.sum(np.abs(A) ** p) ** (1.0 / p))
        value = max(n - self.sigma_max, 0.0) + max(self.sigma_min - n, 0.0)
        tie = lambda a, b: 1.0 if a > b else (0.5 if a == b else 0.0)  # noqa: E731
        coef = tie(n, self.sigma_max) - tie(self.sigma_min, n)
        if coef == 0.0 or n == 0.0:
            return value, {}
        dn = np.sign(A) * np.abs(A) ** (p - 1) / n ** (p - 1)
        return value, {"weight": coef * dn}


class NonNegativeLinear(LinearBase):
    r"""Non-negative map through a ReLU.

    Parameter ``weight`` :math:`P` (insize, outsize), initialised :math:`0.1\,|U(\pm 1/\sqrt{n_\text{out}})|`.

    .. math:: W = \mathrm{relu}(P), \qquad \partial P = G \odot \mathbb 1[P > 0].

    Guarantee (exact): :math:`W \ge 0` elementwise.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.NonNegativeLinear(3, 2, rng=0)
    >>> W = m.effective_W()
    >>> bool((W >= 0).all())
    True
    >>> m.forward(np.ones((2, 3))).shape
    (2, 2)
    """

    def _init_params(self, gen):
        self.params["weight"] = 0.1 * np.abs(_kaiming_uniform(gen, (self.insize, self.outsize), self.outsize))

    def _weight(self):
        P = self.params["weight"]
        return np.maximum(P, 0.0), None

    def _weight_vjp(self, G, cache):
        return {"weight": G * (self.params["weight"] > 0)}


class SplitLinear(LinearBase):
    r"""Difference of two non-negative maps.

    Parameters ``B.weight`` and ``C.weight`` (insize, outsize), each initialised like :class:`NonNegativeLinear`.

    .. math:: W = \mathrm{relu}(B) - \mathrm{relu}(C), \quad \partial B = G\odot\mathbb 1[B>0],\quad
              \partial C = -G\odot\mathbb 1[C>0].

    Guarantee: none (W has arbitrary signs; no "regular splitting" property is enforced).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.SplitLinear(3, 2, rng=0)
    >>> W = m.effective_W()
    >>> W.shape
    (3, 2)
    >>> m.forward(np.ones((2, 3))).shape
    (2, 2)
    """

    def _init_params(self, gen):
        for key in ("B.weight", "C.weight"):
            self.params[key] = 0.1 * np.abs(_kaiming_uniform(gen, (self.insize, self.outsize), self.outsize))

    def _weight(self):
        return np.maximum(self.params["B.weight"], 0.0) - np.maximum(self.params["C.weight"], 0.0), None

    def _weight_vjp(self, G, cache):
        return {"B.weight": G * (self.params["B.weight"] > 0), "C.weight": -G * (self.params["C.weight"] > 0)}


def _lasso_init(self, gen):
    std = math.sqrt(2.0 / self.outsize)  # kaiming_normal on an (in, out) tensor: N(0, 2/out)
    self.params["u_param"] = np.abs(gen.normal(0.0, std, size=(self.insize, self.outsize))) / 2
    self.params["v_param"] = np.abs(gen.normal(0.0, std, size=(self.insize, self.outsize))) / 2


class LassoLinear(LinearBase):
    r"""Sparse map: :math:`W = u - v` with an L1 penalty.

    Parameters ``u_param``, ``v_param`` (insize, outsize), each :math:`|N(0, 2/n_\text{out})|/2`.

    .. math::

        W = u - v,\quad R = \gamma \sum_{ij}|W_{ij}|,\quad \partial u = G,\ \partial v = -G;\quad
        \partial_u R = \gamma\,\operatorname{sign}(W),\ \partial_v R = -\gamma\,\operatorname{sign}(W).

    Guarantee (soft): sparsity is encouraged by the L1 penalty, not enforced.  With ``u, v >= 0`` this is the split form of the lasso;
    :meth:`project` applies the projection :math:`u \leftarrow \max(u, 0)`, :math:`v \leftarrow \max(v, 0)`
    (projected gradient descent).  ``compat="neuromancer"``: ``forward`` projects the parameters in place before
    computing y, as neuromancer does; by default ``forward`` never mutates the parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.LassoLinear(3, 2, rng=0)
    >>> W = m.effective_W()
    >>> float(m.reg_error()) > 0.0   # the L1 penalty
    True
    >>> m.forward(np.ones((2, 3))).shape
    (2, 2)
    """

    exact = False

    def __init__(self, insize, outsize, bias=False, *, gamma=1.0, **kw):
        self.gamma = check_real(gamma, "gamma", nonnegative=True)
        super().__init__(insize, outsize, bias, **kw)

    _init_params = _lasso_init

    def project(self) -> None:
        """In place: u <- max(u, 0), v <- max(v, 0)."""
        for k in ("u_param", "v_param"):
            self.params[k] = np.maximum(self.params[k], 0.0)

    def forward(self, x):
        x = self._check_x(x)
        if self.compat == "neuromancer":
            self.project()
        return super().forward(x)

    __call__ = forward

    def _weight(self):
        return self.params["u_param"] - self.params["v_param"], None

    def _weight_vjp(self, G, cache):
        return {"u_param": G, "v_param": -G}

    def _reg(self):
        W, _ = self._weight()
        s = self.gamma * np.sign(W)
        return self.gamma * float(np.sum(np.abs(W))), {"u_param": s, "v_param": -s}


class LassoLinearRELU(LinearBase):
    r"""Sparse map with non-negative parts through ReLUs (no projection step).

    .. math::

        W = \mathrm{relu}(u) - \mathrm{relu}(v),\quad R = \gamma\|W\|_1,\quad
        \partial u = G\odot\mathbb 1[u>0],\ \partial v = -G\odot\mathbb 1[v>0],

        \partial_u R = \gamma\,\operatorname{sign}(W)\odot\mathbb 1[u>0],\quad
        \partial_v R = -\gamma\,\operatorname{sign}(W)\odot\mathbb 1[v>0].

    Guarantee (soft): sparsity is encouraged by the L1 penalty, not enforced.  Same initialisation as
    :class:`LassoLinear`.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.LassoLinearRELU(3, 2, rng=0)
    >>> W = m.effective_W()
    >>> W.shape
    (3, 2)
    >>> m.forward(np.ones((2, 3))).shape
    (2, 2)
    """

    exact = False

    def __init__(self, insize, outsize, bias=False, *, gamma=1.0, **kw):
        self.gamma = check_real(gamma, "gamma", nonnegative=True)
        super().__init__(insize, outsize, bias, **kw)

    _init_params = _lasso_init

    def _weight(self):
        return np.maximum(self.params["u_param"], 0.0) - np.maximum(self.params["v_param"], 0.0), None

    def _weight_vjp(self, G, cache):
        return {"u_param": G * (self.params["u_param"] > 0), "v_param": -G * (self.params["v_param"] > 0)}

    def _reg(self):
        W, _ = self._weight()
        s = self.gamma * np.sign(W)
        return self.gamma * float(np.sum(np.abs(W))), {
            "u_param": s * (self.params["u_param"] > 0),
            "v_param": -s * (self.params["v_param"] > 0),
        }


class L0Linear(LinearBase):
    r"""Hard-concrete L0 gates on every weight (Louizos, Welling & Kingma 2018, arXiv:1712.01312).

    Parameters: ``weight`` :math:`P` (insize, outsize), ``qz_loga`` :math:`\alpha` (insize, outsize) with
    :math:`\alpha \sim N(\ln(1-d) - \ln d, 0.01^2)`, ``bias`` (1, outsize) (**bias defaults to True**).
    Constants: stretch :math:`a = -0.1`, :math:`b = 1.1`, temperature :math:`\beta`, :math:`\epsilon = 10^{-6}`.

    Training mode (default; :meth:`train`/:meth:`eval` switch): a fresh noise :math:`u \sim U(\epsilon, 1-\epsilon)`
    of shape (insize, outsize) is drawn from ``rng`` on **every** ``effective_W``/``forward`` call (one sample for
    the whole batch), unless pinned with :meth:`set_noise`:

    .. math::

        s = \sigma\big((\ln u - \ln(1-u) + \alpha)/\beta\big),\quad z = (b-a)s + a,\quad
        W = \mathrm{hardtanh}_{[0,1]}(z) \odot P .

    Evaluation mode: :math:`z = (b-a)\sigma(\alpha) + a` (deterministic).  VJPs:
    :math:`\partial P = G\odot\mathrm{mask}`, :math:`\partial\alpha = G\odot P\odot\mathbb 1[0<z<1]\,(b-a)\,s(1-s)/\beta`
    (eval: :math:`(b-a)\sigma(\alpha)(1-\sigma(\alpha))`).

    Penalty: the negative log-prior of the expected L0 + L2 cost,

    .. math::

        Q_{ij} = \mathrm{clamp}\big(\sigma(\beta\ln(-a/b) - \alpha_{ij}), \epsilon, 1-\epsilon\big),\quad
        c_i = \sum_k(-\tfrac12\lambda_w P_{ik}^2 - \lambda_0),\quad r_i = \sum_j (1 - Q_{ij}),

        \mathcal R = \sum_i c_i r_i - \mathbb 1[\text{bias}]\,\tfrac12\lambda_w\textstyle\sum b^2, \qquad
        \texttt{reg\_error} = -\mathcal R \ \ (\ge 0).

    :math:`1 - Q_{ij}` is the probability that gate (i, j) is non-zero.  ``compat="neuromancer"`` returns
    :math:`+\mathcal R` (a log-prior, <= 0), which neuromancer adds to the loss with the wrong sign.
    Guarantee (soft; stochastic in training mode): sparsity is encouraged by the penalty, not enforced.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.L0Linear(3, 2, rng=0)
    >>> W = m.effective_W()
    >>> W.shape
    (3, 2)
    >>> m.forward(np.ones((2, 3))).shape
    (2, 2)
    """

    exact = False
    limit_a = -0.1
    limit_b = 1.1
    epsilon = 1e-6

    def __init__(self, insize, outsize, bias=True, *, weight_decay=1.0, droprate_init=0.5, temperature=2.0 / 3.0,
                 lamda=1.0, rng=None, **kw):
        self.prior_prec = check_real(weight_decay, "weight_decay", nonnegative=True)
        d = check_real(droprate_init, "droprate_init")
        if not 0.0 <= d < 1.0:
            raise ValueError(f"droprate_init: expected a number in [0, 1), got {d}")
        self.droprate_init = 0.5 if d == 0.0 else d
        self.temperature = check_real(temperature, "temperature", positive=True)
        self.lamda = check_real(lamda, "lamda", nonnegative=True)
        self.training = True
        self._noise = None
        self.rng = resolve_rng(rng)
        super().__init__(insize, outsize, bias, rng=self.rng, **kw)

    def _init_params(self, gen):
        self.params["weight"] = _kaiming_uniform(gen, (self.insize, self.outsize), self.outsize)
        mean = math.log(1 - self.droprate_init) - math.log(self.droprate_init)
        self.params["qz_loga"] = gen.normal(mean, 1e-2, size=(self.insize, self.outsize))

    def train(self, mode: bool = True) -> "L0Linear":
        self.training = check_bool(mode, "mode")
        return self

    def eval(self) -> "L0Linear":
        return self.train(False)

    def set_noise(self, u) -> None:
        """Pin the training-mode noise u (insize, outsize) in (0, 1); ``None`` goes back to drawing from ``rng``."""
        if u is None:
            self._noise = None
            return
        u = as_float_array(u, "u", ndim=2, dtype=self.dtype)
        check_shape(u, "u", (self.insize, self.outsize), "[insize, outsize]")
        if not np.all((u > 0) & (u < 1)):
            raise ValueError("u: expected every entry in the open interval (0, 1)")
        self._noise = u.copy()

    # ---- neuromancer's helpers of the stretched concrete distribution, each with its VJP ----
    def _check_unit(self, x, name, lo, hi):
        x = as_float_array(x, name, dtype=self.dtype)
        if not np.all((x > lo) & (x < hi)):
            raise ValueError(f"{name}: expected every entry in the open interval ({lo}, {hi}), got min {x.min()}, "
                             f"max {x.max()}")
        return x

    def cdf_qz(self, x):
        r"""CDF of the stretched concrete gate at ``x`` in (limit_a, limit_b), for every gate:
        :math:`\mathrm{clamp}\big(\sigma(\beta\,\mathrm{logit}(\tfrac{x-a}{b-a}) - \alpha), \epsilon, 1-\epsilon\big)`
        ([insize, outsize]; ``x`` a scalar or broadcastable).  ``1 - cdf_qz(0)`` is the probability that a gate is
        non-zero, the weight of :meth:`reg_error`."""
        return self._cdf_qz(self._check_unit(x, "x", self.limit_a, self.limit_b))[0]

    def _cdf_qz(self, x):
        a, b = self.limit_a, self.limit_b
        xn = (x - a) / (b - a)
        q_raw = sigmoid(self.temperature * (np.log(xn) - np.log1p(-xn)) - self.params["qz_loga"])
        inside = (q_raw >= self.epsilon) & (q_raw <= 1 - self.epsilon)
        return np.clip(q_raw, self.epsilon, 1 - self.epsilon), q_raw, inside, xn

    def cdf_qz_vjp(self, grad_out, x):
        r"""VJP of :meth:`cdf_qz`: :math:`(\bar x, \text{grads})`, :math:`\bar\alpha = -\bar q\,q(1-q)` and
        :math:`\bar x = \sum \bar q\,q(1-q)\,\beta/(x_n(1-x_n)(b-a))` (reduced to ``x``'s shape), 0 where clamped."""
        x = self._check_unit(x, "x", self.limit_a, self.limit_b)
        q, q_raw, inside, xn = self._cdf_qz(x)
        g = as_float_array(grad_out, "grad_out", dtype=self.dtype)
        check_shape(g, "grad_out", q.shape, "[insize, outsize]")
        d = g * q_raw * (1 - q_raw) * inside
        gx = d * self.temperature / (xn * (1 - xn) * (self.limit_b - self.limit_a))
        return _reduce_to(gx, x.shape), self._full({"qz_loga": -d})

    def quantile_concrete(self, x):
        r"""Inverse CDF of the stretched concrete distribution at ``x`` in (0, 1):
        :math:`(b-a)\,\sigma\big((\ln x - \ln(1-x) + \alpha)/\beta\big) + a` (what training mode applies to its noise)."""
        x = self._check_unit(x, "x", 0.0, 1.0)
        return self._quantile(x)[0]

    def _quantile(self, x):
        s = sigmoid((np.log(x) - np.log1p(-x) + self.params["qz_loga"]) / self.temperature)
        return s * (self.limit_b - self.limit_a) + self.limit_a, s

    def quantile_concrete_vjp(self, grad_out, x):
        r"""VJP of :meth:`quantile_concrete`: :math:`\bar\alpha = \bar z\,(b-a)s(1-s)/\beta`,
        :math:`\bar x = \bar\alpha / (x(1-x))` (reduced to ``x``'s shape)."""
        x = self._check_unit(x, "x", 0.0, 1.0)
        z, s = self._quantile(x)
        g = as_float_array(grad_out, "grad_out", dtype=self.dtype)
        check_shape(g, "grad_out", z.shape, "[insize, outsize]")
        da = g * (self.limit_b - self.limit_a) * s * (1 - s) / self.temperature
        return _reduce_to(da / (x * (1 - x)), x.shape), self._full({"qz_loga": da})

    def get_eps(self, size):
        """Uniform noise in [epsilon, 1 - epsilon) of shape ``size`` from the map's ``rng`` (neuromancer's ``get_eps``;
        the map's dtype, not always float32)."""
        try:
            size = tuple(check_int(n, "size", minimum=1) for n in size)
        except TypeError:
            raise TypeError(f"size: expected a sequence of positive ints, got {size!r}") from None
        return self.rng.uniform(self.epsilon, 1 - self.epsilon, size=size).astype(self.dtype)

    def _weight(self):
        P, alpha = self.params["weight"], self.params["qz_loga"]
        a, b = self.limit_a, self.limit_b
        if self.training:
            u = self._noise
            if u is None:
                u = self.rng.uniform(self.epsilon, 1 - self.epsilon, size=P.shape).astype(self.dtype)
            self.last_noise = u
            s = sigmoid((np.log(u) - np.log1p(-u) + alpha) / self.temperature)
            ds = s * (1 - s) / self.temperature
        else:
            s = sigmoid(alpha)
            ds = s * (1 - s)
        z = (b - a) * s + a
        mask = np.clip(z, 0.0, 1.0)
        inside = (z > 0) & (z < 1)
        return mask * P, (mask, inside, ds)

    def _weight_vjp(self, G, cache):
        mask, inside, ds = cache
        P = self.params["weight"]
        return {"weight": G * mask, "qz_loga": G * P * inside * (self.limit_b - self.limit_a) * ds}

    def _reg(self):
        P, alpha = self.params["weight"], self.params["qz_loga"]
        eps = self.epsilon
        q_raw = sigmoid(self.temperature * math.log(-self.limit_a / self.limit_b) - alpha)
        Q = np.clip(q_raw, eps, 1 - eps)
        c = np.sum(-0.5 * self.prior_prec * P * P - self.lamda, axis=1)
        r = np.sum(1 - Q, axis=1)
        R = float(np.sum(c * r))
        grads = {
            "weight": -self.prior_prec * P * r[:, None],
            "qz_loga": c[:, None] * Q * (1 - Q) * ((q_raw >= eps) & (q_raw <= 1 - eps)),
        }
        if "bias" in self.params:
            bvec = self.params["bias"]
            R -= 0.5 * self.prior_prec * float(np.sum(bvec * bvec))
            grads["bias"] = -self.prior_prec * bvec
        sign = 1.0 if self.compat == "neuromancer" else -1.0
        return sign * R, {k: sign * v for k, v in grads.items()}
