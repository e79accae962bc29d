"""Benchmark: one BLAS per host path (docs/contributing.md, "One BLAS per hot path").

NumPy's wheels bundle one OpenBLAS, and Numba's ``np.dot`` calls SciPy's, a second one with its own thread pool.
Each pool's threads spin for a while after a product before they sleep, so a path that alternates the two runs
both pools' threads on the same cores.  ``threadpoolctl`` can set either library to one thread: if a path's time
with both libraries multi-threaded (as shipped) is well above its time with one of them on one thread, the path
runs two pools against each other.

Cases:

* **two libraries, alternating** -- a product inside a Numba kernel, then NumPy's ``@`` of the same shapes, against
  the same two products inside the kernel: the effect itself, independent of refnsm's code.
* **refnsm's host paths next to kernels that multiply** -- ``hopfield.retrieve_vjp`` and ``energy_vjp`` (their
  products by ``refnsm._blas.matmul``), ``SVDLinear`` effective_W + forward + backward (soft-SVD products by NumPy
  from 64**3 multiply-adds on), the spectral-norm gradient of ``regularization.lp_norm_vjp(p=2)`` (SciPy's ``syrk``,
  ``sytrd`` and ``gemv``).  Each should be within noise of its controls.
* **SVDLinear with the products forced into the kernels** (``refnsm.linear.svd._PRODUCTS_IN_KERNEL_BELOW`` set to
  infinity: what every size did before): the fight the size rule avoids.

float64, every time the median of 5 rounds (``_harness.warm_time``).  Run: ``python benchmarks/bench_blas_pools.py``
(part of ``make bench``; needs no upstream library, only ``threadpoolctl``).  Writes
``benchmarks/results/blas_pools.md`` unless ``REFNSM_QUICK=1``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as H  # noqa: E402


def _alternating(m, k, n):
    from numba import njit

    @njit
    def kernel_product(a, b):
        return np.dot(a, b)

    a = np.random.default_rng(0).standard_normal((m, k))
    b = np.random.default_rng(1).standard_normal((k, n))
    kernel_product(a, b)

    def mixed():
        kernel_product(a, b)
        a @ b

    def one_library():
        kernel_product(a, b)
        kernel_product(a, b)

    return mixed, one_library


def _retrieve_vjp(B, D, H_):
    from refnsm import hopfield as hp

    r = np.random.default_rng(0)
    W, X, G = 0.1 * r.standard_normal((D, H_)), r.standard_normal((B, D)), r.standard_normal((B, D))
    return lambda: hp.retrieve_vjp(G, X, W, 2.0)


def _energy_vjp(B, D, H_):
    from refnsm import hopfield as hp

    r = np.random.default_rng(0)
    W, X = 0.1 * r.standard_normal((D, H_)), r.standard_normal((B, D))
    return lambda: hp.energy_vjp(None, X, W, 2.0)


def _svd(n, B):
    from refnsm import linear as L

    m = L.SVDLinear(n, n, True, rng=0)
    x = np.random.default_rng(0).standard_normal((B, n))
    g = np.random.default_rng(1).standard_normal((B, n))

    def step():
        m.effective_W()
        m.forward(x)
        m.backward(g)

    return step


def _spectral(n):
    from refnsm import regularization as R

    P = np.random.default_rng(0).standard_normal((n, n))
    return lambda: R.lp_norm_vjp(1.0, P, 2)


class _Pools:
    """Set NumPy's and SciPy's OpenBLAS thread counts (threadpoolctl), and restore them."""

    def __init__(self):
        import scipy.linalg.cython_blas  # noqa: F401 - SciPy's OpenBLAS loaded, so that threadpoolctl sees it
        import threadpoolctl

        self.libs = [lib for lib in threadpoolctl.ThreadpoolController().lib_controllers if lib.user_api == "blas"]
        self.default = {id(lib): lib.num_threads for lib in self.libs}
        self.numpy = [lib for lib in self.libs if "numpy" in lib.filepath]
        self.scipy = [lib for lib in self.libs if "scipy" in lib.filepath]

    def set(self, numpy_threads=None, scipy_threads=None):
        for lib in self.libs:
            want = numpy_threads if lib in self.numpy else scipy_threads if lib in self.scipy else None
            lib.set_num_threads(want or self.default[id(lib)])


def main():
    pools = _Pools()
    if not pools.numpy or not pools.scipy:
        print("NumPy and SciPy share one BLAS library here: no two pools to measure", flush=True)
        return
    quick = H.quick_mode()
    cases = []
    sizes_h = [(64, 64, 128)] if quick else [(64, 64, 128), (1024, 784, 1024)]
    for B, D, H_ in sizes_h:
        cases.append(("hopfield.retrieve_vjp", f"B={B} D={D} H={H_}", _retrieve_vjp(B, D, H_), None))
        cases.append(("hopfield.energy_vjp", f"B={B} D={D} H={H_}", _energy_vjp(B, D, H_), None))
    for n in ((96,) if quick else (96, 512)):
        cases.append(("SVDLinear effective_W + forward + backward", f"{n}x{n}, B={2 * n}", _svd(n, 2 * n), None))
    for n in ((256,) if quick else (256, 1024)):
        cases.append(("regularization.lp_norm_vjp(p=2), spectral", f"{n}x{n}", _spectral(n), None))
    cases.append(("two libraries, alternating: Numba np.dot then NumPy @", "512x512 @ 512x512",
                  *_alternating(512, 512, 512)))
    from refnsm.linear import svd

    def row(what, size, fn):
        t = []
        for numpy_threads, scipy_threads in ((None, None), (1, None), (None, 1)):
            pools.set(numpy_threads, scipy_threads)
            time.sleep(0.5)  # the previous measurement's spinning threads go to sleep first
            t.append(H.warm_time(fn))
        pools.set()
        rows.append(f"| {what} | {size} | {' | '.join(H._fmt_t(v) for v in t)} | {t[0] / min(t[1:]):.2f} |")
        print(rows[-1], flush=True)

    rows = []
    for what, size, fn, one_library in cases:
        extra = f" (both products in the kernel: {H._fmt_t(H.warm_time(one_library))})" if one_library else ""
        row(what + extra, size, fn)
    keep = svd._PRODUCTS_IN_KERNEL_BELOW
    try:
        svd._PRODUCTS_IN_KERNEL_BELOW = float("inf")
        for n in ((96,) if quick else (96, 512)):
            row("SVDLinear, soft-SVD products forced into the kernels (every size before the size rule)",
                f"{n}x{n}, B={2 * n}", _svd(n, 2 * n))
    finally:
        svd._PRODUCTS_IN_KERNEL_BELOW = keep
    load = os.getloadavg()
    threads = ", ".join(f"{Path(lib.filepath).name} {pools.default[id(lib)]}" for lib in pools.libs)
    text = ("## One BLAS per host path (two OpenBLAS thread pools)\n\n"
            f"Machine: {H.machine_info()}.  Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by "
            "`benchmarks/bench_blas_pools.py`.  BLAS libraries and their default threads: " + threads + ".\n\n"
            "| path | size | as shipped | NumPy's BLAS on 1 thread | SciPy's BLAS on 1 thread | as shipped / faster "
            "control |\n|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
            "A path that makes all its products in one library runs as fast as shipped as with the other library "
            "limited to one thread (last column near 1, or below 1 where the limited library is the one it uses).  A "
            "path that alternates the libraries is faster with either one limited (last column well above 1).  "
            f"float64; median of 5 rounds.  Load average at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}.\n")
    print(text)
    if not quick:
        H.RESULTS_DIR.mkdir(exist_ok=True)
        (H.RESULTS_DIR / "blas_pools.md").write_text(text)


if __name__ == "__main__":
    main()
