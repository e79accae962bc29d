"""GPU-vs-CPU cases for the similarity-matching family, collected by ``bench_cuda.py``.

``cases(rc, rng, scale, dtype)`` returns ``(case, size, cpu_fn, dev_fn, host_fn)`` tuples: the CPU path, the CUDA
path on device arrays (data kept on the GPU) and the CUDA path on NumPy arrays (copies included).  ``scale`` is "full"
(the benchmark), "quick" (``REFNSM_BENCH_QUICK``) or "tiny" (a smoke test under the CUDA simulator,
tests/test_bench_cuda_cases.py).

Every case runs a whole public call of a circuit or an encoder (``device="cpu"`` against ``device="cuda"``, the same
parameters): the fast loop alone (``forward``, ``tol = 0`` and the chunked ``tol > 0`` path), a convolutional
``loss`` + ``backward`` (im2col, the products, col2im), the general and the fused ``train_step``.  The training steps
use ``lr = 0`` so that repeated calls (warm-up, timing, the three variants) all see the same parameters and return
comparable results; the work done is that of any learning rate.
"""

import copy

import numpy as np


def _spd(rng, m, dtype):
    q, _ = np.linalg.qr(rng.standard_normal((m, m)))
    return ((q * rng.uniform(0.6, 1.4, m)) @ q.T).astype(dtype)


def _pair(model, rng):
    model.params["competitor.weight"][...] = _spd(rng, model.out_channels, model.dtype)
    gpu = copy.deepcopy(model)
    gpu.device = "cuda"
    return model, gpu


def cases(rc, rng, scale, dtype):
    from refnsm.similarity import Conv2d, Linear, SimilarityMatching

    B, n, m, iters = {"tiny": (4, 3, 2, 5), "quick": (1024, 256, 32, 40), "full": (8192, 784, 64, 40)}[scale]
    CB, HW, CM, K = {"tiny": (1, 4, 2, 2), "quick": (16, 28, 8, 5), "full": (128, 28, 16, 5)}[scale]

    x = rng.standard_normal((B, n)).astype(dtype)
    xd = rc.to_device(x)
    lin = lambda tol: SimilarityMatching(Linear(n, m, rng=1, dtype=dtype), m, iteration_projection="relu",  # noqa: E731
                                         tol=tol, max_iterations=iters, iteration_lr=0.5)
    fc0, fg0 = _pair(lin(0.0), rng)
    fc1, fg1 = _pair(lin(1e-4), rng)
    hooked_cpu, hooked_gpu = _pair(lin(0.0), rng)  # a "post" hook forces the general (unfused) train_step path
    for mdl in (hooked_cpu, hooked_gpu):
        mdl.register_iteration_hook("post", lambda md: None)

    img = rng.random((CB, 1, HW, HW)).astype(dtype)
    img[img < 0.5] = 0.0  # blank regions, as in MNIST
    imgd = rc.to_device(img)
    conv = SimilarityMatching(Conv2d(1, CM, K, rng=2, dtype=dtype), CM, iteration_projection="relu", tol=0.0,
                              max_iterations=iters, iteration_lr=0.5, regularization="whiten")
    cc, cg = _pair(conv, rng)
    yc = cc(img)
    ycd = rc.to_device(yc)

    def loss_grad(model, a, y):
        L = model.loss(a, y)
        return L, model.backward()

    return [
        ("NSM forward, Linear, tol=0", f"B={B}, n={n}, m={m}, {iters} it",
         lambda: fc0(x), lambda: fg0(xd), lambda: fg0(x)),
        ("NSM forward, Linear, tol=1e-4 (chunked)", f"B={B}, n={n}, m={m}, <= {iters} it",
         lambda: fc1(x), lambda: fg1(xd), lambda: fg1(x)),
        ("train_step fused, Linear", f"B={B}, n={n}, m={m}, {iters} it",
         lambda: fc0.train_step(x, lr=0.0), lambda: fg0.train_step(xd, lr=0.0), lambda: fg0.train_step(x, lr=0.0)),
        ("train_step general, Linear", f"B={B}, n={n}, m={m}, {iters} it",
         lambda: hooked_cpu.train_step(x, lr=0.0), lambda: hooked_gpu.train_step(xd, lr=0.0),
         lambda: hooked_gpu.train_step(x, lr=0.0)),
        ("Conv2d NSM forward", f"B={CB}, 1x{HW}x{HW}, {CM}x{K}x{K}, {iters} it",
         lambda: cc(img), lambda: cg(imgd), lambda: cg(img)),
        ("Conv2d loss + backward (im2col, col2im)", f"B={CB}, 1x{HW}x{HW}, {CM}x{K}x{K}",
         lambda: loss_grad(cc, img, yc), lambda: loss_grad(cg, imgd, ycd), lambda: loss_grad(cg, img, yc)),
        ("Conv2d train_step", f"B={CB}, 1x{HW}x{HW}, {CM}x{K}x{K}, {iters} it",
         lambda: cc.train_step(img, lr=0.0), lambda: cg.train_step(imgd, lr=0.0), lambda: cg.train_step(img, lr=0.0)),
    ]
