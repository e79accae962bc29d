"""refnsm.spiking against spikingjelly 2.0.0 (torch CPU, same thread count): value plus gradient.

Sizes from the issue: small N=32, M=10, T=8 (D=80) and large N=512, M*T=4096, for spike_similar_loss; the TET
cross-entropy at T=8, N=32, C=10 and T=32, N=512, C=256.  float64 on both sides.  Goals: >= 5x at the small size,
>= 1x (not slower) at the large one.  The first refnsm call runs with an empty Numba cache, so it is the real
compile time.  Run: `python benchmarks/bench_spiking.py` (or `make bench`).
"""

import os
import sys
import tempfile

os.environ.setdefault("NUMBA_CACHE_DIR", tempfile.mkdtemp(prefix="refnsm-bench-"))  # before numba loads

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Row, first_call, same_threads, warm_time, write_results  # noqa: E402

from refnsm import spiking as sp  # noqa: E402
from refnsm.crosscheck import _upstream  # noqa: E402


def main():
    import torch

    threads = same_threads()
    sj = _upstream.load("spikingjelly")
    rows = []
    rng = np.random.default_rng(0)
    settings = [("linear", "mse", ()), ("gaussian", "mse", (4.0,)), ("sigmoid", "bce", (0.3,))]
    for size, (N, M, T), goal in [("small", (32, 10, 8), 5.0), ("large", (512, 64, 64), 1.0)]:
        X = (rng.random((N, M, T)) < 0.2).astype(np.float64)
        lab = np.eye(10)[rng.integers(0, 10, N)]
        lab_t = torch.tensor(lab.astype(np.int64))
        for kernel, loss, args in settings:
            Xt = torch.tensor(X, requires_grad=True)

            def up():
                Xt.grad = None
                sj.spike_similar_loss(Xt, lab_t, kernel, loss, *args).backward()

            def me():
                sp.spike_similar_loss_value_and_grad(X, lab, kernel, loss, *args)

            if loss == "bce":  # upstream BCE cannot run in float64 (spec bug 1): compare it in float32
                X32, Xt = X.astype(np.float32), torch.tensor(X.astype(np.float32), requires_grad=True)

                def me():  # noqa: F811
                    sp.spike_similar_loss_value_and_grad(X32, lab, kernel, loss, *args)

            compile_s = first_call(me)
            if kernel == "linear":  # the README's other way: the loss, then its VJP, as two calls
                def pair():
                    sp.spike_similar_loss(X, lab, kernel, loss)
                    sp.spike_similar_loss_vjp(None, X, lab, kernel, loss)

                rows.append(Row(f"spike_similar_loss then spike_similar_loss_vjp {kernel}/{loss}",
                                f"{size} N={N}, D={M * T}", warm_time(pair), warm_time(up), first_call(pair), None,
                                3.0 * N * N * M * T if size == "large" else None, "dgemm"))
            # large size: syrk for the Gram matrix (N^2 D flops) + the product of the gradient (2 N^2 D)
            rows.append(Row(f"spike_similar_loss {kernel}/{loss}{' (float32)' if loss == 'bce' else ''}",
                            f"{size} N={N}, D={M * T}", warm_time(me), warm_time(up), compile_s, goal,
                            3.0 * N * N * M * T if size == "large" else None, "sgemm" if loss == "bce" else "dgemm"))
    for size, (T, N, C), goal in [("small", (8, 32, 10), 5.0), ("large", (32, 512, 256), 1.0)]:
        x = rng.standard_normal((T, N, C))
        t = rng.integers(0, C, N)
        xt, tt = torch.tensor(x, requires_grad=True), torch.tensor(t)

        def up():
            xt.grad = None
            sj.temporal_efficient_training_cross_entropy(xt, tt).backward()

        def me():
            sp.temporal_efficient_training_cross_entropy_value_and_grad(x, t)

        compile_s = first_call(me)
        rows.append(Row("TET cross-entropy", f"{size} T={T}, N={N}, C={C}", warm_time(me), warm_time(up), compile_s,
                        goal, 16.0 * T * N * C if size == "large" else None, "copy"))  # read x, write the gradient
    notes = (f"Both sides use {threads} threads (numba.get_num_threads(), torch.set_num_threads).  refnsm's value and "
             "gradient come from `spike_similar_loss_value_and_grad` and "
             "`temporal_efficient_training_cross_entropy_value_and_grad` (one forward shared); torch: forward + "
             "backward() with autograd.  The BCE rows run in float32 on both sides because spikingjelly's BCE cannot "
             "run in float64.  Machine-limit column (large size): spike_similar_loss's syrk + gradient product "
             "(3 N^2 D flops) against the GEMM rate, TET's bytes (read x, write its gradient) against the copy "
             "bandwidth, all measured in this run.  The 'then' rows time the two separate calls (the VJP forms the "
             "similarity matrix again) against the same torch forward + backward: no goal, they show what the "
             "one-call spike_similar_loss_value_and_grad, the path the README and docstrings teach, saves.")
    write_results("spiking", "Spiking losses (refnsm.spiking vs spikingjelly 2.0.0)", "spikingjelly 2.0.0 on torch "
                  f"{torch.__version__} CPU", rows, notes)


if __name__ == "__main__":
    main()
