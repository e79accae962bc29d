"""Shared timing harness for the benchmarks: ratios upstream/refnsm measured in one process.

* Warm time: the median over ``repeat`` rounds of the mean per-call time, each round running the callable
  enough times to fill ``min_time`` seconds (so tiny calls are not dominated by timer resolution).
* Compile time: the wall time of the very first refnsm call in this process (Numba JIT, or loading from its
  on-disk cache), reported apart from the warm time, never mixed into it.
* Threads: torch is set to the same number of threads as Numba, and BLAS uses its default (both libraries see
  the same cores).

* Machine limits: each family's run measures, in its own process, the DGEMM and SGEMM rate (SciPy's BLAS, the
  one Numba's ``np.dot`` calls, at 2048^3, best of 3; on a CPU with AVX-512 whose OpenBLAS runs narrower kernels,
  also with OpenBLAS's AVX-512 kernels in a child process, the higher rate being the limit) and the copy
  bandwidth (``np.copyto`` of 256 MiB, bytes read + written, best of 5).  A large-size row that states its work
  (``Row.work``: the floating-point operations of one call, or the bytes it must move for a memory-bound kernel)
  gets the fraction of that limit it reaches.
* Bounds: a row may also give ``Row.floor_s``, the time of the BLAS products its refnsm call makes, alone (the
  same calls, shapes and dtype, timed in the same process).  No implementation that makes those products with
  this BLAS can be faster, so ``upstream / floor`` is the best ratio this machine's BLAS allows; a table of these
  bounds follows the main one (what the products are is said in each family's notes).
* The CPU (model, flags, LLVM's target name) is written to ``benchmarks/results/_machine.md``.

Each benchmark script writes its table to ``benchmarks/results/<family>.md``; ``python -m refnsm bench``
assembles those into ``benchmarks/RESULTS.md``.  Nothing in these files is typed by hand.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def quick_mode() -> bool:
    return os.environ.get("REFNSM_QUICK", "") not in ("", "0")


def first_call(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def warm_time(fn, *, min_time: float = 0.2, repeat: int = 5) -> float:
    """Median (over ``repeat`` rounds) of the per-call time; each round lasts at least ``min_time`` seconds."""
    if quick_mode():
        min_time, repeat = 0.02, 2
    fn()
    n = 1
    while True:  # calibrate the number of calls per round
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_time or n >= 1 << 20:
            break
        n = max(n * 2, int(n * min_time / max(dt, 1e-9)))
    rounds = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        rounds.append((time.perf_counter() - t0) / n)
    return statistics.median(rounds)


def same_threads():
    """Give torch the same number of threads as Numba; returns that number."""
    import numba

    n = numba.get_num_threads()
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass
    return n


def machine_info() -> str:
    import numba
    import numpy

    parts = [f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
             f"numpy {numpy.__version__}", f"numba {numba.__version__} ({numba.get_num_threads()} threads)"]
    for mod in ("torch", "jax"):
        try:
            m = __import__(mod)
            parts.append(f"{mod} {m.__version__}")
        except ImportError:
            pass
    return ", ".join(parts)


@dataclass
class Row:
    case: str
    size: str
    refnsm_s: float
    upstream_s: float
    compile_s: float
    goal: float | None = None  # required ratio upstream/refnsm (e.g. 5.0 for "5x faster", 1.0 for "not slower")
    work: float | None = None  # work of one refnsm call: flops (limit "dgemm"/"sgemm") or bytes moved ("copy")
    limit: str | None = None  # the machine limit ``work`` is compared with: "dgemm", "sgemm" or "copy"
    floor_s: float | None = None  # the call's BLAS products alone, timed in the same process (see "Bounds")

    @property
    def ratio(self) -> float:
        return self.upstream_s / self.refnsm_s

    @property
    def met(self) -> str:
        if self.goal is None:
            return ""
        return "yes" if self.ratio >= self.goal else "NO"


def _fmt_t(s: float) -> str:
    return f"{s * 1e6:.1f} µs" if s < 1e-3 else (f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s")


_LIMITS: dict | None = None


def _gemm_rates(n: int) -> dict:
    """{"dgemm": flop/s, "sgemm": flop/s} of SciPy's BLAS in this process, n^3 products, best of 3."""
    import numpy as np
    from scipy.linalg import blas

    out = {}
    rng = np.random.default_rng(0)
    for name, dt, gemm in (("dgemm", np.float64, blas.dgemm), ("sgemm", np.float32, blas.sgemm)):
        a = np.asfortranarray(rng.standard_normal((n, n)).astype(dt))
        b = np.asfortranarray(rng.standard_normal((n, n)).astype(dt))
        gemm(1.0, a, b)
        best = min(first_call(lambda: gemm(1.0, a, b)) for _ in range(3))
        out[name] = 2.0 * n ** 3 / best
    return out


