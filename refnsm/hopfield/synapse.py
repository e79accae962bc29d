r"""``HopfieldSynapse``: a stateful object mirroring ngclearn's component of the same name.

The object holds ngclearn's compartments as NumPy arrays (``inputs``, ``outputs``, ``similarities``,
``memory_weights``, ``energy``, ``i_tick``, ``dWeights``, ``weights``) and offers the same three operations:
``reset()``, ``advance_state()`` (retrieval) and ``evolve()`` (plasticity), computed by the functions of
:mod:`refnsm.hopfield.modern` (Numba kernels underneath).  Differences from ngclearn, all deliberate and listed in
``docs/upstream_differences.md``: the energy compartment holds the Ramsauer energy unless ``compat="ngclearn"``;
the contrastive negative phase runs at ``beta`` unless ``compat="ngclearn"`` (then at 1); ``p_conn`` is honoured;
unknown ``update_rule`` strings, P > H patterns and transposed patterns are errors.

``device="cuda"`` keeps the state on the GPU: the same steps run by the CUDA twins of the kernels
(:mod:`refnsm.hopfield._cuda_kernels`, imported only then, chosen by :mod:`refnsm._backend`), the weights stay on the device between steps, and the array
compartments are numba device arrays (``weights`` returns a NumPy copy; see the class docstring).
"""

from __future__ import annotations

import numpy as np

from .. import _backend
from .. import _checks
from . import _kernels as host_kernels
from . import modern

__all__ = ["HopfieldSynapse"]

