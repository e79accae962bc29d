"""Shared timing harness for the benchmarks: ratios upstream/refnsm measured in one process.

* Warm time: the median over ``repeat`` rounds of the mean per-call time, each round running the callable
  enough times to fill ``min_time`` seconds (so tiny calls are not dominated by timer resolution).
* Compile time: the wall time of the very first refnsm call in this process (Numba JIT, or loading from its
  on-disk cache), reported apart from the warm time, never mixed into it.
* Threads: torch is set to the same number of threads as Numba, and BLAS uses its default (both libraries see
  the same cores).

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


def table(rows: list[Row]) -> str:
    lines = ["| case | size | refnsm (warm) | upstream (warm) | ratio upstream/refnsm | goal | met | refnsm first call (compile) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        goal = "" if r.goal is None else f">= {r.goal:g}x"
        lines.append(f"| {r.case} | {r.size} | {_fmt_t(r.refnsm_s)} | {_fmt_t(r.upstream_s)} | {r.ratio:.2f}x | {goal} | {r.met} | {_fmt_t(r.compile_s)} |")
    return "\n".join(lines)


def write_results(family: str, title: str, upstream: str, rows: list[Row], notes: str = "") -> str:
    """Print the table and write ``benchmarks/results/<family>.md`` (unless quick mode)."""
    text = (f"## {title}\n\nUpstream: {upstream}.  Machine: {machine_info()}.  "
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n\n{table(rows)}\n")
    if notes:
        text += f"\n{notes.strip()}\n"
    print(text)
    if not quick_mode():
        RESULTS_DIR.mkdir(exist_ok=True)
        (RESULTS_DIR / f"{family}.md").write_text(text)
    return text
