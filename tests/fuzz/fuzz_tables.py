"""The boundary-fuzz tables: one or more valid calls per public name, each argument tagged with its kind.

``specs()`` returns ``{public name: [Spec, ...]}`` for every name in the families' ``__all__`` (and
``refnsm.gradcheck``); ``NOT_CALLED`` lists the names that are not entry points (constants, result records,
abstract bases), each with the reason.  ``coverage_gaps()`` names every public name in neither, so a new public
name fails the suite until it is added here.

From a valid call, ``bad_inputs(spec)`` derives the bad inputs, one argument at a time, from the argument's kind
(NaN, Inf, wrong rank, empty, wrong dtype, junk option, truthy flag, junk rng, ...), each expected to raise
``ValueError``/``TypeError`` naming the argument; ``variants(spec)`` the legitimate variants of each array argument
(list, Fortran order, strided view, read-only), each expected to give bitwise the same result.
"""

from __future__ import annotations

import importlib
import os
import signal
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

FAMILIES = ("spiking", "similarity", "hopfield", "linear", "regularization", "gradcheck")

# kinds of arguments, and what each bad input of that kind must give
#   array: a finite float array of fixed rank;  anyarray: any rank accepted;  index: integer class indices
#   real: finite real;  pos: positive real;  int: integer;  option: a string from a list;  bool: flag;  rng
NOT_CALLED = {
    "spiking.KERNELS": "constant (the kernel names)",
    "spiking.LOSSES": "constant (the loss names)",
    "hopfield.INTERACTIONS": "constant (the interaction names)",
    "hopfield.Retrieval": "result record (namedtuple)",
    "hopfield.IterateResult": "result record (namedtuple)",
    "similarity.Diagnostics": "result record (dataclass)",
    "similarity.Encoder": "abstract base class",
    "regularization.BaseRegularization": "abstract base class",
    "linear.LinearBase": "abstract base class",
    "linear.SquareLinear": "abstract base class",
    "linear.maps": "registry (dict of the map classes, each fuzzed through its class)",
    "linear.upstream_maps": "registry (dict of the map classes)",
    "linear.square_maps": "registry (set of classes)",
    "linear.tall_maps": "registry (set of classes)",
    "linear.IdentityGradReLU": "namespace of straight_through_relu/_vjp (fuzzed through those)",
    "gradcheck.GradcheckResult": "result record (dataclass)",
    "gradcheck.GradcheckError": "exception class",
    "similarity.IterationModule": "base class to subclass (pynsm's IterationModule: iteration() must be overridden)",
    "similarity.IterationLossModule": "base class to subclass (loss() must be overridden)",
    "hopfield.initializers": "submodule (its initialisers are reached through HopfieldSynapse(weight_init=...))",
    "similarity.FunctionalEncoder": "base class to subclass (an encoder defined by a function and its VJP)",
    "similarity.extract_embeddings": "driver over a user model and data loader (no array arguments of its own)",
}

#: findings of the fuzzer in names added by other work and not fixed yet: {(spec label, arg, case): reason}.
#: They are reported by `make fuzz` (docs/reliability.md) and tolerated by the fast suite until fixed.
KNOWN = {}


@dataclass
class Arg:
    name: str  # the name an error message must contain
    value: object
    kind: str
    keyword: bool = False
    skip: tuple = ()  # bad-input labels not applicable to this argument, each documented where the Spec is built


@dataclass
class Spec:
    label: str
    fn: Callable  # fn(*positional, **keyword) -> result; for methods the bound method of a fresh object
    args: list
    make: Callable | None = None  # for methods: builds the object; fn is then called as fn(obj, *args)
    state: Callable | None = field(default=None, repr=False)  # obj -> snapshot of what a failed call must not change

    def call(self, values: dict):
        pos = [values[a.name] for a in self.args if not a.keyword]
        kw = {a.name: values[a.name] for a in self.args if a.keyword}
        if self.make is not None:
            obj = self.make()
            return obj, self.fn(obj, *pos, **kw)
        return None, self.fn(*pos, **kw)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _public_names():
    names = []
    for fam in FAMILIES:
        mod = importlib.import_module(f"refnsm.{fam}")
        for n in getattr(mod, "__all__", [n for n in dir(mod) if not n.startswith("_")]):
            names.append(f"{fam}.{n}")
    return names


def _params_state(obj):
    snap = {}
    for attr in ("params", "grads"):
        d = getattr(obj, attr, None)
        if isinstance(d, dict):
            snap[attr] = {k: np.array(v, copy=True) for k, v in d.items() if isinstance(v, np.ndarray)}
    rng = getattr(obj, "rng", None)
    if isinstance(rng, np.random.Generator):
        snap["rng"] = rng.bit_generator.state
    W = getattr(obj, "W", None)
    if isinstance(W, np.ndarray):
        snap["W"] = W.copy()
    return snap


