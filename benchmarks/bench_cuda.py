"""refnsm's CUDA path against its CPU path, kernel by kernel, at large sizes, every family with CUDA twins.

The cases live in ``_cuda_cases_<family>.py`` (one module per family, ``cases(rc, rng, scale, dtype)``).

Ratios are CPU time / GPU time (above 1: the GPU is faster), both warm medians from ``_harness.warm_time``; the
GPU's first call (CUDA JIT compilation of every kernel it launches) is reported apart.  Each GPU case is timed
twice: with device arrays that stay on the device (the kernels alone, synchronised) and with NumPy arrays (the
host-device copies included, which is what a NumPy caller pays).  float64 and float32.

On a machine without a usable NVIDIA GPU the script says so and exits 0; under the simulator
(``NUMBA_ENABLE_CUDASIM=1``) timings mean nothing, so it refuses in the same way.  Results go to
``benchmarks/results/cuda.md`` (the harness's "refnsm" column is the GPU, its "upstream" column the CPU path).
Run: ``python benchmarks/bench_cuda.py``.

A second table, ``benchmarks/results/cuda_upstream.md``, compares refnsm's GPU path with spikingjelly and neuromancer
on torch's GPU (``_cuda_upstream.py``), when torch has CUDA; otherwise the script says why it did not run.  It has
not run yet: torch is CPU-only on the development machine (docs/cuda.md).
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


FAMILIES = ("spiking", "similarity", "hopfield", "linear")


def _case_modules():
    """The per-family case lists (``_cuda_cases_<family>.py``), in FAMILIES order; missing ones are skipped."""
    import importlib

    mods = []
    for fam in FAMILIES:
        try:
            mods.append(importlib.import_module(f"_cuda_cases_{fam}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"_cuda_cases_{fam}":
                raise
    return mods


def main():
    rc = _gpu_or_exit()
    from numba import cuda

    def synced(fn):
        def run():
            fn()
            cuda.synchronize()
        return run

    rows = []
    for dtype in (np.float64, np.float32):
        name = np.dtype(dtype).name
        for mod in _case_modules():
            rng = np.random.default_rng(0)
            for case, size, cpu_fn, dev_fn, host_fn in mod.cases(rc, rng, "quick" if quick_mode() else "full", dtype):
                cpu_t = warm_time(cpu_fn)
                compile_s = first_call(synced(dev_fn))
                rows.append(Row(f"{case} ({name}, device arrays)", size, warm_time(synced(dev_fn)), cpu_t,
                                compile_s))
                rows.append(Row(f"{case} ({name}, NumPy in/out)", size, warm_time(synced(host_fn)), cpu_t, 0.0))
    write_results("cuda", f"CUDA path vs CPU path (GPU: {rc.status()})", "the refnsm CPU path (NumPy/Numba, same "
                  "process); in this table the 'refnsm' column is the GPU and 'upstream' the CPU, so the ratio is "
                  "CPU/GPU", rows,
                  notes="GPU kernels use a shared-memory tiled product (no cuBLAS) and deterministic single-block "
                        "reductions; see docs/cuda.md for when the GPU path pays off.")
    _upstream_table(rc, synced)
    return 0


def _upstream_table(rc, synced):
    """refnsm GPU against upstream on torch CUDA (``_cuda_upstream.py``), or a line saying why it cannot run."""
    import _cuda_upstream

    ok, reason = _cuda_upstream.available()
    if not ok:
        print(f"bench_cuda: upstream on the GPU not run: {reason}.")
        return
    import torch

    rows = []
    rng = np.random.default_rng(0)
    for case, size, me, up in _cuda_upstream.cases(rc, rng, "quick" if quick_mode() else "full", "cuda"):
        compile_s = first_call(synced(me))
        rows.append(Row(case, size, warm_time(synced(me)), warm_time(up), compile_s))
    write_results("cuda_upstream", f"CUDA path vs upstream on torch CUDA (GPU: {rc.status()})",
                  f"spikingjelly / neuromancer on torch {torch.__version__} CUDA (float32, forward + backward, "
                  "synchronised)", rows,
                  notes="refnsm on device arrays (data kept on the GPU); upstream with torch tensors on the GPU.")


if __name__ == "__main__":
    sys.exit(main())
