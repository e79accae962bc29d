"""GPU-vs-CPU cases for the Hopfield family, collected by ``bench_cuda.py``.

``cases(rc, rng, scale, dtype)`` returns ``(case, size, cpu_fn, dev_fn, host_fn)`` tuples: the CPU path, the CUDA
path on device arrays (data kept on the GPU) and the CUDA path on NumPy arrays (copies included).  ``scale`` is
"full" (the benchmark), "quick" (``REFNSM_QUICK``) or "tiny" (a smoke test under the CUDA simulator,
tests/test_bench_cuda_cases.py).

The synapse case is one learning step (``advance_state`` + ``evolve``) of three synapses built from the same
weights (CPU; CUDA fed device probes; CUDA fed NumPy probes): their first steps give the same weights.
"""

import numpy as np


def cases(rc, rng, scale, dtype):
    import refnsm.hopfield as hp
    import functools, types
    hpc = types.SimpleNamespace(**{n: functools.partial(getattr(hp, n), device="cuda") for n in
                                   ("retrieve", "iterate", "energy", "delta_update", "contrastive_update",
                                    "evolve_step")})

    D, H, B = {"tiny": (5, 7, 3), "quick": (256, 512, 256), "full": (784, 1024, 1024)}[scale]
    n_it = 3 if scale == "tiny" else 10  # a fixed number of updates (tol=0): the same work on both sides
    beta = 0.05 if D > 100 else 2.0  # bench_hopfield.py's choice: softmax neither one-hot nor flat
    W = (0.1 * rng.standard_normal((D, H))).astype(dtype)
    X = rng.standard_normal((B, D)).astype(dtype)
    _, A, Xh = hp.retrieve(X, W, beta)
    dW = hp.delta_update(X, Xh, A)
    Wd, Xd, Ad, Xhd, dWd = (rc.to_device(a) for a in (W, X, A, Xh, dW))
    size = f"D={D}, H={H}, B={B}"

    def synapse_step(device, probes):
        syn = hp.HopfieldSynapse("hop", (D, H), 0.01, 0.001, beta, update_rule="contrastive", weight_init=W,
                                 batch_size=B, compat="ngclearn", dtype=dtype, device=device)

        def step():
            syn.advance_state(probes)
            return syn.evolve()

        return step

    return [
        ("retrieve", size,
         lambda: hp.retrieve(X, W, beta),
         lambda: hpc.retrieve(Xd, Wd, beta),
         lambda: hpc.retrieve(X, W, beta)),
        (f"iterate ({n_it} updates)", size,
         lambda: hp.iterate(X, W, beta, tol=0.0, max_iter=n_it).outputs,
         lambda: hpc.iterate(Xd, Wd, beta, tol=0.0, max_iter=n_it).outputs,
         lambda: hpc.iterate(X, W, beta, tol=0.0, max_iter=n_it).outputs),
        ("energy ngclearn", size,
         lambda: hp.energy(X, W, beta, compat="ngclearn"),
         lambda: hpc.energy(Xd, Wd, beta, compat="ngclearn"),
         lambda: hpc.energy(X, W, beta, compat="ngclearn")),
        ("delta_update", size,
         lambda: hp.delta_update(X, Xh, A),
         lambda: hpc.delta_update(Xd, Xhd, Ad),
         lambda: hpc.delta_update(X, Xh, A)),
        ("contrastive_update", size,
         lambda: hp.contrastive_update(X, Xh, A, W, beta),
         lambda: hpc.contrastive_update(Xd, Xhd, Ad, Wd, beta),
         lambda: hpc.contrastive_update(X, Xh, A, W, beta)),
        ("evolve_step", f"D={D}, H={H}",
         lambda: hp.evolve_step(W, dW, 0.01, 0.001),
         lambda: hpc.evolve_step(Wd, dWd, 0.01, 0.001),
         lambda: hpc.evolve_step(W, dW, 0.01, 0.001)),
        ("HopfieldSynapse step [contrastive, ngclearn]", size,
         synapse_step("cpu", X), synapse_step("cuda", Xd), synapse_step("cuda", X)),
    ]
