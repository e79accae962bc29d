"""The upstream libraries as golden backends: adapters that map the protocol onto spikingjelly, neuromancer and
neurotorch (torch), so that the cross-check runs the same cases, the same comparison and the same report.

* :func:`spikingjelly_backend` - ``spiking``: ``kernel_dot_product``, ``spike_similar_loss``,
  ``temporal_efficient_training_cross_entropy`` and their VJPs (torch autograd);
* :func:`neuromancer_backend` - ``linear``: every ``slim.linear`` map under refnsm's class name, built from the
  case's parameters (copied into the upstream ``state_dict``), ``effective_W``/``forward``/``backward``/``grads``/
  ``reg_error``;
* :func:`neurotorch_backend` - ``regularization``: the regularizer objects (``L1``, ``L2``, ``Lp``, ``DaleLawL2``,
  ``ExcRatioTargetRegularization``, ``InhRatioTargetRegularization``, ``WeightsDistance``), value and gradients.

An argument the upstream API does not have (``ignore_index`` other than torch's default, ``mode="entrywise"``,
``sign_func``) or an object whose randomness cannot be pinned upstream is reported as *not implemented*, never as
a failure.  Where upstream deliberately differs from refnsm's default (``docs/upstream_differences.md``), the
``compat=<library>`` cases hold refnsm's reproduction of upstream, and :data:`DIFFERS` lists the default cases
that upstream is not expected to pass, with the reason; ``tests/crosscheck/test_golden_upstream.py`` runs them
as ``--xfail`` (an unexpected pass fails too).  Imports torch and the upstream library only when called.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import NamedTuple

import numpy as np

from ._errors import NotImplementedByBackend

#: default-semantics cases each upstream is known not to pass, per dtype, with the documented reason
DIFFERS32 = {
    "spikingjelly": {
        "spiking.spike_similar_loss.linear-bce-*": "torch rounds the float32 cosine diagonal above 1 and BCE refuses it "
                                                   "(refnsm forms it in closed form; docs/upstream_differences.md)",
        "spiking.spike_similar_loss_vjp.linear-bce-*": "the same refusal",
    },
}
#: a smaller float32 run where each upstream call is slow (ngclearn JIT-compiles every new component: ~2 s each)
INCLUDE32 = {"ngclearn": ["hopfield.HopfieldSynapse.*"]}
INCLUDE64 = {"ngclearn": ["hopfield.HopfieldSynapse.*", "hopfield.retrieve.basic", "hopfield.retrieve.saturated-*",
                          "hopfield.retrieve.tied-*"]}
DIFFERS = {
    "neuromancer": {
        "linear.L0Linear.5x3-bias": "reg_error is the log-prior R <= 0, not the cost -R",
        "linear.SymplecticLinear.4x4-bias": "effective_W is the skew block [[0, P], [-P^T, 0]], not symplectic",
        "linear.SymmetricSVDLinear.4x4-bias": "U aliased to V: W = V S V, not symmetric",
        "linear.OrthogonalLinear.4x4-bias": "effective_W = forward(I) adds the bias to every row",
        "linear.SpectralLinear.5x3-bias": "effective_W = forward(I) adds the (always present) bias to every row",
        "linear.SymmetricSpectralLinear.4x4-bias": "effective_W = forward(I) adds the (always present) bias to every row",
        "linear.ButterflyLinear.5x3-bias": "the bias is one scalar, and effective_W = forward(I) adds it",
    },
    "pynsm": {
        "similarity.MultiSimilarityMatching.forward-loss-backward-whiten-weight-two-inputs":
            "with two active encoders pynsm overwrites the first encoding by the sum, so 'whiten' penalises "
            "the sum (compat='pynsm' case)",
    },
    "spikingjelly": {},
    "neurotorch": {},
}


def run(library, dtype):
    """``verify`` of the upstream ``library`` in ``dtype``, its compat cases included, its documented differences
    as xfail (an unexpected pass fails)."""
    from ._runner import verify

    xfail = list(DIFFERS.get(library, {})) + (list(DIFFERS32.get(library, {})) if dtype == "float32" else [])
    include = (INCLUDE32 if dtype == "float32" else INCLUDE64).get(library)
    return verify(BACKENDS[library](), dtype=dtype, compat=library, xfail=xfail or None, include=include)


def _torch():
    import torch

    return torch


def _tensor(a, grad=False):
    torch = _torch()
    t = torch.from_numpy(np.array(a, copy=True))
    if grad and t.is_floating_point():
        t.requires_grad_(True)
    return t


def _np(t):
    return t.detach().numpy().copy()


def _scale(grad_out):
    return 1.0 if grad_out is None else float(grad_out)


# ------------------------------------------------------------------------------------------------ spikingjelly
def spikingjelly_backend():
    from ..crosscheck import _upstream

    _upstream.load("spikingjelly")
    import importlib

    sj = importlib.import_module("spikingjelly.activation_based.functional.loss")
    torch = _torch()

    class _CastTarget:
        """spikingjelly passes BCE a float32 target (labels.float()) next to float64 S, which torch refuses; give
        it S's dtype (identical values for 0/1 labels)."""

        def __init__(self, real):
            self.real = real

        def __getattr__(self, name):
            return getattr(self.real, name)

        def binary_cross_entropy(self, s, y, *a, **k):
            return self.real.binary_cross_entropy(s, y.to(s.dtype), *a, **k)

    def _with_cast(fn):
        real = sj.F
        sj.F = _CastTarget(real)
        try:
            return fn()
        finally:
            sj.F = real

    def kernel_dot_product(x, y, kernel="linear", *args):
        return _np(sj.kernel_dot_product(_tensor(x), _tensor(y), kernel, *args))

    def kernel_dot_product_vjp(grad_out, x, y, kernel="linear", *args):
        xt, yt = _tensor(x, True), _tensor(y, True)
        K = sj.kernel_dot_product(xt, yt, kernel, *args)
        gx, gy = torch.autograd.grad(K, (xt, yt), grad_outputs=_tensor(grad_out))
        return _np(gx), _np(gy)

    def _ssl(st, labels, kernel_type, loss_type, args):
        return _with_cast(lambda: sj.spike_similar_loss(st, _tensor(labels), kernel_type, loss_type, *args))

    def spike_similar_loss(spikes, labels, kernel_type="linear", loss_type="mse", *args):
        return _np(_ssl(_tensor(spikes), labels, kernel_type, loss_type, args))

    def spike_similar_loss_vjp(grad_out, spikes, labels, kernel_type="linear", loss_type="mse", *args):
        st = _tensor(spikes, True)
        (g,) = torch.autograd.grad(_ssl(st, labels, kernel_type, loss_type, args), st)
        return _np(g * _scale(grad_out))

    def _tet_args(ignore_index):
        if ignore_index != -100:
            raise NotImplementedByBackend("spikingjelly's TET has no ignore_index argument (torch's -100 only)")

    def temporal_efficient_training_cross_entropy(x_seq, target, ignore_index=-100):
        _tet_args(ignore_index)
        return _np(sj.temporal_efficient_training_cross_entropy(_tensor(x_seq), _tensor(target)))

    def temporal_efficient_training_cross_entropy_vjp(grad_out, x_seq, target, ignore_index=-100):
        _tet_args(ignore_index)
        xt = _tensor(x_seq, True)
        (g,) = torch.autograd.grad(sj.temporal_efficient_training_cross_entropy(xt, _tensor(target)), xt)
        return _np(g * _scale(grad_out))

    spiking = SimpleNamespace(
        kernel_dot_product=kernel_dot_product, kernel_dot_product_vjp=kernel_dot_product_vjp,
        spike_similar_loss=spike_similar_loss, spike_similar_loss_vjp=spike_similar_loss_vjp,
        temporal_efficient_training_cross_entropy=temporal_efficient_training_cross_entropy,
        temporal_efficient_training_cross_entropy_vjp=temporal_efficient_training_cross_entropy_vjp)
    return SimpleNamespace(BACKEND_NAME="spikingjelly 2.0.0 (torch)", DEVICE="cpu (torch)", spiking=spiking)