def specs():  # noqa: PLR0915 - one table
    import refnsm.gradcheck as G
    import refnsm.hopfield as H
    import refnsm.linear as L
    import refnsm.regularization as R
    import refnsm.similarity as SIM
    import refnsm.spiking as S

    r = _rng(1)
    x = r.standard_normal((4, 3))
    y = r.standard_normal((5, 3))
    spikes = (r.random((4, 3, 2)) > 0.5).astype(float)
    labels = np.eye(4)[:, :2]
    x_seq = r.standard_normal((3, 4, 5))
    target = np.array([0, 1, 4, 2])
    fr_seq = r.random((3, 4, 5))
    fr_lab = np.array([0, 1, 4, 2])
    out = {}

    def add(name, *sp):
        out.setdefault(name, []).extend(sp)

    A = Arg
    # ------------------------------------------------------------------ spiking
    for kern, extra in (("linear", ()), ("gaussian", (1.5,)), ("polynomial", (2,))):
        kk = [A("kernel", kern, "option")] + [A(f"{kern} kernel argument", e, "real", skip=("nan", "inf")) for e in extra]
        add("spiking.kernel_dot_product",
            Spec(f"kdp[{kern}]", lambda x, y, *a: S.kernel_dot_product(x, y, *a),
                 [A("x", x, "array"), A("y", y if kern != "gaussian" else y[:4], "array"), *kk]))
        add("spiking.kernel_dot_product_vjp",
            Spec(f"kdp_vjp[{kern}]", lambda g, x, y, *a: S.kernel_dot_product_vjp(g, x, y, *a),
                 [A("grad_out", r.standard_normal((4, 5 if kern != "gaussian" else 4)), "array"), A("x", x, "array"),
                  A("y", y if kern != "gaussian" else y[:4], "array"), *kk]))
    add("spiking.spike_similarity_matrix",
        Spec("ssm", S.spike_similarity_matrix, [A("spikes", spikes, "array", skip=("rank+1", "rank-1")),
                                                A("kernel_type", "linear", "option")]))
    add("spiking.spike_similarity_matrix_vjp",
        Spec("ssm_vjp", S.spike_similarity_matrix_vjp, [A("grad_out", r.standard_normal((4, 4)), "array"),
                                                        A("spikes", spikes, "array", skip=("rank+1", "rank-1")),
                                                        A("kernel_type", "linear", "option")]))
    add("spiking.label_similarity_matrix",
        Spec("lsm", S.label_similarity_matrix, [A("labels", labels, "array"), A("dtype", np.float64, "dtype")]))
    for nm in ("spike_similar_loss", "spike_similar_loss_value_and_grad"):
        add(f"spiking.{nm}", Spec(nm, getattr(S, nm), [A("spikes", spikes, "array", skip=("rank+1",)),
                                                      A("labels", labels, "array"),
                                                      A("kernel_type", "linear", "option"),
                                                      A("loss_type", "mse", "option")]))
    add("spiking.spike_similar_loss_vjp",
        Spec("ssl_vjp", S.spike_similar_loss_vjp, [A("grad_out", 1.0, "real", skip=("none",)),
                                                   A("spikes", spikes, "array", skip=("rank+1",)),
                                                   A("labels", labels, "array"), A("loss_type", "l1", "option",
                                                                                   keyword=True)]))
    ce_args = [A("x_seq", x_seq, "array", skip=("rank+1",)), A("target", target, "index"),
               A("ignore_index", -100, "int", keyword=True)]
    for nm in ("temporal_efficient_training_cross_entropy", "temporal_efficient_training_cross_entropy_value_and_grad",
               "time_mean_cross_entropy", "tet_loss"):
        add(f"spiking.{nm}", Spec(nm, getattr(S, nm), list(ce_args)))
    for nm in ("temporal_efficient_training_cross_entropy_vjp", "time_mean_cross_entropy_vjp", "tet_loss_vjp"):
        add(f"spiking.{nm}", Spec(nm, getattr(S, nm), [A("grad_out", 1.0, "real", skip=("none",))] + list(ce_args)))
    add("spiking.tet_loss", Spec("tet_loss[mean,lambda]", S.tet_loss,
                                 ce_args[:2] + [A("mean", 0.5, "real"), A("tet_lambda", 0.1, "real")]))
    add("spiking.TETLoss",
        Spec("TETLoss()", lambda mean, tet_lambda: S.TETLoss(mean, tet_lambda), [A("mean", 1.0, "real"),
                                                                                A("tet_lambda", 0.01, "real")]),
        Spec("TETLoss.forward", lambda obj, x_seq, target: obj(x_seq, target), ce_args[:2], make=lambda: S.TETLoss(),
             state=lambda o: {"saved": o._saved}))
    add("spiking.firing_rate_mse", Spec("frmse", S.firing_rate_mse, [A("spikes_seq", fr_seq, "array"),
                                                                     A("labels", fr_lab, "index")]))
    add("spiking.firing_rate_mse_vjp", Spec("frmse_vjp", S.firing_rate_mse_vjp, [A("grad_out", 1.0, "real", skip=("none",)),
                                                                                 A("spikes_seq", fr_seq, "array"),
                                                                                 A("labels", fr_lab, "index")]))
    # ------------------------------------------------------------------ similarity
    M = np.array([[2.0, 0.3], [0.3, 1.5]])
    b = r.standard_normal((3, 2))
    add("similarity.solve_sm", Spec("solve_sm", SIM.solve_sm, [A("M", M, "array"), A("b", b, "array")]))
    add("similarity.solve_nsm", Spec("solve_nsm", SIM.solve_nsm, [A("M", M, "array"), A("b", b, "array")]))
    add("similarity.kkt_residual", Spec("kkt", SIM.kkt_residual, [A("M", M, "array"), A("b", b, "array"),
                                                                  A("y", np.abs(b), "array"),
                                                                  A("nonnegative", True, "bool")]))
    Wh = r.standard_normal((2, 3))
    add("similarity.hebbian_update", Spec("hebb", SIM.hebbian_update, [
        A("W", Wh, "array"), A("M", M, "array"), A("x", x, "array"), A("y", r.standard_normal((4, 2)), "array"),
        A("lr", 0.1, "real", skip=("neg",)), A("tau", 0.5, "pos")]))
    add("similarity.similarity_matching_cost", Spec("smc", SIM.similarity_matching_cost,
                                                    [A("X", x, "array"), A("Y", r.standard_normal((4, 2)), "array")]))
    AA, BB = r.standard_normal((5, 2)), r.standard_normal((5, 2))
    add("similarity.principal_angle_cosines", Spec("pac", SIM.principal_angle_cosines,
                                                   [A("A", AA, "array"), A("B", BB, "array")]))
    add("similarity.subspace_error", Spec("suberr", SIM.subspace_error, [A("A", AA, "array"), A("B", BB, "array")]))
    lt, lp = np.array([0, 1, 1, 2]), np.array([2, 0, 0, 1])
    add("similarity.clustering_accuracy", Spec("cacc", SIM.clustering_accuracy,
                                               [A("labels_true", lt, "index", skip=("uint64-wrap",)), A("labels_pred", lp, "index", skip=("uint64-wrap",))]))
    add("similarity.best_permutation_confusion", Spec("bpc", SIM.best_permutation_confusion,
                                                      [A("labels_true", lt, "index", skip=("uint64-wrap",)), A("labels_pred", lp, "index", skip=("uint64-wrap",))]))
    add("similarity.Linear", Spec("Linear()", lambda i, o, bias, rng: SIM.Linear(i, o, bias, rng=rng).params,
                                  [A("in_features", 3, "int"), A("out_features", 2, "int"), A("bias", True, "bool"),
                                   A("rng", 0, "rng", keyword=True)]))
    add("similarity.Conv2d", Spec("Conv2d()", lambda i, o, k, rng: SIM.Conv2d(i, o, k, rng=rng).params,
                                  [A("in_channels", 1, "int"), A("out_channels", 2, "int"), A("kernel_size", 2, "int"),
                                   A("rng", 0, "rng", keyword=True)]))
    add("similarity.Identity", Spec("Identity()", lambda dtype: SIM.Identity(dtype=dtype).dtype,
                                    [A("dtype", np.float64, "dtype", keyword=True)]))

    for act in ("ReLU", "Tanh", "Sigmoid"):
        if hasattr(SIM, act):
            add(f"similarity.{act}",
                Spec(f"{act}()", lambda dtype, act=act: getattr(SIM, act)(dtype=dtype).dtype,
                     [A("dtype", np.float64, "dtype", keyword=True)]),
                Spec(f"{act}.forward", lambda obj, x: obj.forward(x), [A("x", x, "array", skip=("rank+1", "rank-1"))],
                     make=lambda act=act: getattr(SIM, act)()))
    if hasattr(SIM, "Sequential"):
        add("similarity.Sequential",
            Spec("Sequential.forward", lambda obj, x: obj.forward(x), [A("x", x, "array", skip=("rank+1",))],
                 make=lambda: SIM.Sequential(SIM.Linear(3, 2, rng=0), SIM.ReLU()), state=_params_state))
    if hasattr(SIM, "GroupedConv2d"):
        add("similarity.GroupedConv2d",
            Spec("GroupedConv2d()", lambda i, o, k, groups, rng: SIM.GroupedConv2d(i, o, k, groups=groups, rng=rng).params,
                 [A("in_channels", 2, "int"), A("out_channels", 2, "int"), A("kernel_size", 2, "int"),
                  A("groups", 2, "int", keyword=True), A("rng", 0, "rng", keyword=True)]))

    def sm_model():
        return SIM.SimilarityMatching(SIM.Linear(3, 2, rng=0), 2, max_iterations=5)

    add("similarity.SimilarityMatching",
        Spec("SM()", lambda o, tau, tol, mi, reg: SIM.SimilarityMatching(SIM.Linear(3, 2, rng=0), o, tau, tol, mi,
                                                                          reg).params,
             [A("out_channels", 2, "int"), A("tau", 0.1, "pos"), A("tol", 0.0, "real", skip=("neg",)),
              A("max_iterations", 5, "int"), A("regularization", "weight", "option")]),
        Spec("SM.forward", lambda obj, x: obj.forward(x), [A("x", x, "array", skip=("none",))], make=sm_model, state=_params_state),
        Spec("SM.train_step", lambda obj, x, lr: obj.train_step(x, lr=lr), [A("x", x, "array", skip=("none",)),
                                                                          A("lr", 0.05, "real", keyword=True)],
             make=sm_model, state=_params_state))
    add("similarity.MultiSimilarityMatching",
        Spec("MSM.forward", lambda obj, x0, x1: obj.forward(x0, x1), [A("xs[0]", x, "array", skip=("none",)), A("xs[1]", x, "array", skip=("none",))],
             make=lambda: SIM.MultiSimilarityMatching([SIM.Linear(3, 2, rng=0), SIM.Linear(3, 2, rng=1)], 2,
                                                      max_iterations=5), state=_params_state))
    add("similarity.SupervisedSimilarityMatching",
        Spec("SSM.forward", lambda obj, x, lab: obj.forward(x, lab), [A("x", x, "array", skip=("none",)),
                                                                     A("label", np.eye(4)[:, :2], "array", skip=("none",))],
             make=lambda: SIM.SupervisedSimilarityMatching(SIM.Linear(3, 2, rng=0), 2, 2, max_iterations=5, rng=0),
             state=_params_state))
    if hasattr(SIM, "SGD"):  # guards like this one let the tables run on older code (before/after figures)
        def sim_opt(cls, **kw):
            return lambda: cls({"w": np.array(w2, copy=True)}, **kw)

        w2 = r.standard_normal((3, 2))
        add("similarity.SGD",
            Spec("similarity.SGD()", lambda lr, mom: SIM.SGD({"w": np.array(w2, copy=True)}, lr, momentum=mom) and 0,
                 [A("lr", 0.1, "real", skip=("neg",)), A("mom", 0.5, "real", skip=("neg",))]),
            Spec("similarity.SGD.step", lambda obj, g: obj.step({"w": g}), [A("grads['w']", w2, "array")],
                 make=sim_opt(SIM.SGD, lr=0.1), state=lambda o: {"w": o.params["w"].copy()} if hasattr(o, "params")
                 else {}))
        add("similarity.Adam",
            Spec("similarity.Adam.step", lambda obj, g: obj.step({"w": g}), [A("grads['w']", w2, "array")],
                 make=sim_opt(SIM.Adam, lr=0.1), state=lambda o: {"w": o.params["w"].copy()} if hasattr(o, "params")
                 else {}))
        add("similarity.StepLR", Spec("StepLR()", lambda ss, gamma: SIM.StepLR(SIM.SGD({"w": np.ones(2)}, 0.1), ss,
                                                                             gamma).get_last_lr(),
                                      [A("step_size", 2, "int"), A("gamma", 0.5, "real")]))
        add("similarity.ExponentialLR", Spec("ExponentialLR()", lambda gamma: SIM.ExponentialLR(
            SIM.SGD({"w": np.ones(2)}, 0.1), gamma).get_last_lr(), [A("gamma", 0.5, "real")]))
    # ------------------------------------------------------------------ hopfield
    Xp, Wm = r.standard_normal((4, 3)), r.standard_normal((3, 5))
    for nm in ("retrieve", "energy"):
        add(f"hopfield.{nm}", Spec(nm, getattr(H, nm), [A("X", Xp, "array", skip=("rank-1",)), A("W", Wm, "array"),
                                                        A("beta", 2.0, "pos")]))
    add("hopfield.iterate", Spec("iterate", H.iterate, [A("X", Xp, "array", skip=("rank-1",)), A("W", Wm, "array"), A("beta", 2.0, "pos"),
                                                        A("max_iter", 5, "int", keyword=True)]))
    add("hopfield.retrieve_vjp", Spec("retrieve_vjp", H.retrieve_vjp, [A("grad_out", r.standard_normal((4, 3)), "array"),
                                                                       A("X", Xp, "array", skip=("rank-1",)),
                                                                       A("W", Wm, "array"), A("beta", 2.0, "pos")]))
    add("hopfield.energy_vjp", Spec("energy_vjp", H.energy_vjp, [A("grad_out", np.ones(4), "array", skip=("none",)),
                                                                 A("X", Xp, "array", skip=("rank-1",)),
                                                                 A("W", Wm, "array"), A("beta", 2.0, "pos")]))
    ret = H.retrieve(Xp, Wm, 2.0)
    add("hopfield.delta_update", Spec("delta", H.delta_update, [A("X", Xp, "array"), A("X_hat", ret[2], "array"),
                                                                A("A", ret[1], "array")]))
    add("hopfield.contrastive_update", Spec("contrastive", H.contrastive_update, [
        A("X", Xp, "array"), A("X_hat", ret[2], "array"), A("A", ret[1], "array"), A("W", Wm, "array"),
        A("beta", 2.0, "pos")]))
    add("hopfield.evolve_step", Spec("evolve", H.evolve_step, [A("W", Wm, "array"), A("dW", 0.1 * Wm, "array"),
                                                               A("eta", 0.1, "real")]))
    add("hopfield.load_patterns", Spec("load", H.load_patterns, [A("W0", Wm, "array"),
                                                                 A("patterns", r.standard_normal((3, 2)), "array"),
                                                                 A("rng", 0, "rng", keyword=True)]))
    Xi = np.where(r.standard_normal((6, 2)) > 0, 1.0, -1.0)
    St = np.where(r.standard_normal((3, 6)) > 0, 1.0, -1.0)
    Wc = H.hebbian_weights(Xi)
    add("hopfield.hebbian_weights", Spec("hebbw", H.hebbian_weights, [A("patterns", Xi, "array")]))
    add("hopfield.classical_energy", Spec("cen", H.classical_energy, [A("S", St, "array", skip=("rank-1",)),
                                                                      A("W", Wc, "array")]))
    add("hopfield.classical_update", Spec("cup", H.classical_update, [
        A("S", St, "array", skip=("rank-1",)), A("W", Wc, "array"), A("mode", "async", "option", keyword=True),
        A("n_sweeps", 3, "int", keyword=True), A("order", "random", "option", keyword=True),
        A("rng", 0, "rng", keyword=True)]))
    add("hopfield.dense_energy", Spec("den", H.dense_energy, [A("S", St, "array", skip=("rank-1",)),
                                                              A("patterns", Xi, "array"),
                                                              A("interaction", "poly", "option", keyword=True),
                                                              A("n", 3, "int", keyword=True)]))
    add("hopfield.dense_update", Spec("dup", H.dense_update, [A("S", St, "array", skip=("rank-1",)),
                                                              A("patterns", Xi, "array"),
                                                              A("n_sweeps", 2, "int", keyword=True),
                                                              A("rng", 0, "rng", keyword=True)]))
    add("hopfield.HopfieldSynapse",
        Spec("HopfieldSynapse()", lambda eta, beta, rng: H.HopfieldSynapse("s", (3, 4), eta, beta=beta, rng=rng).params,
             [A("eta", 0.1, "real"), A("beta", 2.0, "pos", keyword=True), A("rng", 0, "rng", keyword=True)]),
        Spec("HopfieldSynapse.forward", lambda obj, X: obj.forward(X), [A("inputs", r.standard_normal((1, 3)), "array", skip=("rank-1", "none"))],  # forward(X) = advance_state(inputs)
             make=lambda: H.HopfieldSynapse("s", (3, 4), 0.1, rng=0), state=_params_state))
    # ------------------------------------------------------------------ regularization
    w = r.standard_normal((4, 3))
    ref = r.standard_normal((4, 3))
    for nm, extra in (("lp_norm", [A("p", 2, "option_p", keyword=False)]), ("exc_ratio_loss", []),
                      ("dale_law_l2", [A("reference", ref, "array")]), ("weights_distance", [A("reference", ref, "array")])):
        first = A("x" if nm == "lp_norm" else "w", w, "anyarray" if nm in ("lp_norm", "exc_ratio_loss") else "array")
        add(f"regularization.{nm}", Spec(nm, getattr(R, nm), [first, *extra]))
        add(f"regularization.{nm}_vjp", Spec(nm + "_vjp", getattr(R, nm + "_vjp"),
                                             [A("grad_out", 1.0, "real", skip=("none",)), first, *extra]))
    add("regularization.dale", Spec("dale", lambda shape, inh, rho, rng: R.dale(shape, inh, rho, rng=rng),
                                    [A("shape", (4, 4), "fixed"), A("inh_ratio", 0.5, "real"), A("rho", 0.9, "real"),
                                     A("rng", 0, "rng")]))
    add("regularization.dale_", Spec("dale_", lambda wt, inh, seed: R.dale_(wt, inh, seed=seed),
                                     [A("tensor", np.zeros((4, 4)), "inplace"), A("inh_ratio", 0.5, "real"),
                                      A("seed", 0, "rng")]))
    add("regularization.dale_scale", Spec("dale_scale", R.dale_scale, [A("n_rows", 4, "int"), A("rho", 0.9, "real")]))
    add("regularization.dale_torch", Spec("dale_torch", lambda n, inh, seed: R.dale_torch(n, inh, seed=seed),
                                          [A("n", 4, "int"), A("inh_ratio", 0.5, "real"), A("seed", 0, "rng")]))

    def reg_spec(name, cls, **kw):
        def make():
            return cls({"w": np.array(w, copy=True)}, **kw)
        add(f"regularization.{name}",
            Spec(f"{name}()", lambda lam: cls({"w": np.array(w, copy=True)}, lam, **kw).forward() if name not in (
                "DaleLawL2", "DaleLaw", "ExcRatioTargetRegularization", "InhRatioTargetRegularization", "WeightsDistance")
                 else cls({"w": np.array(w, copy=True)}, **kw, Lambda=lam).forward(),
                 [A("Lambda", 1.0, "real", skip=("neg",))]),
            Spec(f"{name}.backward", lambda obj, g: obj.backward(g), [A("grad_out", 1.0, "real", skip=("none",))], make=make,
                 state=_params_state))

    reg_spec("Lp", R.Lp)
    reg_spec("L1", R.L1)
    reg_spec("L2", R.L2)
    reg_spec("DaleLawL2", R.DaleLawL2, reference_weights=[ref])
    reg_spec("DaleLaw", R.DaleLaw, reference_weights=[ref])
    reg_spec("ExcRatioTargetRegularization", R.ExcRatioTargetRegularization)
    reg_spec("InhRatioTargetRegularization", R.InhRatioTargetRegularization)
    reg_spec("WeightsDistance", R.WeightsDistance, reference_weights=[ref])
    add("regularization.RegularizationList",
        Spec("RegularizationList.forward", lambda obj: obj.forward(), [],
             make=lambda: R.RegularizationList([R.L2({"w": np.array(w, copy=True)})]), state=_params_state))

    def sgd():
        return R.SGD({"w": np.array(w, copy=True)}, 0.1)

    add("regularization.SGD",
        Spec("SGD()", lambda p, lr: R.SGD({"w": np.array(p, copy=True)}, lr).lr, [A("params['w']", w, "anyarray"),
                                                                                 A("lr", 0.1, "pos")]),
        Spec("SGD.step", lambda obj, g: obj.step({"w": g}), [A("grads['w']", w, "array")], make=sgd,
             state=lambda o: {"w": o.params["w"].copy()}))
    add("regularization.regularization_step",
        Spec("regularization_step", lambda obj, lr: R.regularization_step(obj, lr=lr),
             [A("lr", 0.1, "pos", keyword=True, skip=("none",))], make=lambda: R.L2({"w": np.array(w, copy=True)}),
             state=_params_state))
    # ------------------------------------------------------------------ linear
    xl = r.standard_normal((2, 4))
    U = np.triu(r.standard_normal((4, 4))) + 2 * np.eye(4)
    add("linear.householder_matrix", Spec("hh", L.householder_matrix, [A("U", U, "array"), A("k", 3, "int", skip=("none",)),
                                                                       A("reverse", False, "bool")]))
    Q = L.householder_matrix(U)
    add("linear.householder_matrix_vjp", Spec("hh_vjp", L.householder_matrix_vjp, [
        A("dQ", r.standard_normal((4, 4)), "array"), A("Q", Q, "array"), A("U", U, "array")]))
    add("linear.orthogonality_error", Spec("orth", L.orthogonality_error, [A("A", Q, "array")]))
    u = r.standard_normal(4)
    add("linear.Hprod", Spec("Hprod", L.Hprod, [A("x", xl, "array"), A("u", u, "array"), A("k", 1, "int")]))
    add("linear.Hprod_vjp", Spec("Hprod_vjp", L.Hprod_vjp, [A("grad_out", r.standard_normal((2, 4)), "array"),
                                                            A("x", xl, "array"), A("u", u, "array"), A("k", 1, "int")]))
    We = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.5, 0.0, -1.0]])
    if hasattr(L, "eig_vjp"):
        add("linear.eig_vjp", Spec("eig_vjp", lambda gw, W: L.eig_vjp(gw, None, W),
                                   [A("grad_w", np.ones(3), "fixed"), A("W", We, "array")]))
    add("linear.straight_through_relu", Spec("stre", L.straight_through_relu, [A("x", xl, "anyarray")]))
    add("linear.straight_through_relu_vjp", Spec("stre_vjp", L.straight_through_relu_vjp,
                                                 [A("grad_out", xl, "anyarray"), A("x", xl, "anyarray")]))
    import inspect

    for n in L.__all__:
        cls = getattr(L, n)
        if not (inspect.isclass(cls) and issubclass(cls, L.LinearBase)) or f"linear.{n}" in NOT_CALLED:
            continue
        takes_rng = "rng" in inspect.signature(cls.__init__).parameters or "kw" in str(inspect.signature(cls.__init__))

        def make(cls=cls, takes_rng=takes_rng):
            return cls(4, 4, rng=0) if takes_rng else cls(4, 4)

        add(f"linear.{n}",
            Spec(f"{n}.forward", lambda obj, x: obj.forward(x), [A("x", xl, "array", skip=("rank+1", "rank-1"))],
                 make=make, state=_params_state),
            Spec(f"{n}.effective_W_vjp", lambda obj, g: obj.effective_W_vjp(g),
                 [A("grad_W", r.standard_normal((4, 4)), "array")], make=make, state=_params_state),
        )
    # ------------------------------------------------------------------ gradcheck
    add("gradcheck.gradcheck", Spec("gradcheck", lambda inputs, eps, rtol: bool(G.gradcheck(
        lambda v: float((v ** 2).sum()), lambda g, v: 2 * g * v, inputs, eps=eps, rtol=rtol)),
        [A("inputs", [np.ones(3)], "fixed"), A("eps", 1e-6, "pos", keyword=True),
         A("rtol", 1e-5, "real", keyword=True, skip=("neg",))]))
    add("gradcheck.numerical_vjp", Spec("numerical_vjp", lambda eps: G.numerical_vjp(
        lambda v: float((v ** 2).sum()), [np.ones(3)], [0], None, eps), [A("eps", 1e-6, "fixed")]))
    return out