UPDATE_RULES = ("delta", "contrastive")
DEVICES = _backend.DEVICES


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
    weight_init : array_like (D, H), initialiser spec or callable, optional
        Initial weights: an array, or an ngclearn initialiser specification drawn from ``rng`` --
        ``{"dist": "uniform", "low": a, "high": b}``, ``{"dist": "gaussian", "mean": m, "std": s}``,
        ``{"dist": "constant", "value": v}`` (also ngclearn 1.x's ``amin``/``amax``, ``mu``/``sigma``, and the
        post-processing flags), the same as tuples ``("uniform", a, b)``, or a callable ``(shape, rng) -> array``;
        see :mod:`refnsm.hopfield.initializers`.  Default Uniform[0.025, 0.8) (ngclearn's default law).
    g_conduct_factor : float, default 1
        ngclearn's conductance factor (``resist_scale`` is accepted as its old name, as ngclearn does).  ngclearn
        3.2.1's ``HopfieldSynapse.advance_state`` never applies it (only DenseSynapse's does); refnsm stores it and
        ignores it too, so outputs match.
    p_conn : float in (0, 1], default 1
        Connection probability: when < 1 a Bernoulli(p_conn) mask multiplies the initial random weights (before
        the patterns are loaded, as in ngclearn 3.1.x).  With ``keep_mask=True`` the mask is instead applied to the
        whole initial memory and re-applied after every ``evolve``.  Under ``compat="ngclearn"`` p_conn is
        ignored, as ngclearn 3.2.1 does (it passes p_conn into DenseSynapse's ``p_release_mean`` slot).
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
        ``"cuda"``: run ``advance_state`` and ``evolve`` on the GPU (:mod:`refnsm.hopfield._cuda_kernels`; a GPU or
        ``NUMBA_ENABLE_CUDASIM=1`` is needed, else a ``RuntimeError``).  The weights then stay on the device between
        steps: ``params["weights"]``, ``inputs``, ``outputs``, ``similarities``, ``memory_weights`` and ``dWeights``
        are numba device arrays (``np.asarray`` or :func:`refnsm.cuda.to_host` copies one back), ``advance_state``
        and ``evolve`` return device arrays, and the ``weights`` property returns a NumPy **copy** (assign
        ``weights`` to change them; NumPy or device arrays are accepted, as for ``inputs``).  ``energy`` and
        ``i_tick`` stay (1, 1) NumPy arrays, and ``backward`` runs on the CPU.  Same results as the CPU within
        rounding (float64 1e-12, float32 1e-5 relative).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import hopfield as hp
    >>> patterns = np.array([[1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0]])   # P=2 patterns of D=4
    >>> syn = hp.HopfieldSynapse("mem", (4, 2), eta=0.1, beta=8.0, initial_patterns=patterns.T, rng=0)
    >>> out = syn.advance_state(np.array([[1.0, -1.0, 1.0, 0.0]]))   # a corrupted first pattern
    >>> np.round(syn.outputs, 3)
    array([[ 1., -1.,  1., -1.]])
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
        g_conduct_factor=1.0,
        p_conn=1.0,
        batch_size=1,
        *,
        resist_scale=None,
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
            D, H = (_checks.check_int(s, "shape", minimum=1) for s in shape)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"shape: expected a pair of positive integers (D, H), got {shape!r}") from None
        dtype = _checks.check_float_dtype(dtype)
        self.eta = _checks.check_real(eta, "eta")
        self.reg_lambda = _checks.check_real(reg_lambda, "reg_lambda", nonnegative=True)
        self.l1_lambda = _checks.check_real(l1_lambda, "l1_lambda", nonnegative=True)
        self.beta = _checks.check_real(beta, "beta", positive=True)
        self.update_rule = _checks.check_option(update_rule, "update_rule", UPDATE_RULES)
        self.compat = modern._compat(compat)
        if neg_beta is not None and compat is not None:
            raise ValueError("neg_beta: pass either neg_beta or compat='ngclearn' (which fixes neg_beta=1), not both")
        self.neg_beta = (1.0 if compat == "ngclearn" else
                         (self.beta if neg_beta is None else _checks.check_real(neg_beta, "neg_beta", positive=True)))
        p_conn = _checks.check_real(p_conn, "p_conn")
        if not 0.0 < p_conn <= 1.0:
            raise ValueError(f"p_conn: expected a probability in (0, 1], got {p_conn}")
        self.p_conn = p_conn
        self.batch_size = _checks.check_int(batch_size, "batch_size", minimum=1)
        self.keep_mask = _checks.check_bool(keep_mask, "keep_mask")
        if resist_scale is not None:
            if g_conduct_factor != 1.0:
                raise TypeError("resist_scale, g_conduct_factor: the same argument under two names (resist_scale is "
                                "ngclearn's deprecated spelling); give one")
            g_conduct_factor = resist_scale
        self.g_conduct_factor = _checks.check_real(g_conduct_factor, "g_conduct_factor")
        init_spec = None
        if weight_init is not None and (isinstance(weight_init, dict) or callable(weight_init) or (
                isinstance(weight_init, tuple) and weight_init and isinstance(weight_init[0], str))):
            from .initializers import _normalise

            if not callable(weight_init):
                _normalise(weight_init, "weight_init")  # the spec's form is checked before anything is drawn
            init_spec, weight_init = weight_init, None
        if weight_init is not None:
            W0 = _checks.as_float_array(weight_init, "weight_init", ndim=2, dtype=dtype)
            _checks.check_shape(W0, "weight_init", (D, H), "shape")
            W0 = W0.copy()
        pats = None
        if initial_patterns is not None:
            pats = modern._check_patterns(initial_patterns, D, H, dtype)
            if pats.shape[1] == H and perm is not None:
                raise ValueError("perm: only used when there are fewer patterns than slots (P < H)")
            if perm is not None:
                perm = modern._check_perm(perm, H)
        elif perm is not None:
            raise ValueError("perm: only used together with initial_patterns")
        self.device = _backend.check_device(device)
        # the kernels and the array namespace of the chosen device (_cuda_kernels mirrors _kernels one for one);
        # on "cuda" the compartments live on the device, so results go back as device arrays
        self._K = _backend.kernels("hopfield", self.device)
        self._xp = _backend.arrays(self.device, on_device=True)
        gen = _checks.resolve_rng(rng)

        # ---- construction ----
        if init_spec is not None:
            from .initializers import make_weights

            W0 = make_weights(init_spec, (D, H), dtype, gen)
        elif weight_init is None:
            W0 = gen.uniform(0.025, 0.8, size=(D, H)).astype(dtype)
        mask = None
        if p_conn < 1.0 and self.compat != "ngclearn":
            mask = (gen.random((D, H)) < p_conn).astype(dtype)
            W0 = W0 * mask
        if pats is not None:
            W = modern.load_patterns(W0, pats, perm=perm, rng=gen) if pats.shape[1] < H else pats.copy()
        else:
            W = W0
        if mask is not None and self.keep_mask:
            W = W * mask
        self.mask = mask
        self.shape = (D, H)
        self.dtype = dtype
        W = self._xp.from_host(np.ascontiguousarray(W, dtype=dtype))
        self._dmask = (None, None)  # (host mask, its device copy) of a CUDA synapse
        self.params = {"weights": W}
        self.grads = {"weights": np.zeros((D, H), dtype)}
        self.i_tick = np.zeros((1, 1), dtype)
        self._empty_mask = self._xp.empty((1, 1), dtype)
        self._one = np.ones((1, 1), dtype)
        self.reset()

    # ---- compartments ----
    @property
    def weights(self) -> np.ndarray:
        """The memory matrix W (D, H); column j is memory j (on a CUDA synapse: a NumPy copy of the device array)."""
        return self._xp.to_host(self.params["weights"])

    @weights.setter
    def weights(self, value):
        xp = self._xp
        if not xp.is_native(value):
            xp = _backend.HOST  # validated on the host, then moved over
        W = xp.asarray(value, "weights", ndim=2, dtype=self.dtype)
        _checks.check_shape(W, "weights", self.shape, "the synapse shape (D, H)")
        self.params["weights"] = self._private(W, value, xp)

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
        if (type(value) is np.ndarray and value.ndim == 2 and value.dtype == self.dtype and value.shape[1] == D
                and value.shape[0] > 0):
            # fast path (the common case, and what the small benchmark measures): the same checks, and the copy
            # and the NaN/Inf test in one pass
            X = np.empty(value.shape, self.dtype)
            if not host_kernels.copy_finite(value, X):
                _checks.check_finite(value, "inputs")  # raises, naming the first bad element
            self._inputs = self._xp.from_host(X)
            return
        xp = self._xp
        if not xp.is_native(value):
            xp = _backend.HOST  # validated on the host, then moved over
        X = xp.asarray(value, "inputs", dtype=self.dtype, shape_hint="[B, D]")
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if X.ndim != 2 or X.shape[1] != D or X.shape[0] == 0:
            raise ValueError(
                f"inputs: expected shape (B, D={D}) with the probe width D along the last axis, "
                f"got shape {np.shape(value)}"
            )
        self._inputs = self._private(X, value, xp)

    def _private(self, A, value, xp):
        """The validated ``A`` (from ``value``, by the namespace ``xp``) as the synapse's own array: moved to the
        synapse's device, or copied when it may alias the caller's array."""
        if xp is not self._xp:
            return self._xp.from_host(A)  # a new device array
        return xp.copy(A) if xp.shares(A, value) else A

    def reset(self):
        """Zero every compartment except ``weights`` and ``i_tick`` (shapes from ``batch_size``)."""
        B, (D, H) = self.batch_size, self.shape
        zeros = self._xp.zeros
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
        X, W, dt, empty = self._inputs, self.params["weights"], self.dtype, self._xp.empty
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
        dW = self._xp.empty((D, H), self.dtype)
        Wn = self._xp.empty((D, H), self.dtype)
        mask = self.mask
        use_mask = self.keep_mask and mask is not None
        if not use_mask:
            mask = self._empty_mask
        elif self.device != "cpu":
            if self._dmask[0] is not mask:  # copied to the device once (again if the attribute is reassigned)
                self._dmask = (mask, self._xp.from_host(_checks.as_float_array(mask, "mask", dtype=self.dtype)))
            mask = self._dmask[1]
        self._K.plasticity_into(0 if self.update_rule == "delta" else 1, X, Xhat, A, W, self.neg_beta, self.eta,
                                self.reg_lambda, self.l1_lambda, mask, use_mask, dW, Wn)
        self.dWeights = dW
        self.params["weights"] = Wn
        return Wn

    # ---- layer interface ----
    @_checks.finite_result
    def forward(self, X):
        """``advance_state(X)``; returns the retrieved probes (B, D)."""
        return self.advance_state(X)

    @_checks.finite_result
    def backward(self, grad_out):
        r"""Gradient of a loss through the last retrieval :math:`\hat X = \mathrm{softmax}(\beta XW) W^\top`.

        Returns :math:`\bar X` and stores :math:`\bar W` in ``grads["weights"]`` (see
        :func:`refnsm.hopfield.retrieve_vjp`).  On a CUDA synapse this runs on the CPU, with host copies.
        """
        xp = self._xp
        X, W = xp.to_host(self._inputs), xp.to_host(self.params["weights"])
        if self.device != "cpu" and xp.is_native(grad_out):
            grad_out = xp.to_host(grad_out)
        gX, gW, _ = modern.retrieve_vjp(grad_out, X, W, self.beta)
        self.grads["weights"] = gW
        return gX

    # ---- ngclearn's component utilities: help, save, load ----
    _SAVED = ("inputs", "outputs", "weights", "similarities", "memory_weights", "energy", "i_tick", "dWeights")

    @classmethod
    def help(cls) -> dict:
        """A description of the component, structured like ngclearn's ``HopfieldSynapse.help()``."""
        return {
            cls.__name__: {"synapse_type": "HopfieldSynapse - modern Hopfield memory (Ramsauer et al. 2020) whose "
                                           "memory matrix W (D, H) learns by a local delta or contrastive rule"},
            "compartments": {
                "input_compartments": {"inputs": "probes X (B, D)"},
                "parameter_compartments": {"weights": "memory matrix W (D, H), column j is memory j"},
                "output_compartments": {"outputs": "retrieved probes softmax(beta X W) W^T (B, D)",
                                        "similarities": "X W minus its row max (B, H)",
                                        "memory_weights": "softmax(beta * similarities) (B, H)",
                                        "energy": "batch-mean energy (1, 1)", "i_tick": "advance_state calls (1, 1)",
                                        "dWeights": "the last plasticity update dW (D, H)"},
            },
            "dynamics": "outputs = softmax(beta X W) W^T ; W <- W + eta dW - reg_lambda W - l1_lambda sign(W)",
            "hyperparameters": {
                "shape": "(D, H): probe dimension x number of memories", "eta": "learning rate of evolve",
                "reg_lambda": "weight decay per evolve (not scaled by eta)", "beta": "inverse temperature",
                "initial_patterns": "patterns to store, one per column (D, P), P <= H",
                "update_rule": "'delta' or 'contrastive'",
                "weight_init": "initial weights: an array or an initialiser spec (refnsm.hopfield.initializers)",
                "g_conduct_factor": "stored, not applied (as ngclearn's HopfieldSynapse)",
                "p_conn": "connection probability of the initial random weights (ignored under compat='ngclearn')",
                "batch_size": "batch size of the compartments after reset",
            },
        }

    def _path(self, directory):
        import os

        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError(f"directory: expected a path, got {_checks._describe(directory)}")
        if not os.path.isdir(directory):
            raise ValueError(f"directory: expected an existing directory, got {os.fspath(directory)!r}")
        return os.path.join(directory, self.name + ".npz")

    def save(self, directory) -> str:
        """Write the compartments to ``directory/<name>.npz`` (ngclearn's file name and keys; the p_conn mask, when
        there is one, as ``p_conn_mask``).  Returns the file's path."""
        path = self._path(directory)

        def host(a):
            return np.asarray(a) if isinstance(a, np.ndarray) else self._xp.to_host(a)

        data = {k: host(self.params["weights"] if k == "weights" else getattr(self, k)) for k in self._SAVED}
        if self.mask is not None:
            data["p_conn_mask"] = np.asarray(self.mask)
        np.savez(path, **data)
        return path

    def load(self, directory) -> None:
        """Read the compartments saved by :meth:`save` (or by ngclearn's ``save``) from ``directory/<name>.npz``.

        Keys this synapse does not have (ngclearn's ``key``, ``biases``, ``gate``, ``mask``, delay buffers) are
        ignored, and missing keys leave their compartment unchanged, as in ngclearn.  Every array read is checked
        (shape, finiteness) before any compartment changes."""
        path = self._path(directory)
        import os

        if not os.path.isfile(path):
            raise ValueError(f"directory: no file {self.name + '.npz'!r} in {os.fspath(directory)!r}")
        (D, H), B = self.shape, None
        with np.load(path) as z:
            data = {k: np.array(z[k], dtype=self.dtype) for k in (*self._SAVED, "p_conn_mask") if k in z.files}
        if "inputs" in data:
            B = data["inputs"].shape[0] if data["inputs"].ndim == 2 else None
        want = {"weights": (D, H), "dWeights": (D, H), "energy": (1, 1), "i_tick": (1, 1), "p_conn_mask": (D, H)}
        for k, a in data.items():
            _checks.check_finite(a, f"{path}[{k!r}]")
            if k in want:
                ok = a.shape == want[k]
            else:
                width = D if k in ("inputs", "outputs") else H
                ok = a.ndim == 2 and a.shape[1] == width and (B is None or a.shape[0] == B) and a.shape[0] > 0
            if not ok:
                raise ValueError(f"{path}[{k!r}]: shape {a.shape} does not fit this synapse (shape (D, H) = {(D, H)}"
                                 f"{'' if B is None else f', batch {B}'})")
        for k, a in data.items():
            if k == "weights":
                self.weights = a
            elif k == "inputs":
                self._set_inputs(a)
            elif k == "p_conn_mask":
                self.mask = a
            elif k in ("energy", "i_tick"):
                setattr(self, k, a)
            else:
                setattr(self, k, self._xp.from_host(a))

    def __repr__(self):
        return (f"HopfieldSynapse({self.name!r}, shape={self.shape}, eta={self.eta}, beta={self.beta}, "
                f"update_rule={self.update_rule!r}, compat={self.compat!r}, dtype={self.dtype}"
                + (f", device={self.device!r})" if self.device != "cpu" else ")"))
