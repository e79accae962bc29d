r"""``HopfieldSynapse``: a stateful object mirroring ngclearn's component of the same name.

The object holds ngclearn's compartments as NumPy arrays (``inputs``, ``outputs``, ``similarities``,
``memory_weights``, ``energy``, ``i_tick``, ``dWeights``, ``weights``) and offers the same three operations:
``reset()``, ``advance_state()`` (retrieval) and ``evolve()`` (plasticity), computed by the functions of
:mod:`refnsm.hopfield.modern` (Numba kernels underneath).  Differences from ngclearn, all deliberate and listed in
``docs/differences_hopfield.md``: the energy compartment holds the Ramsauer energy unless ``compat="ngclearn"``;
the contrastive negative phase runs at ``beta`` unless ``compat="ngclearn"`` (then at 1); ``p_conn`` is honoured;
unknown ``update_rule`` strings, P > H patterns and transposed patterns are errors.

``device="cuda"`` keeps the state on the GPU: the same steps run by the CUDA twins of the kernels
(:mod:`refnsm.cuda.hopfield`, imported only then), the weights stay on the device between steps, and the array
compartments are numba device arrays (``weights`` returns a NumPy copy; see the class docstring).
"""

from __future__ import annotations

import numpy as np

from .. import _checks as C
from . import _kernels as K
from . import modern as M

__all__ = ["HopfieldSynapse"]

UPDATE_RULES = ("delta", "contrastive")
DEVICES = C.DEVICES