# ------------------------------------------------------------------------------------------------- neuromancer
#: refnsm class name -> key in neuromancer.slim.maps, or the class name where neuromancer does not register it
NEUROMANCER_KEYS = {
    "Linear": "linear", "IdentityInitLinear": "IdentityInitLinear", "IdentityLinear": "identity",
    "BoundedNormLinear": "bounded_Lp_norm", "NonNegativeLinear": "nneg", "SplitLinear": "split",
    "LassoLinear": "lasso", "LassoLinearRELU": "LassoLinearRELU", "L0Linear": "l0",
    "LeftStochasticLinear": "lstochastic", "RightStochasticLinear": "rstochastic", "PerronFrobeniusLinear": "pf",
    "StableSplitLinear": "stable_split", "SymmetricLinear": "symmetric", "SkewSymmetricLinear": "skew_symetric",
    "DampedSkewSymmetricLinear": "damp_skew_symmetric", "PSDLinear": "psd", "SymplecticLinear": "symplectic",
    "GershgorinLinear": "gershgorin", "SVDLinear": "softSVD", "SVDLinearLearnBounds": "learnSVD",
    "SymmetricSVDLinear": "SymmetricSVDLinear", "OrthogonalLinear": "orthogonal", "SpectralLinear": "spectral",
    "SymmetricSpectralLinear": "SymmetricSpectralLinear", "TrivialNullSpaceLinear": "trivial_nullspace",
    "ButterflyLinear": "butterfly",
}
#: not run upstream: neuromancer's SchurDecompositionLinear crashes (docs/upstream_differences.md); PowerBound's
#: penalty draws its start vectors from torch's global RNG, which a golden case cannot pin
NEUROMANCER_UNAVAILABLE = {"SchurDecompositionLinear": "neuromancer's class cannot run",
                           "PowerBoundLinear": "its penalty's start vectors come from torch's global RNG"}


