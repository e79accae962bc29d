"""Cross-check adapter: refnsm.hopfield against ngclearn 3.2.1 ``HopfieldSynapse`` (JAX, ``jax_enable_x64``).

Each case builds an ngclearn component inside its own ``Context`` with ``initial_patterns = W0`` and P == H (so
ngclearn's memory is exactly W0 in float64) and a refnsm :class:`~refnsm.hopfield.HopfieldSynapse` with
``weight_init=W0, compat="ngclearn"``, then runs 5 steps of reset -> set inputs (fresh random probes each step)
-> advance_state -> evolve on both.  At every step it compares

* value: ``similarities``, ``memory_weights``, ``outputs`` and the ``energy`` reading;
* grad:  ``dWeights`` and ``weights`` (the memory after each evolve).

Two more cases run both sides in float32 (tolerance 1e-5).  The errors are normwise relative (:func:`refnsm.crosscheck.rel_err`), maximised over the steps and arrays.
The ``load_patterns`` case reproduces ngclearn's P < H slot permutation from its PRNG key and checks refnsm's
:func:`~refnsm.hopfield.load_patterns` against the component's weights.
"""

from __future__ import annotations

import itertools

import numpy as np

from . import Case, CheckRow, rel_err

UPSTREAM = "ngclearn"
FAMILY = "hopfield"
TOL = 1e-10
TOL32 = 1e-5  # float32 on both sides
N_STEPS = 5

_counter = itertools.count()


def _ngc():
    from . import _upstream

    _upstream.load("ngclearn")  # enables jax_enable_x64
    import jax
    import jax.numpy as jnp
    from ngclearn import Context, MethodProcess
    from ngclearn.components.synapses.competitive.hopfieldSynapse import HopfieldSynapse

    return jax, jnp, Context, MethodProcess, HopfieldSynapse


def build_ngclearn(D, H, *, eta, reg_lambda, beta, update_rule, W0, batch_size=1, seed=0, **kw):
    """An ngclearn HopfieldSynapse holding exactly ``W0`` (float64), and its reset/advance/evolve processes."""
    jax, jnp, Context, MethodProcess, HopfieldSynapse = _ngc()
    with Context(f"refnsm_hop_{next(_counter)}"):
        hop = HopfieldSynapse("hop", (D, H), eta=eta, reg_lambda=reg_lambda, beta=beta,
                              initial_patterns=None if W0 is None else jnp.asarray(W0), update_rule=update_rule,
                              batch_size=batch_size, key=jax.random.PRNGKey(seed), **kw)
        advance = MethodProcess("advance") >> hop.advance_state
        evolve = MethodProcess("evolve") >> hop.evolve
        reset = MethodProcess("reset") >> hop.reset
    return hop, reset, advance, evolve


def ngclearn_step(proc, X):
    """reset -> inputs.set(X) -> advance -> evolve on an ngclearn component; returns its compartments."""
    _, jnp, *_ = _ngc()
    hop, reset, advance, evolve = proc
    reset.run()
    hop.inputs.set(jnp.asarray(X))
    advance.run(t=0.0, dt=1.0)
    got = {k: np.asarray(getattr(hop, k).get()) for k in ("similarities", "memory_weights", "outputs", "energy")}
    evolve.run(t=0.0, dt=1.0)
    got.update({k: np.asarray(getattr(hop, k).get()) for k in ("dWeights", "weights")})
    return got


def refnsm_step(syn, X):
    syn.reset()
    syn.inputs = X
    syn.advance_state()
    got = {k: getattr(syn, k).copy() for k in ("similarities", "memory_weights", "outputs", "energy")}
    syn.evolve()
    got.update({"dWeights": syn.dWeights.copy(), "weights": syn.weights.copy()})
    return got


def _run_synapse(rule, B, beta, reg_lambda, D=7, H=11, eta=0.3, seed=0, dtype=np.float64):
    from ..hopfield import HopfieldSynapse

    rng = np.random.default_rng(seed)
    W0 = rng.standard_normal((D, H)).astype(dtype)
    proc = build_ngclearn(D, H, eta=eta, reg_lambda=reg_lambda, beta=beta, update_rule=rule, W0=W0, batch_size=B)
    syn = HopfieldSynapse("hop", (D, H), eta, reg_lambda, beta, update_rule=rule, weight_init=W0, batch_size=B,
                          compat="ngclearn", dtype=dtype)
    v_err = g_err = 0.0
    for _ in range(N_STEPS):
        X = rng.standard_normal((B, D)).astype(dtype)
        up, me = ngclearn_step(proc, X), refnsm_step(syn, X)
        v_err = max(v_err, *(rel_err(me[k], up[k]) for k in ("similarities", "memory_weights", "outputs", "energy")))
        g_err = max(g_err, rel_err(me["dWeights"], up["dWeights"]), rel_err(me["weights"], up["weights"]))
    f32 = dtype == np.float32
    return CheckRow(FAMILY, f"HopfieldSynapse[{rule}{', float32' if f32 else ''}]", "ngclearn.HopfieldSynapse",
                    v_err, g_err, TOL32 if f32 else TOL,
                    note=f"B={B} beta={beta} reg_lambda={reg_lambda}, {N_STEPS} advance+evolve steps, compat")


def _run_load_patterns(seed=3, D=6, H=9, P=4):
    from ..hopfield import load_patterns

    jax, *_ = _ngc()
    rng = np.random.default_rng(seed)
    pats = rng.standard_normal((D, P))
    hop_p = build_ngclearn(D, H, eta=0.1, reg_lambda=0.0, beta=8.0, update_rule="delta", W0=pats, seed=seed)[0]
    hop_0 = build_ngclearn(D, H, eta=0.1, reg_lambda=0.0, beta=8.0, update_rule="delta", W0=None, seed=seed)[0]
    _, t1, _ = jax.random.split(jax.random.PRNGKey(seed), 3)  # the key ngclearn uses for its slot permutation
    perm = np.asarray(jax.random.permutation(t1, H))
    W0 = np.asarray(hop_0.weights.get(), dtype=np.float64)
    mine = load_patterns(W0, pats, perm=perm)
    err = rel_err(mine, np.asarray(hop_p.weights.get()))
    return CheckRow(FAMILY, "load_patterns", "ngclearn initial_patterns (P<H)", err, 0.0, TOL,
                    note=f"D={D} H={H} P={P}, perm from the component key")


def cases() -> list[Case]:
    out = []
    grid = [  # (B, beta, reg_lambda)
        (1, 0.5, 0.01),
        (4, 1.0, 0.0),
        (4, 2.0, 0.001),
        (1, 8.0, 0.0),
        (4, 8.0, 0.01),
    ]
    for rule in ("delta", "contrastive"):
        for B, beta, lam in grid:
            out.append(Case(FAMILY, f"synapse-{rule}-B{B}-beta{beta}-reg{lam}",
                            lambda rule=rule, B=B, beta=beta, lam=lam: _run_synapse(rule, B, beta, lam)))
        out.append(Case(FAMILY, f"synapse-{rule}-B4-beta2.0-reg0.01-float32",
                        lambda rule=rule: _run_synapse(rule, 4, 2.0, 0.01, dtype=np.float32)))
    out.append(Case(FAMILY, "load_patterns-P<H", _run_load_patterns))
    return out
