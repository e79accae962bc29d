"""GPU-vs-CPU cases for the structured linear maps, collected by ``bench_cuda.py``.

``cases(rc, rng, scale, dtype)`` returns ``(case, size, cpu_fn, dev_fn, host_fn)`` tuples: the CPU path, the CUDA
path on device arrays (data kept on the GPU) and the CUDA path on NumPy arrays (copies included).  ``scale`` is
"full" (the benchmark), "quick" (``REFNSM_BENCH_QUICK``) or "tiny" (a smoke test under the CUDA simulator,
tests/test_bench_cuda_cases.py).

One unit of work is a training step of one map: ``effective_W()`` + ``forward(x)`` + ``backward(grad_y)`` (the input
gradient and every parameter gradient), on a map built with ``device="cpu"`` and the same map with ``device="cuda"``.
The parameters live on the host either way (copied to the device at each call, and their gradients back).  The
Householder maps (Orthogonal, Spectral) run at a smaller n: building :math:`Q` and its VJP is :math:`O(n^3)`
sequential-reflector work on both sides.
"""


def _step(m, x, g):
    W = m.effective_W()
    y = m.forward(x)
    gx = m.backward(g)
    return (W, y, gx) + tuple(m.grads[k] for k in sorted(m.grads))


def cases(rc, rng, scale, dtype):
    import refnsm.linear as L

    n_dense, b_dense = {"tiny": (4, 3), "quick": (256, 1024), "full": (1024, 8192)}[scale]
    n_hh, b_hh = {"tiny": (4, 3), "quick": (128, 1024), "full": (512, 4096)}[scale]
    out = []
    for name, cls, n, batch in (("Linear", L.Linear, n_dense, b_dense),
                                ("PerronFrobeniusLinear", L.PerronFrobeniusLinear, n_dense, b_dense),
                                ("OrthogonalLinear", L.OrthogonalLinear, n_hh, b_hh),
                                ("SpectralLinear", L.SpectralLinear, n_hh, b_hh)):
        cpu = cls(n, n, True, dtype=dtype, rng=rng)
        gpu = cls(n, n, True, dtype=dtype, params=cpu.params, device="cuda")
        x = rng.standard_normal((batch, n)).astype(dtype)
        g = rng.standard_normal((batch, n)).astype(dtype)
        xd, gd = rc.to_device(x), rc.to_device(g)
        out.append((f"{name} effective_W+forward+backward", f"{n}x{n}, B={batch}",
                    lambda m=cpu, x=x, g=g: _step(m, x, g),
                    lambda m=gpu, x=xd, g=gd: _step(m, x, g),
                    lambda m=gpu, x=x, g=g: _step(m, x, g)))
    return out
