r"""The base class every structured linear map derives from, and the small shared helpers.

Convention (neuromancer's): :math:`W` = ``effective_W()`` has shape ``[insize, outsize]`` and acts on row vectors,

.. math::

    y = x W + b, \qquad x \in \mathbb R^{\dots \times n_\text{in}},\ y \in \mathbb R^{\dots \times n_\text{out}}.

A map only has to say how its parameters :math:`\theta` build :math:`W` (``_weight``) and how a cotangent
:math:`G = \partial L/\partial W` is pulled back to :math:`\partial L/\partial\theta` (``_weight_vjp``); the affine
layer's own VJP is shared:

.. math::

    \partial L/\partial x = \bar g W^\top, \qquad G = x^\top \bar g, \qquad
    \partial L/\partial b = \textstyle\sum_\text{batch} \bar g .

A soft constraint is a penalty ``reg_error()`` whose gradient is ``reg_error_vjp()``.
"""

from __future__ import annotations

import copy

import numpy as np

from .. import _backend
from .._checks import (
    as_float_array,
    check_int,
    check_option,
    check_real,
    check_shape,
    resolve_rng,
    scalar_grad_out,
)
from . import _kernels

__all__ = ["LinearBase", "SquareLinear", "Hprod", "Hprod_vjp", "straight_through_relu", "straight_through_relu_vjp"]

COMPAT_OPTIONS = ("neuromancer",)


