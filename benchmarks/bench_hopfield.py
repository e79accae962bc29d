"""Benchmark: refnsm.hopfield.HopfieldSynapse against ngclearn's HopfieldSynapse (JAX on CPU).

One step = set the probes, ``advance_state`` (retrieval + energy) and ``evolve`` (plasticity + weight update), the
work of one learning iteration, at (D=64, H=128, B=1) and (D=784, H=1024, B=1024), for both rules, in float64
(JAX with ``jax_enable_x64``) and in float32.  Goals (issue 4): at least 10x faster at the small size, not slower
at the large one.  Before timing, the two implementations are run on the same inputs and their weights compared,
so the timed work is the same computation.

Run with the peers environment: ``.venv-peers/bin/python benchmarks/bench_hopfield.py`` (``REFNSM_QUICK=1`` for a
smoke run that writes nothing).  Writes ``benchmarks/results/hopfield.md``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Row, first_call, quick_mode, same_threads, warm_time, write_results  # noqa: E402

from refnsm.crosscheck import hopfield as adapter  # noqa: E402
from refnsm.crosscheck import rel_err  # noqa: E402
from refnsm.crosscheck._upstream import version  # noqa: E402
from refnsm.hopfield import HopfieldSynapse  # noqa: E402

# BLAS threads: None keeps the default (as many as cores), the same as JAX's thread pool.  Setting
# BLAS_THREADS = 1 (OPENBLAS_NUM_THREADS in each case's process) was needed while other jobs loaded this 2-core
# machine: multi-threaded OpenBLAS then spin-waited against them.  On a quiet machine it only halves refnsm's BLAS.
BLAS_THREADS = None

SIZES = [("small", 64, 128, 1, 10.0), ("large", 784, 1024, 1024, 1.0)]


def products_alone(rule, X, W):
    """A callable making the BLAS products of one refnsm step, with nothing else: the same ``np.dot`` calls from
    compiled code (so the same BLAS library), shapes, dtype and layouts as ``refnsm.hopfield._kernels`` --
    retrieval ``S = X W`` and ``Xhat = A W^T``; delta ``dW = E^T A``; contrastive also ``Shat = Xhat W``,
    ``X^T A`` and ``Xhat^T Ahat``.  The operands have the step's shapes and values of its kind (a softmax, an
    error), so the BLAS work timed is the step's."""
    from numba import njit

    @njit
    def products(rule, X, W, A, E, S, Xhat, Shat, dW, T):
        np.dot(X, W, S)
        np.dot(A, W.T, Xhat)
        if rule == 0:
            np.dot(E.T, A, dW)
        else:
            np.dot(Xhat, W, Shat)
            np.dot(X.T, A, dW)
            np.dot(Xhat.T, A, T)

    B, D = X.shape
    H = W.shape[1]
    dt = X.dtype
    gen = np.random.default_rng(1)
    A = gen.random((B, H)).astype(dt)
    A /= A.sum(axis=1, keepdims=True)
    E = (0.01 * gen.standard_normal((B, D))).astype(dt)
    args = (0 if rule == "delta" else 1, X, W, A, E, np.empty((B, H), dt), np.empty((B, D), dt),
            np.empty((B, H), dt), np.empty((D, H), dt), np.empty((D, H), dt))
    products(*args)  # compiled before timing
    return lambda: products(*args)