def _narrow_blas_kernels() -> str | None:
    """The kernel set of the loaded OpenBLAS when the CPU has AVX-512 and that set does not use it (e.g. an
    ``OPENBLAS_CORETYPE=Haswell`` in the environment), else None (see ``refnsm.cli.blas_kernel_hint``)."""
    import scipy.linalg  # noqa: F401 - SciPy's BLAS loaded, to be reported

    from refnsm import cli

    return ", ".join(cli.narrow_openblas_kernels(cli.blas_libraries(), cli.cpu_flags())) or None


def machine_limits() -> dict:
    """Measured once per process: {"dgemm": flop/s, "sgemm": flop/s, "copy": bytes/s} (see the module docstring).

    The GEMM limit is the machine's, not only the kernels this process runs: where the CPU has AVX-512 and the
    loaded OpenBLAS runs narrower kernels, the rates are measured again in a child process with
    ``OPENBLAS_CORETYPE=SkylakeX`` (OpenBLAS's AVX-512 kernels) and the higher ones are the limit; the rates of
    this process's own kernels are kept under "own" (refnsm's products run at those)."""
    global _LIMITS
    if _LIMITS is None:
        import json
        import subprocess
        import sys

        import numpy as np

        n = 1024 if quick_mode() else 2048
        out = _gemm_rates(n)
        out["n"] = n
        narrow = _narrow_blas_kernels()
        if narrow is not None:
            env = dict(os.environ, OPENBLAS_CORETYPE="SkylakeX")
            code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import _harness; "
                    "print(json.dumps(_harness._gemm_rates(int(sys.argv[2]))))")
            res = subprocess.run([sys.executable, "-c", code, str(Path(__file__).resolve().parent), str(n)],
                                 env=env, capture_output=True, text=True, timeout=600)
            if res.returncode == 0:
                wide = json.loads(res.stdout.strip().splitlines()[-1])
                out["own"] = {"kernels": narrow, "dgemm": out["dgemm"], "sgemm": out["sgemm"],
                              "env": os.environ.get("OPENBLAS_CORETYPE")}
                out["dgemm"] = max(out["dgemm"], wide["dgemm"])
                out["sgemm"] = max(out["sgemm"], wide["sgemm"])
            else:  # said in the limits line: the limit is then only that of the kernels this process runs
                out["wide_failed"] = {"kernels": narrow, "error": (res.stderr.strip().splitlines() or ["?"])[-1]}
        src = np.ones((32 if quick_mode() else 256) << 17)  # 256 MiB of float64
        dst = np.empty_like(src)
        np.copyto(dst, src)
        best = min(first_call(lambda: np.copyto(dst, src)) for _ in range(5))
        out["copy"] = 2.0 * src.nbytes / best
        _LIMITS = out
    return _LIMITS


def limits_line() -> str:
    lim = machine_limits()
    line = (f"Machine limits measured in this run: DGEMM {lim['dgemm'] / 1e9:.1f} GFLOP/s, SGEMM "
            f"{lim['sgemm'] / 1e9:.1f} GFLOP/s (SciPy BLAS, {lim['n']}^3, best of 3), copy "
            f"{lim['copy'] / 1e9:.1f} GB/s (read + write, {32 if quick_mode() else 256} MiB, best of 5).")
    own = lim.get("own")
    if own is not None:
        line += (f"  The GEMM limits are those of OpenBLAS's AVX-512 kernels (a child process with "
                 f"OPENBLAS_CORETYPE=SkylakeX); the benchmarks' own processes run its {own['kernels']} kernels ("
                 + (f"OPENBLAS_CORETYPE={own['env']} in this machine's environment" if own["env"] else
                    "OpenBLAS's own choice on this CPU")
                 + f"), at DGEMM {own['dgemm'] / 1e9:.1f} and "
                 f"SGEMM {own['sgemm'] / 1e9:.1f} GFLOP/s, and refnsm's products with them "
                 "(`python -m refnsm info` says which).")
    failed = lim.get("wide_failed")
    if failed is not None:
        line += (f"  The GEMM limits are those of OpenBLAS's {failed['kernels']} kernels only, which do not use this "
                 f"CPU's AVX-512: measuring its AVX-512 kernels in a child process failed ({failed['error']}).")
    return line