def neuromancer_backend():
    from ..crosscheck import _upstream

    nm = _upstream.load("neuromancer")
    torch = _torch()

    def factory(refname, key):
        class Map:
            def __init__(self, insize, outsize, bias=False, *, params, dtype=np.float64, compat=None, **kw):
                tdtype = torch.float64 if np.dtype(dtype) == np.float64 else torch.float32
                ucls = nm.maps[key] if key in nm.maps else getattr(nm, key)
                old = torch.get_default_dtype()
                torch.set_default_dtype(tdtype)
                try:
                    up = ucls(insize, outsize, bias=bias, **kw).to(tdtype)
                finally:
                    torch.set_default_dtype(old)
                if refname == "L0Linear":
                    with torch.no_grad():
                        for name, val in (("limit_a", -0.1), ("limit_b", 1.1), ("epsilon", 1e-6),
                                          ("temperature", 2.0 / 3.0), ("prior_prec", 1.0), ("lamda", 1.0),
                                          ("droprate_init", 0.5)):
                            getattr(up, name).fill_(val)
                if refname == "GershgorinLinear":  # unregistered tensors: make them leaves autograd can reach
                    up.w = up.w.detach().clone().requires_grad_(True)
                    up.diag = up.diag.detach().clone().requires_grad_(True)
                sd = up.state_dict(keep_vars=True)
                self.tensors = {}
                for k, v in params.items():
                    t = sd.get(k)
                    if t is None:
                        t = getattr(up, k)
                    if tuple(t.shape) != tuple(np.shape(v)):
                        raise ValueError(f"params[{k!r}]: neuromancer's tensor has shape {tuple(t.shape)}, the case "
                                         f"gives {np.shape(v)}")
                    with torch.no_grad():
                        t.copy_(torch.from_numpy(np.asarray(v)).to(t.dtype))
                    self.tensors[k] = t
                self.up, self.dtype, self.grads, self._x = up, tdtype, {}, None

            def _default_dtype(self):
                # neuromancer builds some tensors (Householder vectors, eyes) with torch's default dtype
                import contextlib

                @contextlib.contextmanager
                def ctx():
                    old = torch.get_default_dtype()
                    torch.set_default_dtype(self.dtype)
                    try:
                        yield
                    finally:
                        torch.set_default_dtype(old)
                return ctx()

            def set_noise(self, u):
                ut = torch.from_numpy(np.array(u, copy=True)).to(self.dtype)
                self.up.get_eps = lambda size: ut

            def effective_W(self):
                with self._default_dtype():
                    return _np(self.up.effective_W())

            def forward(self, x):
                self._x = _tensor(x, True)
                with self._default_dtype():
                    self._y = self.up(self._x)
                return _np(self._y)

            def backward(self, grad_y):
                leaves = {k: t for k, t in self.tensors.items() if t.requires_grad}
                ins = [self._x] + list(leaves.values())
                gs = torch.autograd.grad(self._y, ins, grad_outputs=_tensor(grad_y), allow_unused=True)
                self.grads = {k: (np.zeros(tuple(t.shape), dtype=_np(t).dtype) if g is None else _np(g))
                              for (k, t), g in zip(leaves.items(), gs[1:])}
                return _np(gs[0])

            def reg_error(self):
                # a map without a penalty returns torch.tensor(0.) (float32) and BoundedNorm a 1-element tensor:
                # a plain float is the protocol's scalar
                with self._default_dtype():
                    return float(_np(self.up.reg_error()).reshape(()))

        Map.__name__ = refname
        return Map

    ns = {name: factory(name, key) for name, key in NEUROMANCER_KEYS.items()}
    return SimpleNamespace(BACKEND_NAME="neuromancer 1.5.6 slim.linear (torch)", DEVICE="cpu (torch)",
                           linear=SimpleNamespace(**ns))