# ----------------------------------------------------------------------------------------------- small helpers
def sigmoid(x):
    r""":math:`\sigma(x) = 1/(1+e^{-x}) = \tfrac12(1 + \tanh(x/2))` (the tanh form never overflows)."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def softmax(x, axis):
    z = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


def softmax_vjp(g, s, axis):
    r"""VJP of ``s = softmax(x, axis)``: :math:`\bar x = s \odot (\bar s - \sum \bar s s)`."""
    return s * (g - np.sum(g * s, axis=axis, keepdims=True))


def check_dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype: expected float32 or float64, got {dt}")
    return dt


def check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def check_bounds(sigma_min, sigma_max, *, strict=True):
    """Validate a pair of bounds ``sigma_min < sigma_max`` (``<=`` when not strict)."""
    lo = check_real(sigma_min, "sigma_min")
    hi = check_real(sigma_max, "sigma_max")
    if (strict and not lo < hi) or (not strict and not lo <= hi):
        raise ValueError(f"sigma_max: expected sigma_max {'>' if strict else '>='} sigma_min = {lo}, got {hi}")
    return lo, hi


def frob_norm(a) -> float:
    return float(np.sqrt(np.sum(a * a, dtype=np.float64)))


# --------------------------------------------------------------------------------------------------- the base
class LinearBase:
    r"""Base of every structured linear map: :math:`y = xW + b` with :math:`W = W(\theta)` of shape [insize, outsize].

    Parameters
    ----------
    insize, outsize : int
        Input and output widths (both >= 1).
    bias : bool
        Add a trainable bias :math:`b` of shape (1, outsize), initialised :math:`U(\pm 1/\sqrt{n_\text{in}})`.
    provide_weights : bool
        neuromancer's flag for subclasses: when True (default) and the subclass does not define its own
        parametrisation (``_init_params``), the base provides a plain trainable ``weight`` [insize, outsize]
        drawn :math:`U(\pm 1/\sqrt{n_\text{out}})` (torch's ``kaiming_uniform_(a=sqrt 5)`` on that shape) with
        :math:`W =` ``weight``, so a custom map only needs ``_weight``/``_weight_vjp`` or nothing at all.  Every
        refnsm map defines its own parameters, so the flag changes nothing for them.
    dtype : float64 (default) or float32
        Precision of the parameters and of every computation; inputs are converted to it.
    rng : numpy.random.Generator, int or None
        Source of the random initialisation (same laws as neuromancer's, not the same bits).
    params : dict, optional
        Arrays overriding the initial parameters (e.g. copied from a neuromancer ``state_dict``); keys and shapes
        must match :attr:`params`.
    compat : None or "neuromancer"
        ``None``: the intended math.  ``"neuromancer"``: reproduce neuromancer 1.5.6's numbers where they differ
        (documented per class).
    device : "cpu" (default) or "cuda"
        Where :meth:`effective_W`, :meth:`effective_W_vjp`, :meth:`forward` and :meth:`backward` run; settable
        later (``m.device = "cuda"``).  ``"cuda"`` runs the same code with the numba.cuda twins of
        :mod:`refnsm.linear._cuda_kernels` (same math, same validation, results within 1e-12 (float64) / 1e-5
        (float32) of the CPU) for every map: the products with :math:`W` and the affine layer's VJP run on the
        device; :class:`Linear`, :class:`SpectralLinear`, :class:`OrthogonalLinear` and
        :class:`PerronFrobeniusLinear` also build :math:`W` and pull :math:`G` back there (``_device_weight``), the
        other maps build their (cheap) :math:`W` on the host and move it over.  Parameters and gradients stay NumPy
        arrays; ``x`` and ``grad_y`` may be NumPy arrays (results NumPy) or numba device arrays (results stay on
        the device).  ``reg_error`` and ``eig`` always run on the CPU.  See ``docs/cuda.md``.

    Attributes
    ----------
    params : dict[str, ndarray]
        Parameters, named like the neuromancer ``state_dict`` keys.
    grads : dict[str, ndarray]
        Filled by :meth:`backward` (same keys; frozen parameters get zeros).
    trainable : tuple of str
        Keys of the parameters that receive gradients (the others are frozen constants).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> m = L.Linear(3, 2, bias=True, rng=0)
    >>> isinstance(m, L.LinearBase), sorted(m.params)
    (True, ['bias', 'weight'])
    >>> y = m.forward(np.ones((4, 3)))
    >>> gx = m.backward(np.ones_like(y))   # returns dL/dx, fills m.grads
    >>> gx.shape, m.grads["weight"].shape
    ((4, 3), (2, 3))
    """

    square = False  #: the map needs insize == outsize
    exact = True  #: whether the guarantee holds by construction (False: only softly, through reg_error)

    def __init__(self, insize, outsize, bias=False, provide_weights=True, *, dtype=np.float64, rng=None, params=None,
                 compat=None, device="cpu"):
        self.insize = check_int(insize, "insize", minimum=1)
        self.outsize = check_int(outsize, "outsize", minimum=1)
        self.use_bias = check_bool(bias, "bias")
        self.provide_weights = check_bool(provide_weights, "provide_weights")
        self.dtype = check_dtype(dtype)
        if compat is not None:
            check_option(compat, "compat", COMPAT_OPTIONS)
        self.compat = compat
        self._device = self._check_device(device)
        self._check_sizes()
        gen = resolve_rng(rng)
        self.params: dict[str, np.ndarray] = {}
        self._frozen: set[str] = set()
        self._init_bias(gen)
        self._init_params(gen)
        # np.array, not np.ascontiguousarray: the latter turns 0-d parameters (SVDLinearLearnBounds) into 1-d
        self.params = {k: np.array(v, dtype=self.dtype, order="C") for k, v in self.params.items()}
        if params is not None:
            self.load_params(params)
        self.zero_grad()
        self._cache = None

    # ---------------------------------------------------------------- hooks a subclass overrides
    def _check_sizes(self):
        if self.square and self.insize != self.outsize:
            raise ValueError(
                f"outsize: {type(self).__name__} is square, expected outsize == insize = {self.insize}, got {self.outsize}"
            )

    def _init_bias(self, gen):
        if self.use_bias:
            k = 1.0 / np.sqrt(self.insize)
            self.params["bias"] = gen.uniform(-k, k, size=(1, self.outsize))

    def _init_params(self, gen):
        if not self.provide_weights:
            raise NotImplementedError(f"{type(self).__name__}: provide_weights=False and no _init_params: the map has "
                                      "no parameters (define _init_params, _weight and _weight_vjp)")
        k = 1.0 / np.sqrt(self.outsize)
        self.params["weight"] = gen.uniform(-k, k, size=(self.insize, self.outsize))

    def _weight(self):
        """Return (W, cache): W without the bias, cache whatever ``_weight_vjp`` needs."""
        if type(self)._init_params is LinearBase._init_params and "weight" in self.params:
            return self.params["weight"].copy(), None  # the base's provided weight (provide_weights=True)
        raise NotImplementedError

    def _weight_vjp(self, G, cache) -> dict:
        """Pull back G = dL/dW to {param name: gradient} (missing keys mean zero)."""
        if type(self)._init_params is LinearBase._init_params and "weight" in self.params:
            return {"weight": G}
        raise NotImplementedError

    def _reg(self):
        """Return (value, {param: gradient}) of the penalty.  Default: no penalty."""
        return 0.0, {}

    @property
    def _bias_key(self):
        return "bias"

    @property
    def bias_in_effective_W(self) -> bool:
        """neuromancer computes effective_W as forward(I) for some maps, folding the bias into W (compat only)."""
        return False

    #: a map that can build W on the device defines ``_device_weight(K, p) -> (W, cache)`` and
    #: ``_device_weight_vjp(K, G, cache, p) -> {name: gradient}`` (K: the CUDA kernel module, p: the parameters as
    #: device arrays); they are used for that exact class only (a subclass may change the math)
    _device_weight = None

    def _weight_on(self, K, xp):
        """``(W, cache)`` where the kernels ``K`` run (``xp``: that device's array namespace, refnsm._backend)."""
        if xp is _backend.HOST or "_device_weight" not in type(self).__dict__:
            W, cache = self._weight()  # on the host (and moved over: the cheap parametrisations)
            return xp.from_host(W), (cache, None)
        p = {k: xp.from_host(v) for k, v in self.params.items() if k != self._bias_key}
        W, cache = self._device_weight(K, p)
        return W, (cache, p)

    def _weight_vjp_on(self, K, xp, G, cache) -> dict:
        """:meth:`_weight_vjp` of a cotangent ``G`` where the kernels run; host gradients."""
        cache, p = cache
        if p is None:
            return self._weight_vjp(xp.to_host(G), cache)
        return {k: xp.to_host(v) for k, v in self._device_weight_vjp(K, G, cache, p).items()}

    # ---------------------------------------------------------------- device
    def _check_device(self, device) -> str:
        return _backend.check_device(device)

    @property
    def device(self) -> str:
        """``"cpu"`` or ``"cuda"``: where the map runs (setting it validates the value and drops the forward cache)."""
        return self._device

    @device.setter
    def device(self, value) -> None:
        self._device = self._check_device(value)
        self._cache = None

    # ---------------------------------------------------------------- parameters
    @property
    def trainable(self) -> tuple:
        return tuple(k for k in self.params if k not in self._frozen)

    def load_params(self, params) -> None:
        """Replace parameters from a dict (every key must exist; shapes must match).  Validates all first."""
        if not isinstance(params, dict):
            raise TypeError(f"params: expected a dict of arrays, got {type(params).__name__}")
        new = {}
        for key, value in params.items():
            if key not in self.params:
                raise ValueError(
                    f"params: unknown key {key!r} for {type(self).__name__}; expected keys {sorted(self.params)}"
                )
            arr = as_float_array(value, f"params[{key!r}]", dtype=self.dtype)
            check_shape(arr, f"params[{key!r}]", self.params[key].shape)
            new[key] = arr.copy()
        self._validate_params({**self.params, **new})
        self.params.update(new)
        self._cache = None

    def _validate_params(self, params) -> None:
        """Extra checks on a complete parameter set (e.g. non-zero Householder vectors)."""

    def with_params(self, **arrays) -> "LinearBase":
        """A copy of this map with some parameters replaced (this map is not modified)."""
        other = copy.copy(self)
        other.params = dict(self.params)
        other._cache = None
        other.zero_grad()
        other.load_params(arrays)
        return other

    def zero_grad(self) -> None:
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def _full(self, partial: dict) -> dict:
        out = {}
        for k, v in self.params.items():
            g = partial.get(k)
            if g is None or k in self._frozen:
                out[k] = np.zeros(v.shape, dtype=v.dtype)
            elif type(g) is np.ndarray and g.dtype == v.dtype and g.shape == v.shape:
                out[k] = g
            else:
                out[k] = np.asarray(g, dtype=self.dtype).reshape(v.shape)
        return out

    # ---------------------------------------------------------------- the map
    def effective_W(self) -> np.ndarray:
        r"""The matrix :math:`W` of shape [insize, outsize] (``y = x @ W + b``), a NumPy array."""
        K, xp = _backend.get("linear", self._device)
        W, _ = self._weight_on(K, xp)
        W = xp.to_host(W)
        if self.bias_in_effective_W and self._bias_key in self.params:
            W = W + self.params[self._bias_key]
        return W

    def effective_W_vjp(self, grad_W) -> dict:
        r"""Pull a cotangent :math:`G = \partial L/\partial W` back to every parameter: returns {name: gradient}."""
        K, xp = _backend.get("linear", self._device, grad_W)
        G = xp.asarray(grad_W, "grad_W", ndim=2, dtype=self.dtype)
        check_shape(G, "grad_W", (self.insize, self.outsize), "[insize, outsize]")
        W, cache = self._weight_on(K, xp)
        grads = dict(self._weight_vjp_on(K, xp, G, cache))
        if self.bias_in_effective_W and self._bias_key in self.params:
            grads[self._bias_key] = self._bias_grad(G, K, xp)
        return self._full(grads)

    def _bias_grad(self, g2, K=_kernels, xp=_backend.HOST):
        b = self.params[self._bias_key]
        gb = xp.to_host(K.col_sums(g2))
        if b.size == 1 and gb.size != 1:  # neuromancer's scalar butterfly bias (compat)
            gb = gb.sum()
        return gb if gb.shape == b.shape else np.reshape(gb, b.shape)

    def _check_x(self, x, xp=_backend.HOST):
        x = xp.asarray(x, "x", min_ndim=1, dtype=self.dtype, shape_hint="[..., insize]")
        if tuple(x.shape)[-1] != self.insize:  # tuple(): the CUDA simulator's shapes refuse negative indices
            raise ValueError(f"x: expected last dimension insize = {self.insize}, got shape {tuple(x.shape)}")
        return x

    def _apply(self, x, W, K=_kernels, xp=_backend.HOST):
        y = xp.matmul(x, W)
        b = self.params.get(self._bias_key)
        if b is not None:  # a (1,) bias of a wider map is neuromancer's scalar bias (compat): added to every entry
            K.add_bias(y.reshape(y.size // self.outsize, self.outsize), xp.from_host(b.reshape(b.size)))
        return y

    def forward(self, x) -> np.ndarray:
        r"""``y = x @ W + b`` for x of shape [..., insize]; caches what :meth:`backward` needs."""
        K, xp = _backend.get("linear", self._device, x)
        x = self._check_x(x, xp)
        W, cache = self._weight_on(K, xp)
        y = self._apply(x, W, K, xp)
        self._cache = (x, W, cache, tuple(y.shape), self._device, xp.on_device)
        return xp.give_back(y)

    __call__ = forward

    def backward(self, grad_y) -> np.ndarray:
        r"""VJP of the last :meth:`forward`: returns :math:`\bar x = \bar g W^\top` and fills :attr:`grads`.

        :math:`\partial L/\partial\theta` is the pull-back of :math:`G = x^\top \bar g` through ``effective_W``;
        :math:`\partial L/\partial b = \sum_\text{batch} \bar g`.  ``grads`` is overwritten, not accumulated.
        """
        if self._cache is None or self._cache[4] != self._device:
            raise RuntimeError("backward: call forward(x) first")
        x, W, cache, yshape, _, on_device = self._cache
        K = _backend.kernels("linear", self._device)
        xp = _backend.arrays(self._device, grad_y, on_device=True if on_device else None)
        g = xp.asarray(grad_y, "grad_y", dtype=self.dtype)
        check_shape(g, "grad_y", yshape, "the shape of forward's output")
        rows = g.size // self.outsize
        g2 = g.reshape(rows, self.outsize)
        x2 = x.reshape(rows, self.insize)
        gx = xp.matmul_bt(g, W)  # g W^T
        grads = dict(self._weight_vjp_on(K, xp, xp.matmul_at(x2, g2), cache))  # G = x^T g
        if self._bias_key in self.params:
            grads[self._bias_key] = self._bias_grad(g2, K, xp)
        self.grads = self._full(grads)
        return xp.give_back(gx)

    def reg_error(self) -> float:
        """The penalty added to the loss (0 for maps whose constraint is exact)."""
        value, _ = self._reg()
        return float(value)

    def reg_error_vjp(self, grad_out=None) -> dict:
        """Gradient of ``grad_out * reg_error()`` for every parameter ({name: array}, zeros where unused)."""
        s = scalar_grad_out(grad_out)
        _, grads = self._reg()
        return {k: s * v for k, v in self._full(grads).items()}

    def eig(self):
        """Eigenvalues and right eigenvectors of ``effective_W()`` (square maps only), as ``numpy.linalg.eig``."""
        if self.insize != self.outsize:
            raise ValueError(f"eig: expected a square map, got insize {self.insize} != outsize {self.outsize}")
        return np.linalg.eig(self.effective_W())

    def eig_vjp(self, grad_w, grad_v=None) -> dict:
        r"""Pull cotangents of :meth:`eig`'s eigenvalues (and optionally eigenvectors) back to every parameter:
        :func:`eig_vjp` on ``effective_W()``, then :meth:`effective_W_vjp`.  Simple eigenvalues only."""
        if self.insize != self.outsize:
            raise ValueError(f"eig: expected a square map, got insize {self.insize} != outsize {self.outsize}")
        return self.effective_W_vjp(eig_vjp(grad_w, grad_v, self.effective_W()))

    def __repr__(self):
        extra = f", compat={self.compat!r}" if self.compat else ""
        extra += ", device='cuda'" if self._device == "cuda" else ""
        return f"{type(self).__name__}({self.insize}, {self.outsize}, bias={self.use_bias}, dtype={self.dtype}{extra})"


def eig_vjp(grad_w, grad_v, W, *, rtol: float = 1e-10):
    r"""VJP of ``numpy.linalg.eig`` (= ``torch.linalg.eig``) for a real square W with **simple** eigenvalues.

    With :math:`W = V\Lambda V^{-1}` (unit-norm eigenvectors), :math:`\bar\lambda` = ``grad_w`` and :math:`\bar V` =
    ``grad_v`` (complex cotangents in torch's convention, e.g. :math:`\bar z = 2cz` for :math:`L = c|z|^2`; ``None``
    means zero):

    .. math::

        \bar W = \mathrm{Re}\Big[V^{-H}\big(\mathrm{diag}(\bar\lambda) + E \odot (V^H\bar V - V^H V\,
        \mathrm{diag}(\mathrm{Re}\,\mathrm{diag}(V^H\bar V)))\big)V^H\Big],\qquad
        E_{ij} = \frac{1}{\bar\lambda_j - \bar\lambda_i}\ (i\ne j),\ E_{ii} = 0,

    where the overbars on :math:`\lambda` inside :math:`E` are complex conjugates.  The second term uses only
    gauge-invariant information, so a loss that depends on the eigenvectors' phase has no gradient (as torch).
    Degenerate case: with repeated eigenvalues (relative gap below ``rtol``) the eigenvector term is undefined and
    ``grad_v`` raises ``ValueError``; the eigenvalue term alone still needs V invertible (a defective W raises).
    """
    W = as_float_array(W, "W", ndim=2, shape_hint="[n, n]")
    n = W.shape[0]
    if W.shape[1] != n:
        raise ValueError(f"W: expected a square matrix, got shape {W.shape}")
    lam, V = np.linalg.eig(W)
    gl = np.zeros(n, complex) if grad_w is None else np.asarray(grad_w, dtype=complex)
    if gl.shape != (n,):
        raise ValueError(f"grad_w: expected shape ({n},) (one per eigenvalue), got {gl.shape}")
    if not np.all(np.isfinite(gl)):
        raise ValueError("grad_w: expected finite values")
    scale = max(float(np.abs(lam).max()), np.finfo(float).tiny)
    gap = np.abs(lam[:, None] - lam[None, :]) + np.eye(n) * scale
    if np.linalg.cond(V) > 1.0 / rtol:
        raise ValueError("W: its eigenvectors are (numerically) linearly dependent, so W is defective and its "
                         "eigen-decomposition has no derivative; eig_vjp needs a diagonalisable W with simple eigenvalues")
    M = np.diag(gl).astype(complex)
    if grad_v is not None:
        gv = np.asarray(grad_v, dtype=complex)
        if gv.shape != (n, n):
            raise ValueError(f"grad_v: expected shape ({n}, {n}) (like the eigenvectors), got {gv.shape}")
        if not np.all(np.isfinite(gv)):
            raise ValueError("grad_v: expected finite values")
        if gap.min() <= rtol * scale:
            raise ValueError("W: repeated eigenvalues (relative gap below rtol): the eigenvectors are not unique, so "
                             "their derivative is undefined (grad_v needs simple eigenvalues)")
        VhgV = V.conj().T @ gv
        F = VhgV - (V.conj().T @ V) * np.real(np.diag(VhgV))[None, :]
        Lc = lam.conj()
        E = Lc[None, :] - Lc[:, None]
        np.fill_diagonal(E, 1.0)
        F = F / E
        np.fill_diagonal(F, gl)
        M = F
    Vh = V.conj().T
    gW = np.linalg.solve(Vh, M @ Vh)
    return np.ascontiguousarray(np.real(gW), dtype=W.dtype)


class SquareLinear(LinearBase):
    """Base of the maps that need ``insize == outsize`` (raises ``ValueError`` naming ``outsize`` otherwise).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> issubclass(L.SymmetricLinear, L.SquareLinear)
    True
    >>> try:
    ...     L.SymmetricLinear(3, 2)
    ... except ValueError as err:
    ...     print("ValueError:", str(err).split(":")[0])
    ...
    ValueError: outsize
    """

    square = True


# ---------------------------------------------------------------------------- Householder product helper
def _hprod_check(x, u, k):
    x = as_float_array(x, "x", ndim=2, shape_hint="[batch, n]")
    u = as_float_array(u, "u", ndim=1, shape_hint="[n]")
    n = x.shape[1]
    check_shape(u, "u", (n,), "[n] with n = x.shape[1]")
    k = check_int(k, "k", minimum=1)
    if k > n:
        raise ValueError(f"k: expected 1 <= k <= n = {n}, got {k}")
    if not np.any(u[n - k:]):
        raise ValueError("u: expected a non-zero tail u[n-k:] (a zero Householder vector is undefined)")
    dt = np.result_type(x.dtype, u.dtype)
    return x.astype(dt, copy=False), u.astype(dt, copy=False), k


def Hprod(x, u, k):
    r"""Reflect the last ``k`` columns of the rows of ``x`` in the hyperplane orthogonal to ``v = u[n-k:]``.

    .. math::

        y = x H(\tilde v), \qquad H(\tilde v) = I - \frac{2 \tilde v \tilde v^\top}{\tilde v^\top \tilde v},
        \qquad \tilde v = [0_{n-k};\ u_{n-k:}] .

    :math:`H` is symmetric, orthogonal and an involution (:math:`H^2 = I`).  x is [batch, n], u is [n].

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> u = np.array([1.0, 0.0])
    >>> L.Hprod(np.array([[3.0, 4.0]]), u, 2)   # reflect in the hyperplane orthogonal to e_0
    array([[-3.,  4.]])
    """
    x, u, k = _hprod_check(x, u, k)
    n = x.shape[1]
    v = u[n - k:]
    y = x.copy()
    a = 2.0 * (x[:, n - k:] @ v) / (v @ v)
    y[:, n - k:] -= np.outer(a, v)
    return y


def Hprod_vjp(grad_out, x, u, k):
    r"""VJP of :func:`Hprod`: returns :math:`(\bar x, \bar u)`.

    With :math:`c = v^\top v`, :math:`a_b = x_b\cdot v`, :math:`\beta_b = \bar g_b \cdot v` (tail columns):
    :math:`\bar x = \bar g H` and
    :math:`\bar v = \sum_b [-\tfrac2c(\beta_b x_b + a_b \bar g_b) + \tfrac{4 a_b\beta_b}{c^2} v]`, zero on the head.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> gx, gu = L.Hprod_vjp(np.ones((1, 2)), np.array([[3.0, 4.0]]), np.array([1.0, 0.0]), 2)
    >>> gx
    array([[-1.,  1.]])
    """
    x, u, k = _hprod_check(x, u, k)
    g = as_float_array(grad_out, "grad_out", ndim=2, dtype=x.dtype)
    check_shape(g, "grad_out", x.shape, "the shape of x")
    n = x.shape[1]
    v = u[n - k:]
    c = v @ v
    xt, gt = x[:, n - k:], g[:, n - k:]
    a, beta = xt @ v, gt @ v
    gx = g.copy()
    gx[:, n - k:] -= np.outer(2.0 * beta / c, v)
    gu = np.zeros_like(u)
    gu[n - k:] = -(2.0 / c) * (xt.T @ beta + gt.T @ a) + (4.0 * (a @ beta) / c**2) * v
    return gx, gu


def straight_through_relu(x):
    r"""Straight-through ReLU (neuromancer's ``IdentityGradReLU``): forward :math:`\max(x, 0)`.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> L.straight_through_relu(np.array([-1.0, 2.0]))
    array([0., 2.])
    """
    x = as_float_array(x, "x")
    return np.maximum(x, 0.0)


def straight_through_relu_vjp(grad_out, x):
    r"""The straight-through gradient: :math:`\bar x = \bar y`, also where :math:`x < 0` (it is not relu's derivative).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import linear as L
    >>> L.straight_through_relu_vjp(np.array([1.0, 1.0]), np.array([-1.0, 2.0]))   # the gradient passes straight through
    array([1., 1.])
    """
    x = as_float_array(x, "x")
    g = as_float_array(grad_out, "grad_out", dtype=x.dtype)
    check_shape(g, "grad_out", x.shape, "the shape of x")
    return g.copy()
