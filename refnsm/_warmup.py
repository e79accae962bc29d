"""``python -m refnsm warmup``: compile every Numba kernel, float32 and float64, into the on-disk cache.

Every kernel is ``@njit(cache=True)``: it compiles on its first call with a new type signature and stores the
machine code in Numba's cache (``__pycache__`` next to the module, or ``$NUMBA_CACHE_DIR``), so later processes
load it in milliseconds instead of compiling.  Warming up runs each family's public functions and objects once on
tiny inputs of both float dtypes, through every option that selects a different kernel, so that no first call in
a user's session, a tutorial or the test suite pays the compilation.  Afterwards it lists any kernel that was not
reached (:func:`unreached`), which ``tests/test_cli_warmup.py`` requires to be none.
"""

from __future__ import annotations

import importlib
import sys
import time

import numpy as np

FAMILIES = ("spiking", "similarity", "hopfield", "linear", "regularization")
KERNEL_MODULES = {
    "spiking": ("refnsm.spiking._kernels",),
    "similarity": ("refnsm.similarity._kernels",),
    "hopfield": ("refnsm.hopfield._kernels",),
    "linear": ("refnsm.linear._kernels",),
    "regularization": ("refnsm.regularization._kernels",),
    "checks": ("refnsm._fastchecks",),
}


def _spiking(dt):
    from refnsm import spiking as sp

    rng = np.random.default_rng(0)
    s = (rng.random((4, 3, 5)) < 0.5).astype(dt)
    s[:, 0, 0] = 1  # no silent row
    lab = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=dt)
    args = {"linear": (), "polynomial": (2,), "sigmoid": (1.0,), "gaussian": (2.0,)}
    for kern, a in args.items():
        for loss in sp.LOSSES:
            if loss == "bce" and kern == "polynomial":  # refused: the polynomial kernel's S leaves [0, 1]
                continue
            sp.spike_similar_loss_value_and_grad(s, lab, kern, loss, *a)
        sp.kernel_dot_product_vjp(np.ones((4, 4), dt), s.reshape(4, -1), s.reshape(4, -1), kern, *a)
        sp.spike_similarity_matrix_vjp(np.ones((4, 4), dt), s, kern, *a)
    x = rng.standard_normal((5, 4, 3)).astype(dt)
    t = np.array([0, 2, 1, -100])
    sp.temporal_efficient_training_cross_entropy_value_and_grad(x, t)
    sp.time_mean_cross_entropy_vjp(None, x, t)
    sp.tet_loss_vjp(None, x, t)
    sp.firing_rate_mse_vjp(None, (x > 0).astype(dt), np.array([0, 2, 1, 1]))
    # the full-matrix loss composition: no CPU entry point calls it any more (the fused kernel works on one
    # triangle), but the tests compare against it and it names the CUDA twins' steps
    from refnsm.spiking import _kernels as SK

    X2 = s.reshape(4, -1)
    G = X2 @ X2.T
    S, Y = np.full((4, 4), 0.5, dt), np.eye(4, dtype=dt)
    C = SK.similarity_complement(X2, G, SK.SIGMOID, 1.0)
    SK.pairwise_loss(S, Y, SK.MSE, 1e-12)
    SK.pairwise_loss_grad(S, Y, SK.MSE, 1.0, 1e-12)
    SK.pairwise_loss_exact(S, C, Y, SK.MSE, 1e-12)
    SK.pairwise_loss_grad_exact(S, C, Y, SK.MSE, 1.0, 1e-12)


def _similarity(dt):
    from refnsm import similarity as sim

    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4)).astype(dt)
    for reg in ("weight", "whiten"):
        for proj in (None, "relu"):
            m = sim.SimilarityMatching(sim.Linear(4, 3, rng=0, dtype=dt), 3, max_iterations=5, regularization=reg,
                                       iteration_projection=proj)
            m.train_step(x, lr=0.01)
    hooked = sim.SimilarityMatching(sim.Linear(4, 3, rng=0, dtype=dt), 3, max_iterations=3)
    hooked.register_iteration_hook("iteration", lambda model: False)  # the step-by-step loop (fast_step)
    hooked.forward(x)
    projected = sim.SimilarityMatching(sim.Linear(4, 3, rng=0, dtype=dt), 3, max_iterations=3,
                                       iteration_projection=lambda y: np.maximum(y, 0))  # gradient_step
    projected.forward(x)
    multi = sim.MultiSimilarityMatching([sim.Linear(4, 3, rng=0, dtype=dt), sim.Linear(4, 3, rng=1, dtype=dt)], 3,
                                        max_iterations=5)
    multi.train_step(x, x, lr=0.01)
    img = rng.standard_normal((2, 1, 6, 6)).astype(dt)
    sup = sim.SupervisedSimilarityMatching(sim.Conv2d(1, 3, 3, stride=2, padding=1, rng=0, dtype=dt), 4, 3,
                                           label_bias=True, iteration_projection="relu", max_iterations=5, rng=0)
    sup.train_step(img, np.eye(4, dtype=dt)[[0, 1]], lr=0.01)
    conv = sim.Conv2d(1, 3, 3, stride=2, padding=1, rng=0, dtype=dt)
    conv.vjp(np.ones_like(conv(img)), img)  # the input gradient (col2im)
    M = np.eye(3, dtype=dt) * 2 + 0.1
    b = rng.standard_normal((6, 3)).astype(dt)
    sim.solve_sm(M, b)
    y = sim.solve_nsm(M, b)
    sim.kkt_residual(M, b, y)
    sim.similarity_matching_cost(x, b)