def fraction(r: Row) -> str:
    """``achieved rate / measured limit`` of a row that states its work, e.g. ``"41% of DGEMM (52 GFLOP/s)"``."""
    if r.work is None or r.limit is None:
        return ""
    rate = r.work / r.refnsm_s
    frac = rate / machine_limits()[r.limit]
    unit = "GB/s" if r.limit == "copy" else "GFLOP/s"
    return f"{100 * frac:.0f}% of {r.limit.upper()} ({rate / 1e9:.1f} {unit})"


def table(rows: list[Row]) -> str:
    lines = ["| case | size | refnsm (warm) | upstream (warm) | ratio upstream/refnsm | goal | met | refnsm first call (compile) | refnsm vs machine limit |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        goal = "" if r.goal is None else f">= {r.goal:g}x"
        lines.append(f"| {r.case} | {r.size} | {_fmt_t(r.refnsm_s)} | {_fmt_t(r.upstream_s)} | {r.ratio:.2f}x | {goal} | {r.met} | {_fmt_t(r.compile_s)} | {fraction(r)} |")
    return "\n".join(lines)


def bounds_table(rows: list[Row]) -> str:
    """The rows that give ``floor_s``: their BLAS products alone against the whole call, and the best ratio those
    products allow (``upstream / floor``), with whether the goal is within it."""
    lines = ["| case | size | refnsm (warm) | its BLAS products alone | share of the call | upstream (warm) | "
             "best ratio with these products | goal | within reach |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.floor_s is None:
            continue
        best = r.upstream_s / r.floor_s
        goal = "" if r.goal is None else f">= {r.goal:g}x"
        reach = "" if r.goal is None else ("yes" if best >= r.goal else "NO")
        lines.append(f"| {r.case} | {r.size} | {_fmt_t(r.refnsm_s)} | {_fmt_t(r.floor_s)} | "
                     f"{100 * r.floor_s / r.refnsm_s:.0f}% | {_fmt_t(r.upstream_s)} | {best:.2f}x | {goal} | {reach} |")
    return "\n".join(lines)


def cpu_info() -> str:
    """CPU model, SIMD flags (from /proc/cpuinfo) and LLVM's target CPU (the one Numba compiles for)."""
    model, flags = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = val.strip()
                elif key == "flags" and not flags:
                    flags = val.split()
    except OSError:
        pass
    simd = [f for f in flags if f.startswith(("sse", "ssse", "avx", "fma", "amx", "f16c"))]
    try:
        import llvmlite.binding as llvm

        target = llvm.get_host_cpu_name()
    except Exception:  # noqa: BLE001 - informational only
        target = "unknown"
    load = ""
    try:
        load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        pass
    blas = "unknown"
    try:
        import scipy.linalg  # noqa: F401 - SciPy's BLAS loaded, to be reported

        from refnsm import cli

        blas = "; ".join(f"{lib} {ver} ({arch} kernels, {threads} threads)"
                         for lib, ver, arch, threads in cli.blas_libraries()) or "not reported"
    except Exception:  # noqa: BLE001 - informational only
        pass
    return (f"CPU: {model}; {os.cpu_count()} logical cores; LLVM/Numba target {target}; load average {load} "
            f"(1/5/15 min).  BLAS: {blas}; OPENBLAS_CORETYPE {os.environ.get('OPENBLAS_CORETYPE') or 'unset'}.  "
            f"SIMD flags: {' '.join(simd) or 'unknown'}.  All flags: {' '.join(flags) or 'unknown'}.")


def write_results(family: str, title: str, upstream: str, rows: list[Row], notes: str = "") -> str:
    """Print the table and write ``benchmarks/results/<family>.md`` (unless quick mode)."""
    text = (f"## {title}\n\nUpstream: {upstream}.  Machine: {machine_info()}.  "
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n\n{table(rows)}\n")
    if any(r.work is not None for r in rows):
        text += f"\n{limits_line()}  Load average at the end: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}.\n"
    if any(r.floor_s is not None for r in rows):
        text += ("\nBounds: refnsm's BLAS products alone (the same calls, shapes and dtype, timed in this run), and "
                 "the best ratio an implementation making them with this BLAS could reach.\n\n"
                 f"{bounds_table(rows)}\n")
    if notes:
        text += f"\n{notes.strip()}\n"
    print(text)
    if not quick_mode():
        RESULTS_DIR.mkdir(exist_ok=True)
        (RESULTS_DIR / f"{family}.md").write_text(text)
        (RESULTS_DIR / "_machine.md").write_text(f"## Machine\n\n{cpu_info()}\n")
    return text
