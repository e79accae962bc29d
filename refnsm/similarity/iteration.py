r"""Generic iterative circuits (pynsm's ``IterationModule`` / ``IterationLossModule``) and the NumPy iteration
optimizers and schedulers they use.

pynsm builds every circuit from two bases.  :class:`IterationModule` runs ``forward(*args)`` as

.. code-block:: text

    hooks "pre";  pre_iteration(*args)
    for i in range(max_iterations):
        iteration_idx = i;  iteration(*args)
        if any "iteration" hook returns True: break
        if converged(*args): break
    out = post_iteration(*args);  hooks "post";  return out

and :class:`IterationLossModule` makes each ``iteration`` one optimizer step on the *iteration parameters*
(``iteration_parameters()``, a dict of arrays updated in place), with the gradient from
``iteration_set_gradients(*args)`` (by default the gradient returned by ``iteration_loss(*args)``: refnsm has no
autodiff, so a subclass gives the hand-derived gradient of its loss), then a scheduler step and an optional
projection of every iteration parameter.  A subclass customises the loop by overriding these methods; the
built-in circuits (:class:`~refnsm.similarity.SimilarityMatching` and friends) run the same loop fused in Numba.

Optimizers (torch semantics, in place, float32 kept):

* :class:`SGD`: :math:`g \leftarrow g + \lambda p`; with momentum :math:`b \leftarrow \mu b + (1-\tau)g`
  (:math:`b = g` at the first step), :math:`g \leftarrow g + \mu b` (Nesterov) or :math:`g \leftarrow b`;
  :math:`p \leftarrow p - \eta g` (:math:`+\eta g` with ``maximize``).
* :class:`Adam`: :math:`m \leftarrow \beta_1 m + (1-\beta_1)g`, :math:`v \leftarrow \beta_2 v + (1-\beta_2)g^2`,
  :math:`p \leftarrow p - \eta\,\hat m/(\sqrt{\hat v} + \epsilon)` with torch's bias corrections
  :math:`\hat m = m/(1-\beta_1^t)`, :math:`\sqrt{\hat v} = \sqrt{v}/\sqrt{1-\beta_2^t}` (``amsgrad``: the running max of
  :math:`v`).

Schedulers (torch's chainable form, stepped after every optimizer step): :class:`StepLR`
(:math:`\eta \leftarrow \gamma\eta` every ``step_size`` steps) and :class:`ExponentialLR` (every step).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Callable, Mapping

import numpy as np

from .. import _checks
from ._diagnostics import Diagnostics

__all__ = ["IterationModule", "IterationLossModule", "SGD", "Adam", "StepLR", "ExponentialLR",
           "OPTIMIZERS", "SCHEDULERS"]

HOOK_KINDS = ("pre", "post", "iteration")


# ------------------------------------------------------------------------------------------------ optimizers
class _Optimizer:
    def __init__(self, params: Mapping, lr: float):
        if not isinstance(params, Mapping):
            raise TypeError(f"params: expected a dict of arrays (the iteration parameters), got {_checks._describe(params)}")
        for k, v in params.items():
            if not isinstance(v, np.ndarray) or v.dtype not in _checks.FLOAT_DTYPES:
                raise TypeError(f"params[{k!r}]: expected a float32/float64 ndarray (updated in place), got "
                                f"{_checks._describe(v)}")
            if not v.flags.writeable:
                raise ValueError(f"params[{k!r}]: expected a writeable array (the optimizer updates it in place)")
        self.params = dict(params)
        self.lr = _checks.check_real(lr, "lr", nonnegative=True)
        self.state: dict = {}

    def _grads(self, grads: Mapping):
        if not isinstance(grads, Mapping):
            raise TypeError(f"grads: expected a dict of arrays keyed like params, got {_checks._describe(grads)}")
        out = {}
        for k, g in grads.items():
            if k not in self.params:
                raise ValueError(f"grads: key {k!r} is not one of the optimizer's params {sorted(self.params)}")
            p = self.params[k]
            g = _checks.as_float_array(g, f"grads[{k!r}]", dtype=p.dtype)
            if g.shape != p.shape:
                raise ValueError(f"grads[{k!r}]: expected shape {p.shape}, got {g.shape}")
            _checks.check_finite(g, f"grads[{k!r}]")
            out[k] = g
        return out


class SGD(_Optimizer):
    """``torch.optim.SGD`` in NumPy: ``SGD(params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False,
    maximize=False)``; :meth:`step` takes ``{key: gradient}`` and updates ``params`` in place.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> params = {"w": np.array([1.0, -2.0])}
    >>> opt = sim.SGD(params, lr=0.1)
    >>> opt.step({"w": np.array([1.0, 1.0])})   # in place: w - lr * grad
    >>> params["w"]
    array([ 0.9, -2.1])
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False):
        super().__init__(params, lr)
        self.momentum = _checks.check_real(momentum, "momentum", nonnegative=True)
        self.dampening = _checks.check_real(dampening, "dampening")
        self.weight_decay = _checks.check_real(weight_decay, "weight_decay", nonnegative=True)
        self.nesterov = _bool(nesterov, "nesterov")
        self.maximize = _bool(maximize, "maximize")
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov: Nesterov momentum requires momentum > 0 and dampening = 0 (as torch)")

    def step(self, grads: Mapping) -> None:
        for k, g in self._grads(grads).items():
            p = self.params[k]
            g = -g if self.maximize else g
            if self.weight_decay != 0:
                g = g + self.weight_decay * p
            if self.momentum != 0:
                buf = self.state.get(k)
                if buf is None:
                    buf = g.copy()
                else:
                    buf = self.momentum * buf + (1 - self.dampening) * g
                self.state[k] = buf
                g = g + self.momentum * buf if self.nesterov else buf
            p -= (self.lr * g).astype(p.dtype, copy=False)


