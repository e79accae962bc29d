"""refnsm's CUDA path against its CPU path, kernel by kernel, at large sizes (spiking family).

Ratios are CPU time / GPU time (above 1: the GPU is faster), both warm medians from ``_harness.warm_time``; the
GPU's first call (CUDA JIT compilation of every kernel it launches) is reported apart.  Each GPU case is timed
twice: with device arrays that stay on the device (the kernels alone, synchronised) and with NumPy arrays (the
host-device copies included, which is what a NumPy caller pays).  float64 and float32.

On a machine without a usable NVIDIA GPU the script says so and exits 0; under the simulator
(``NUMBA_ENABLE_CUDASIM=1``) timings mean nothing, so it refuses in the same way.  Results go to
``benchmarks/results/cuda.md`` (the harness's "refnsm" column is the GPU, its "upstream" column the CPU path).
Run: ``python benchmarks/bench_cuda.py``.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Row, first_call, quick_mode, warm_time, write_results  # noqa: E402


def _gpu_or_exit():
    try:
        import refnsm.cuda as rc
    except ImportError as exc:
        print(f"bench_cuda: numba.cuda is not importable ({exc}); nothing to benchmark.")
        sys.exit(0)
    if rc.using_simulator():
        print("bench_cuda: NUMBA_ENABLE_CUDASIM=1 runs the CUDA simulator, whose timings mean nothing; "
              "run on a machine with an NVIDIA GPU without that variable.")
        sys.exit(0)
    if not rc.is_available():
        print("bench_cuda: no CUDA GPU on this machine (numba.cuda finds no driver or device); "
              "the GPU path cannot be benchmarked here. Nothing written.")
        sys.exit(0)
    return rc


def main():
    rc = _gpu_or_exit()
    from numba import cuda

    from refnsm import spiking as sp
    from refnsm.cuda import spiking as cs

    def synced(fn):
        def run():
            fn()
            cuda.synchronize()
        return run

    rng = np.random.default_rng(0)
    rows = []
    N, D = (256, 1024) if quick_mode() else (1024, 4096)
    T, NB, C = (16, 256, 100) if quick_mode() else (32, 1024, 256)
    for dtype in (np.float64, np.float32):
        name = np.dtype(dtype).name
        X = (rng.random((N, D)) < 0.2).astype(dtype)
        lab = np.eye(10)[rng.integers(0, 10, N)]
        Xd, labd = rc.to_device(X), rc.to_device(lab.astype(dtype))
        A = rng.standard_normal((N, N)).astype(dtype)
        Ad = rc.to_device(A)
        xs = rng.standard_normal((T, NB, C)).astype(dtype)
        tg = rng.integers(0, C, NB)
        xsd, tgd = rc.to_device(xs), rc.to_device(tg)
        cases = [
            ("kernel_dot_product gaussian", f"N={N}, D={D}",
             lambda: sp.kernel_dot_product(X, X, "gaussian", 8.0),
             lambda: cs.kernel_dot_product(Xd, Xd, "gaussian", 8.0),
             lambda: cs.kernel_dot_product(X, X, "gaussian", 8.0)),
            ("kernel_dot_product_vjp gaussian", f"N={N}, D={D}",
             lambda: sp.kernel_dot_product_vjp(A, X, X, "gaussian", 8.0),
             lambda: cs.kernel_dot_product_vjp(Ad, Xd, Xd, "gaussian", 8.0),
             lambda: cs.kernel_dot_product_vjp(A, X, X, "gaussian", 8.0)),
            ("spike_similar_loss value+grad linear/mse", f"N={N}, D={D}",
             lambda: sp.spike_similar_loss_value_and_grad(X, lab, "linear", "mse"),
             lambda: cs.spike_similar_loss_value_and_grad(Xd, labd, "linear", "mse"),
             lambda: cs.spike_similar_loss_value_and_grad(X, lab, "linear", "mse")),
            ("spike_similar_loss value+grad sigmoid/bce", f"N={N}, D={D}",
             lambda: sp.spike_similar_loss_value_and_grad(X, lab, "sigmoid", "bce", 0.05),
             lambda: cs.spike_similar_loss_value_and_grad(Xd, labd, "sigmoid", "bce", 0.05),
             lambda: cs.spike_similar_loss_value_and_grad(X, lab, "sigmoid", "bce", 0.05)),
            ("TET cross-entropy vjp", f"T={T}, N={NB}, C={C}",
             lambda: sp.temporal_efficient_training_cross_entropy_vjp(None, xs, tg),
             lambda: cs.temporal_efficient_training_cross_entropy_vjp(None, xsd, tgd),
             lambda: cs.temporal_efficient_training_cross_entropy_vjp(None, xs, tg)),
        ]
        for case, size, cpu_fn, dev_fn, host_fn in cases:
            cpu_t = warm_time(cpu_fn)
            compile_s = first_call(synced(dev_fn))
            rows.append(Row(f"{case} ({name}, device arrays)", size, warm_time(synced(dev_fn)), cpu_t, compile_s))
            rows.append(Row(f"{case} ({name}, NumPy in/out)", size, warm_time(synced(host_fn)), cpu_t, 0.0))
    write_results("cuda", f"CUDA path vs CPU path (GPU: {rc.status()})", "the refnsm CPU path (NumPy/Numba, same "
                  "process); in this table the 'refnsm' column is the GPU and 'upstream' the CPU, so the ratio is "
                  "CPU/GPU", rows,
                  notes="GPU kernels use a shared-memory tiled product (no cuBLAS) and deterministic single-block "
                        "reductions; see docs/cuda.md for when the GPU path pays off.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