class HopfieldSynapse:
    r"""Modern Hopfield memory with local plasticity (ngclearn's ``HopfieldSynapse``, same parameter names).

    Retrieval (``advance_state``), for the probes :math:`X` (B, D) in ``inputs``:

    .. math::

        S = XW - \max_j(XW)_{\cdot j},\quad A = \mathrm{softmax}(\beta S),\quad \hat X = A W^\top,

    stored in ``similarities``, ``memory_weights`` and ``outputs``; ``energy`` (1, 1) receives the batch mean of
    :func:`refnsm.hopfield.energy` at the probes (Ramsauer's energy, or ngclearn's reading under
    ``compat="ngclearn"``); ``i_tick`` counts the calls.

    Plasticity (``evolve``), from the last retrieval:

    .. math::

        \Delta W = \tfrac1B (X - \hat X)^\top A \ \text{(delta)} \quad\text{or}\quad
        \Delta W = \tfrac1B (X^\top A - \hat X^\top \hat A),\ \hat A = \mathrm{softmax}(\beta' \hat X W)
        \ \text{(contrastive)},

        W \leftarrow W + \eta\,\Delta W - \lambda W - \lambda_1\,\mathrm{sign}(W),

    with ``dWeights`` = :math:`\Delta W` (before eta and decay) and B the actual number of rows of ``inputs``.

    Parameters
    ----------
    name : str
        A label (kept for symmetry with ngclearn).
    shape : (int, int)
        (D, H): probe dimension and number of memory slots.
    eta : float
        Step size of ``evolve``.
    reg_lambda : float, default 0
        Weight decay, applied once per ``evolve`` and not multiplied by eta.
    beta : float > 0, default 8
        Inverse temperature.
    initial_patterns : array_like (D, P), optional
        Patterns to store, **one per column**.  P = H: the memory is exactly these patterns; P < H: they are
        loaded into slots chosen by ``perm`` (or a permutation drawn from ``rng``), see
        :func:`refnsm.hopfield.load_patterns`; P > H is an error.
    update_rule : {"delta", "contrastive"}
        Plasticity rule (any other string is an error).
    weight_init : array_like (D, H), optional
        Initial weights; default Uniform[0.025, 0.8) drawn from ``rng`` (ngclearn's default law).
    p_conn : float in (0, 1], default 1
        Connection probability: when < 1 a Bernoulli(p_conn) mask multiplies the initial random weights (before
        the patterns are loaded, as in ngclearn 3.1.x; ngclearn 3.2.x ignores p_conn).  With ``keep_mask=True``
        the mask is instead applied to the whole initial memory and re-applied after every ``evolve``.
    batch_size : int, default 1
        Only sets the shapes of the compartments after ``reset``; the math uses the actual batch.
    l1_lambda : float, default 0
        L1 decay coefficient (a fixed 0 attribute in ngclearn).
    neg_beta : float > 0, optional
        Inverse temperature of the contrastive negative phase (default ``beta``; 1 under ``compat="ngclearn"``).
    perm : array_like of int (H,), optional
        Slot permutation for P < H patterns.
    rng : numpy.random.Generator, int or None
        Source of the random initial weights, mask and permutation.
    keep_mask : bool, default False
        Keep the p_conn mask during learning.
    compat : {None, "ngclearn"}
        Reproduce ngclearn's energy reading and its beta=1 contrastive negative phase.
    dtype : float64 (default) or float32
        Precision of the weights and of every compartment.
    device : {"cpu", "cuda"}
        ``"cuda"``: run ``advance_state`` and ``evolve`` on the GPU (:mod:`refnsm.cuda.hopfield`; a GPU or
        ``NUMBA_ENABLE_CUDASIM=1`` is needed, else a ``RuntimeError``).  The weights then stay on the device between
        steps: ``params["weights"]``, ``inputs``, ``outputs``, ``similarities``, ``memory_weights`` and ``dWeights``
        are numba device arrays (``np.asarray`` or :func:`refnsm.cuda.to_host` copies one back), ``advance_state``
        and ``evolve`` return device arrays, and the ``weights`` property returns a NumPy **copy** (assign
        ``weights`` to change them; NumPy or device arrays are accepted, as for ``inputs``).  ``energy`` and
        ``i_tick`` stay (1, 1) NumPy arrays, and ``backward`` runs on the CPU.  Same results as the CPU within
        rounding (float64 1e-12, float32 1e-5 relative).
    """

    def __init__(
        self,
        name,
        shape,
        eta,
        reg_lambda=0.0,
        beta=8.0,
        initial_patterns=None,
        update_rule="delta",
        weight_init=None,
        p_conn=1.0,
        batch_size=1,
        *,
        l1_lambda=0.0,
        neg_beta=None,
        perm=None,
        rng=None,
        keep_mask=False,
        compat=None,
        dtype=np.float64,
        device="cpu",
    ):
        # ---- validation (nothing is drawn or stored before all of it passes) ----
        self.name = str(name)
        try:
            D, H = (C.check_int(s, "shape", minimum=1) for s in shape)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"shape: expected a pair of positive integers (D, H), got {shape!r}") from None
        dtype = C.check_float_dtype(dtype)
        self.eta = C.check_real(eta, "eta")
        self.reg_lambda = C.check_real(reg_lambda, "reg_lambda", nonnegative=True)
        self.l1_lambda = C.check_real(l1_lambda, "l1_lambda", nonnegative=True)
        self.beta = C.check_real(beta, "beta", positive=True)
        self.update_rule = C.check_option(update_rule, "update_rule", UPDATE_RULES)
        self.compat = M._compat(compat)
        if neg_beta is not None and compat is not None:
            raise ValueError("neg_beta: pass either neg_beta or compat='ngclearn' (which fixes neg_beta=1), not both")
        self.neg_beta = (1.0 if compat == "ngclearn" else
                         (self.beta if neg_beta is None else C.check_real(neg_beta, "neg_beta", positive=True)))
        p_conn = C.check_real(p_conn, "p_conn")
        if not 0.0 < p_conn <= 1.0:
            raise ValueError(f"p_conn: expected a probability in (0, 1], got {p_conn}")
        self.p_conn = p_conn
        self.batch_size = C.check_int(batch_size, "batch_size", minimum=1)
        self.keep_mask = C.check_bool(keep_mask, "keep_mask")
        if weight_init is not None:
            W0 = C.as_float_array(weight_init, "weight_init", ndim=2, dtype=dtype)
            C.check_shape(W0, "weight_init", (D, H), "shape")
            W0 = W0.copy()
        pats = None
        if initial_patterns is not None:
            pats = M._check_patterns(initial_patterns, D, H, dtype)
            if pats.shape[1] == H and perm is not None:
                raise ValueError("perm: only used when there are fewer patterns than slots (P < H)")
            if perm is not None:
                perm = M._check_perm(perm, H)
        elif perm is not None:
            raise ValueError("perm: only used together with initial_patterns")
        self.device = C.check_option(device, "device", DEVICES)
        cu = None
        if self.device == "cuda":
            from ..cuda import hopfield as cu  # imported only for a CUDA synapse

            cu.require()
        gen = C.resolve_rng(rng)

        # ---- construction ----
        if weight_init is None:
            W0 = gen.uniform(0.025, 0.8, size=(D, H)).astype(dtype)
        mask = None
        if p_conn < 1.0:
            mask = (gen.random((D, H)) < p_conn).astype(dtype)
            W0 = W0 * mask
        if pats is not None:
            W = M.load_patterns(W0, pats, perm=perm, rng=gen) if pats.shape[1] < H else pats.copy()
        else:
            W = W0
        if mask is not None and self.keep_mask:
            W = W * mask
        self.mask = mask
        self.shape = (D, H)
        self.dtype = dtype
        W = np.ascontiguousarray(W, dtype=dtype)
        # the kernels and allocators of the chosen device: refnsm.cuda.hopfield mirrors _kernels one for one
        self._cu = cu
        if cu is None:
            self._K, self._empty, self._zeros = K, np.empty, np.zeros
        else:
            self._K, self._empty, self._zeros = cu, cu.device_empty, cu.device_zeros
            W = cu.to_device(W)
        self._dmask = (None, None)  # (host mask, its device copy) of a CUDA synapse
        self.params = {"weights": W}
        self.grads = {"weights": np.zeros((D, H), dtype)}
        self.i_tick = np.zeros((1, 1), dtype)
        self._empty_mask = self._empty((0, 0) if cu is None else (1, 1), dtype)
        self._one = np.ones((1, 1), dtype)
        self.reset()

    # ---- compartments ----
    @property
    def weights(self) -> np.ndarray:
        """The memory matrix W (D, H); column j is memory j (on a CUDA synapse: a NumPy copy of the device array)."""
        W = self.params["weights"]
        return W if self._cu is None else W.copy_to_host()

    @weights.setter
    def weights(self, value):
        cu = self._cu
        if cu is not None and cu.is_device_array(value):
            self.params["weights"] = cu.synapse_weights(value, self.shape, self.dtype)
            return
        W = C.as_float_array(value, "weights", ndim=2, dtype=self.dtype)
        C.check_shape(W, "weights", self.shape, "the synapse shape (D, H)")
        self.params["weights"] = W.copy() if cu is None else cu.to_device(W)

    @property
    def inputs(self) -> np.ndarray:
        """The probes X (B, D) used by the next ``advance_state``; assigning validates and copies."""
        return self._inputs

    @inputs.setter
    def inputs(self, value):
        self._set_inputs(value)

    def _set_inputs(self, value):
        """Validate ``value`` as the probes (B, D) and store a private copy (never aliasing the caller's array)."""
        D = self.shape[0]
        cu = self._cu
        if (type(value) is np.ndarray and value.ndim == 2 and value.dtype == self.dtype and value.shape[1] == D
                and value.shape[0] > 0):
            # fast path (the common case, and what the small benchmark measures): the same checks, and the copy
            # and the NaN/Inf test in one pass
            X = np.empty(value.shape, self.dtype)
            if not K.copy_finite(value, X):
                C.check_finite(value, "inputs")  # raises, naming the first bad element
            self._inputs = X if cu is None else cu.to_device(X)
            return
        if cu is not None and cu.is_device_array(value):
            self._inputs = cu.synapse_inputs(value, D, self.dtype)
            return
        X = C.as_float_array(value, "inputs", dtype=self.dtype, shape_hint="[B, D]")
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if X.ndim != 2 or X.shape[1] != D or X.shape[0] == 0:
            raise ValueError(
                f"inputs: expected shape (B, D={D}) with the probe width D along the last axis, "
                f"got shape {np.shape(value)}"
            )
        if cu is not None:
            X = cu.to_device(X)  # a new device array
        elif np.may_share_memory(X, value):
            X = X.copy()  # never alias the caller's array
        self._inputs = X

    def reset(self):
        """Zero every compartment except ``weights`` and ``i_tick`` (shapes from ``batch_size``)."""
        B, (D, H) = self.batch_size, self.shape
        zeros = self._zeros
        self._inputs = zeros((B, D), self.dtype)
        self.outputs = zeros((B, D), self.dtype)
        self.similarities = zeros((B, H), self.dtype)
        self.memory_weights = zeros((B, H), self.dtype)
        self.energy = np.zeros((1, 1), self.dtype)
        self.dWeights = zeros((D, H), self.dtype)

    # ---- dynamics ----
    def advance_state(self, inputs=None):
        """Retrieval step on ``inputs`` (set them first, or pass them here).  Returns ``self.outputs``."""
        if inputs is not None:
            self._set_inputs(inputs)
        X, W, dt, empty = self._inputs, self.params["weights"], self.dtype, self._empty
        B, D = X.shape
        H = W.shape[1]
        S = empty((B, H), dt)
        A = empty((B, H), dt)
        Xhat = empty((B, D), dt)
        e = self._K.advance_into(X, W, self.beta, 1 if self.compat == "ngclearn" else 0, S, A, Xhat)
        self.similarities, self.memory_weights, self.outputs = S, A, Xhat
        E = np.empty((1, 1), dt)
        E[0, 0] = e
        self.energy = E
        self.i_tick = np.add(self.i_tick, self._one)  # a new array, as i_tick + 1 (np.add skips the scalar cast)
        return Xhat

    def evolve(self, t=None, dt=None):
        """Plasticity step from the last retrieval (``t`` and ``dt`` are accepted and ignored, as in ngclearn).

        Returns the new weights.
        """
        X, Xhat, A = self._inputs, self.outputs, self.memory_weights
        W = self.params["weights"]
        if Xhat.shape != X.shape or A.shape != (X.shape[0], W.shape[1]):
            raise ValueError(
                f"inputs: the batch changed since the last advance_state (inputs {X.shape}, outputs "
                f"{Xhat.shape}, memory_weights {A.shape}); call advance_state before evolve"
            )
        D, H = W.shape
        dW = self._empty((D, H), self.dtype)
        Wn = self._empty((D, H), self.dtype)
        mask = self.mask
        use_mask = self.keep_mask and mask is not None
        if not use_mask:
            mask = self._empty_mask
        elif self._cu is not None:
            if self._dmask[0] is not mask:  # copied to the device once (again if the attribute is reassigned)
                self._dmask = (mask, self._cu.to_device(C.as_float_array(mask, "mask", dtype=self.dtype)))
            mask = self._dmask[1]
        self._K.plasticity_into(0 if self.update_rule == "delta" else 1, X, Xhat, A, W, self.neg_beta, self.eta,
                                self.reg_lambda, self.l1_lambda, mask, use_mask, dW, Wn)
        self.dWeights = dW
        self.params["weights"] = Wn
        return Wn

    # ---- layer interface ----
    @C.finite_result
    def forward(self, X):
        """``advance_state(X)``; returns the retrieved probes (B, D)."""
        return self.advance_state(X)

    @C.finite_result
    def backward(self, grad_out):
        r"""Gradient of a loss through the last retrieval :math:`\hat X = \mathrm{softmax}(\beta XW) W^\top`.

        Returns :math:`\bar X` and stores :math:`\bar W` in ``grads["weights"]`` (see
        :func:`refnsm.hopfield.retrieve_vjp`).  On a CUDA synapse this runs on the CPU, with host copies.
        """
        X, W = self._inputs, self.params["weights"]
        if self._cu is not None:
            X, W = X.copy_to_host(), W.copy_to_host()
            if self._cu.is_device_array(grad_out):
                grad_out = grad_out.copy_to_host()
        gX, gW, _ = M.retrieve_vjp(grad_out, X, W, self.beta)
        self.grads["weights"] = gW
        return gX

    def __repr__(self):
        return (f"HopfieldSynapse({self.name!r}, shape={self.shape}, eta={self.eta}, beta={self.beta}, "
                f"update_rule={self.update_rule!r}, compat={self.compat!r}, dtype={self.dtype}"
                + (", device='cuda')" if self._cu is not None else ")"))
