r"""Finite-difference checking of vector-Jacobian products.

For a function :math:`y = f(x_1, \dots, x_k)` and an upstream gradient :math:`\bar y`, a VJP claims
:math:`\bar x_i = J_i^\top \bar y = \nabla_{x_i} \langle \bar y, f(x) \rangle`.
:func:`gradcheck` estimates the right-hand side one element at a time with central differences in float64,

.. math::

    \hat g_{i,j} = \frac{\langle \bar y, f(x + \epsilon e_{ij})\rangle - \langle \bar y, f(x - \epsilon e_{ij})\rangle}{2 \epsilon},

whose truncation error is :math:`O(\epsilon^2 \|f'''\|)` and rounding error :math:`O(u\,|f| / \epsilon)`
(:math:`u = 2^{-53}`); :math:`\epsilon = 10^{-6}` balances the two for well-scaled inputs.  An element passes when
:math:`|g - \hat g| \le \mathrm{atol} + \mathrm{rtol}\,|\hat g|`; the report names the worst element (the one that
exceeds its tolerance by the largest factor), its index and both values.

Example
-------
>>> import numpy as np
>>> from refnsm.gradcheck import gradcheck
>>> f = lambda x: np.sin(x).sum()
>>> vjp = lambda g, x: g * np.cos(x)
>>> gradcheck(f, vjp, (np.linspace(0, 1, 5),)).ok
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from . import _checks

__all__ = ["gradcheck", "GradcheckResult", "GradcheckError", "numerical_vjp"]


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck` when an analytic gradient disagrees with finite differences.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm.gradcheck import gradcheck, numerical_vjp, GradcheckError
    >>> try:
    ...     gradcheck(lambda x: float(np.sum(x ** 2)), lambda g, x: g * x, (np.array([1.0, 2.0]),), raise_on_fail=True)
    ... except GradcheckError as err:
    ...     print(err.result.ok)
    ...
    False
    """

    def __init__(self, result: "GradcheckResult"):
        super().__init__(result.report())
        self.result = result


@dataclass
class GradcheckResult:
    """Outcome of :func:`gradcheck`.

    Attributes
    ----------
    ok : bool
        Whether every checked element is within tolerance.
    max_abs_err, max_rel_err : float
        Largest :math:`|g - \\hat g|` and largest :math:`|g - \\hat g| / \\max(|\\hat g|, \\mathrm{atol})`.
    worst_input : int
        Position (in ``inputs``) of the argument holding the worst element.
    worst_index : tuple
        Index of the worst element inside that argument.
    analytic_value, numeric_value : float
        The VJP's value and the finite-difference value at the worst element.
    analytic, numeric : list of ndarray
        Full gradients, one per checked argument (in the order of ``wrt``).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm.gradcheck import gradcheck, numerical_vjp, GradcheckError
    >>> res = gradcheck(lambda x: float(np.sum(x ** 2)), lambda g, x: 2 * g * x, (np.array([1.0, 2.0]),))
    >>> bool(res), res.max_abs_err < 1e-6
    (True, True)
    """

    ok: bool
    max_abs_err: float
    max_rel_err: float
    worst_input: int
    worst_index: tuple
    analytic_value: float
    numeric_value: float
    rtol: float
    atol: float
    eps: float
    analytic: list = field(repr=False, default_factory=list)
    numeric: list = field(repr=False, default_factory=list)

    def __bool__(self) -> bool:
        return self.ok

    def report(self) -> str:
        status = "passed" if self.ok else "FAILED"
        return (
            f"gradcheck {status}: worst element is input {self.worst_input} at index {self.worst_index}: "
            f"analytic {self.analytic_value:.17g} vs numeric {self.numeric_value:.17g} "
            f"(abs err {abs(self.analytic_value - self.numeric_value):.3e}); "
            f"max abs err {self.max_abs_err:.3e}, max rel err {self.max_rel_err:.3e}; "
            f"tolerance atol={self.atol:g} + rtol={self.rtol:g}*|numeric|, eps={self.eps:g}"
        )


