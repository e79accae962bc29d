r"""Similarity-matching circuits: :class:`MultiSimilarityMatching`, :class:`SimilarityMatching`,
:class:`SupervisedSimilarityMatching` (pynsm 1.0.1's names, defaults and semantics).

Notation (pynsm's): ``K`` encoders :math:`f_k`; input :math:`x_k` gives :math:`u_k = f_k(x_k)` of shape
``[B, m, S1..Sk]``; :math:`T = B S` (sample, position) pairs, :math:`N = m T`; the competitor :math:`M` is
``m x m`` and mixes channels at every sample and position.

**Fast dynamics** (``forward``), from :math:`y^0 = 0` with the drive :math:`b = \sum_{k\ \mathrm{active}} u_k`:

.. math::  y^{t+1} = P\big(y^t - \eta\,(M y^t - b)\big),\qquad t = 0, 1, \dots, \texttt{max\_iterations} - 1,

stopping after update :math:`t \ge 1` when :math:`\max|y^{t+1} - y^t| < \mathrm{tol}` (strict; ``tol = 0`` never
stops early).  :math:`P` is the identity (SM), the ReLU (NSM) or any callable.  For symmetric positive-definite
:math:`M` the fixed point minimises :math:`\tfrac12 y^\top M y - y^\top b` (over :math:`y \ge 0` for NSM).

**Slow loss** (``loss``), with ``y`` held fixed:

.. math::

    L = \frac{2 \sum y \odot M y - 4 \sum y \odot b}{N} - \frac{\|M\|_F^2}{m} + \sum_k R_k,\qquad
    R_k = \begin{cases} \tfrac{2}{m} \sum_{\theta \in f_k} \|\theta\|_F^2 & \text{"weight" (biases included)}\\
    \tfrac{2}{N} \|u_k\|^2 & \text{"whiten"} \\ 0 & \text{"none"}\end{cases}

and its gradients :math:`\partial L/\partial u_k = -\tfrac4N y\ (+\tfrac4N u_k` if "whiten"),
:math:`\partial L/\partial M = \tfrac2N y y^\top - \tfrac2m M` (with :math:`y y^\top` summed over samples and
positions), pushed through each encoder's VJP.  The regularizer :math:`R_k` of an encoder applies only when its
input is given.

**Update** (``step(lr)``): gradient descent on the encoders and gradient *ascent* on :math:`M` at rate
``lr / tau``, i.e. :math:`\theta \leftarrow \theta - \eta\,\partial L/\partial\theta`,
:math:`M \leftarrow M + (\eta/\tau)\,\partial L/\partial M`.  This is exactly what pynsm's tensor hook
(``grad_M -> -grad_M / tau``) plus ``torch.optim.SGD(lr=eta)`` does, made explicit so that it survives copying and
saving.  ``grads["competitor.weight"]`` is the *raw* :math:`\partial L/\partial M`; pynsm's ``.grad`` is
:math:`-1/\tau` times it.

**GPU** (``device="cuda"``, a constructor argument and attribute): ``forward``, ``loss``, ``backward`` and
``train_step`` run the code below with the CUDA twins of the kernels (:mod:`refnsm.similarity._cuda_kernels`) and of
the array operations (:mod:`refnsm.similarity._cuda_ops`): the fast loop, the encoders' products, im2col/col2im and
the gradients on the device; ``step`` and ``solve`` stay on the host.  Inputs may be NumPy arrays
(results come back as NumPy) or Numba device arrays (``y`` and the input gradients stay on the device); the
parameters remain NumPy arrays in ``params``, copied to the device at each call.  See ``docs/cuda.md``.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Sequence

import numpy as np

from .. import _backend
from .. import _checks
from . import _kernels
from . import _ops
from . import fused
from .encoders import DEVICES, Encoder, Linear, _from_internal, _internal_view, _to_internal
from ._diagnostics import Diagnostics
from .iteration import _CircuitIterationPoints

__all__ = ["MultiSimilarityMatching", "SimilarityMatching", "SupervisedSimilarityMatching", "Diagnostics"]

REGULARIZATIONS = ("weight", "whiten", "none")
HOOK_KINDS = ("pre", "iteration", "post")
COMPAT = (None, "pynsm")


class _Encoded:
    """The encodings of one call: drive ``D`` ``[m, T]`` and per-encoder internal encodings and caches."""

    __slots__ = ("active", "U", "cache", "shape", "D", "B", "S", "n_inputs", "on_device")


class MultiSimilarityMatching(_CircuitIterationPoints):
    r"""Multi-input similarity-matching circuit (pynsm ``MultiSimilarityMatching``).

    Parameters
    ----------
    encoders : sequence of :class:`~refnsm.similarity.encoders.Encoder`
        One per input; input ``k`` goes to ``encoders[k]``.  All must share one dtype (the model's).
    out_channels : int
        ``m``; must equal every encoder's ``out_channels`` (checked here, or at the first call for
        :class:`~refnsm.similarity.encoders.Identity`).
    tau : float > 0
        The competitor learns at rate ``lr / tau``.
    tol : float >= 0
        Convergence tolerance of the fast loop (pynsm's rule; 0 disables early stopping).
    max_iterations : int >= 0
        Cap on the fast updates.
    regularization : {"weight", "whiten", "none"} or a sequence of them
        One for every encoder (a single string is repeated).
    iteration_lr : float > 0
        Step :math:`\eta` of the fast dynamics.  SM with no projection converges iff every eigenvalue of
        :math:`M` lies in :math:`(0, 2/\eta)`.
    iteration_projection : None, "relu" or callable
        :math:`P`.  ``"relu"`` gives NSM and runs inside the Numba loop; a callable receives a fresh array of
        shape ``[B, m, S1..Sk]`` and must return one of that shape (runs at the Python level).
    iteration_optimizer, iteration_scheduler, it_optim_kwargs, it_sched_kwargs : keyword-only
        pynsm's iteration plug-ins (:mod:`refnsm.similarity.iteration`): ``"sgd"`` (default: plain steps of
        ``iteration_lr``, the fused loop), ``"adam"``, or an optimizer class such as
        :class:`~refnsm.similarity.SGD` with ``momentum`` in ``it_optim_kwargs``; a scheduler ``"step"`` /
        ``"exponential"`` / class with ``it_sched_kwargs``.  Anything but plain SGD runs the step-by-step loop
        through the override points (``pre_iteration``, ``iteration``, ``converged``, ``post_iteration``,
        ``iteration_parameters``, ``iteration_set_gradients``, ``iteration_loss``), which a subclass may also
        override to build another circuit.
    compat : None or "pynsm"
        ``"pynsm"`` reproduces pynsm 1.0.1's loss exactly, bugs included (``docs/upstream_differences.md``): with two or more active
        encoders the first active encoding is overwritten by the sum (so "whiten" on it penalises
        :math:`\|\sum_k u_k\|^2`), and the regularizers are paired with the *active* encodings in order, so a
        skipped input shifts them.
    device : {"cpu", "cuda"}
        Where ``forward``, ``loss``, ``backward`` and ``train_step`` run (an attribute: it may be changed between
        calls, which drops the cache of the last ``loss``).  ``"cuda"`` runs the same code with the CUDA twins
        of the kernels and array operations, :mod:`refnsm.similarity._cuda_kernels` and
        :mod:`refnsm.similarity._cuda_ops` (same results within 1e-12 in float64 and 1e-5 in float32; see
        ``docs/cuda.md``); inputs may then also be Numba device arrays, and results come back on their side.

    Attributes
    ----------
    params : dict of ndarray
        ``"encoders.{k}.{name}"`` (the same arrays as ``encoders[k].params``) and ``"competitor.weight"``
        (:math:`M`, initialised to the identity), the keys of pynsm's ``state_dict``.
    grads : dict of ndarray
        Filled by :meth:`backward`: the raw gradients :math:`\partial L/\partial\theta`.
    y : ndarray
        The current output (during the iteration hooks, a read-only view of the state being iterated).
    diagnostics : Diagnostics
        Of the last ``forward``.
    iteration_idx : int
        Index of the current/last fast update (-1 before the first).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> rng = np.random.default_rng(0)
    >>> model = sim.MultiSimilarityMatching([sim.Linear(4, 2, rng=0), sim.Linear(3, 2, rng=1)], 2)
    >>> y = model.forward(rng.standard_normal((6, 4)), rng.standard_normal((6, 3)))   # one input per encoder
    >>> y.shape
    (6, 2)
    """

    _input_names: Sequence[str] | None = None

    def __init__(self, encoders, out_channels, tau=0.1, tol=0.0, max_iterations=40, regularization="weight",
                 iteration_lr=1.0, iteration_projection=None, *, compat=None, device="cpu",
                 iteration_optimizer="sgd", iteration_scheduler=None, it_optim_kwargs=None, it_sched_kwargs=None):
        if isinstance(encoders, Encoder) or not isinstance(encoders, Sequence) or len(encoders) == 0:
            raise TypeError(f"encoders: expected a non-empty sequence of refnsm.similarity encoders, got {encoders!r}")
        for k, e in enumerate(encoders):
            if not isinstance(e, Encoder):
                raise TypeError(f"encoders: expected refnsm.similarity encoders, got {type(e).__name__} at position {k}")
        out_channels = _checks.check_int(out_channels, "out_channels", minimum=1)
        for k, e in enumerate(encoders):
            if e.out_channels is not None and e.out_channels != out_channels:
                raise ValueError(f"out_channels: expected the encoders' output channels, got out_channels={out_channels} "
                                 f"but encoders[{k}] ({e!r}) has {e.out_channels}")
        dtypes = {np.dtype(e.dtype) for e in encoders}
        if len(dtypes) != 1:
            raise TypeError(f"encoders: expected one dtype for all encoders, got {sorted(str(d) for d in dtypes)}")
        self.tau = _checks.check_real(tau, "tau", positive=True)
        self.tol = _checks.check_real(tol, "tol", nonnegative=True)
        self.max_iterations = _checks.check_int(max_iterations, "max_iterations", minimum=0)
        self.iteration_lr = _checks.check_real(iteration_lr, "iteration_lr", positive=True)
        if isinstance(regularization, str):
            _checks.check_option(regularization, "regularization", REGULARIZATIONS)
            regs = [regularization] * len(encoders)
        elif not isinstance(regularization, Sequence):
            raise TypeError(f"regularization: expected one of {', '.join(map(repr, REGULARIZATIONS))} or a sequence of "
                            f"them (one per encoder), got {_checks._describe(regularization)}")
        else:
            regs = list(regularization)
            if len(regs) != len(encoders):
                raise ValueError(f"regularization: expected {len(encoders)} entries (one per encoder), got {len(regs)}")
            for r in regs:
                _checks.check_option(r, "regularization", REGULARIZATIONS)
        if not (iteration_projection is None or iteration_projection == "relu" or
                (callable(iteration_projection) and not isinstance(iteration_projection, str))):
            raise ValueError(f"iteration_projection: expected None, 'relu' or a callable, got {iteration_projection!r}")
        _backend.check_compat(compat, COMPAT)
        _backend.check_device(device)
        self._init_iteration_plugins(iteration_optimizer, iteration_scheduler, it_optim_kwargs, it_sched_kwargs)

        self.encoders = list(encoders)
        self.out_channels = out_channels
        self.regularization = regs
        self.iteration_projection = iteration_projection
        self.compat = compat
        self.dtype = dtypes.pop()
        self._broadcast = [False] * len(self.encoders)
        self.params = {}
        for k, e in enumerate(self.encoders):
            for name, arr in e.params.items():
                self.params[f"encoders.{k}.{name}"] = arr
        self.params["competitor.weight"] = np.eye(out_channels, dtype=self.dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.hooks = defaultdict(list)
        self.iteration_idx = -1
        self.diagnostics = None
        self._Y = None
        self._yshape = None
        self._D = None
        self._loss_cache = None
        self._have_grads = False
        self._device = device

    # ------------------------------------------------------------------------------------------ helpers
    @property
    def M(self):
        """The competitor weight :math:`M` (``params["competitor.weight"]``)."""
        return self.params["competitor.weight"]

    @property
    def device(self):
        """``"cpu"`` or ``"cuda"``: where forward, loss, backward and train_step run."""
        return self._device

    @device.setter
    def device(self, value):
        self._device = _backend.check_device(value)
        self._loss_cache = None  # a cache lives on the side that made it

    def __getstate__(self):
        """For copy/pickle: the per-call device buffers of a ``device="cuda"`` call are not copied (device arrays
        cannot be); the fast state is brought to the host and the cache of the last ``loss`` is dropped."""
        state = self.__dict__.copy()
        for key in ("_Y", "_D"):
            if state.get(key) is not None and not isinstance(state[key], np.ndarray):
                state[key] = state[key].copy_to_host()
        if self._device == "cuda":
            state["_loss_cache"] = None
        return state

    @property
    def y(self):
        if self._Y is None:
            return np.zeros((0,), dtype=self.dtype)
        Y = self._Y if isinstance(self._Y, np.ndarray) else self._Y.copy_to_host()  # device="cuda": a host copy
        v = _internal_view(Y, self._yshape)
        v.flags.writeable = False
        return v

    def _device_modules(self):
        """``(kernels, ops)`` of the circuit's device: :mod:`refnsm.similarity._kernels` and
        :mod:`refnsm.similarity._ops`, or their CUDA twins (:func:`refnsm._backend.kernels`)."""
        if self._device == "cpu":
            return _kernels, _ops
        return _backend.kernels("similarity", self._device), _backend.kernels("similarity", self._device, "ops")

    def _names(self, n):
        if self._input_names is not None:
            return list(self._input_names) + [f"xs[{k}]" for k in range(len(self._input_names), n)]
        return [f"xs[{k}]" for k in range(n)]

    def register_iteration_hook(self, kind, hook):
        """Register ``hook(model)`` to run at ``kind`` in {"pre", "iteration", "post"} (pynsm's order).

        "pre" runs before the inputs are encoded, "iteration" after every fast update (a truthy return stops the
        loop at once, skipping later hooks and the ``tol`` test), "post" after the loop.
        """
        _checks.check_option(kind, "kind", HOOK_KINDS)
        if not callable(hook):
            raise TypeError(f"hook: expected a callable, got {type(hook).__name__}")
        self.hooks[kind].append(hook)

    def state_dict(self):
        """A copy of ``params`` (safe to save, pickle or deep-copy: nothing depends on hooks)."""
        return {k: v.copy() for k, v in self.params.items()}

    def load_state_dict(self, state):
        """Copy arrays into ``params`` in place (validated first: keys and shapes must match; nothing changes on error)."""
        if set(state) != set(self.params):
            raise ValueError(f"state: expected keys {sorted(self.params)}, got {sorted(state)}")
        new = {}
        for k, v in state.items():
            arr = _checks.as_float_array(v, f"state[{k!r}]", dtype=self.dtype)
            _checks.check_shape(arr, f"state[{k!r}]", self.params[k].shape)
            new[k] = arr
        for k, v in new.items():
            self.params[k][...] = v

    def copy(self):
        """A deep copy (the explicit update rule means nothing is lost, unlike pynsm's hook under deepcopy)."""
        return copy.deepcopy(self)

    # ------------------------------------------------------------------------------------------ encoding
    def _encode_all(self, xs, need_cache, ops=_ops):
        """Validate and encode the inputs, and form the drive, with the array operations ``ops`` of the device."""
        K = len(self.encoders)
        names = self._names(max(K, len(xs)))
        if len(xs) > K:
            raise ValueError(f"xs: expected at most {K} inputs (one per encoder), got {len(xs)}")
        on_device = ops.locate(xs)
        conv = []
        for k, x in enumerate(xs):
            conv.append(None if x is None else ops.check_input(self.encoders[k], x, self.dtype, names[k]))
        active = [k for k, x in enumerate(conv) if x is not None]
        if not active:
            raise ValueError("xs: expected at least one input that is not None")
        main = [k for k in active if not self._broadcast[k]]
        if not main:
            raise ValueError(f"{names[0]}: this input is required (the other encoders only add a label drive)")
        enc = _Encoded()
        enc.active, enc.U, enc.cache, enc.n_inputs, enc.on_device = active, {}, {}, len(xs), on_device
        shape = None
        for k in active:
            U, cache, sh = ops.encode(self.encoders[k], conv[k])
            if sh[1] != self.out_channels:
                raise ValueError(f"out_channels: expected encoders[{k}] to produce {self.out_channels} channels in "
                                 f"dimension 1, got an encoding of shape {sh}")
            enc.U[k] = U
            enc.cache[k] = (cache, sh) if need_cache else None
            if not self._broadcast[k]:
                if shape is None:
                    shape, first = sh, k
                elif sh != shape:
                    raise ValueError(f"{names[k]}: its encoding has shape {sh}, expected {shape} like the encoding "
                                     f"of {names[first]} (encoders' outputs must agree in shape)")
        B = shape[0]
        S = int(np.prod(shape[2:], dtype=np.int64)) if len(shape) > 2 else 1
        for k in active:
            if self._broadcast[k]:
                if enc.U[k].shape[0] != B:
                    raise ValueError(f"{names[k]}: expected batch size {B} like {names[first]}, got {enc.U[k].shape[0]}")
                if S > 1:
                    enc.U[k] = ops.repeat_rows(enc.U[k], S, self.dtype)
        enc.D = ops.drive([enc.U[k] for k in active], self.dtype)
        enc.shape, enc.B, enc.S = shape, B, S
        return enc

    # ------------------------------------------------------------------------------------------ fast dynamics
    def forward(self, *xs):  # no finite_result guard: a diverging iteration is reported in diagnostics.diverged
        """Run the fast dynamics; returns ``y`` of shape ``[B, m, S1..Sk]`` (a new array).

        Inputs may be ``None`` (or left out at the end) to skip their encoder.  Fills :attr:`diagnostics`.
        With ``device="cuda"``, ``y`` is a device array if any input is one.
        """
        if self._uses_python_iteration():  # pynsm's step-by-step loop (refnsm.similarity.iteration)
            return self._forward_iterations(*xs)
        kernels, ops = self._device_modules()
        for h in self.hooks["pre"]:
            h(self)
        enc = self._encode_all(xs, need_cache=False, ops=ops)
        self._run_dynamics(enc.D, enc.shape, kernels, ops)
        y = ops.from_internal(self._Y, enc.shape)
        for h in self.hooks["post"]:
            h(self)
        return ops.result(y, enc.on_device)

    __call__ = forward

    def _run_dynamics(self, D, shape, kernels=_kernels, ops=_ops):
        MT = ops.from_host(np.ascontiguousarray(self.M.T))
        Y = ops.zeros(D.shape, D.dtype)
        self._Y, self._yshape, self._D = Y, shape, D
        self.iteration_idx = -1
        relu = self.iteration_projection == "relu"
        proj = self.iteration_projection if callable(self.iteration_projection) else None
        hooks = self.hooks["iteration"]
        iters, change, converged, by_hook = 0, 0.0, False, False
        if not hooks and proj is None:
            iters, change, converged = kernels.fast_loop(MT, D, Y, self.iteration_lr, relu, self.tol, self.max_iterations)
            self.iteration_idx = iters - 1
        else:
            Yhat = ops.empty(D.shape, D.dtype) if proj is not None else None
            for it in range(self.max_iterations):
                self.iteration_idx = it
                if proj is None:
                    change = kernels.fast_step(MT, D, Y, self.iteration_lr, relu)
                else:  # the callable sees a NumPy array, on either device
                    kernels.gradient_step(MT, D, Y, self.iteration_lr, Yhat)
                    out = np.asarray(proj(_from_internal(ops.to_host(Yhat), shape)))
                    if out.shape != tuple(shape):
                        raise ValueError(f"iteration_projection: expected it to return shape {tuple(shape)}, got {out.shape}")
                    new = _to_internal(out.astype(self.dtype, copy=False))
                    diff = np.abs(new - ops.to_host(Y))
                    change = float(np.nan) if np.isnan(diff).any() else float(diff.max(initial=0.0))
                    ops.store(Y, new)
                iters = it + 1
                for h in hooks:
                    if h(self):
                        by_hook = True
                        break
                if by_hook:
                    break
                if it >= 1 and change < self.tol:
                    converged = True
                    break
        if proj is None:
            res, energy = kernels.fixed_point_stats(MT, D, Y, relu)
        else:  # NumPy expressions (on host copies under device="cuda": the projection is a Python callable anyway)
            Yh, Dh, MTh = ops.to_host(Y), ops.to_host(D), ops.to_host(MT)
            MY = np.dot(Yh, MTh)
            P = _to_internal(np.asarray(proj(_from_internal(Yh - (MY - Dh), shape))).astype(self.dtype, copy=False))
            res = float(np.max(np.abs(Yh - P), initial=0.0))
            energy = 0.5 * float(np.vdot(Yh, MY)) - float(np.vdot(Yh, Dh))
        self.diagnostics = Diagnostics(int(iters), float(change), bool(converged), by_hook, float(res), float(energy),
                                       not ops.all_finite(Y))

    # ------------------------------------------------------------------------------------------ exact solver
    def solve(self, *xs):
        """The exact fixed point for the current parameters: :math:`M^{-1} b` (SM) or the non-negative QP (NSM)."""
        from .solvers import solve_nsm, solve_sm

        enc = self._encode_all(xs, need_cache=False)
        b = _from_internal(enc.D, enc.shape)
        if self.iteration_projection is None:
            return solve_sm(self.M, b)
        if self.iteration_projection == "relu":
            return solve_nsm(self.M, b)
        raise ValueError("iteration_projection: exact solvers exist for None (SM) and 'relu' (NSM) only")

    # ------------------------------------------------------------------------------------------ loss
    @_checks.finite_result
    def loss(self, *args):
        r"""The slow loss :math:`L(\theta, M; x, y)` (the module docstring); the last argument is ``y`` (held fixed).

        Returns a scalar of the model's dtype and remembers what :meth:`backward` needs.
        """
        kernels, ops = self._device_modules()
        if len(args) < 1 or args[-1] is None:
            raise ValueError("y: expected the output y as the last argument of loss(*xs, y)")
        enc = self._encode_all(args[:-1], need_cache=True, ops=ops)
        self._check_nonempty(enc, "loss")
        Y, y_on_device = ops.check_y(args[-1], enc.shape, self.dtype)
        enc.on_device = enc.on_device or y_on_device
        return self._loss_from(enc, Y, kernels, ops)

    def _check_nonempty(self, enc, what):
        """The loss averages over the B * S samples and positions: refuse an empty batch before any work."""
        if int(np.prod(enc.shape, dtype=np.int64)) == 0:
            k = next(k for k in enc.active if not self._broadcast[k])
            raise ValueError(f"{self._names(enc.n_inputs)[k]}: {what} needs a non-empty batch (the loss averages "
                             f"over its samples and positions), got an encoding of shape {enc.shape}")

    def _loss_from(self, enc, Y, kernels=_kernels, ops=_ops):
        M = self.M
        m = self.out_channels
        N = Y.size
        C = ops.empty((self.out_channels, self.out_channels), dtype=Y.dtype)
        kernels.matmul_tn_skip(Y, Y, C)  # sum over samples and positions of y y^T (ReLU zeros skipped)
        C = ops.to_host(C)  # m x m: M . C here and dL/dM in backward on the host
        data = (2.0 * np.vdot(M, C) - 4.0 * ops.dot(Y, enc.D)) / N
        L = data - np.vdot(M, M) / m
        whiten_terms, weight_slots = self._regularizer_plan(enc)
        for U, _ in whiten_terms:
            L += 2.0 * ops.dot(U, U) / U.size
        for slot in weight_slots:
            for p in self.encoders[slot].params.values():
                L += np.vdot(p, p) * (2.0 / m)
        self._loss_cache = (enc, Y, C)
        return self.dtype.type(L)

    def _regularizer_plan(self, enc):
        """``(whiten_terms, weight_slots)``: whiten terms as (U, [encoders receiving dR/dU]); encoder indices
        receiving weight decay.  Default: by position, active encoders only.  compat="pynsm": see the class doc."""
        whiten, weight = [], []
        if self.compat == "pynsm":
            active = enc.active
            for i, k in enumerate(active):  # zip(encoders, regularization, active encodings)
                reg = self.regularization[i]
                if reg == "whiten":
                    if i == 0 and len(active) > 1:  # encoding 0 was overwritten in place by the sum
                        whiten.append((enc.D, list(active)))
                    else:
                        whiten.append((enc.U[k], [k]))
                elif reg == "weight":
                    weight.append(i)
        else:
            for k in enc.active:
                reg = self.regularization[k]
                if reg == "whiten":
                    whiten.append((enc.U[k], [k]))
                elif reg == "weight":
                    weight.append(k)
        return whiten, weight

    @_checks.finite_result
    def backward(self, grad_out=None, inputs=True):
        r"""Gradients of the last :meth:`loss`: fills :attr:`grads` and returns the input gradients.

        Returns a tuple with :math:`\partial L / \partial x_k` for every input of the last call (``None`` for
        skipped inputs, and for all of them when ``inputs=False``, which skips that work).
        ``grads["competitor.weight"]`` is the raw :math:`\partial L/\partial M`.
        """
        inputs = _checks.check_bool(inputs, "inputs")
        return self._backward(grad_out, inputs, self._device_modules()[1])

    def _backward(self, grad_out, inputs, ops=_ops):
        """:meth:`backward` with the array operations ``ops`` of the device."""
        if self._loss_cache is None:
            raise RuntimeError("backward: call loss(*xs, y) first")
        s = _checks.scalar_grad_out(grad_out)
        enc, Y, C = self._loss_cache
        m = self.out_channels
        N = Y.size
        M = self.M
        G0 = ops.scale(Y, -4.0 * s / N)
        G = {k: G0 for k in enc.active}
        whiten_terms, weight_slots = self._regularizer_plan(enc)
        for U, targets in whiten_terms:
            for k in targets:
                G[k] = ops.add_scaled(G[k], U, 4.0 * s / U.size)
        grads = {}
        xgrads = []
        for k in range(len(self.encoders)):
            if k not in G:
                xgrads.append(None)
                continue
            Gk = G[k]
            if self._broadcast[k] and enc.S > 1:
                Gk = ops.sum_positions(Gk, enc.B, enc.S, m)
            cache, _ = enc.cache[k]
            gx, pg = ops.vjp(self.encoders[k], Gk, cache, bool(inputs))
            for name, g in pg.items():
                grads[f"encoders.{k}.{name}"] = g
            xgrads.append(gx)
        for slot in weight_slots:
            for name, p in self.encoders[slot].params.items():
                key = f"encoders.{slot}.{name}"
                decay = p * (4.0 * s / m)
                grads[key] = grads[key] + decay if key in grads else decay
        grads["competitor.weight"] = (C * (2.0 / N) - M * (2.0 / m)) * s
        for k, v in self.params.items():
            g = grads.get(k)
            self.grads[k] = np.zeros_like(v) if g is None else g.astype(self.dtype, copy=False)
        self._have_grads = True
        return tuple(ops.result(g, enc.on_device) for g in xgrads[:enc.n_inputs])

    # ------------------------------------------------------------------------------------------ update
    def step(self, lr, lr_M=None):
        r"""Apply the update with the gradients of the last :meth:`backward`, in place:

        :math:`\theta \leftarrow \theta - \mathrm{lr}\,\partial L/\partial\theta` for every encoder parameter, and
        :math:`M \leftarrow M + \mathrm{lr}_M\,\partial L/\partial M` (ascent) with ``lr_M = lr / tau`` by default.
        """
        lr = _checks.check_real(lr, "lr", nonnegative=True)
        lr_M = lr / self.tau if lr_M is None else _checks.check_real(lr_M, "lr_M", nonnegative=True)
        if not self._have_grads:
            raise RuntimeError("step: call loss(...) and backward() first")
        for k, p in self.params.items():
            g = self.grads[k]
            if k == "competitor.weight":
                p += lr_M * g
            else:
                p -= lr * g

    #: take :func:`refnsm.similarity.fused.linear_train_step` when it applies (see :meth:`train_step`); set to
    #: False on a circuit (or a subclass) to always run the general path
    use_fused_step = True

    def train_step(self, *xs, lr, lr_M=None):
        """``y = forward(*xs)``, ``L = loss(*xs, y)``, ``backward()``, ``step(lr, lr_M)``; returns ``(y, L)``.

        The encodings of the forward pass are reused by the loss (the parameters have not changed in between).

        Optimisation: with a single :class:`~refnsm.similarity.encoders.Linear` encoder, no hooks, a built-in
        projection and ``use_fused_step`` (the default), the whole step runs as one fused kernel call,
        :func:`refnsm.similarity.fused.linear_train_step` (the same math; tested against this general path).
        ``grads`` and ``diagnostics`` are filled either way.
        """
        kernels, ops = self._device_modules()
        lr_ = _checks.check_real(lr, "lr", nonnegative=True)
        if lr_M is not None:  # validated before any work (step() would check it only after the dynamics ran)
            lr_M = _checks.check_real(lr_M, "lr_M", nonnegative=True)
        if self.use_fused_step and self._fused_ok(xs):
            return self._fused_linear_step(xs[0], lr_, lr_M, kernels, ops)
        for h in self.hooks["pre"]:
            h(self)
        enc = self._encode_all(xs, need_cache=True, ops=ops)
        self._check_nonempty(enc, "train_step")
        self._run_dynamics(enc.D, enc.shape, kernels, ops)
        y = ops.from_internal(self._Y, enc.shape)
        for h in self.hooks["post"]:
            h(self)
        L = self._loss_from(enc, self._Y, kernels, ops)
        self._backward(None, False, ops)
        bad = _checks._first_nonfinite({"loss": np.asarray(L), **self.grads})
        if bad is not None:
            raise _checks.NonFiniteResultError(
                f"train_step: the step diverged ({bad[0]} = {bad[1]}): the parameters were left unchanged; rescale "
                f"the inputs or lower lr")
        self.step(lr_, lr_M)
        return ops.result(y, enc.on_device), L

    def _fused_ok(self, xs):
        """The fused step applies to one Linear encoder, no hooks, a built-in projection, one input."""
        return (len(self.encoders) == 1 and type(self.encoders[0]) is Linear and len(xs) == 1
                and xs[0] is not None and not callable(self.iteration_projection)
                and not (self.hooks["pre"] or self.hooks["iteration"] or self.hooks["post"]))

    def _fused_linear_step(self, x, lr, lr_M, kernels, ops):
        """``train_step`` by :func:`refnsm.similarity.fused.linear_train_step`; the circuit's state filled as by the
        general path."""
        on_device = ops.locate((x,))
        x = ops.check_input(self.encoders[0], x, self.dtype, self._names(1)[0])
        if x.shape[0] == 0:
            raise ValueError(f"{self._names(1)[0]}: train_step needs a non-empty batch (the loss averages over its "
                             f"samples), got shape {x.shape}")
        lr_M = lr / self.tau if lr_M is None else _checks.check_real(lr_M, "lr_M", nonnegative=True)
        params = self.encoders[0].params
        saved = ({k: v.copy() for k, v in params.items()}, self.M.copy())  # updated in place: restored on divergence
        r = fused.linear_train_step(kernels, ops, x, self.encoders[0].params, self.M, eta=self.iteration_lr,
                                    relu=self.iteration_projection == "relu", tol=self.tol,
                                    max_iter=self.max_iterations, regularization=self.regularization[0],
                                    lr=lr, lr_M=lr_M)
        if not (np.isfinite(r.L) and all(_checks._all_finite(v) for v in params.values())
                and _checks._all_finite(self.M)):
            for k, v in saved[0].items():
                params[k][...] = v
            self.M[...] = saved[1]
            raise _checks.NonFiniteResultError(
                f"train_step: the step diverged (loss {r.L}, {r.iterations} fast iterations): the parameters were left "
                f"unchanged; rescale the inputs or lower lr")
        self._Y, self._yshape, self._D = r.Y, r.Y.shape, None
        self.iteration_idx = r.iterations - 1
        self.diagnostics = Diagnostics(r.iterations, r.change, r.converged, False, r.residual, r.energy, r.diverged)
        for name, g in r.grads.items():
            self.grads[name if name == "competitor.weight" else f"encoders.0.{name}"] = g
        self._have_grads = True
        self._loss_cache = None
        return ops.result(ops.from_internal(r.Y, r.Y.shape), on_device), self.dtype.type(r.L)


class SimilarityMatching(MultiSimilarityMatching):
    """Single-input similarity matching (pynsm ``SimilarityMatching``): ``y = model(x)``, ``model.loss(x, y)``.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> rng = np.random.default_rng(0)
    >>> model = sim.SimilarityMatching(sim.Linear(5, 2, bias=False, rng=0), 2, max_iterations=100, tol=1e-8)
    >>> x = rng.standard_normal((8, 5))
    >>> y, loss = model.train_step(x, lr=0.01)   # fast dynamics, then one Hebbian/anti-Hebbian step
    >>> y.shape, model.diagnostics.converged
    ((8, 2), True)
    """

    _input_names = ("x",)

    def __init__(self, encoder, out_channels, tau=0.1, tol=0.0, max_iterations=40, regularization="weight",
                 iteration_lr=1.0, iteration_projection=None, *, compat=None, device="cpu", **iteration_plugins):
        if not isinstance(encoder, Encoder):
            raise TypeError(f"encoder: expected a refnsm.similarity encoder, got {type(encoder).__name__}")
        if isinstance(regularization, Sequence) and not isinstance(regularization, str) and len(regularization) != 1:
            raise ValueError(f"regularization: expected 1 entry (one per encoder), got {len(regularization)}")
        super().__init__([encoder], out_channels, tau, tol, max_iterations, regularization, iteration_lr,
                         iteration_projection, compat=compat, device=device, **iteration_plugins)

    @property
    def encoder(self):
        return self.encoders[0]


class SupervisedSimilarityMatching(MultiSimilarityMatching):
    r"""Supervised similarity matching (pynsm ``SupervisedSimilarityMatching``).

    ``encoders = [encoder, label_encoder]`` with ``label_encoder = Linear(num_classes, out_channels,
    bias=label_bias)``; its output :math:`l_b = L_w z_b + L_\beta` (``[B, m]``) is added to the drive at **every**
    spatial position.  Regularization defaults to ``("weight", "whiten")``.  Training:
    ``y = model(x, onehot)``, ``model.loss(x, onehot, y)``; inference: ``model(x)`` (no label drive).

    Parameters
    ----------
    encoder : Encoder
    num_classes : int
    out_channels : int
    label_bias : bool
    rng : numpy.random.Generator, int or None
        Initialisation of the label encoder (torch's law :math:`U(\pm 1/\sqrt{K})`).
    label_weight, label_bias_value : array_like, optional
        Explicit initial values of the label encoder.
    Other parameters as in :class:`MultiSimilarityMatching`.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> rng = np.random.default_rng(0)
    >>> model = sim.SupervisedSimilarityMatching(sim.Linear(4, 3, rng=0), 2, 3, rng=0)
    >>> labels = np.eye(2)[[0, 1, 1, 0]]                 # one-hot [B, num_classes]
    >>> y, loss = model.train_step(rng.standard_normal((4, 4)), labels, lr=0.01)
    >>> y.shape
    (4, 3)
    """

    _input_names = ("x", "label")

    def __init__(self, encoder, num_classes, out_channels, label_bias=False, tau=0.1, tol=0.0, max_iterations=40,
                 regularization=("weight", "whiten"), iteration_lr=1.0, iteration_projection=None, *, compat=None,
                 rng=None, label_weight=None, label_bias_value=None, device="cpu", **iteration_plugins):
        if not isinstance(encoder, Encoder):
            raise TypeError(f"encoder: expected a refnsm.similarity encoder, got {type(encoder).__name__}")
        num_classes = _checks.check_int(num_classes, "num_classes", minimum=1)
        out_channels = _checks.check_int(out_channels, "out_channels", minimum=1)
        try:
            label_encoder = Linear(num_classes, out_channels, bias=label_bias, rng=rng, weight=label_weight,
                                   bias_value=label_bias_value, dtype=encoder.dtype)
        except (TypeError, ValueError) as exc:  # name this constructor's arguments, not the inner encoder's
            msg = str(exc)
            for inner, outer in (("weight", "label_weight"), ("bias_value", "label_bias_value"), ("bias", "label_bias")):
                if msg.startswith(inner + ":"):
                    msg = outer + msg[len(inner):]
                    break
            raise type(exc)(msg.replace("bias=False", "label_bias=False")) from None
        super().__init__([encoder, label_encoder], out_channels, tau, tol, max_iterations, regularization,
                         iteration_lr, iteration_projection, compat=compat, device=device, **iteration_plugins)
        self._broadcast = [False, True]
        self.num_classes = num_classes

    @property
    def encoder(self):
        return self.encoders[0]

    @property
    def label_encoder(self):
        return self.encoders[1]
