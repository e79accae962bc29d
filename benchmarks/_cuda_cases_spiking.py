"""GPU-vs-CPU cases for the spiking family, collected by ``bench_cuda.py``.

``cases(rc, rng, scale, dtype)`` returns ``(case, size, cpu_fn, dev_fn, host_fn)`` tuples: the CPU path, the CUDA
path on device arrays (data kept on the GPU) and the CUDA path on NumPy arrays (copies included).  ``scale`` is "full" (the benchmark), "quick" (``REFNSM_BENCH_QUICK``) or
"tiny" (a smoke test under the CUDA simulator, tests/test_bench_cuda_cases.py).
"""

import numpy as np


def cases(rc, rng, scale, dtype):
    from refnsm import spiking as sp
    import functools, types
    spc = types.SimpleNamespace(**{n: functools.partial(getattr(sp, n), device="cuda") for n in (
        "kernel_dot_product", "kernel_dot_product_vjp", "spike_similar_loss_value_and_grad",
        "temporal_efficient_training_cross_entropy_vjp")})

    N, D = {"tiny": (6, 5), "quick": (256, 1024), "full": (1024, 4096)}[scale]
    T, NB, C = {"tiny": (2, 3, 4), "quick": (16, 256, 100), "full": (32, 1024, 256)}[scale]
    X = (rng.random((N, D)) < 0.2).astype(dtype)
    lab = np.eye(10)[rng.integers(0, 10, N)]
    Xd, labd = rc.to_device(X), rc.to_device(lab.astype(dtype))
    A = rng.standard_normal((N, N)).astype(dtype)
    Ad = rc.to_device(A)
    xs = rng.standard_normal((T, NB, C)).astype(dtype)
    tg = rng.integers(0, C, NB)
    xsd, tgd = rc.to_device(xs), rc.to_device(tg)
    return [
        ("kernel_dot_product gaussian", f"N={N}, D={D}",
         lambda: sp.kernel_dot_product(X, X, "gaussian", 8.0),
         lambda: spc.kernel_dot_product(Xd, Xd, "gaussian", 8.0),
         lambda: spc.kernel_dot_product(X, X, "gaussian", 8.0)),
        ("kernel_dot_product_vjp gaussian", f"N={N}, D={D}",
         lambda: sp.kernel_dot_product_vjp(A, X, X, "gaussian", 8.0),
         lambda: spc.kernel_dot_product_vjp(Ad, Xd, Xd, "gaussian", 8.0),
         lambda: spc.kernel_dot_product_vjp(A, X, X, "gaussian", 8.0)),
        ("spike_similar_loss value+grad linear/mse", f"N={N}, D={D}",
         lambda: sp.spike_similar_loss_value_and_grad(X, lab, "linear", "mse"),
         lambda: spc.spike_similar_loss_value_and_grad(Xd, labd, "linear", "mse"),
         lambda: spc.spike_similar_loss_value_and_grad(X, lab, "linear", "mse")),
        ("spike_similar_loss value+grad sigmoid/bce", f"N={N}, D={D}",
         lambda: sp.spike_similar_loss_value_and_grad(X, lab, "sigmoid", "bce", 0.05),
         lambda: spc.spike_similar_loss_value_and_grad(Xd, labd, "sigmoid", "bce", 0.05),
         lambda: spc.spike_similar_loss_value_and_grad(X, lab, "sigmoid", "bce", 0.05)),
        ("TET cross-entropy vjp", f"T={T}, N={NB}, C={C}",
         lambda: sp.temporal_efficient_training_cross_entropy_vjp(None, xs, tg),
         lambda: spc.temporal_efficient_training_cross_entropy_vjp(None, xsd, tgd),
         lambda: spc.temporal_efficient_training_cross_entropy_vjp(None, xs, tg)),
    ]