def _inner(grad_out, y) -> float:
    y = np.asarray(y, dtype=np.float64)
    if grad_out is None:
        if y.size != 1:
            raise ValueError(f"grad_out: required for a non-scalar function output of shape {y.shape}")
        return float(y.reshape(()))
    return float(np.sum(np.asarray(grad_out, dtype=np.float64) * y))


def numerical_vjp(fun: Callable, inputs: Sequence, wrt: Sequence[int], grad_out=None, eps: float = 1e-6) -> list:
    """Central-difference estimate of the VJP of ``fun`` at ``inputs`` for the arguments listed in ``wrt``.

    ``inputs`` is not modified: every argument in ``wrt`` is copied to float64 first.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm.gradcheck import gradcheck, numerical_vjp, GradcheckError
    >>> [g] = numerical_vjp(lambda x: float(np.sum(x ** 2)), (np.array([1.0, 2.0]),), wrt=[0])
    >>> np.round(g, 6)
    array([2., 4.])
    """
    args = list(inputs)
    for i in wrt:
        args[i] = np.array(args[i], dtype=np.float64, copy=True)
    grads = []
    for i in wrt:
        x = args[i]
        g = np.zeros_like(x)
        flat, gflat = x.reshape(-1), g.reshape(-1)
        for j in range(flat.size):
            orig = flat[j]
            flat[j] = orig + eps
            up = _inner(grad_out, fun(*args))
            flat[j] = orig - eps
            down = _inner(grad_out, fun(*args))
            flat[j] = orig
            gflat[j] = (up - down) / (2.0 * eps)
        grads.append(g)
    return grads