# -------------------------------------------------------------------------------------------------- neurotorch
def neurotorch_backend():
    from ..crosscheck import _upstream

    reg = _upstream.load("neurotorch")
    import neurotorch.regularization.connectome as connectome

    torch = _torch()

    def factory(make):
        class Reg:
            def __init__(self, params, *args, **kwargs):
                self.keys = list(params)
                self.tparams = [torch.nn.Parameter(_tensor(params[k])) for k in self.keys]
                self.up = make(self.tparams, *args, **kwargs)
                self.grads = {}

            def forward(self):
                return _np(self.up())

            def backward(self, grad_out=None):
                v = self.up()
                gs = torch.autograd.grad(v, self.tparams, allow_unused=True)
                self.grads = {k: (np.zeros(tuple(t.shape), dtype=_np(t).dtype) if g is None else _np(g * _scale(grad_out)))
                              for k, t, g in zip(self.keys, self.tparams, gs)}
                return self.grads

        return Reg

    def _no(kwargs, *names):
        for n in names:
            if n in kwargs:
                raise NotImplementedByBackend(f"neurotorch has no {n!r} argument")

    def refs(r):
        return [_tensor(a) for a in r]

    def L1(t, Lambda=1.0, **kw):
        _no(kw, "mode", "frozen")
        return reg.L1(t, Lambda=Lambda)

    def L2(t, Lambda=1.0, **kw):
        _no(kw, "mode", "frozen")
        return reg.L2(t, Lambda=Lambda)

    def Lp(t, Lambda=1.0, p=1, **kw):
        _no(kw, "mode", "frozen")
        return reg.Lp(t, Lambda=Lambda, p=p)

    def DaleLawL2(t, alpha=0.8, reference_weights=None, Lambda=1.0, **kw):
        _no(kw, "compat", "frozen", "rng")
        if reference_weights is None:
            raise NotImplementedByBackend("a generated reference: neurotorch draws it from torch's RNG")
        return connectome.DaleLawL2(t, alpha=alpha, reference_weights=refs(reference_weights), Lambda=Lambda)

    def Exc(t, exc_target_ratio=0.8, Lambda=1.0, **kw):
        _no(kw, "sign_func", "frozen")
        return connectome.ExcRatioTargetRegularization(t, exc_target_ratio=exc_target_ratio, Lambda=Lambda)

    def Inh(t, inh_target_ratio=0.2, Lambda=1.0, **kw):
        _no(kw, "sign_func", "frozen")
        return connectome.InhRatioTargetRegularization(t, inh_target_ratio=inh_target_ratio, Lambda=Lambda)

    def Dist(t, reference_weights, Lambda=1.0, p=1, **kw):
        _no(kw, "mode", "frozen", "compat")
        return connectome.WeightsDistance(t, reference_weights=refs(reference_weights), Lambda=Lambda, p=p)

    ns = {"L1": L1, "L2": L2, "Lp": Lp, "DaleLawL2": DaleLawL2, "ExcRatioTargetRegularization": Exc,
          "InhRatioTargetRegularization": Inh, "WeightsDistance": Dist}
    fns = {k: factory(v) for k, v in ns.items()}

    # the functional forms, through a one-parameter regularizer object (neurotorch has no functions)
    def _one(make, w, *args):
        r = fns[make]({"w": w}, *args)
        return r

    def _mode(mode):
        if mode != "neurotorch":
            raise NotImplementedByBackend(f"neurotorch has no mode={mode!r}")

    def lp_norm(x, p=1, *, mode="neurotorch"):
        _mode(mode)
        return _one("Lp", x, 1.0, p).forward()

    def lp_norm_vjp(grad_out, x, p=1, *, mode="neurotorch"):
        _mode(mode)
        return _one("Lp", x, 1.0, p).backward(grad_out)["w"]

    def dale_law_l2(w, reference, alpha=0.8):
        return _one("DaleLawL2", w, alpha, [reference]).forward()

    def dale_law_l2_vjp(grad_out, w, reference, alpha=0.8):
        return _one("DaleLawL2", w, alpha, [reference]).backward(grad_out)["w"]

    def exc_ratio_loss(w, exc_target_ratio=0.8, *, sign_func="softsign"):
        if sign_func != "softsign":
            raise NotImplementedByBackend("neurotorch has no sign_func argument")
        return _one("ExcRatioTargetRegularization", w, exc_target_ratio).forward()

    def exc_ratio_loss_vjp(grad_out, w, exc_target_ratio=0.8, *, sign_func="softsign"):
        if sign_func != "softsign":
            raise NotImplementedByBackend("neurotorch has no sign_func argument")
        return _one("ExcRatioTargetRegularization", w, exc_target_ratio).backward(grad_out)["w"]

    def weights_distance(w, reference, p=1, *, mode="neurotorch"):
        _mode(mode)
        return _one("WeightsDistance", w, [reference], 1.0, p).forward()

    def weights_distance_vjp(grad_out, w, reference, p=1, *, mode="neurotorch"):
        raise NotImplementedByBackend("neurotorch's WeightsDistance does not differentiate the reference")

    fns.update(lp_norm=lp_norm, lp_norm_vjp=lp_norm_vjp, dale_law_l2=dale_law_l2, dale_law_l2_vjp=dale_law_l2_vjp,
               exc_ratio_loss=exc_ratio_loss, exc_ratio_loss_vjp=exc_ratio_loss_vjp,
               weights_distance=weights_distance, weights_distance_vjp=weights_distance_vjp)
    return SimpleNamespace(BACKEND_NAME="neurotorch 0.0.2 (torch)", DEVICE="cpu (torch)",
                           regularization=SimpleNamespace(**fns))


