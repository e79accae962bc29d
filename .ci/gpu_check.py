#!/usr/bin/env python3
"""``make gpu-check``: everything refnsm's CUDA path can be asked on a machine with an NVIDIA GPU, in at most 8 minutes.

Steps (each in a subprocess with its own time limit; the whole run is capped at ``--budget`` seconds, 480 by default):

1. ``env``      numba, numba-cuda and the device refnsm sees (``refnsm.cuda.status()``); with ``--install``, first
                ``pip install -e .[cuda]`` (numba-cuda) when it is missing (needs the network; failure is reported).
2. ``tests``    every CUDA test (``tests/test_cuda_*.py``) **on the hardware**: ``NUMBA_ENABLE_CUDASIM`` unset, so
                the kernels are compiled by NVVM and launched on the GPU, and the PTX-compilation tests run.
3. ``golden``   the golden suite with ``device="cuda"`` when ``refnsm.golden`` exists (it calls
                ``refnsm.golden.run(device="cuda")``); otherwise reported as skipped.
4. ``bench``    ``benchmarks/bench_cuda.py`` (refnsm GPU against refnsm CPU; writes ``benchmarks/results/cuda.md``).

It prints one summary (step, status, seconds, detail) and exits non-zero if a step failed.

``--quick`` is the CI mode, under ``NUMBA_ENABLE_CUDASIM=1`` on any machine: the same steps, each as small as
possible (the backend tests; the golden step; the benchmark's case lists at their tiny size, run and compared once
by ``tests/test_bench_cuda_cases.py`` since timings under the simulator mean nothing), so that the script itself
cannot first break on the GPU machine.  ``make test`` already runs every CUDA test under the simulator.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _env(quick):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if quick:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    else:
        env.pop("NUMBA_ENABLE_CUDASIM", None)
    return env


def _run(cmd, env, timeout):
    """(returncode or None on timeout, combined output)."""
    try:
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=max(1, int(timeout)))
        return r.returncode, r.stdout + r.stderr
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"") + (exc.stderr or b"")
        return None, out.decode(errors="replace") if isinstance(out, bytes) else str(out)


def _tail(text, n=1):
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:]) if lines else ""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CI mode under the CUDA simulator (tiny sizes)")
    ap.add_argument("--install", action="store_true", help="pip install -e .[cuda] first if numba-cuda is missing")
    ap.add_argument("--budget", type=float, default=480.0, help="seconds for the whole run (default 480)")
    args = ap.parse_args(argv)
    quick = args.quick
    env = _env(quick)
    py = sys.executable
    start = time.monotonic()
    results = []

    def left():
        return args.budget - (time.monotonic() - start)

    def step(name, cmd, limit, ok=lambda rc, out: rc == 0, detail=lambda out: _tail(out)):
        t0 = time.monotonic()
        limit = min(limit, left() - 5)
        if limit < 5:
            results.append((name, "SKIPPED", 0.0, "no time left in the budget"))
            return None
        rc, out = _run(cmd, env, limit)
        dt = time.monotonic() - t0
        status = "TIMEOUT" if rc is None else ("PASS" if ok(rc, out) else "FAIL")
        results.append((name, status, dt, detail(out)))
        if status != "PASS":
            print(f"---- {name}: {status}\n{out[-4000:]}", flush=True)
        return out

    # 1. environment
    if args.install and not quick:
        step("install", [py, "-c", "import numba_cuda"], 30)
        if results[-1][1] != "PASS":
            results.pop()
            step("install", [py, "-m", "pip", "install", "--quiet", "-e", ".[cuda]"], 150)
    probe = ("import numba, refnsm.cuda as rc\n"
             "try:\n    import numba_cuda; nc = numba_cuda.__version__\nexcept Exception:\n    nc = 'absent'\n"
             "print(f'numba {numba.__version__}, numba-cuda {nc}, device: {rc.status()}')\n")
    want = "simulator" if quick else "GPU:"
    out = step("env", [py, "-c", probe], 60, ok=lambda rc, o: rc == 0 and want in o)
    if out is not None and results[-1][1] != "PASS" and not quick:
        results[-1] = (results[-1][0], "FAIL", results[-1][2],
                       (results[-1][3] + "; " if results[-1][3] else "") + "no usable NVIDIA GPU: nothing ran on "
                       "hardware (use --quick for the simulator mode)")
    else:
        # 2. the CUDA tests
        tests = (["tests/test_cuda_backend.py"] if quick
                 else sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_cuda_*.py")))
        step("tests", [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], 60 if quick else 300)
        # 3. the golden suite on the device
        golden = ("import importlib.util, sys\n"
                  "if importlib.util.find_spec('refnsm.golden') is None:\n"
                  "    print('skipped: refnsm.golden does not exist in this checkout'); sys.exit(0)\n"
                  "import refnsm.golden as g\n"
                  "run = getattr(g, 'run', None)\n"
                  "if run is None:\n    print('FAIL: refnsm.golden has no run(device=...)'); sys.exit(1)\n"
                  "r = run(device='cuda')\n"
                  "print(f'golden suite with device=cuda: {r}')\n"
                  "sys.exit(0 if (r is None or getattr(r, 'ok', r) not in (False, 0)) else 1)\n")
        out = step("golden", [py, "-c", golden], 30 if quick else 150)
        if out is not None and results[-1][1] == "PASS" and out.strip().startswith("skipped"):
            results[-1] = (results[-1][0], "SKIPPED", results[-1][2], _tail(out))
        # 4. the benchmark
        if quick:
            step("bench", [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_bench_cuda_cases.py",
                           "-k", "float64 and hopfield"], 60)
        else:
            step("bench", [py, "benchmarks/bench_cuda.py"], 240)

    total = time.monotonic() - start
    mode = "quick (CUDA simulator)" if quick else "hardware"
    print(f"\n== gpu-check, {mode}: {total:.0f} s of a {args.budget:.0f} s budget")
    for name, status, dt, detail in results:
        print(f"  {name:8s} {status:8s} {dt:6.1f} s  {detail[:160]}")
    failed = [r for r in results if r[1] in ("FAIL", "TIMEOUT")]
    print("== gpu-check:", "FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