def coverage_gaps(table=None):
    table = specs() if table is None else table
    return [n for n in _public_names() if n not in table and n not in NOT_CALLED]


# ------------------------------------------------------------------------------------------------ bad inputs
def _bad_values(arg: Arg):
    """(label, value, expected exception types) for one argument; the message must name ``arg.name``."""
    v, k = arg.value, arg.kind
    VT = (ValueError, TypeError)
    out = []
    if k in ("array", "anyarray"):
        a = np.asarray(v, dtype=float)
        if a.size:
            nan = a.copy()
            nan.flat[0] = np.nan
            inf = a.copy()
            inf.flat[-1] = -np.inf
            out += [("nan", nan, (ValueError,)), ("inf", inf, (ValueError,))]
        out += [("str", np.full(a.shape, "a"), (TypeError,)), ("complex", a + 1j, (TypeError,)),
                ("none", None, (TypeError,)), ("object", np.array([object()] * max(a.size, 1)), (TypeError,))]
        if k == "array":
            out += [("rank+1", a[None], VT)]
            if a.ndim >= 1:
                out += [("rank-1", a.reshape(-1)[0] if a.ndim == 1 else a[0], VT)]
    elif k == "inplace":  # filled in place (its values are not read): only its type is checked
        out += [("str", np.full(np.shape(v), "a"), (TypeError,)), ("none", None, (TypeError,)),
                ("list", np.asarray(v).tolist(), (TypeError,))]
    elif k == "index":
        a = np.asarray(v)
        out += [("float", a.astype(float), (TypeError,)), ("str", np.full(a.shape, "a"), (TypeError,)),
                ("none", None, (TypeError,)), ("uint64-wrap", np.full(a.shape, 2**64 - 100, dtype=np.uint64), VT)]
    elif k in ("real", "pos"):
        out += [("nan", float("nan"), (ValueError,)), ("inf", float("inf"), (ValueError,)), ("str", "x", (TypeError,)),
                ("complex", 1j, (TypeError,)), ("none", None, (TypeError,))]
        if k == "pos":
            out += [("zero", 0.0, (ValueError,)), ("neg", -1.0, (ValueError,)), ("tiny-neg", -1e-300, (ValueError,))]
    elif k == "int":
        out += [("float", 1.5, (TypeError,)), ("str", "x", (TypeError,)), ("bool", True, (TypeError,)),
                ("huge", 2**70, (ValueError,)), ("none", None, (TypeError,))]
    elif k == "option":
        out += [("bogus", "bogus", (ValueError,)), ("int", 3, VT)]
    elif k == "bool":
        out += [("truthy-str", "no", (TypeError,)), ("int", 1, (TypeError,)), ("none", None, (TypeError,))]
    elif k == "rng":
        out += [("junk", "junk", (TypeError,)), ("negative", -1, (ValueError,)), ("bool", True, (TypeError,)),
                ("float", 1.5, (TypeError,))]
    elif k == "dtype":
        out += [("bogus", "bogus", (TypeError,)), ("int", np.int64, (TypeError,)), ("float16", np.float16, (TypeError,))]
    return [(lab, val, exc) for lab, val, exc in out if lab not in arg.skip]