# ---------------------------------------------------------------------------------------------------- ngclearn
def ngclearn_backend():
    """``hopfield``: ``retrieve`` and ``HopfieldSynapse`` through ngclearn's ``HopfieldSynapse`` (JAX, x64 on),
    whose memory is set exactly to the case's ``W`` (``initial_patterns`` with P == H)."""
    from ..crosscheck import _upstream
    from ..crosscheck.hopfield import build_ngclearn

    _upstream.load("ngclearn")
    import jax.numpy as jnp

    class Retrieval(NamedTuple):
        similarities: np.ndarray
        memory_weights: np.ndarray
        outputs: np.ndarray

    class HopfieldSynapse:
        def __init__(self, name, shape, eta, reg_lambda=0.0, beta=8.0, initial_patterns=None, update_rule="delta",
                     weight_init=None, p_conn=1.0, batch_size=1, *, compat=None, dtype=np.float64, **kw):
            if isinstance(weight_init, dict):
                raise NotImplementedByBackend("an initialiser spec: the adapter copies given weights into ngclearn")
            if kw or initial_patterns is not None or p_conn != 1.0 or weight_init is None:
                raise NotImplementedByBackend("only weight_init (copied into ngclearn exactly) is mapped")
            if update_rule == "contrastive" and compat != "ngclearn":
                raise NotImplementedByBackend("ngclearn's contrastive rule is compat='ngclearn' (beta' = 1)")
            D, H = shape
            self.dtype = np.dtype(dtype)
            self.proc = build_ngclearn(D, H, eta=eta, reg_lambda=reg_lambda, beta=beta, update_rule=update_rule,
                                       W0=np.asarray(weight_init, dtype=self.dtype), batch_size=batch_size)

        def _get(self, k):
            return np.asarray(getattr(self.proc[0], k).get()).astype(self.dtype, copy=False)

        def advance_state(self, inputs):
            hop, reset, advance, _ = self.proc
            reset.run()
            hop.inputs.set(jnp.asarray(np.asarray(inputs, dtype=self.dtype)))
            advance.run(t=0.0, dt=1.0)
            return self._get("outputs")

        def evolve(self, t=None, dt=None):
            self.proc[3].run(t=0.0, dt=1.0)
            return self._get("weights")

        weights = property(lambda self: self._get("weights"))
        outputs = property(lambda self: self._get("outputs"))
        memory_weights = property(lambda self: self._get("memory_weights"))
        similarities = property(lambda self: self._get("similarities"))

    def retrieve(X, W, beta):
        X = np.asarray(X)
        if X.ndim != 2:
            raise NotImplementedByBackend("ngclearn's synapse takes a batch (B, D)")
        syn = HopfieldSynapse("h", W.shape, 0.0, 0.0, beta, weight_init=W, batch_size=X.shape[0], dtype=X.dtype)
        syn.advance_state(X)
        return Retrieval(syn.similarities, syn.memory_weights, syn.outputs)

    return SimpleNamespace(BACKEND_NAME="ngclearn 3.2.1 HopfieldSynapse (JAX)", DEVICE="cpu (jax)",
                           hopfield=SimpleNamespace(retrieve=retrieve, HopfieldSynapse=HopfieldSynapse))


