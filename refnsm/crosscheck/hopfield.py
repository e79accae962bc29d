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


def _run_synapse(rule, B, beta, reg_lambda, D=7, H=11, eta=0.3, seed=0, dtype=np.float64, compat="ngclearn",
                 up_kw=None, ref_kw=None, W0=True, label=""):
    """N_STEPS reset/advance/evolve steps on both sides.  ``compat=None`` runs refnsm's default mode, where the
    energy compartment holds Ramsauer's energy (a different quantity), so it is left out of that comparison.
    ``W0=False``: no initial patterns, both sides initialise from ``weight_init`` in ``up_kw`` / ``ref_kw``."""
    from ..hopfield import HopfieldSynapse

    rng = np.random.default_rng(seed)
    W0 = rng.standard_normal((D, H)).astype(dtype) if W0 else None
    proc = build_ngclearn(D, H, eta=eta, reg_lambda=reg_lambda, beta=beta, update_rule=rule, W0=W0, batch_size=B,
                          **(up_kw or {}))
    syn = HopfieldSynapse("hop", (D, H), eta, reg_lambda, beta, update_rule=rule, batch_size=B,
                          compat=compat, dtype=dtype, **({} if W0 is None else {"weight_init": W0}), **(ref_kw or {}))
    values = ("similarities", "memory_weights", "outputs") + (("energy",) if compat == "ngclearn" else ())
    v_err = g_err = 0.0
    for _ in range(N_STEPS):
        X = rng.standard_normal((B, D)).astype(dtype)
        up, me = ngclearn_step(proc, X), refnsm_step(syn, X)
        v_err = max(v_err, *(rel_err(me[k], up[k]) for k in values))
        g_err = max(g_err, rel_err(me["dWeights"], up["dWeights"]), rel_err(me["weights"], up["weights"]))
    f32 = dtype == np.float32
    mode = "compat" if compat == "ngclearn" else "default mode (energy not compared: a different quantity)"
    return CheckRow(FAMILY, f"HopfieldSynapse[{rule}{', float32' if f32 else ''}{label}]", "ngclearn.HopfieldSynapse",
                    v_err, g_err, TOL32 if f32 else TOL,
                    note=f"B={B} beta={beta} reg_lambda={reg_lambda}, {N_STEPS} advance+evolve steps, {mode}")


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
    # default mode, wherever ngclearn computes the same quantity: the delta rule always; the contrastive rule at
    # beta = 1 (ngclearn's negative phase always runs at 1, refnsm's at beta)
    for B, beta, lam in grid:
        out.append(Case(FAMILY, f"synapse-delta-B{B}-beta{beta}-reg{lam}-default",
                        lambda B=B, beta=beta, lam=lam: _run_synapse("delta", B, beta, lam, compat=None)))
    for B, lam in ((1, 0.0), (4, 0.01)):
        out.append(Case(FAMILY, f"synapse-contrastive-B{B}-beta1.0-reg{lam}-default",
                        lambda B=B, lam=lam: _run_synapse("contrastive", B, 1.0, lam, compat=None)))
    out.append(Case(FAMILY, "synapse-delta-default-float32",
                    lambda: _run_synapse("delta", 4, 2.0, 0.01, dtype=np.float32, compat=None)))
    out.extend(_api_cases())
    return out


def _api_cases():
    """Issue 14: ngclearn's spellings (resist_scale / g_conduct_factor, initialiser specs, p_conn under compat)."""
    def dg():
        _ngc()
        from ngclearn.utils.distribution_generator import DistributionGenerator

        return DistributionGenerator

    out = [
        Case(FAMILY, "synapse-g_conduct_factor",
             lambda: _run_synapse("delta", 4, 2.0, 0.0, up_kw={"g_conduct_factor": 2.5},
                                  ref_kw={"g_conduct_factor": 2.5}, label=", g_conduct_factor=2.5")),
        Case(FAMILY, "synapse-resist_scale",
             lambda: _run_synapse("contrastive", 4, 2.0, 0.0, up_kw={"resist_scale": 0.5}, ref_kw={"resist_scale": 0.5},
                                  label=", resist_scale=0.5")),
        # ngclearn 3.2.1 ignores p_conn; refnsm's compat does the same (a constant init makes the bits comparable)
        Case(FAMILY, "synapse-compat-p_conn-ignored",
             lambda: _run_synapse("delta", 4, 2.0, 0.01, W0=False, label=", constant init, p_conn=0.3",
                                  up_kw={"weight_init": dg().constant(0.3, dtype=np.float64), "p_conn": 0.3},
                                  ref_kw={"weight_init": {"dist": "constant", "value": 0.3}, "p_conn": 0.3})),
        Case(FAMILY, "synapse-constant-init-hollow-default",
             lambda: _run_synapse("delta", 2, 4.0, 0.0, W0=False, compat=None, D=6, H=6,
                                  label=", constant(0.2, hollow) init",
                                  up_kw={"weight_init": dg().constant(0.2, hollow=True, dtype=np.float64)},
                                  ref_kw={"weight_init": {"dist": "constant", "value": 0.2, "hollow": True}})),
        Case(FAMILY, "synapse-save-load-interop", _run_save_load),
    ]
    return out


def _run_save_load(D=5, H=8, B=3, seed=4):
    """ngclearn's ``save`` file loaded by refnsm's ``load``: every shared compartment equal, and the next
    advance/evolve step of both sides agrees (refnsm's ``save`` writes the same keys, read back by ngclearn)."""
    import tempfile

    from ..hopfield import HopfieldSynapse

    rng = np.random.default_rng(seed)
    proc = build_ngclearn(D, H, eta=0.2, reg_lambda=0.0, beta=3.0, update_rule="delta", W0=rng.standard_normal((D, H)),
                          batch_size=B)
    ngclearn_step(proc, rng.standard_normal((B, D)))
    syn = HopfieldSynapse("hop", (D, H), 0.2, 0.0, 3.0, batch_size=B, compat="ngclearn", rng=0)
    with tempfile.TemporaryDirectory() as d:
        proc[0].save(d)
        syn.load(d)
        v_err = max(rel_err(np.asarray(getattr(syn, k)), np.asarray(getattr(proc[0], k).get()))
                    for k in HopfieldSynapse._SAVED)
        syn.save(d)  # and back: ngclearn reads refnsm's file
        proc[0].load(d)
    X = rng.standard_normal((B, D))
    up, me = ngclearn_step(proc, X), refnsm_step(syn, X)
    g_err = max(rel_err(me[k], up[k]) for k in up)
    return CheckRow(FAMILY, "HopfieldSynapse.save/load (ngclearn file <-> refnsm)", "ngclearn.HopfieldSynapse",
                    v_err, g_err, TOL, note="value: compartments after load; grad: the next step on both sides")
