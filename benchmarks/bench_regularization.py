"""Benchmark: refnsm.regularization against neurotorch 0.0.2 (torch CPU), value plus gradient of every
regularizer at 64x64 and 2048x2048, float64.

refnsm: ``reg.value_and_grad()``.  neurotorch: ``p.grad = None; reg().backward()``.  Ratios are upstream time /
refnsm time (goals from issue 6: >= 5x at 64x64, >= 1x at 2048x2048).  The spectral norm (L2) at 2048x2048
is dominated by one full SVD (LAPACK gesdd) on both sides and is timed with a single warm round.

Run: ``.venv-peers/bin/python benchmarks/bench_regularization.py`` (writes benchmarks/results/regularization.md;
``REFNSM_QUICK=1`` runs the small size only and writes nothing).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as H  # noqa: E402


def build(n: int, seed: int = 0):
    """(name, refnsm regularizer, neurotorch regularizer, torch parameter) for every regularizer."""
    import torch

    from refnsm import regularization as R
    from refnsm.crosscheck import _upstream

    nt = _upstream.load("neurotorch")
    import neurotorch.regularization.connectome as C

    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n, n)) / np.sqrt(n)
    ref = rng.standard_normal((n, n))
    tW = torch.nn.Parameter(torch.tensor(W))
    tref = torch.tensor(ref)
    P = {"W": W}
    return [
        ("L1", R.L1(P, 0.1), nt.L1([tW], 0.1)),
        ("L2 (spectral)", R.L2(P, 0.1), nt.L2([tW], 0.1)),
        ("Lp(p=inf)", R.Lp(P, 0.1, p=np.inf), nt.Lp([tW], 0.1, p=np.inf)),
        ("Lp(p='fro')", R.Lp(P, 0.1, p="fro"), nt.Lp([tW], 0.1, p="fro")),
        ("DaleLawL2(alpha=0.3)", R.DaleLawL2(P, 0.3, [ref], 0.1), C.DaleLawL2([tW], 0.3, [tref], 0.1)),
        ("DaleLaw", R.DaleLaw(P, [ref], 0.1), C.DaleLaw([tW], [tref], 0.1)),
        ("ExcRatioTarget(0.8)", R.ExcRatioTargetRegularization(P, 0.8, 0.1),
         C.ExcRatioTargetRegularization([tW], 0.8, 0.1)),
        ("InhRatioTarget(0.2)", R.InhRatioTargetRegularization(P, 0.2, 0.1),
         C.InhRatioTargetRegularization([tW], 0.2, 0.1)),
        ("WeightsDistance(p=1)", R.WeightsDistance(P, [ref], 0.1, 1), C.WeightsDistance([tW], [tref], 0.1, 1)),
        ("RegularizationList(L1+DaleLawL2+ExcRatio)",
         R.RegularizationList([R.L1(P, 0.1), R.DaleLawL2(P, 0.3, [ref], 0.1), R.ExcRatioTargetRegularization(P)]),
         nt.RegularizationList([nt.L1([tW], 0.1), C.DaleLawL2([tW], 0.3, [tref], 0.1),
                                C.ExcRatioTargetRegularization([tW])])),
    ], tW


def _work(name, n):
    """Work of one value_and_grad at n x n float64: the spectral norm's flops (syrk n^3 + sytrd 4/3 n^3) against
    DGEMM; for the entrywise regularizers the least bytes they must move (read W, the reference when there is one,
    write the gradient) against the copy bandwidth."""
    if "spectral" in name:
        return (1.0 + 4.0 / 3.0) * n ** 3, "dgemm"
    arrays = 3 if any(k in name for k in ("Dale", "Distance", "List")) else 2
    return 8.0 * arrays * n * n, "copy"


def main():
    import os

    load_start = os.getloadavg()[0]
    threads = H.same_threads()
    sizes = [64] if H.quick_mode() else [64, 2048]
    rows = []
    plan = [(n, None) for n in sizes] + ([] if H.quick_mode() else [(64, 1)])
    for n, nthreads in plan:
        if nthreads is not None:  # contention-robust repeat of the small size: one thread on both sides
            import torch
            from threadpoolctl import threadpool_limits

            torch.set_num_threads(nthreads)
            limiter = threadpool_limits(nthreads)
        label = f"{n}x{n}" + ("" if nthreads is None else f" ({nthreads} thread)")
        regs, tW = build(n)
        for name, ours, theirs in regs:
            def run_ours(ours=ours):
                ours.value_and_grad()

            def run_theirs(theirs=theirs):
                tW.grad = None
                theirs().backward()

            heavy = n >= 1024 and "spectral" in name
            kw = {"min_time": 0.0, "repeat": 1} if heavy else {}
            compile_s = H.first_call(run_ours)
            t_ours = H.warm_time(run_ours, **kw)
            t_theirs = H.warm_time(run_theirs, **kw)
            work, limit = (None, None)
            if n > 64 and nthreads is None:
                work, limit = _work(name, n)
            rows.append(H.Row(name, label, t_ours, t_theirs, compile_s, goal=5.0 if n <= 64 else 1.0, work=work,
                              limit=limit))
            print(f"  {name} {label}: ratio {t_theirs / t_ours:.2f}", flush=True)
        if nthreads is not None:
            limiter.restore_original_limits()
    from refnsm.crosscheck import _upstream

    notes = (f"float64, {threads} threads on both sides (last block: 1 thread for torch and NumPy's BLAS; "
             "refnsm's Numba kernels are serial).  refnsm: `reg.value_and_grad()`; neurotorch "
             f"{_upstream.version('neurotorch')}: `reg().backward()` after clearing `.grad`.  "
             "The 2048x2048 spectral norm (L2) is timed with one warm round (a torch call takes tens of seconds).  "
             "neurotorch's DaleLawL2 computes trace(W^T (aW - (1-a)S)) "
             "with an n^3 matrix product; refnsm computes the same number as an n^2 entrywise sum.  "
             "refnsm's spectral-norm gradient uses the top eigenpair of the Gram matrix (LAPACK syrk and "
             "sytrd, then bisection and inverse iteration on the tridiagonal matrix in Numba) when the top "
             "singular value is separated (full SVD otherwise); neurotorch runs a full SVD.  The machine is shared: 1-minute load average "
             f"{load_start:.1f} at the start and {os.getloadavg()[0]:.1f} at the end (2 cores); multithreaded "
             "BLAS/OpenMP suffer most from that contention, so small-size ratios vary a lot between runs.  Machine-limit "
             "column (2048x2048): the spectral norm's syrk + sytrd flops against DGEMM; the entrywise regularizers' "
             "least bytes moved (W, the reference when there is one, the gradient) against the copy bandwidth.")
    H.write_results("regularization", "Connectome regularizers (issue 6): value + gradient",
                    "neurotorch 0.0.2 on torch CPU", rows, notes)


if __name__ == "__main__":
    main()