class Adam(_Optimizer):
    """``torch.optim.Adam`` in NumPy: ``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
    amsgrad=False, maximize=False)`` (L2 ``weight_decay`` added to the gradient, as torch's Adam, not AdamW).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> params = {"w": np.array([1.0, -2.0])}
    >>> opt = sim.Adam(params, lr=0.1)
    >>> opt.step({"w": np.array([1.0, -1.0])})   # the first Adam step moves each entry by about lr
    >>> np.round(params["w"], 6)
    array([ 0.9, -1.9])
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False, maximize: bool = False):
        super().__init__(params, lr)
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise TypeError(f"betas: expected a pair (beta1, beta2), got {_checks._describe(betas)}") from None
        self.betas = (_checks.check_in_interval(b1, "betas[0]", 0.0, 1.0), _checks.check_in_interval(b2, "betas[1]", 0.0, 1.0))
        if self.betas[0] == 1.0 or self.betas[1] == 1.0:
            raise ValueError(f"betas: expected values in [0, 1), got {betas}")
        self.eps = _checks.check_real(eps, "eps", nonnegative=True)
        self.weight_decay = _checks.check_real(weight_decay, "weight_decay", nonnegative=True)
        self.amsgrad = _bool(amsgrad, "amsgrad")
        self.maximize = _bool(maximize, "maximize")

    def step(self, grads: Mapping) -> None:
        b1, b2 = self.betas
        for k, g in self._grads(grads).items():
            p = self.params[k]
            g = -g if self.maximize else g
            if self.weight_decay != 0:
                g = g + self.weight_decay * p
            st = self.state.setdefault(k, {"step": 0, "m": np.zeros_like(p), "v": np.zeros_like(p),
                                           "vmax": np.zeros_like(p)})
            st["step"] += 1
            t = st["step"]
            st["m"] = st["m"] + (g - st["m"]) * (1 - b1)          # torch's lerp_
            st["v"] = st["v"] * b2 + (1 - b2) * g * g
            bc1 = 1 - b1 ** t
            bc2_sqrt = math.sqrt(1 - b2 ** t)
            step_size = self.lr / bc1
            if self.amsgrad:
                st["vmax"] = np.maximum(st["vmax"], st["v"])
                denom = np.sqrt(st["vmax"]) / bc2_sqrt + self.eps
            else:
                denom = np.sqrt(st["v"]) / bc2_sqrt + self.eps
            p -= (step_size * st["m"] / denom).astype(p.dtype, copy=False)


def _bool(v, name):
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {_checks._describe(v)}")
    return bool(v)


# ------------------------------------------------------------------------------------------------ schedulers
class _Scheduler:
    def __init__(self, optimizer):
        if not hasattr(optimizer, "lr") or not hasattr(optimizer, "step"):
            raise TypeError(f"optimizer: expected a refnsm iteration optimizer (with .lr and .step), got "
                            f"{_checks._describe(optimizer)}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0

    def get_last_lr(self) -> list:
        return [self.optimizer.lr]

    def step(self) -> None:
        self.last_epoch += 1
        self.optimizer.lr = self._next_lr(self.optimizer.lr)


class StepLR(_Scheduler):
    """``torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma=0.1)``: multiply the learning rate by ``gamma``
    every ``step_size`` scheduler steps (torch's chainable form).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> opt = sim.SGD({"w": np.zeros(1)}, lr=1.0)
    >>> sched = sim.StepLR(opt, step_size=2, gamma=0.5)
    >>> for _ in range(4):
    ...     sched.step()
    ...
    >>> opt.lr   # halved every 2 steps
    0.25
    """

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        self.step_size = _checks.check_int(step_size, "step_size", minimum=1)
        self.gamma = _checks.check_real(gamma, "gamma", nonnegative=True)
        super().__init__(optimizer)

    def _next_lr(self, lr):
        return lr * self.gamma if self.last_epoch % self.step_size == 0 else lr


class ExponentialLR(_Scheduler):
    """``torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma)``: multiply the learning rate by ``gamma`` at every
    scheduler step.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> opt = sim.SGD({"w": np.zeros(1)}, lr=1.0)
    >>> sched = sim.ExponentialLR(opt, gamma=0.5)
    >>> sched.step()
    >>> sched.step()
    >>> opt.lr
    0.25
    """

    def __init__(self, optimizer, gamma: float):
        self.gamma = _checks.check_real(gamma, "gamma", nonnegative=True)
        super().__init__(optimizer)

    def _next_lr(self, lr):
        return lr * self.gamma


OPTIMIZERS = {"sgd": SGD, "adam": Adam}
SCHEDULERS = {"step": StepLR, "exponential": ExponentialLR}


# ------------------------------------------------------------------------------------------------ the bases
class IterationModule:
    """pynsm's ``IterationModule``: ``forward(*args)`` calls :meth:`iteration` until ``max_iterations`` steps, a
    truthy ``"iteration"`` hook or :meth:`converged` (see the module docstring for the exact order).  Override
    :meth:`iteration` (required), :meth:`converged`, :meth:`pre_iteration` and :meth:`post_iteration` (its return
    value is ``forward``'s).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> class Halve(sim.IterationModule):
    ...     def pre_iteration(self, x):
    ...         self.y = float(x)
    ...     def iteration(self, x):
    ...         self.y /= 2
    ...     def converged(self, x):
    ...         return self.y < 1
    ...     def post_iteration(self, x):
    ...         return self.y
    ...
    >>> Halve(max_iterations=100).forward(10.0)   # 10 -> 5 -> 2.5 -> 1.25 -> 0.625
    0.625
    """

    def __init__(self, max_iterations: int = 1000):
        self.max_iterations = _checks.check_int(max_iterations, "max_iterations", minimum=0)
        self.hooks: dict = defaultdict(list)
        self.iteration_idx = -1

    def register_iteration_hook(self, kind: str, hook: Callable) -> None:
        """``"pre"`` (before :meth:`pre_iteration`), ``"post"`` (after :meth:`post_iteration`) or ``"iteration"``
        (after every :meth:`iteration`, before :meth:`converged`; a truthy return value stops the loop); each
        hook is called as ``hook(module)``."""
        _checks.check_option(kind, "kind", HOOK_KINDS)
        if not callable(hook):
            raise TypeError(f"hook: expected a callable hook(module), got {_checks._describe(hook)}")
        self.hooks[kind].append(hook)

    def forward(self, *args, **kwargs) -> Any:
        self.iteration_idx = -1
        self._call_hooks("pre")
        self.pre_iteration(*args, **kwargs)
        for i in range(self.max_iterations):
            self.iteration_idx = i
            self.iteration(*args, **kwargs)
            if self._call_hooks("iteration", check_output=True):
                break
            if self.converged(*args, **kwargs):
                break
        out = self.post_iteration(*args, **kwargs)
        self._call_hooks("post")
        return out

    __call__ = forward

    def iteration(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement iteration(*args)")

    def converged(self, *args, **kwargs) -> bool:
        return False

    def pre_iteration(self, *args, **kwargs):
        return None

    def post_iteration(self, *args, **kwargs):
        return None

    def _call_hooks(self, kind, check_output=False) -> bool:
        for hook in self.hooks[kind]:
            if hook(self) and check_output:
                return True
        return False


class IterationLossModule(IterationModule):
    """pynsm's ``IterationLossModule``: each iteration is one optimizer step on ``iteration_parameters()``.

    Parameters
    ----------
    iteration_optimizer : "sgd", "adam", or a class/callable ``(params_dict, **kwargs) -> optimizer``
        The optimizer, built in :meth:`pre_iteration` for every forward (as pynsm), with ``it_optim_kwargs``.
    iteration_scheduler : None, "step", "exponential", or a class/callable ``(optimizer, **kwargs)``
        Stepped after every optimizer step, with ``it_sched_kwargs``.
    iteration_lr : float
        The optimizer's ``lr`` unless ``it_optim_kwargs`` has one (pynsm's precedence; the caller's dict is copied,
        not mutated as upstream does).
    iteration_projection : callable, optional
        Applied to every iteration parameter after each step, ``p[...] = projection(p)`` (e.g. ``np.maximum(p, 0)``).
    max_iterations : int

    Override :meth:`iteration_parameters` (a dict of arrays the loop updates in place) and either
    :meth:`iteration_loss` (returning ``(loss, grads)``, the hand-derived gradient of the loss with respect to
    each iteration parameter) or :meth:`iteration_set_gradients` (returning the gradients directly).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> class Root(sim.IterationLossModule):   # minimise (y - 3)^2 by gradient steps on y
    ...     def pre_iteration(self):
    ...         self.y = np.zeros(1)
    ...         super().pre_iteration()
    ...     def iteration_parameters(self):
    ...         return {"y": self.y}
    ...     def iteration_set_gradients(self):
    ...         return {"y": 2 * (self.y - 3.0)}
    ...     def post_iteration(self):
    ...         return self.y
    ...
    >>> np.round(Root(iteration_lr=0.25, max_iterations=50).forward(), 6)
    array([3.])
    """

    def __init__(self, iteration_optimizer="sgd", iteration_scheduler=None, iteration_lr: float = 1.0,
                 it_optim_kwargs=None, it_sched_kwargs=None, iteration_projection=None, max_iterations: int = 1000):
        super().__init__(max_iterations)
        self.it_construct_optim = _factory(iteration_optimizer, "iteration_optimizer", OPTIMIZERS)
        self.it_construct_sched = (None if iteration_scheduler is None else
                                   _factory(iteration_scheduler, "iteration_scheduler", SCHEDULERS))
        for name, d in (("it_optim_kwargs", it_optim_kwargs), ("it_sched_kwargs", it_sched_kwargs)):
            if d is not None and not isinstance(d, Mapping):
                raise TypeError(f"{name}: expected None or a dict of keyword arguments, got {_checks._describe(d)}")
        self.it_optim_kwargs = dict(it_optim_kwargs or {})
        self.it_optim_kwargs.setdefault("lr", _checks.check_real(iteration_lr, "iteration_lr"))
        self.it_sched_kwargs = dict(it_sched_kwargs or {})
        if iteration_projection is not None and not callable(iteration_projection):
            raise TypeError(f"iteration_projection: expected None or a callable, got {_checks._describe(iteration_projection)}")
        self.iteration_projection = iteration_projection
        self.iteration_optimizer = None
        self.iteration_scheduler = None
        self.last_iteration_loss = None

    def iteration(self, *args, **kwargs):
        grads = self.iteration_set_gradients(*args, **kwargs)
        self.iteration_optimizer.step(grads)
        if self.iteration_scheduler is not None:
            self.iteration_scheduler.step()
        if self.iteration_projection is not None:
            for k, p in self.iteration_parameters().items():
                q = np.asarray(self.iteration_projection(p.copy()), dtype=p.dtype)
                if q.shape != p.shape:
                    raise ValueError(f"iteration_projection: expected an array of shape {p.shape} for {k!r}, got "
                                     f"{q.shape}")
                p[...] = q

    def pre_iteration(self, *args, **kwargs):
        super().pre_iteration(*args, **kwargs)
        self.iteration_optimizer = self.it_construct_optim(self.iteration_parameters(), **self.it_optim_kwargs)
        self.iteration_scheduler = (None if self.it_construct_sched is None else
                                    self.it_construct_sched(self.iteration_optimizer, **self.it_sched_kwargs))

    def iteration_set_gradients(self, *args, **kwargs) -> dict:
        """The gradients for this step ({key of iteration_parameters(): array}); default: from
        :meth:`iteration_loss`, whose value is kept in ``last_iteration_loss``."""
        loss, grads = self.iteration_loss(*args, **kwargs)
        self.last_iteration_loss = float(loss)
        return grads

    def iteration_loss(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement iteration_loss(*args) -> (loss, grads) or "
                                  "override iteration_set_gradients")

    def iteration_parameters(self) -> dict:
        raise NotImplementedError(f"{type(self).__name__} must implement iteration_parameters() -> dict of arrays")


def _factory(spec, name, table):
    if isinstance(spec, str):
        return table[_checks.check_option(spec, name, tuple(table))]
    if callable(spec):
        return spec
    raise TypeError(f"{name}: expected one of {tuple(table)} or a callable, got {_checks._describe(spec)}")


# ------------------------------------------------------------------------------------ the built-in circuits
class _CircuitIterationPoints:
    """pynsm's override points on the built-in circuits (:class:`~refnsm.similarity.MultiSimilarityMatching` and
    subclasses), with the same meaning as in :class:`IterationLossModule`.

    ``forward`` runs the fused Numba loop unless an iteration optimizer other than plain SGD, a scheduler, or a
    subclass's override of one of these methods asks for the step-by-step loop; that loop calls them in pynsm's
    order (``pre_iteration``, then ``iteration`` and ``converged`` per step, then ``post_iteration``), with the
    hooks where pynsm calls them.  Each may also be called directly, as in pynsm.
    """

    _POINTS = ("pre_iteration", "iteration", "converged", "post_iteration", "iteration_parameters",
               "iteration_set_gradients", "iteration_loss")

    def _init_iteration_plugins(self, iteration_optimizer, iteration_scheduler, it_optim_kwargs, it_sched_kwargs):
        self.it_construct_optim = _factory(iteration_optimizer, "iteration_optimizer", OPTIMIZERS)
        self.it_construct_sched = (None if iteration_scheduler is None else
                                   _factory(iteration_scheduler, "iteration_scheduler", SCHEDULERS))
        for name, d in (("it_optim_kwargs", it_optim_kwargs), ("it_sched_kwargs", it_sched_kwargs)):
            if d is not None and not isinstance(d, Mapping):
                raise TypeError(f"{name}: expected None or a dict of keyword arguments, got {_checks._describe(d)}")
        self.it_optim_kwargs = dict(it_optim_kwargs or {})
        self.it_sched_kwargs = dict(it_sched_kwargs or {})
        self.iteration_optimizer = None
        self.iteration_scheduler = None
        self.last_iteration_loss = None

    def _uses_python_iteration(self) -> bool:
        plain = (self.it_construct_optim is SGD and self.it_construct_sched is None
                 and set(self.it_optim_kwargs) <= {"lr"} and self.it_optim_kwargs.get("lr", self.iteration_lr)
                 == self.iteration_lr)
        overridden = any(getattr(type(self), p) is not getattr(_CircuitIterationPoints, p) for p in self._POINTS)
        return not plain or overridden

    # ---- the override points (state: the internal drive D and output Y, [B*S, m]) ----
    def pre_iteration(self, *xs):
        """Encode the inputs, start from y = 0 and build the iteration optimizer and scheduler (pynsm's)."""
        if self._device != "cpu":
            raise NotImplementedError("device: the step-by-step iteration (optimizers, schedulers, overridden "
                                      "iteration methods) runs on the CPU only; use device='cpu'")
        enc = self._encode_all(xs, need_cache=False)
        self._D, self._yshape = enc.D, enc.shape
        self._Y = np.zeros(enc.D.shape, enc.D.dtype)
        self._it_last = None
        self._it_change = 0.0
        kw = dict(self.it_optim_kwargs)
        kw.setdefault("lr", self.iteration_lr)
        self.iteration_optimizer = self.it_construct_optim(self.iteration_parameters(), **kw)
        self.iteration_scheduler = (None if self.it_construct_sched is None else
                                    self.it_construct_sched(self.iteration_optimizer, **self.it_sched_kwargs))

    def iteration_parameters(self) -> dict:
        """``{"y": Y}``: the output being iterated, internal layout [B*S, m], updated in place."""
        return {"y": self._Y}

    def iteration_loss(self, *xs):
        r"""pynsm's iteration loss :math:`\tfrac12\sum y^\top My - \sum y^\top b` and its gradient
        :math:`My - b` (``(loss, {"y": grad})``)."""
        MY = self._Y @ self.M.T
        return 0.5 * float(np.vdot(self._Y, MY)) - float(np.vdot(self._Y, self._D)), {"y": MY - self._D}

    def iteration_set_gradients(self, *xs) -> dict:
        """The gradient of the step, :math:`My - b` (pynsm sets it by hand too, without evaluating the loss)."""
        return {"y": self._Y @ self.M.T - self._D}

    def iteration(self, *xs):
        """One step: gradient, optimizer step, scheduler step, projection."""
        self.iteration_optimizer.step(self.iteration_set_gradients(*xs))
        if self.iteration_scheduler is not None:
            self.iteration_scheduler.step()
        proj = self.iteration_projection
        if proj == "relu":
            np.maximum(self._Y, 0.0, out=self._Y)
        elif proj is not None:
            out = np.asarray(proj(_from_internal_copy(self._Y, self._yshape)))
            if out.shape != tuple(self._yshape):
                raise ValueError(f"iteration_projection: expected it to return shape {tuple(self._yshape)}, got "
                                 f"{out.shape}")
            self._Y[...] = _to_internal_copy(out.astype(self.dtype, copy=False))

    def converged(self, *xs) -> bool:
        """pynsm's rule: ``max|y - y_prev| < tol`` from the second step on."""
        done = False
        if self._it_last is not None:
            diff = np.abs(self._Y - self._it_last)
            self._it_change = float(np.nan) if np.isnan(diff).any() else float(diff.max(initial=0.0))
            done = self._it_change < self.tol
        self._it_last = self._Y.copy()
        return done

    def post_iteration(self, *xs):
        """The output ``y`` of shape [B, m, S1..Sk] (a new array)."""
        return _from_internal_copy(self._Y, self._yshape)

    def _forward_iterations(self, *xs):
        for h in self.hooks["pre"]:
            h(self)
        self.iteration_idx = -1
        self.pre_iteration(*xs)
        iters, converged, by_hook = 0, False, False
        for i in range(self.max_iterations):
            self.iteration_idx = i
            self.iteration(*xs)
            iters = i + 1
            if any(h(self) for h in self.hooks["iteration"]):
                by_hook = True
                break
            if self.converged(*xs):
                converged = True
                break
        energy, _ = self.iteration_loss(*xs)
        y = self.post_iteration(*xs)
        proj = self.iteration_projection
        Z = self._Y - (self._Y @ self.M.T - self._D)
        P = (np.maximum(Z, 0.0) if proj == "relu" else Z if proj is None else
             _to_internal_copy(np.asarray(proj(_from_internal_copy(Z, self._yshape))).astype(self.dtype, copy=False)))
        self.diagnostics = Diagnostics(int(iters), float(self._it_change), bool(converged), by_hook,
                                       float(np.max(np.abs(self._Y - P), initial=0.0)), float(energy),
                                       not bool(np.isfinite(self._Y).all()))
        for h in self.hooks["post"]:
            h(self)
        return y


def _from_internal_copy(Y, shape):
    from .encoders import _from_internal

    return np.array(_from_internal(Y, shape), copy=True)


def _to_internal_copy(a):
    from .encoders import _to_internal

    return np.ascontiguousarray(_to_internal(a))
