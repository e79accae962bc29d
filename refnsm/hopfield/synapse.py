r"""``HopfieldSynapse``: a stateful object mirroring ngclearn's component of the same name.

The object holds ngclearn's compartments as NumPy arrays (``inputs``, ``outputs``, ``similarities``,
``memory_weights``, ``energy``, ``i_tick``, ``dWeights``, ``weights``) and offers the same three operations:
``reset()``, ``advance_state()`` (retrieval) and ``evolve()`` (plasticity), computed by the functions of
:mod:`refnsm.hopfield.modern` (Numba kernels underneath).  Differences from ngclearn, all deliberate and listed in
``docs/differences_hopfield.md``: the energy compartment holds the Ramsauer energy unless ``compat="ngclearn"``;
the contrastive negative phase runs at ``beta`` unless ``compat="ngclearn"`` (then at 1); ``p_conn`` is honoured;
unknown ``update_rule`` strings, P > H patterns and transposed patterns are errors.
"""

from __future__ import annotations

import numpy as np

from .. import _checks as C
from . import _kernels as K
from . import modern as M

__all__ = ["HopfieldSynapse"]

UPDATE_RULES = ("delta", "contrastive")


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
    ):
        # ---- validation (nothing is drawn or stored before all of it passes) ----
        self.name = str(name)
        try:
            D, H = (C.check_int(s, "shape", minimum=1) for s in shape)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"shape: expected a pair of positive integers (D, H), got {shape!r}") from None
        dtype = np.dtype(dtype)
        if dtype not in C.FLOAT_DTYPES:
            raise TypeError(f"dtype: expected float32 or float64, got {dtype}")
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
        self.keep_mask = bool(keep_mask)
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
        self.params = {"weights": np.ascontiguousarray(W, dtype=dtype)}
        self.grads = {"weights": np.zeros((D, H), dtype)}
        self.i_tick = np.zeros((1, 1), dtype)
        self._empty_mask = np.empty((0, 0), dtype)
        self.reset()

    # ---- compartments ----
    @property
    def weights(self) -> np.ndarray:
        """The memory matrix W (D, H); column j is memory j."""
        return self.params["weights"]

    @weights.setter
    def weights(self, value):
        W = C.as_float_array(value, "weights", ndim=2, dtype=self.dtype)
        C.check_shape(W, "weights", self.shape, "the synapse shape (D, H)")
        self.params["weights"] = W.copy()

    @property
    def inputs(self) -> np.ndarray:
        """The probes X (B, D) used by the next ``advance_state``; assigning validates and copies."""
        return self._inputs

    @inputs.setter
    def inputs(self, value):
        D = self.shape[0]
        if (type(value) is np.ndarray and value.dtype == self.dtype and value.ndim == 2 and value.shape[1] == D
                and value.shape[0] > 0):
            # fast path (the common case, and what the small benchmark measures): same checks, fewer conversions
            if not (value.flags.c_contiguous and K.all_finite(value)):
                C.check_finite(value, "inputs")
            self._inputs = np.array(value, order="C")  # a private copy, never aliasing the caller's array
            return
        X = C.as_float_array(value, "inputs", dtype=self.dtype, shape_hint="[B, D]")
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if X.ndim != 2 or X.shape[1] != D or X.shape[0] == 0:
            raise ValueError(
                f"inputs: expected shape (B, D={D}) with the probe width D along the last axis, "
                f"got shape {np.shape(value)}"
            )
        self._inputs = X.copy() if np.may_share_memory(X, value) else X  # never alias the caller's array

    def reset(self):
        """Zero every compartment except ``weights`` and ``i_tick`` (shapes from ``batch_size``)."""
        B, (D, H) = self.batch_size, self.shape
        self._inputs = np.zeros((B, D), self.dtype)
        self.outputs = np.zeros((B, D), self.dtype)
        self.similarities = np.zeros((B, H), self.dtype)
        self.memory_weights = np.zeros((B, H), self.dtype)
        self.energy = np.zeros((1, 1), self.dtype)
        self.dWeights = np.zeros((D, H), self.dtype)

    # ---- dynamics ----
    def advance_state(self, inputs=None):
        """Retrieval step on ``inputs`` (set them first, or pass them here).  Returns ``self.outputs``."""
        if inputs is not None:
            self.inputs = inputs
        X, W = self._inputs, self.params["weights"]
        B, D = X.shape
        H = W.shape[1]
        S = np.empty((B, H), self.dtype)
        A = np.empty((B, H), self.dtype)
        Xhat = np.empty((B, D), self.dtype)
        e = K.advance_into(X, W, self.beta, 1 if self.compat == "ngclearn" else 0, S, A, Xhat)
        self.similarities, self.memory_weights, self.outputs = S, A, Xhat
        self.energy = np.array([[e]], dtype=self.dtype)
        self.i_tick = self.i_tick + 1
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
        dW = np.empty((D, H), self.dtype)
        Wn = np.empty((D, H), self.dtype)
        use_mask = self.keep_mask and self.mask is not None
        K.plasticity_into(0 if self.update_rule == "delta" else 1, X, Xhat, A, W, self.neg_beta, self.eta,
                          self.reg_lambda, self.l1_lambda, self.mask if use_mask else self._empty_mask, use_mask,
                          dW, Wn)
        self.dWeights = dW
        self.params["weights"] = Wn
        return Wn

    # ---- layer interface ----
    def forward(self, X):
        """``advance_state(X)``; returns the retrieved probes (B, D)."""
        return self.advance_state(X)

    def backward(self, grad_out):
        r"""Gradient of a loss through the last retrieval :math:`\hat X = \mathrm{softmax}(\beta XW) W^\top`.

        Returns :math:`\bar X` and stores :math:`\bar W` in ``grads["weights"]`` (see
        :func:`refnsm.hopfield.retrieve_vjp`).
        """
        gX, gW, _ = M.retrieve_vjp(grad_out, self._inputs, self.params["weights"], self.beta)
        self.grads["weights"] = gW
        return gX

    def __repr__(self):
        return (f"HopfieldSynapse({self.name!r}, shape={self.shape}, eta={self.eta}, beta={self.beta}, "
                f"update_rule={self.update_rule!r}, compat={self.compat!r}, dtype={self.dtype})")