def bad_inputs(spec: Spec):
    """[(arg, label, values, expected)] one argument at a time."""
    base = {a.name: a.value for a in spec.args}
    rows = []
    for a in spec.args:
        for lab, val, exc in _bad_values(a):
            rows.append((a, lab, {**base, a.name: val}, exc))
    return rows


def variants(spec: Spec):
    """[(arg, label, values)] legitimate variants of each float array argument (same values, other layouts)."""
    base = {a.name: a.value for a in spec.args}
    rows = []
    for a in spec.args:
        if a.kind not in ("array", "anyarray") or not isinstance(a.value, np.ndarray) or a.value.ndim == 0:
            continue
        v = a.value
        ro = v.copy()
        ro.flags.writeable = False
        wide = np.repeat(v, 2, axis=-1)
        for lab, val in (("list", v.tolist()), ("fortran", np.asfortranarray(v)), ("strided", wide[..., ::2]),
                         ("readonly", ro)):
            rows.append((a, lab, {**base, a.name: val}))
        if np.all(v == np.round(v)) and np.all(np.abs(v) < 2**31):
            rows.append((a, "int", {**base, a.name: v.astype(np.int64)}))
    return rows


def same(a, b) -> bool:
    """Bitwise equality of two results (arrays, floats, tuples, dicts, dataclasses)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if hasattr(a, "__dataclass_fields__"):
        return all(same(getattr(a, k), getattr(b, k)) for k in a.__dataclass_fields__)
    if isinstance(a, (float, np.floating)):
        return (np.isnan(a) and np.isnan(b)) or a == b
    return a == b if isinstance(a, (int, bool, str, np.integer, np.bool_)) else True


def snapshot_inputs(values: dict, spec=None):
    if spec is not None:
        values = {k: v for k, v in values.items() if not any(a.name == k and a.kind == "inplace" for a in spec.args)}
    return {k: np.array(v, copy=True) for k, v in values.items() if isinstance(v, np.ndarray) and v.dtype.kind in "biufc"}


def inputs_unchanged(before: dict, values: dict) -> bool:
    return all(np.array_equal(before[k], values[k], equal_nan=before[k].dtype.kind in "fc") for k in before)


# ------------------------------------------------------------------------------------------------ the runner
CLEAN, UNCLEAR, SILENT, CRASH = "clean error", "unclear error", "silent accept", "other exception"


def _call(spec, values):
    """(object or None, result or None, exception or None); the object is fresh for every call."""
    try:
        obj = spec.make() if spec.make is not None else None
    except Exception as exc:  # noqa: BLE001
        return None, None, None, exc
    before = spec.state(obj) if spec.state is not None and obj is not None else None
    pos = [values[a.name] for a in spec.args if not a.keyword]
    kw = {a.name: values[a.name] for a in spec.args if a.keyword}
    limit = int(os.environ.get("FUZZ_CALL_TIMEOUT", "0"))  # seconds per call (for runs on older code that hangs)
    if limit:
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.alarm(limit)
    try:
        res = spec.fn(obj, *pos, **kw) if obj is not None else spec.fn(*pos, **kw)
        return obj, before, res, None
    except Exception as exc:  # noqa: BLE001 - classifying is the point
        return obj, before, None, exc
    finally:
        if limit:
            signal.alarm(0)


class CallTimeout(Exception):
    """A call that ran past FUZZ_CALL_TIMEOUT (unbounded work)."""


def _on_alarm(signum, frame):
    raise CallTimeout("the call ran past FUZZ_CALL_TIMEOUT")


def _state_same(a, b):
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_state_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(_state_same(x, y) for x, y in zip(a, b))
    return a == b


def run_spec(spec):
    """Rows {spec, arg, case, outcome, detail} for the valid call, every bad input and every variant."""
    rows = []
    vals = {a.name: a.value for a in spec.args}
    snap = snapshot_inputs(vals, spec)
    _, _, base, exc = _call(spec, vals)
    if exc is not None:
        return [dict(spec=spec.label, arg="", case="valid", outcome="valid call failed", detail=repr(exc)[:300])]
    if not inputs_unchanged(snap, vals):
        rows.append(dict(spec=spec.label, arg="", case="valid", outcome="input written", detail=""))
    for arg, lab, values, expected in bad_inputs(spec):
        snap = snapshot_inputs(values, spec)
        obj, before, res, exc = _call(spec, values)
        if exc is None:
            outcome, detail = SILENT, ""
        elif isinstance(exc, expected) and arg.name in str(exc):
            outcome, detail = CLEAN, ""
        elif (lab.startswith("rank") and isinstance(exc, (ValueError, TypeError))
              and any(str(exc).startswith(b.name + ":") for b in spec.args)):
            outcome, detail = CLEAN, ""  # a shape mismatch reported on the argument checked against this one
        elif isinstance(exc, (ValueError, TypeError)):
            outcome, detail = UNCLEAR, f"{type(exc).__name__}: {exc}"[:300]
        else:
            outcome, detail = CRASH, f"{type(exc).__name__}: {exc}"[:300]
        rows.append(dict(spec=spec.label, arg=arg.name, case=lab, outcome=outcome, detail=detail))
        if not inputs_unchanged(snap, values):
            rows.append(dict(spec=spec.label, arg=arg.name, case=lab, outcome="input written", detail=""))
        if exc is not None and before is not None and not _state_same(before, spec.state(obj)):
            rows.append(dict(spec=spec.label, arg=arg.name, case=lab, outcome="state changed by a failed call",
                             detail=""))
    for arg, lab, values in variants(spec):
        _, _, res, exc = _call(spec, values)
        if exc is not None:
            rows.append(dict(spec=spec.label, arg=arg.name, case=f"variant {lab}", outcome="variant refused",
                             detail=f"{type(exc).__name__}: {exc}"[:300]))
        else:
            rows.append(dict(spec=spec.label, arg=arg.name, case=f"variant {lab}",
                             outcome="variant same" if same(base, res) else "variant differs", detail=""))
    return rows


GOOD = {CLEAN, "variant same"}


def unexpected(rows):
    """Rows that are neither good nor a KNOWN finding."""
    return [r for r in rows if r["outcome"] not in GOOD and (r["spec"], r["arg"], r["case"]) not in KNOWN]


# ------------------------------------------------------------------------------------------ random valid calls
def _has_nonfinite(value) -> bool:
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "fc" and not np.all(np.isfinite(value))
    if isinstance(value, (float, np.floating)):
        return not np.isfinite(value)
    if isinstance(value, (tuple, list)):
        return any(_has_nonfinite(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nonfinite(v) for v in value.values())
    if hasattr(value, "__dataclass_fields__"):
        return any(_has_nonfinite(getattr(value, k)) for k in value.__dataclass_fields__ if k != "diverged")
    return False


def random_calls(spec, n, seed=0):
    """Rows of ``n`` calls with random finite values (same shapes) in the float array arguments: the result must
    be finite or the call must raise a clean ValueError/TypeError (never NaN/Inf from accepted input)."""
    rng = np.random.default_rng(seed)
    arrays = [a for a in spec.args if a.kind in ("array", "anyarray") and isinstance(a.value, np.ndarray)]
    if not arrays:
        return []
    rows = []
    for i in range(n):
        vals = {a.name: a.value for a in spec.args}
        for a in arrays:
            law = rng.integers(0, 4)
            shape = a.value.shape
            if law == 0:
                v = rng.standard_normal(shape)
            elif law == 1:
                v = rng.random(shape)
            elif law == 2:  # the ±1 / 0-1 structure of spikes and patterns
                v = np.where(rng.random(shape) > 0.5, 1.0, -1.0 if np.any(a.value < 0) else 0.0)
            else:  # wide magnitudes, 1e-300 .. 1e300
                v = rng.standard_normal(shape) * 10.0 ** rng.uniform(-300, 300)
            vals[a.name] = v.astype(a.value.dtype, copy=False)
        _, _, res, exc = _call(spec, vals)
        if exc is None:
            outcome = "NaN/Inf returned" if _has_nonfinite(res) else "finite result"
        elif isinstance(exc, (ValueError, TypeError)):
            outcome = "refused (clean error)"
        else:
            outcome = f"other exception ({type(exc).__name__})"
        rows.append(dict(spec=spec.label, call=i, outcome=outcome, detail="" if exc is None else str(exc)[:200]))
    return rows


RANDOM_GOOD = {"finite result", "refused (clean error)"}
