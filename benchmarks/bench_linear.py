"""Benchmark: refnsm.linear against neuromancer 1.5.6 slim.linear (torch CPU), float64.

One unit of work = ``effective_W()`` + ``forward(x)`` + ``backward(grad_y)`` (gradients of x and of every
parameter), for Linear, SpectralLinear, OrthogonalLinear, ButterflyLinear, PerronFrobeniusLinear and SVDLinear at
16x16 (batch 32) and 512x512 (batch 1024).  refnsm: ``m.effective_W(); m.forward(x); m.backward(g)``.
neuromancer: ``with no_grad: m.effective_W()``; ``y = m(x); y.backward(g)`` after clearing the gradients.
Both sides use bias=True (neuromancer's OrthogonalLinear crashes without a bias).  Goals (issue 5): ratio
upstream/refnsm >= 5 at 16x16, >= 0.5 at 512x512.

Run: ``.venv-peers/bin/python benchmarks/bench_linear.py`` (writes benchmarks/results/linear.md;
``REFNSM_QUICK=1`` runs the small size only and writes nothing).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as H  # noqa: E402

CASES = [("Linear", "linear"), ("SpectralLinear", "spectral"), ("OrthogonalLinear", "orthogonal"),
         ("ButterflyLinear", "butterfly"), ("PerronFrobeniusLinear", "pf"), ("SVDLinear", "softSVD")]


def build(refname, key, n, batch, seed=0):
    import torch

    import refnsm.linear as L
    from refnsm.crosscheck import _upstream

    nm = _upstream.load("neuromancer")
    torch.manual_seed(seed)
    up = nm.maps[key](n, n, True).double()
    compat = "neuromancer" if refname in ("SpectralLinear", "ButterflyLinear", "OrthogonalLinear") else None
    ref = getattr(L, refname)(n, n, True, compat=compat)
    sd = up.state_dict()
    ref.load_params({k: sd[k].detach().numpy().copy() for k in ref.params})
    gen = np.random.default_rng(seed)
    x = gen.standard_normal((batch, n))
    g = gen.standard_normal((batch, n))
    tx = torch.tensor(x, requires_grad=True)
    tg = torch.tensor(g)
    params = list(up.parameters())

    def run_ours():
        ref.effective_W()
        ref.forward(x)
        ref.backward(g)

    def run_theirs():
        for p in params:
            p.grad = None
        tx.grad = None
        with torch.no_grad():
            up.effective_W()
        up(tx).backward(tg)

    W = ref.effective_W()

    def products():  # the affine layer's three BLAS products, as refnsm.linear.base makes them (np.dot)
        np.dot(x, W)
        np.dot(g, W.T)
        np.dot(x.T, g)

    return run_ours, run_theirs, products


def main():
    import torch

    torch.set_default_dtype(torch.float64)  # neuromancer builds eye/zeros with the default dtype
    threads = H.same_threads()
    sizes = [(16, 32)] if H.quick_mode() else [(16, 32), (512, 1024)]
    rows = []
    for n, batch in sizes:
        for refname, key in CASES:
            run_ours, run_theirs, products = build(refname, key, n, batch)
            compile_s = H.first_call(run_ours)
            heavy = n >= 512 and refname in ("SpectralLinear", "OrthogonalLinear")
            if heavy:  # neuromancer takes seconds to a minute per call here: one timed call (after refnsm's warm-up)
                t_ours = H.warm_time(run_ours, min_time=0.0, repeat=3)
                t_theirs = H.first_call(run_theirs)
            else:
                t_ours = H.warm_time(run_ours)
                t_theirs = H.warm_time(run_theirs)
            rows.append(H.Row(refname, f"{n}x{n}, B={batch}", t_ours, t_theirs, compile_s,
                              goal=5.0 if n <= 16 else 0.5, work=6.0 * batch * n * n if n > 16 else None,
                              limit="dgemm", floor_s=H.warm_time(products)))
            print(f"  {refname} {n}x{n}: ratio {t_theirs / t_ours:.2f}", flush=True)
    import os

    from refnsm.crosscheck import _upstream

    load = os.getloadavg()
    notes = (f"Load average during the run (other processes on the machine): {load[0]:.1f} / {load[1]:.1f} / "
             f"{load[2]:.1f} (1/5/15 min).  "
             f"float64, bias=True, {threads} threads on both sides.  One call = effective_W + forward + backward "
             "(input and all parameter gradients).  refnsm runs Spectral/Orthogonal/Butterfly with "
             "compat='neuromancer' so that both sides have the same parameters (the timing is the same in the default "
             "mode).  neuromancer applies the Householder and butterfly chains to the batch inside forward (and to the "
             "identity inside effective_W); refnsm builds W once with a Numba kernel and multiplies with BLAS.  "
             f"neuromancer {_upstream.version('neuromancer')}, torch {_upstream.version('torch')}.  "
             "512x512 Spectral/Orthogonal rows: neuromancer's time is a single call (each takes seconds to a minute: 2n "
             "reflectors, each a torch.cat and a matmul over the batch, plus autograd through all of them); refnsm's "
             "is the median of 3 single-call rounds.  Machine-limit column (512x512): the three batch products "
             "(forward, input and weight gradients, 6 B n^2 flops) against the DGEMM rate measured at the end of "
             "this run; building W (Householder, butterfly, SVD factors) is not counted, so the structured maps whose "
             "build dominates show a low fraction, and a load change between the two measurements can push a row "
             "above 100%.")
    H.write_results("linear", "Structured linear maps (issue 5): effective_W + forward + backward",
                    "neuromancer 1.5.6 slim.linear on torch CPU", rows, notes)


if __name__ == "__main__":
    main()