def gradcheck(
    fun: Callable,
    vjp: Callable,
    inputs: Sequence,
    *,
    wrt: Sequence[int] | None = None,
    grad_out=None,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    rng=0,
    raise_on_fail: bool = False,
) -> GradcheckResult:
    """Compare a hand-written VJP against central finite differences, in float64.

    Parameters
    ----------
    fun : callable
        ``fun(*inputs)`` returns an array (or scalar).
    vjp : callable
        ``vjp(grad_out, *inputs)`` returns the gradient for each argument in ``wrt``: one array when ``wrt`` has
        a single entry, else a tuple in the order of ``wrt`` (refnsm's ``f_vjp`` convention).
    inputs : sequence
        Arguments of ``fun``.  Non-array arguments (strings, scalars, integer labels) pass through unchanged.
    wrt : sequence of int, optional
        Which arguments to check.  Default: every floating-point ndarray argument.
    grad_out : array_like, optional
        The upstream gradient.  Default: 1.0 for a scalar output, otherwise a standard-normal array drawn from
        ``rng`` (a random projection exercises every output element).
    eps : float
        Finite-difference step.
    rtol, atol : float
        Per-element tolerance ``|analytic - numeric| <= atol + rtol * |numeric|``.
    rng : int or numpy.random.Generator
        Seed for the default ``grad_out``.
    raise_on_fail : bool
        Raise :class:`GradcheckError` (an ``AssertionError`` carrying the report) instead of returning a
        failed result.

    Returns
    -------
    GradcheckResult
        Truthy when the check passed; ``.report()`` describes the worst element.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm.gradcheck import gradcheck, numerical_vjp, GradcheckError
    >>> f = lambda x: float(np.sum(np.sin(x)))
    >>> df = lambda g, x: g * np.cos(x)
    >>> gradcheck(f, df, (np.array([0.1, 0.2, 0.3]),)).ok
    True
    >>> gradcheck(f, lambda g, x: g * np.sin(x), (np.array([0.1, 0.2, 0.3]),)).ok   # a wrong VJP is caught
    False
    """
    # its own arguments first, each named, before any call of fun or vjp
    if not callable(fun):
        raise TypeError(f"fun: expected a callable, got {_checks._describe(fun)}")
    if not callable(vjp):
        raise TypeError(f"vjp: expected a callable, got {_checks._describe(vjp)}")
    if isinstance(inputs, (str, bytes, np.ndarray)) or not isinstance(inputs, Sequence):
        raise TypeError(f"inputs: expected a sequence (list or tuple) of fun's arguments, got {_checks._describe(inputs)}")
    inputs = list(inputs)
    if wrt is None:
        wrt = [i for i, a in enumerate(inputs) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    if isinstance(wrt, (str, bytes)) or not isinstance(wrt, Sequence):
        raise TypeError(f"wrt: expected a sequence of argument indices, got {_checks._describe(wrt)}")
    wrt = [_checks.check_int(i, "wrt") for i in wrt]
    if not wrt:
        raise ValueError("wrt: no floating-point array among inputs to check; pass wrt explicitly")
    for i in wrt:
        if not 0 <= i < len(inputs):
            raise ValueError(f"wrt: expected indices in [0, {len(inputs)}) (one per input), got {i}")
    if len(set(wrt)) != len(wrt):
        raise ValueError(f"wrt: expected distinct indices, got {wrt}")
    eps = _checks.check_real(eps, "eps", positive=True)
    rtol = _checks.check_real(rtol, "rtol", nonnegative=True)
    atol = _checks.check_real(atol, "atol", nonnegative=True)
    gen = _checks.resolve_rng(rng)
    raise_on_fail = _checks.check_bool(raise_on_fail, "raise_on_fail")
    for i in wrt:
        _checks.as_float_array(inputs[i], f"inputs[{i}]")  # real, finite (a differentiable argument)
    if grad_out is not None:
        _checks.as_float_array(grad_out, "grad_out")

    x64 = list(inputs)
    for i in wrt:
        x64[i] = np.array(inputs[i], dtype=np.float64, copy=True)
    y = np.asarray(fun(*x64), dtype=np.float64)
    if grad_out is None and y.size != 1:
        grad_out = gen.standard_normal(y.shape)
    g_arg = 1.0 if grad_out is None else np.asarray(grad_out, dtype=np.float64)
    if grad_out is not None and g_arg.shape != y.shape and g_arg.size != 1:
        raise ValueError(f"grad_out: expected fun's output shape {y.shape}, got {g_arg.shape}")

    analytic = vjp(g_arg, *x64)
    if not isinstance(analytic, (tuple, list)):
        analytic = (analytic,)
    analytic = [np.asarray(a, dtype=np.float64) for a in analytic]
    if len(analytic) != len(wrt):
        raise ValueError(f"vjp returned {len(analytic)} gradients for {len(wrt)} checked inputs (wrt={wrt})")
    for a, i in zip(analytic, wrt):
        if a.shape != x64[i].shape:
            raise ValueError(f"vjp: gradient for input {i} has shape {a.shape}, expected {x64[i].shape}")

    numeric = numerical_vjp(fun, x64, wrt, None if grad_out is None else g_arg, eps)

    worst = (-np.inf, 0, (), 0.0, 0.0)
    max_abs = max_rel = 0.0
    ok = True
    for a, n, i in zip(analytic, numeric, wrt):
        if a.size == 0:
            continue
        err = np.abs(a - n)
        bound = atol + rtol * np.abs(n)
        with np.errstate(divide="ignore", invalid="ignore"):
            excess = np.where(np.isfinite(err), err / np.where(bound > 0, bound, np.inf), np.inf)
            excess = np.where((bound == 0) & (err == 0), 0.0, excess)
            excess = np.where((bound == 0) & (err > 0), np.inf, excess)
        ok &= bool(np.all(err <= bound))
        max_abs = max(max_abs, float(np.nanmax(err)) if np.isfinite(err).any() else np.inf)
        rel = err / np.maximum(np.abs(n), atol if atol > 0 else np.finfo(float).tiny)
        max_rel = max(max_rel, float(np.max(rel)))
        j = int(np.argmax(excess))
        if excess.reshape(-1)[j] > worst[0]:
            idx = tuple(int(k) for k in np.unravel_index(j, a.shape))
            worst = (excess.reshape(-1)[j], i, idx, float(a.reshape(-1)[j]), float(n.reshape(-1)[j]))
    result = GradcheckResult(
        ok=ok,
        max_abs_err=max_abs,
        max_rel_err=max_rel,
        worst_input=worst[1],
        worst_index=worst[2],
        analytic_value=worst[3],
        numeric_value=worst[4],
        rtol=rtol,
        atol=atol,
        eps=eps,
        analytic=analytic,
        numeric=numeric,
    )
    if raise_on_fail and not ok:
        raise GradcheckError(result)
    return result