def bench(label, D, H, B, goal, rule, dtype):
    _, jnp, *_ = adapter._ngc()
    rng = np.random.default_rng(0)
    W0 = (0.1 * rng.standard_normal((D, H))).astype(dtype)
    X = rng.standard_normal((B, D)).astype(dtype)
    eta, lam, beta = 0.01, 0.001, 2.0 if D < 100 else 0.05

    syn = HopfieldSynapse("hop", (D, H), eta, lam, beta, update_rule=rule, weight_init=W0, batch_size=B,
                          compat="ngclearn", dtype=dtype)
    hop, reset, advance, evolve = adapter.build_ngclearn(D, H, eta=eta, reg_lambda=lam, beta=beta, update_rule=rule,
                                                         W0=W0, batch_size=B)
    Xj = jnp.asarray(X)

    def ref_step():
        syn.advance_state(X)
        syn.evolve()

    def up_step():
        hop.inputs.set(Xj)
        advance.run(t=0.0, dt=1.0)
        evolve.run(t=0.0, dt=1.0)
        hop.weights.get().block_until_ready()

    compile_s = first_call(ref_step)
    up_step()
    # same computation: after one identical step from the same W0, the weights agree
    err = rel_err(syn.weights, np.asarray(hop.weights.get()))
    tol = 1e-10 if dtype == np.float64 else 1e-4
    if not err <= tol:
        raise AssertionError(f"{label} {rule} {np.dtype(dtype).name}: weights differ after one step (rel err {err:.2e})")
    t_ref = warm_time(ref_step)
    t_up = warm_time(up_step)
    floor = warm_time(products_alone(rule, X, W0)) if label == "large" else None
    # large size: the BLAS products of one step (delta: XW, AW^T, E^T A; contrastive also Xhat W and Xhat^T Ahat)
    work = (6 if rule == "delta" else 10) * B * D * H if label == "large" else None
    return Row(f"advance+evolve [{rule}, {np.dtype(dtype).name}]", f"{label} D={D} H={H} B={B}", t_ref, t_up,
               compile_s, goal, work, "dgemm" if dtype == np.float64 else "sgemm", floor)


def cases():
    out = []
    rules = ("delta",) if quick_mode() else ("delta", "contrastive")
    for dtype in ("float64", "float32"):
        for rule in rules:
            for label, D, H, B, goal in SIZES:
                if quick_mode() and label == "large":
                    D, H, B = 128, 128, 64
                out.append((label, D, H, B, goal, rule, dtype))
    return out


def run_case(i):
    """Run one case in this (fresh) process and print its Row as JSON."""
    same_threads()
    label, D, H, B, goal, rule, dtype = cases()[i]
    row = bench(label, D, H, B, goal, rule, np.dtype(dtype).type)
    print("ROW " + json.dumps(row.__dict__))


def main():
    # Each case runs in its own process: ngclearn's per-call cost grows with the number of components built in a
    # process (measured: the same small step took 1.4 ms, then 3.0 ms after building three other components),
    # so building all cases in one process would penalise the later ones.
    threads = same_threads()
    rows = []
    for i in range(len(cases())):
        env = dict(os.environ)
        if BLAS_THREADS:
            env["OPENBLAS_NUM_THREADS"] = str(BLAS_THREADS)
        res = subprocess.run([sys.executable, __file__, "--case", str(i)], capture_output=True, text=True, env=env)
        line = [ln for ln in res.stdout.splitlines() if ln.startswith("ROW ")]
        if res.returncode != 0 or not line:
            raise RuntimeError(f"case {cases()[i]} failed:\n{res.stdout}\n{res.stderr}")
        rows.append(Row(**json.loads(line[-1][4:])))
    notes = (
        f"One step = set inputs + advance_state + evolve; each case in a fresh process.  ngclearn "
        f"{version('ngclearn')} driven through MethodProcess.run (JAX jit), jax_enable_x64 on (float32 rows pass "
        f"float32 arrays); refnsm with compat='ngclearn' (the same arithmetic), Numba {threads} threads, refnsm's "
        f"BLAS threads: {BLAS_THREADS or 'default'}, JAX with its default thread pool.  Before timing, the weights after one identical step are checked to agree (1e-10 "
        f"relative in float64, 1e-4 in float32).  The compile column is the first refnsm step in the process "
        f"(Numba JIT or its on-disk cache).  Small-size ratios vary by about 10% from run to run.  Machine-limit column "
        f"(large size): the flops of the step's matrix products (delta 3, contrastive 5 products of 2BDH flops) per "
        f"refnsm second, against the GEMM rate measured in this run.  Bounds (large size): those products alone, through "
        f"the BLAS this process runs (NumPy's np.dot and Numba's both go to OpenBLAS with the same kernel set here); "
        f"where the best ratio is below the goal, no step that makes these products with this BLAS can meet it, "
        f"whatever the rest of the step costs."
    )
    write_results("hopfield", "Hopfield memory (refnsm.hopfield vs ngclearn HopfieldSynapse)",
                  f"ngclearn {version('ngclearn')} (jax {version('jax')})", rows, notes)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--case":
        run_case(int(sys.argv[2]))
    else:
        main()