def _hopfield(dt):
    from refnsm import hopfield as hp

    rng = np.random.default_rng(0)
    D, H = 6, 4
    W = rng.standard_normal((D, H)).astype(dt)
    X = rng.standard_normal((3, D)).astype(dt)
    hp.retrieve_vjp(np.ones((3, D), dt), X, W, 2.0)
    hp.iterate(X, W, 2.0, max_iter=3)
    hp.energy_vjp(None, X, W, 2.0)
    for rule in ("delta", "contrastive"):
        syn = hp.HopfieldSynapse("w", (D, H), eta=0.1, update_rule=rule, weight_init=W, batch_size=3, l1_lambda=0.01,
                                 reg_lambda=0.01, p_conn=0.5, rng=0, dtype=dt)
        syn.advance_state(X)
        syn.evolve()
    P = np.sign(rng.standard_normal((D, 3))).astype(dt)
    Wc = hp.hebbian_weights(P)
    S = P[:, 0].copy()
    hp.classical_energy(S, Wc)
    for mode in ("sync", "async"):
        hp.classical_update(S, Wc, mode=mode, rng=0)
    for inter in hp.INTERACTIONS:
        hp.dense_energy(S, P, interaction=inter)
        hp.dense_update(S, P, interaction=inter, rng=0)


def _linear(dt):
    from refnsm import linear as L

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4)).astype(dt)
    for name, cls in L.maps.items():
        try:
            m = cls(4, 4, bias=True, dtype=dt, rng=0)
        except (NotImplementedError, ValueError):
            continue
        y = m.forward(x)
        m.backward(np.ones_like(y))
        m.reg_error_vjp()
    # the bias kernels without the fused finiteness test (the compat maps that fold the bias into effective_W)
    from refnsm.linear import _kernels as LK

    y = np.zeros((2, 4), dt)
    LK.add_bias(y, np.ones(4, dt))
    LK.col_sums(y)


def _regularization(dt):
    from refnsm import regularization as R

    rng = np.random.default_rng(0)
    W = rng.standard_normal((4, 5)).astype(dt)
    v = W[0].copy()
    for p in R.functional.VALID_P:
        for mode in R.functional.MODES:
            if p == "nuc" and mode == "entrywise":
                continue
            R.lp_norm_vjp(None, W, p, mode=mode)
            R.weights_distance_vjp(None, W, W * 0.5, p, mode=mode)
            if p not in ("fro", "nuc"):
                R.lp_norm_vjp(None, v, p, mode=mode)
    R.dale_law_l2_vjp(None, W, np.sign(W), 0.5)
    for sign in R.functional.SIGN_FUNCS:
        R.exc_ratio_loss_vjp(None, W, 0.8, sign_func=sign)
    R.dale((4, 5), rng=0, dtype=dt)


EXERCISES = {"spiking": _spiking, "similarity": _similarity, "hopfield": _hopfield, "linear": _linear,
             "regularization": _regularization}


def dispatchers(group: str) -> dict:
    """``{name: numba dispatcher}`` of the kernels of one family (or ``"checks"``), importing the modules."""
    from numba.core.registry import CPUDispatcher

    out = {}
    for modname in KERNEL_MODULES[group]:
        mod = importlib.import_module(modname)
        out.update({f"{modname}.{k}": v for k, v in vars(mod).items() if isinstance(v, CPUDispatcher)})
    return out


def _cached_signatures(dispatcher) -> int:
    """How many signatures of ``dispatcher`` Numba's on-disk cache holds (0 if unknown).

    A kernel called only from another kernel is compiled into its caller; when the caller then loads from the
    cache, the callee's own dispatcher never runs, so the cache index, not ``signatures``, says it was compiled.
    This reads Numba's cache index through a private attribute, hence the broad fallback."""
    try:
        return len(dispatcher._cache._cache_file._load_index())
    except Exception:
        return 0


def unreached() -> list:
    """Kernels neither compiled in this process nor present in the Numba cache: what warmup missed.

    A helper declared ``inline="always"`` is inlined into its callers' IR and never compiled (nor cached) on its
    own, and so is each of the two functions of a ``refnsm._specialise.float32_variant`` (compiled from source into
    each caller): they cannot be missed, their callers are checked instead."""
    return sorted(name for group in KERNEL_MODULES for name, d in dispatchers(group).items()
                  if d.targetoptions.get("inline") != "always" and not getattr(d, "compiled_in_callers", False)
                  and not d.signatures and not _cached_signatures(d))


def _bar(done: int, total: int, label: str, width: int = 30) -> str:
    filled = round(width * done / total)
    return f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label:<40}"


def warmup(families=FAMILIES, dtypes=("float64", "float32"), stream=sys.stderr) -> dict:
    """Run every family's exercise for each dtype; returns ``{(family, dtype): seconds}``.

    A progress bar goes to ``stream`` (``None`` for silence)."""
    tasks = [(f, d) for f in families for d in dtypes]
    times = {}
    tty = stream is not None and getattr(stream, "isatty", lambda: False)()
    for i, (fam, dt) in enumerate(tasks):
        if stream is not None:  # a bar redrawn in place on a terminal, one line per task in a log
            stream.write(_bar(i, len(tasks), f"{fam} {dt}") if tty else f"warmup [{i + 1}/{len(tasks)}] {fam} {dt}\n")
            stream.flush()
        t0 = time.perf_counter()
        EXERCISES[fam](np.dtype(dt))
        times[(fam, dt)] = time.perf_counter() - t0
    if stream is not None:
        stream.write((_bar(len(tasks), len(tasks), "done") if tty else f"warmup {len(tasks)}/{len(tasks)} done") + "\n")
        stream.flush()
    return times