# ------------------------------------------------------------------------------------------------------- pynsm
def pynsm_backend():
    """``similarity``: the encoders (torch ``nn.Linear``/``nn.Conv2d`` with the case's weights) and pynsm's circuits;
    ``backward`` by autograd, with pynsm's competitor-gradient hook (``-1/tau``) undone so that ``grads`` holds the
    raw ``dL/dM`` as refnsm's protocol says; ``train_step`` is ``torch.optim.SGD(lr)`` (the hook gives M its
    ``lr/tau``)."""
    from ..crosscheck import _upstream

    pynsm = _upstream.load("pynsm")
    torch = _torch()

    def tdt(dtype):
        return torch.float64 if np.dtype(dtype) == np.float64 else torch.float32

    def _set(param, value):
        with torch.no_grad():
            param.copy_(torch.from_numpy(np.asarray(value)).to(param.dtype))

    class _Encoder:
        def _init(self, module, weight, bias_value, dtype):
            self.module = module.to(tdt(dtype))
            if weight is None:
                raise NotImplementedByBackend("an encoder without given weights (torch's RNG)")
            _set(self.module.weight, weight)
            if bias_value is not None:
                _set(self.module.bias, bias_value)
            self.grads = {}

        def forward(self, x):
            self._x = _tensor(x, True)
            self._u = self.module(self._x)
            return _np(self._u)

        def backward(self, grad_out):
            params = dict(self.module.named_parameters())
            gs = torch.autograd.grad(self._u, [self._x, *params.values()], grad_outputs=_tensor(grad_out))
            self.grads = {k: _np(g) for k, g in zip(params, gs[1:])}
            return _np(gs[0])

    class Linear(_Encoder):
        def __init__(self, in_features, out_features, bias=True, *, rng=None, weight=None, bias_value=None,
                     dtype=np.float64):
            self._init(torch.nn.Linear(in_features, out_features, bias=bias), weight, bias_value, dtype)

    class Conv2d(_Encoder):
        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True, *,
                     rng=None, weight=None, bias_value=None, dtype=np.float64):
            self._init(torch.nn.Conv2d(in_channels, out_channels, tuple(kernel_size) if isinstance(kernel_size, list)
                                       else kernel_size, stride, padding, dilation, bias=bias),
                       weight, bias_value, dtype)

    def _proj(p):
        if p is None:
            return {}
        if p == "relu":
            return {"iteration_projection": torch.relu}
        raise NotImplementedByBackend(f"iteration_projection={p!r}")

    class _Circuit:
        def _setup(self, model, tau):
            self.model, self.tau = model.to(self.dtype), float(tau)
            self.grads = {}

        def _xs(self, xs, grad=False):
            return [None if x is None else _tensor(x, grad) for x in xs]

        def forward(self, *xs):
            return _np(self.model(*self._xs(xs)))

        def loss(self, *args):
            self._lx = self._xs(args[:-1], True)
            self._L = self.model.loss(*self._lx, _tensor(args[-1]))
            return _np(self._L)

        def backward(self, grad_out=None, inputs=True):
            for p in self.model.parameters():
                p.grad = None
            (self._L * _scale(grad_out)).backward()
            self.grads = {}
            for k, p in self.model.named_parameters():
                g = np.zeros(tuple(p.shape), dtype=_np(p).dtype) if p.grad is None else _np(p.grad)
                self.grads[k] = g * (-self.tau) if k == "competitor.weight" else g  # undo pynsm's -1/tau hook
            return tuple(None if x is None else (None if x.grad is None else _np(x.grad)) for x in self._lx)

        def train_step(self, *xs, lr, lr_M=None):
            if lr_M is not None:
                raise NotImplementedByBackend("lr_M: pynsm trains M at lr / tau only")
            opt = torch.optim.SGD(self.model.parameters(), lr=lr)
            opt.zero_grad()
            txs = self._xs(xs)
            y = self.model(*txs)
            L = self.model.loss(*txs, y)
            L.backward()
            opt.step()
            return _np(y), _np(L)

        @property
        def params(self):
            return {k: _np(p) for k, p in self.model.named_parameters()}

    def _kw(tau, tol, max_iterations, regularization, iteration_lr, iteration_projection, compat):
        if compat is not None and compat != "pynsm":
            raise NotImplementedByBackend(f"compat={compat!r}")
        kw = dict(tau=tau, tol=tol, max_iterations=max_iterations, iteration_lr=iteration_lr,
                  **_proj(iteration_projection))
        if regularization is not None:
            kw["regularization"] = list(regularization) if isinstance(regularization, (list, tuple)) else regularization
        return kw

    class MultiSimilarityMatching(_Circuit):
        def __init__(self, encoders, out_channels, tau=0.1, tol=0.0, max_iterations=40, regularization="weight",
                     iteration_lr=1.0, iteration_projection=None, *, compat=None):
            self.dtype = encoders[0].module.weight.dtype
            self._setup(pynsm.MultiSimilarityMatching([e.module for e in encoders], out_channels,
                                                      **_kw(tau, tol, max_iterations, regularization, iteration_lr,
                                                            iteration_projection, compat)), tau)

    def _plugins(iteration_optimizer, iteration_scheduler, it_optim_kwargs, it_sched_kwargs):
        """refnsm's option strings as pynsm's torch classes (pynsm takes the classes and their keyword arguments)."""
        optims = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}
        scheds = {None: None, "step": torch.optim.lr_scheduler.StepLR,
                  "exponential": torch.optim.lr_scheduler.ExponentialLR}
        if iteration_optimizer not in optims or iteration_scheduler not in scheds:
            raise NotImplementedByBackend("only the named iteration optimizers and schedulers are mapped")
        okw = dict(it_optim_kwargs or {})
        if "betas" in okw:
            okw["betas"] = tuple(okw["betas"])
        kw = dict(iteration_optimizer=optims[iteration_optimizer], it_optim_kwargs=okw)
        if iteration_scheduler is not None:
            kw.update(iteration_scheduler=scheds[iteration_scheduler], it_sched_kwargs=dict(it_sched_kwargs or {}))
        return kw

    class SimilarityMatching(_Circuit):
        def __init__(self, encoder, out_channels, tau=0.1, tol=0.0, max_iterations=40, regularization="weight",
                     iteration_lr=1.0, iteration_projection=None, *, compat=None, iteration_optimizer="sgd",
                     iteration_scheduler=None, it_optim_kwargs=None, it_sched_kwargs=None):
            self.dtype = encoder.module.weight.dtype
            self._setup(pynsm.SimilarityMatching(encoder.module, out_channels,
                                                 **_kw(tau, tol, max_iterations, regularization, iteration_lr,
                                                       iteration_projection, compat),
                                                 **_plugins(iteration_optimizer, iteration_scheduler,
                                                            it_optim_kwargs, it_sched_kwargs)), tau)

    class SupervisedSimilarityMatching(_Circuit):
        def __init__(self, encoder, num_classes, out_channels, label_bias=False, tau=0.1, tol=0.0, max_iterations=40,
                     regularization=("weight", "whiten"), iteration_lr=1.0, iteration_projection=None, *,
                     compat=None, rng=None, label_weight=None, label_bias_value=None):
            if label_weight is None or (label_bias and label_bias_value is None):
                raise NotImplementedByBackend("a label encoder without given weights (torch's RNG)")
            self.dtype = encoder.module.weight.dtype
            model = pynsm.SupervisedSimilarityMatching(encoder.module, num_classes, out_channels, label_bias,
                                                       **_kw(tau, tol, max_iterations, regularization, iteration_lr,
                                                             iteration_projection, compat))
            self._setup(model, tau)
            named = dict(self.model.named_parameters())
            _set(named["encoders.1.weight"], label_weight)
            if label_bias:
                _set(named["encoders.1.bias"], label_bias_value)

    ns = dict(Linear=Linear, Conv2d=Conv2d, SimilarityMatching=SimilarityMatching,
              MultiSimilarityMatching=MultiSimilarityMatching, SupervisedSimilarityMatching=SupervisedSimilarityMatching)
    return SimpleNamespace(BACKEND_NAME="pynsm 1.0.1 (torch)", DEVICE="cpu (torch)", similarity=SimpleNamespace(**ns))


BACKENDS = {"spikingjelly": spikingjelly_backend, "neuromancer": neuromancer_backend, "neurotorch": neurotorch_backend,
            "ngclearn": ngclearn_backend, "pynsm": pynsm_backend}
