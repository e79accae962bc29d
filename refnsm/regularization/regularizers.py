r"""Regularizer objects mirroring neurotorch 0.0.2, plus the NumPy training-loop glue.

A regularizer holds a dict of parameter arrays **by reference** (``reg.params``; the same array objects as
your model's, so an in-place optimiser step on the model is seen by the regularizer and vice versa) and a
weight :math:`\Lambda` (``Lambda``).  Its loss is :math:`\Lambda\sum_k \ell(P_k)`:

* ``reg()`` / ``reg.forward()``: the loss, a NumPy scalar (float32 only when every parameter is float32);
* ``reg.backward(grad_out=None)``: fills and returns ``reg.grads`` (same keys as ``reg.params``), each
  :math:`\bar y\,\Lambda\,\partial\ell/\partial P_k`; frozen parameters get no entry;
* ``reg.value_and_grad()``: both in one pass (what a training step wants).

Nothing accumulates: every call recomputes from the current parameter values.  Parameters are validated
(rank, dtype) at construction and their finiteness at every call (fused with the computation, so a NaN that
appears during training is reported with its parameter name and index).
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from .. import _checks
from . import functional as F
from .init import _generate as _dale_generate

__all__ = [
    "BaseRegularization",
    "RegularizationList",
    "Lp",
    "L1",
    "L2",
    "DaleLawL2",
    "DaleLaw",
    "ExcRatioTargetRegularization",
    "InhRatioTargetRegularization",
    "WeightsDistance",
    "SGD",
    "regularization_step",
]

COMPAT = (None, "neurotorch")


def _param_dict(params, name: str = "params") -> dict:
    """Keys and arrays of ``params`` (a mapping, or an iterable keyed 'params.0', 'params.1', ...), by reference."""
    if isinstance(params, np.ndarray):
        raise TypeError(f"{name}: expected a dict or a list of arrays, got a single array of shape {params.shape} "
                        "(wrap it in a list)")
    if isinstance(params, Mapping):
        items = [(str(k), v) for k, v in params.items()]
    else:
        try:
            items = [(f"params.{i}", v) for i, v in enumerate(params)]
        except TypeError:
            raise TypeError(f"{name}: expected a dict or a list of arrays, got {_checks._describe(params)}") from None
    out = {}
    for key, v in items:
        if not isinstance(v, np.ndarray) or v.dtype not in _checks.FLOAT_DTYPES:
            raise TypeError(
                f"{name}[{key!r}]: expected a float32/float64 numpy array (held by reference, so that an optimiser "
                f"step on it is seen by the regularizer), got {_checks._describe(v)}"
            )
        if v.size == 0:
            raise ValueError(f"{name}[{key!r}]: expected a non-empty array, got shape {v.shape}")
        if key in out:
            raise ValueError(f"{name}: duplicate key {key!r}")
        out[key] = v
    return out


def _contig(p: np.ndarray) -> np.ndarray:
    return p if p.flags.c_contiguous else np.ascontiguousarray(p)


_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def _result_dtype(arrays) -> np.dtype:
    """float32 when every array is float32 (and there is one), else float64."""
    seen = False
    for a in arrays:
        if a.dtype != _F32:
            return _F64
        seen = True
    return _F32 if seen else _F64


class BaseRegularization:
    r"""Base class: :math:`\Lambda` times the sum of a per-parameter penalty :math:`\ell`.

    Parameters
    ----------
    params : dict of str to ndarray, or iterable of ndarray
        The parameters, held by reference (float32/float64 ndarrays).  A list gets keys ``'params.0'``,
        ``'params.1'``, ... (neurotorch's ``state_dict`` keys).
    Lambda : float
        Weight of the penalty, applied on call (as upstream; any finite real).
    optimizer : SGD, optional
        neurotorch's callback optimizer: :meth:`on_optimization_end` takes one step of it with the regularizer's
        gradient (:func:`regularization_step`).  It must hold the regularizer's trainable arrays (same objects).
    frozen : iterable of str
        Keys of parameters that are not trained (torch's ``requires_grad=False``): they get no gradient and
        :class:`Lp` leaves them out of the value, as upstream.
    priority, name, save_state, load_state
        neurotorch's ``BaseCallback`` arguments, accepted with upstream's spellings and defaults and stored as
        attributes (``priority`` None -> 10, ``load_state`` None -> ``save_state``).  refnsm has no trainer
        or checkpoints, so they change nothing; ``name`` defaults to the class name (upstream appends
        ``<instance counter>``).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> reg = R.L1({"W": np.array([[1.0, -2.0]])})
    >>> isinstance(reg, R.BaseRegularization)
    True
    >>> float(reg.forward()), reg.backward()["W"]
    (2.0, array([[ 0., -1.]]))
    """

    DEFAULT_PRIORITY = 10

    def __init__(self, params, Lambda: float = 1.0, optimizer=None, *, frozen: Iterable[str] = (),
                 priority=None, name=None, save_state: bool = True, load_state=None):
        params = _param_dict(params)
        Lambda = _checks.check_real(Lambda, "Lambda")
        frozen = [frozen] if isinstance(frozen, str) else list(frozen)
        for k in frozen:
            if k not in params:
                raise ValueError(f"frozen: expected keys of params {sorted(params)}, got {k!r}")
        self.params = params
        self.Lambda = Lambda
        self.frozen = frozenset(frozen)
        self.grads: dict = {}
        self._init_callback(optimizer, priority, name, save_state, load_state)

    def _init_callback(self, optimizer, priority, name, save_state, load_state):
        if priority is not None and not (isinstance(priority, (int, np.integer))
                                         and not isinstance(priority, (bool, np.bool_))):
            raise TypeError(f"priority: expected None or an int, got {_checks._describe(priority)}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name: expected None or a str, got {_checks._describe(name)}")
        for arg, v in (("save_state", save_state), ("load_state", load_state)):
            if not (isinstance(v, (bool, np.bool_)) or (arg == "load_state" and v is None)):
                raise TypeError(f"{arg}: expected a bool{' or None' if arg == 'load_state' else ''}, "
                                f"got {_checks._describe(v)}")
        if optimizer is not None:
            _optimizer_key_map(self, optimizer)
        self.optimizer = optimizer
        self.priority = self.DEFAULT_PRIORITY if priority is None else int(priority)
        self.name = type(self).__name__ if name is None else name
        self.save_state = bool(save_state)
        self.load_state = self.save_state if load_state is None else bool(load_state)

    def on_optimization_end(self, trainer=None, **kwargs):
        """neurotorch's callback hook: one :func:`regularization_step` with ``self.optimizer``; returns the loss.

        ``trainer`` and the keyword arguments are accepted (upstream's signature) and unused.  Without an
        optimizer upstream silently does nothing (the gradient only accumulates in ``.grad``); refnsm raises.
        """
        if self.optimizer is None:
            raise ValueError("optimizer: on_optimization_end needs the regularizer's optimizer (pass optimizer=SGD(...) "
                             "at construction); neurotorch silently does nothing here")
        return regularization_step(self, self.optimizer)

    # subclasses implement: per-parameter (value, grad or None) before Lambda.  refnsm's own regularizers also take
    # ``scale`` (Lambda * grad_out) and return the gradients already times it, as fresh arrays (written once)
    def _terms(self, want_grad: bool):
        raise NotImplementedError(f"{type(self).__name__} does not implement a penalty")

    def _dtype(self):
        return _result_dtype(self.params.values())

    @_checks.finite_result
    def value_and_grad(self, grad_out=None):
        r"""``(loss, grads)``: :math:`\Lambda\sum_k\ell(P_k)` and :math:`\bar y\Lambda\,\partial\ell/\partial P_k`."""
        return self._value_and_grad(_checks.scalar_grad_out(grad_out))

    def _value_and_grad(self, gbar: float):
        """:meth:`value_and_grad` for a validated ``gbar``, without the result guard (a list guards its sum once)."""
        scale = gbar * self.Lambda
        # refnsm's own _terms write the gradient times the scale in the pass that computes it (a separate scaling
        # costs a pass over every parameter); a subclass's _terms returns unscaled gradients, maybe arrays it keeps,
        # so those are scaled into copies
        own = type(self)._terms.__module__ == __name__
        value, grads = self._terms(True, scale) if own else self._terms(True)
        out = {}
        for k, g in grads.items():
            if k in self.frozen or g is None:
                continue
            if scale != 1.0 and not own:
                g = np.multiply(g, g.dtype.type(scale))
            out[k] = g
        self.grads = out
        return self._dtype().type(self.Lambda * value), out

    @_checks.finite_result
    def forward(self):
        r"""The loss :math:`\Lambda\sum_k \ell(P_k)` (a NumPy scalar)."""
        value, _ = self._terms(False)
        return self._dtype().type(self.Lambda * value)

    __call__ = forward

    @_checks.finite_result
    def backward(self, grad_out=None) -> dict:
        """Fill ``self.grads`` with :math:`\\bar y\\Lambda\\,\\partial\\ell/\\partial P_k` (fresh, never accumulated)."""
        return self.value_and_grad(grad_out)[1]

    def trainable(self) -> dict:
        """The parameters that receive gradients (not frozen)."""
        return {k: v for k, v in self.params.items() if k not in self.frozen}

    def __repr__(self):
        return f"{self.name}(params={list(self.params)}, Lambda={self.Lambda})"


class RegularizationList(BaseRegularization):
    r"""Sum of several regularizers, each scaled by its own :math:`\Lambda` (the list's own :math:`\Lambda` is 1).

    ``params`` holds each distinct array once (identity, like ``torch.nn.Module.parameters()``), keyed
    ``'<child index>.<child key>'`` after the first child that has it; the gradient of an array shared by
    several children is the sum of their gradients.  An empty list has loss 0 and no gradients.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> W = np.array([[1.0, -2.0]])
    >>> regs = R.RegularizationList([R.L1({"W": W}), R.L2({"W": W}, Lambda=0.5)])
    >>> round(float(regs.forward()), 6)   # the sum of the terms
    3.118034
    """

    def __init__(self, regularizations: Iterable[BaseRegularization] | None = None, optimizer=None, *,
                 priority=None, name=None, save_state: bool = True, load_state=None):
        regs = list(regularizations) if regularizations is not None else []
        for i, r in enumerate(regs):
            if not isinstance(r, BaseRegularization):
                raise TypeError(f"regularizations[{i}]: expected a regularizer, got {_checks._describe(r)}")
        self.regularizations = regs
        self._key_of = {}  # id(array) -> key
        params = {}
        for i, r in enumerate(regs):
            for k, v in r.params.items():
                if id(v) not in self._key_of:
                    key = f"{i}.{k}"
                    self._key_of[id(v)] = key
                    params[key] = v
        self.params = params
        self.Lambda = 1.0
        frozen_everywhere = {key for key, v in params.items()
                             if all(id(v) not in {id(a) for k2, a in r.params.items() if k2 not in r.frozen}
                                    for r in regs)}
        self.frozen = frozenset(frozen_everywhere)
        self.grads = {}
        self._init_callback(optimizer, priority, name, save_state, load_state)

    def __iter__(self):
        return iter(self.regularizations)

    def __len__(self):
        return len(self.regularizations)

    @_checks.finite_result
    def forward(self):
        total = 0.0
        for r in self.regularizations:
            total += float(r.forward())
        return self._dtype().type(total)

    __call__ = forward

    def _value_and_grad(self, gbar: float):
        total = 0.0
        out = {}
        summed = set()  # keys whose array is a sum the list allocated (added to in place; the children's are theirs)
        for r in self.regularizations:
            # refnsm's regularizers unguarded (the list guards the sum once); a subclass's own value_and_grad as is
            own = type(r).value_and_grad is BaseRegularization.value_and_grad
            v, grads = r._value_and_grad(gbar) if own else r.value_and_grad(gbar)
            total += float(v)
            for k, g in grads.items():
                key = self._key_of[id(r.params[k])]
                if key not in out:
                    out[key] = g
                elif key in summed and out[key].dtype == np.result_type(out[key], g):
                    np.add(out[key], g, out=out[key])
                else:
                    out[key] = out[key] + g
                    summed.add(key)
        self.grads = out
        return self._dtype().type(total), out


class Lp(BaseRegularization):
    r"""neurotorch's ``Lp``: :math:`\Lambda \sum_k \|P_k\|_p` over the trainable parameters of rank >= 1.

    With ``mode="neurotorch"`` (default) the norm is ``torch.linalg.norm(P, p)``: a **vector** p-norm for 1-D
    parameters and an **induced matrix** norm for 2-D ones (:func:`refnsm.regularization.lp_norm`; ``L1`` of a
    matrix is its largest absolute column sum, ``L2`` its spectral norm, both *not squared*).
    ``mode="entrywise"`` flattens each parameter (``L1`` = :math:`\sum|P_{ij}|`, ``L2`` = :math:`\|P\|_F`).
    0-d and frozen parameters are skipped (as upstream); rank >= 3 raises in mode 'neurotorch'.

    Gradients follow torch at ties and zeros (split equally among tied max columns/rows/entries, mean over
    tied top singular pairs; 0 at a zero vector).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> reg = R.Lp({"W": np.array([[3.0, 4.0]])}, p=2)
    >>> float(reg.forward())
    5.0
    """

    def __init__(self, params, Lambda: float = 1.0, p=1, *, mode: str = "neurotorch", frozen=(), **kwargs):
        super().__init__(params, Lambda, frozen=frozen, **kwargs)
        self.mode = _checks.check_option(mode, "mode", F.MODES)
        self.p = F.check_p(p)
        for k, v in self.params.items():
            if v.ndim == 0:
                continue
            if self.mode == "neurotorch" and v.ndim > 2:
                raise ValueError(
                    f"params[{k!r}]: expected a 1-D (vector norm) or 2-D (matrix norm) array, got shape {v.shape} "
                    "(torch.linalg.norm without dim accepts only these; use mode='entrywise' to flatten)"
                )
            F.check_p_for(self.p, v.ndim, self.mode)

    def _dtype(self):
        return _result_dtype(v for k, v in self.params.items() if v.ndim > 0 and k not in self.frozen)

    def _terms(self, want_grad, scale=1.0):
        total, grads = 0.0, {}
        for k, v in self.params.items():
            if v.ndim == 0 or k in self.frozen:
                continue
            val, g = F.norm_value_grad(_contig(v), self.p, self.mode, want_grad, f"params[{k!r}]", scale)
            total += val
            grads[k] = g
        return total, grads


class L1(Lp):
    """:class:`Lp` with ``p=1`` (for a matrix: the largest absolute column sum, in mode 'neurotorch').

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> reg = R.L1({"W": np.array([[1.0, -2.0]])}, Lambda=0.5)
    >>> float(reg.forward())   # Lambda times the matrix 1-norm (largest column sum), as torch.linalg.norm
    1.0
    """

    def __init__(self, params, Lambda: float = 1.0, *, mode: str = "neurotorch", frozen=(), **kwargs):
        super().__init__(params, Lambda, 1, mode=mode, frozen=frozen, **kwargs)


class L2(Lp):
    """:class:`Lp` with ``p=2`` (for a matrix: the spectral norm, not squared, in mode 'neurotorch').

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> reg = R.L2({"W": np.array([[3.0, 4.0]])})
    >>> float(reg.forward())
    5.0
    """

    def __init__(self, params, Lambda: float = 1.0, *, mode: str = "neurotorch", frozen=(), **kwargs):
        super().__init__(params, Lambda, 2, mode=mode, frozen=frozen, **kwargs)


def _reference_list(reference_weights, n_params: int, compat, name="reference_weights"):
    if isinstance(reference_weights, Mapping):
        refs = list(reference_weights.values())
    elif isinstance(reference_weights, np.ndarray):
        raise TypeError(f"{name}: expected a list (one reference per parameter) or a dict, got a single array "
                        "(wrap it in a list)")
    else:
        try:
            refs = list(reference_weights)
        except TypeError:
            raise TypeError(f"{name}: expected a list or a dict of arrays, got "
                            f"{_checks._describe(reference_weights)}") from None
    if len(refs) != n_params and compat != "neurotorch":
        raise ValueError(
            f"{name}: expected one reference per parameter ({n_params}), got {len(refs)} "
            "(neurotorch silently drops the unmatched ones; pass compat='neurotorch' to do the same)"
        )
    return refs


class DaleLawL2(BaseRegularization):
    r"""neurotorch's ``DaleLawL2``: :math:`\Lambda\sum_k \big(\alpha\|W_k\|_F^2 - (1-\alpha)\langle W_k, S_k\rangle\big)`.

    :math:`S_k = \mathrm{sign}(R_k)` is fixed at construction, from ``reference_weights`` (only the signs are used)
    or, when it is None, from :func:`refnsm.regularization.dale` with the keyword arguments ``inh_ratio``,
    ``rho``, ``inh_first`` and ``rng`` (rectangular and float64 work; the signs are all that is kept).  Rows are
    presynaptic neurons.  Gradient: :math:`\Lambda(2\alpha W_k - (1-\alpha)S_k)`, smooth everywhere.

    Parameters
    ----------
    params : dict or list of 2-D arrays
    alpha : float in [0, 1]
        1 gives the squared Frobenius norm (weight decay), 0 the pure sign-agreement reward (:class:`DaleLaw`).
    reference_weights : list or dict of arrays, optional
        One per parameter, same shapes (neurotorch truncates mismatched lists silently and broadcasts shapes;
        refnsm raises unless ``compat='neurotorch'``, which truncates).
    Lambda : float
    optimizer : SGD, optional
        As in :class:`BaseRegularization` (neurotorch's fifth positional argument).
    inh_ratio, rho, inh_first, rng
        Passed to :func:`~refnsm.regularization.dale` when the reference is generated.  ``seed`` is accepted as
        an alias of ``rng`` (neurotorch's ``dale_`` spelling); give at most one of them.
    compat : None or 'neurotorch'
        'neurotorch': unmatched parameters/references are dropped (upstream's ``zip``), and a generated reference is
        the exact one of neurotorch's ``dale_`` (:func:`refnsm.regularization.dale_torch`; square parameters only,
        ``rng`` an int seed or None, as upstream's ``seed``).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> W = np.array([[1.0, -1.0], [2.0, -0.5]])
    >>> reg = R.DaleLawL2({"W": W}, alpha=0.0, reference_weights=[np.array([[1.0, -1.0], [1.0, -1.0]])])
    >>> round(float(reg.forward()), 6), reg.backward()["W"].shape
    (-4.5, (2, 2))
    """

    def __init__(self, params, alpha: float = 0.8, reference_weights=None, Lambda: float = 1.0, optimizer=None, *,
                 inh_ratio: float = 0.5, rho: float = 0.99, inh_first: bool = True, rng=None, seed=None,
                 compat=None, frozen=(), **kwargs):
        if seed is not None:
            if rng is not None:
                raise TypeError("rng, seed: the same argument under two names (seed is neurotorch's spelling); "
                                "give at most one")
            rng = seed
        super().__init__(params, Lambda, optimizer, frozen=frozen, **kwargs)
        self.alpha = _checks.check_in_interval(alpha, "alpha", 0.0, 1.0)
        if compat not in COMPAT:
            raise ValueError(f"compat: expected None or 'neurotorch', got {_checks._describe(compat)}")
        self.compat = compat
        for k, v in self.params.items():
            if v.ndim != 2:
                raise ValueError(f"params[{k!r}]: expected 2 dimensions [N_pre, N_post], got shape {v.shape}")
        keys = list(self.params)
        if reference_weights is None and compat == "neurotorch":
            from .torch_compat import dale_torch

            if not (rng is None or isinstance(rng, (int, np.integer))):
                raise TypeError(f"rng: with compat='neurotorch' expected an int seed or None (torch's fixed "
                                f"default seed), got {_checks._describe(rng)}")
            self.reference_signs = {}
            for k in keys:
                v = self.params[k]
                if v.shape[0] != v.shape[1]:
                    raise ValueError(f"params[{k!r}]: compat='neurotorch' generates the reference with neurotorch's "
                                     f"dale_, defined for square matrices only; got shape {v.shape}")
                self.reference_signs[k] = np.sign(dale_torch(v.shape[0], inh_ratio, rho, inh_first, rng)).astype(v.dtype)
        elif reference_weights is None:
            from .init import _check_args

            inh_ratio, rho, inh_first, _ = _check_args(inh_ratio, rho, inh_first, None)
            gen = _checks.resolve_rng(rng)
            self.reference_signs = {
                k: np.sign(_dale_generate(self.params[k].shape, inh_ratio, rho, inh_first, gen, 1.0,
                                          self.params[k].dtype))
                for k in keys
            }
        else:
            refs = _reference_list(reference_weights, len(keys), compat)
            self.reference_signs = {
                k: F.reference_sign(r, f"reference_weights[{i}]", self.params[k].shape, self.params[k].dtype)
                for i, (k, r) in enumerate(zip(keys, refs))
            }
        # neurotorch's zip(params, refs): parameters beyond the last reference do not count (compat only)
        self._active = [k for k in keys if k in self.reference_signs]

    def _terms(self, want_grad, scale=1.0):
        total, grads = 0.0, {}
        for k in self._active:
            p = _contig(self.params[k])
            val, g = F.dale_l2_value_grad(p, self.reference_signs[k], self.alpha, want_grad, f"params[{k!r}]",
                                          scale)
            total += val
            grads[k] = g
        return total, grads


class DaleLaw(DaleLawL2):
    r"""neurotorch's ``DaleLaw`` = :class:`DaleLawL2` with :math:`\alpha=0`:
    :math:`-\Lambda\sum_k\langle W_k, \mathrm{sign}(R_k)\rangle`, gradient :math:`-\Lambda S_k`.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> W = np.array([[1.0, -1.0], [2.0, -0.5]])
    >>> reg = R.DaleLaw({"W": W}, reference_weights=[np.sign(W)])
    >>> round(float(reg.forward()), 6)
    -4.5
    """

    def __init__(self, params, reference_weights=None, Lambda: float = 1.0, **kwargs):
        if "alpha" in kwargs:
            raise TypeError("alpha: DaleLaw has alpha=0; use DaleLawL2 for another alpha")
        super().__init__(params, 0.0, reference_weights, Lambda, **kwargs)


class ExcRatioTargetRegularization(BaseRegularization):
    r"""neurotorch's ``ExcRatioTargetRegularization``: :math:`\Lambda\sum_k |m_k + 1 - 2t|`, with
    :math:`m_k` the mean of :math:`\varphi(P_k)` (:func:`refnsm.regularization.exc_ratio_loss`).

    ``sign_func='softsign'`` (default, as upstream, *not* sign as the upstream docstring says) or ``'sign'``
    (then the gradient is identically 0), or any elementwise callable on NumPy arrays (upstream takes any
    callable, e.g. ``torch.nn.Softsign()``); the gradient of a callable needs its elementwise derivative
    ``sign_func_grad``.  :math:`(m_k+1)/2` is the soft excitatory ratio reported by
    :meth:`get_params_exc_ratio`.  Parameters of any shape.  ``optimizer`` and neurotorch's callback arguments
    as in :class:`BaseRegularization`.
    (then the gradient is identically 0).  :math:`(m_k+1)/2` is the soft excitatory ratio reported by
    :meth:`get_params_exc_ratio`.  Parameters of any shape.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> reg = R.ExcRatioTargetRegularization({"W": np.array([[5.0, 5.0, -5.0, 5.0]])}, exc_target_ratio=0.75, sign_func="sign")
    >>> float(reg.forward())   # three of four weights are excitatory
    0.0
    """

    def __init__(self, params, exc_target_ratio: float = 0.8, Lambda: float = 1.0, *,
                 sign_func="softsign", sign_func_grad=None, frozen=(), **kwargs):
        exc_target_ratio = F.check_open_ratio(exc_target_ratio, "exc_target_ratio")
        sign_func = F.check_sign_func(sign_func, sign_func_grad)
        super().__init__(params, Lambda, frozen=frozen, **kwargs)
        self.exc_target_ratio = exc_target_ratio
        self.sign_func = sign_func
        self.sign_func_grad = sign_func_grad

    def _terms(self, want_grad, scale=1.0):
        total, grads = 0.0, {}
        for k, v in self.params.items():
            val, g, _ = F.exc_value_grad(_contig(v), self.exc_target_ratio, self.sign_func, want_grad,
                                         f"params[{k!r}]", self.sign_func_grad, scale)
            total += val
            grads[k] = g
        return total, grads

    def _means(self):
        out = []
        for k, v in self.params.items():
            _, _, m = F.exc_value_grad(_contig(v), self.exc_target_ratio, self.sign_func, False, f"params[{k!r}]")
            out.append(m)
        return out

    def get_params_exc_ratio(self) -> list:
        """Soft excitatory ratio :math:`(m_k+1)/2` of each parameter (floats)."""
        return [(m + 1.0) / 2.0 for m in self._means()]

    def get_params_inh_ratio(self) -> list:
        """Soft inhibitory ratio :math:`(1-m_k)/2` of each parameter (floats)."""
        return [(1.0 - m) / 2.0 for m in self._means()]

    def on_pbar_update(self, trainer=None, **kwargs) -> dict:
        """What neurotorch shows in its progress bar: the ratios and the (Lambda-scaled) loss.  ``trainer`` and the
        keyword arguments are upstream's signature, unused."""
        return {"exc_ratio": self.get_params_exc_ratio(), "exc_ratio_loss": float(self())}


class InhRatioTargetRegularization(ExcRatioTargetRegularization):
    r"""neurotorch's ``InhRatioTargetRegularization``: :class:`ExcRatioTargetRegularization` with
    :math:`t = 1 - \text{inh\_target\_ratio}` (the same loss).  Unlike upstream, ``sign_func`` is accepted.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> reg = R.InhRatioTargetRegularization({"W": np.array([[5.0, 5.0, -5.0, 5.0]])}, inh_target_ratio=0.25, sign_func="sign")
    >>> float(reg.forward())
    0.0
    """

    def __init__(self, params, inh_target_ratio: float = 0.2, Lambda: float = 1.0, *,
                 sign_func="softsign", sign_func_grad=None, frozen=(), **kwargs):
        inh = F.check_open_ratio(inh_target_ratio, "inh_target_ratio")
        super().__init__(params, 1.0 - inh, Lambda, sign_func=sign_func, sign_func_grad=sign_func_grad,
                         frozen=frozen, **kwargs)
        self.inh_target_ratio = inh

    def on_pbar_update(self, trainer=None, **kwargs) -> dict:
        return {"inh_ratio": self.get_params_inh_ratio(), "inh_ratio_loss": float(self())}


class WeightsDistance(BaseRegularization):
    r"""neurotorch's ``WeightsDistance``: :math:`\Lambda\sum_k \|\,|P_k - R_k|\,\|_p` with the norms of
    :class:`Lp` (matrix norms for 2-D).  The references are copied at construction and not trained.
    Gradient: :math:`\Lambda(\partial\|D\|_p/\partial D)\odot\mathrm{sign}(P_k-R_k)`, 0 where :math:`P_k=R_k`.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> W = np.array([[1.0, 2.0]])
    >>> reg = R.WeightsDistance({"W": W}, reference_weights=[np.zeros((1, 2))], p=1)
    >>> float(reg.forward())
    2.0
    """

    def __init__(self, params, reference_weights, Lambda: float = 1.0, p=1, *, mode: str = "neurotorch",
                 compat=None, frozen=(), **kwargs):
        super().__init__(params, Lambda, frozen=frozen, **kwargs)
        self.mode = _checks.check_option(mode, "mode", F.MODES)
        self.p = F.check_p(p)
        if compat not in COMPAT:
            raise ValueError(f"compat: expected None or 'neurotorch', got {_checks._describe(compat)}")
        self.compat = compat
        keys = list(self.params)
        refs = _reference_list(reference_weights, len(keys), compat)
        self.references = {}
        for i, (k, r) in enumerate(zip(keys, refs)):
            v = self.params[k]
            F.check_norm_input(v, f"params[{k!r}]", self.mode)
            F.check_p_for(self.p, v.ndim, self.mode)
            r = np.array(_checks.as_float_array(r, f"reference_weights[{i}]", dtype=v.dtype), copy=True)
            if r.shape != v.shape:
                raise ValueError(f"reference_weights[{i}]: expected the parameter's shape {v.shape}, got {r.shape}")
            self.references[k] = r

    def _terms(self, want_grad, scale=1.0):
        total, grads = 0.0, {}
        for k, r in self.references.items():
            val, g = F.distance_value_grad(_contig(self.params[k]), r, self.p, self.mode, want_grad,
                                           f"params[{k!r}]", scale)
            total += val
            grads[k] = g
        return total, grads


# ------------------------------------------------------------------------------------------- training-loop glue
class SGD:
    r"""Plain stochastic gradient descent on a dict of arrays, **in place**: :math:`P \leftarrow P - \eta\, G`.

    In-place is the point (like ``torch.optim.SGD``): the arrays are shared by the model and the regularizers,
    so every holder sees the update.  dtypes are kept.

    Parameters
    ----------
    params : dict of str to ndarray
        The arrays to update (held by reference), e.g. ``reg.trainable()`` or your model's parameter dict.
    lr : float > 0

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> params = {"W": np.array([[1.0, -2.0]])}
    >>> R.SGD(params, lr=0.1).step({"W": np.array([[1.0, 1.0]])})
    >>> params["W"]
    array([[ 0.9, -2.1]])
    """

    def __init__(self, params: Mapping, lr: float):
        self.params = _param_dict(params)
        self.lr = _checks.check_real(lr, "lr", positive=True)
        for k, v in self.params.items():
            if not v.flags.writeable:
                raise ValueError(f"params[{k!r}]: expected a writeable array (SGD updates in place)")
            _checks.check_finite(v, f"params[{k!r}]")

    def step(self, grads: Mapping) -> None:
        """Apply :math:`P_k \\leftarrow P_k - \\eta G_k` for each key of ``grads`` (all checked before any update)."""
        if not isinstance(grads, Mapping):
            raise TypeError(f"grads: expected a dict of arrays keyed like params, got {_checks._describe(grads)}")
        checked = []
        for k, g in grads.items():
            if k not in self.params:
                raise ValueError(f"grads: key {k!r} is not one of the optimiser's params {sorted(self.params)}")
            p = self.params[k]
            g = _checks.as_float_array(g, f"grads[{k!r}]")
            if g.shape != p.shape:
                raise ValueError(f"grads[{k!r}]: expected shape {p.shape}, got {g.shape}")
            _checks.check_finite(p, f"params[{k!r}]")  # it may have changed since construction
            with np.errstate(over="ignore", invalid="ignore"):
                new = p - (self.lr * g).astype(p.dtype, copy=False)
            if not np.isfinite(new).all():
                raise ValueError(f"grads[{k!r}]: the step lr * grads[{k!r}] overflows {p.dtype} "
                                 f"(lr = {self.lr}, max |grad| = {float(np.abs(g).max())}); nothing was updated")
            checked.append((p, new))
        for p, new in checked:
            p[...] = new


def _optimizer_key_map(reg, optimizer) -> dict:
    """regularizer key -> optimizer key, matching the arrays by identity (ValueError when one is missing)."""
    if not isinstance(optimizer, SGD):
        raise TypeError(f"optimizer: expected a refnsm SGD, got {_checks._describe(optimizer)}")
    by_id = {id(v): k for k, v in optimizer.params.items()}
    key_map = {}
    for k, v in reg.trainable().items():
        if id(v) not in by_id:
            raise ValueError(
                f"optimizer: does not hold the regularizer's parameter {k!r} (same array object expected; "
                "was one of them copied or reloaded?)"
            )
        key_map[k] = by_id[id(v)]
    return key_map


def regularization_step(reg: BaseRegularization, optimizer: SGD | None = None, *, lr: float | None = None):
    r"""One regularization update, the job of neurotorch's ``on_optimization_end``: compute
    :math:`\Lambda\,\nabla\ell` at the *current* parameters and take one SGD step with it.  Returns the loss.

    Give either an :class:`SGD` whose parameters include every trainable array of ``reg`` (matched by
    identity, so keys may differ) or a learning rate ``lr``.  Differences from upstream's callback, on
    purpose: there is no silent no-op (upstream does nothing without an optimizer), gradients never
    accumulate across calls, and an optimizer that does not hold the regularizer's arrays (upstream's state
    after a checkpoint resume) raises instead of training detached copies.

    In neurotorch's trainer this step runs *after* the main optimizer's step on the same batch (split step);
    adding ``reg.backward()`` to the task gradient before one step is the joint alternative.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import regularization as R
    >>> params = {"W": np.array([[1.0, -2.0]])}
    >>> loss = R.regularization_step(R.L1(params), lr=0.1)   # one SGD step on the penalty
    >>> float(loss), params["W"]
    (2.0, array([[ 1. , -1.9]]))
    """
    if not isinstance(reg, BaseRegularization):
        raise TypeError(f"reg: expected a regularizer, got {_checks._describe(reg)}")
    if (optimizer is None) == (lr is None):
        raise ValueError("optimizer, lr: expected exactly one of them (a regularizer without an optimizer would "
                         "do nothing)")
    if optimizer is None:
        optimizer = SGD(reg.trainable(), lr)
        key_map = {k: k for k in reg.trainable()}
    else:
        key_map = _optimizer_key_map(reg, optimizer)
    value, grads = reg.value_and_grad()
    optimizer.step({key_map[k]: g for k, g in grads.items()})
    return value
