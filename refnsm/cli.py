"""The command line: ``python -m refnsm COMMAND`` (or ``refnsm COMMAND`` once installed).

The text shown by ``--help`` is :data:`DESCRIPTION` and :data:`EPILOG` below, plain text on purpose.
"""

from __future__ import annotations

import argparse
import os
import platform

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DESCRIPTION = "refnsm: reference NumPy/Numba implementations of neuro-inspired learning algorithms."
EPILOG = """demo and bench need a source checkout: the tutorials and benchmarks are not part of the installed
package.  crosscheck needs the upstream libraries (.venv-peers, built by `make crosscheck`).
Run `python -m refnsm COMMAND --help` for a command's options."""


def _checkout_dir(name: str) -> Path:
    path = ROOT / name
    if not path.is_dir():
        sys.exit(f"refnsm: {path} not found; `{name}` runs from a source checkout (git clone, then pip install -e .)")
    return path


def _table(head, rows) -> str:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    fmt = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, rows)])


# --------------------------------------------------------------------------------------------------- info
def gpu_status() -> str:
    """'CUDA simulator', 'GPU: <name>', or 'no GPU (<reason>)'.  Never raises."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "") == "1":
        return "CUDA simulator (NUMBA_ENABLE_CUDASIM=1): kernels run in Python, for testing only"
    try:
        from numba import cuda
    except Exception as exc:  # numba-cuda missing or broken
        return f"no GPU (numba.cuda unavailable: {type(exc).__name__})"
    try:
        if cuda.is_available():
            dev = cuda.get_current_device()
            name = dev.name.decode() if isinstance(dev.name, bytes) else dev.name
            return f"GPU: {name} (compute capability {dev.compute_capability})"
        return "no GPU (numba.cuda finds no CUDA driver/device)"
    except Exception as exc:
        return f"no GPU ({type(exc).__name__}: {exc})"


#: OpenBLAS's x86-64 kernel sets (``OPENBLAS_CORETYPE`` names) that use AVX-512
_AVX512_CORES = ("skylakex", "cooperlake", "sapphirerapids")


def cpu_flags() -> set:
    """The CPU's feature flags from /proc/cpuinfo (an empty set where that file does not exist)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key.strip() == "flags":
                    return set(val.split())
    except OSError:
        pass
    return set()


def blas_libraries() -> list:
    """``(library, version, kernel set, threads)`` of each BLAS loaded in this process (threadpoolctl's report; an
    empty list without threadpoolctl).  Call it after NumPy and SciPy's BLAS are loaded."""
    try:
        import threadpoolctl
    except ImportError:
        return []
    return [(os.path.basename(d.get("filepath") or d.get("prefix", "?")), d.get("version") or "?",
             d.get("architecture") or "?", d.get("num_threads"))
            for d in threadpoolctl.threadpool_info() if d.get("user_api") == "blas"]


def narrow_openblas_kernels(libraries, flags) -> list:
    """The kernel sets, among the OpenBLAS ``libraries`` (:func:`blas_libraries`), that do not use AVX-512 although
    the CPU's ``flags`` have it (an empty list on a CPU without AVX-512)."""
    if "avx512f" not in flags:
        return []
    return sorted({arch for lib, _, arch, _ in libraries
                   if "openblas" in lib.lower() and arch != "?" and arch.lower() not in _AVX512_CORES})


def blas_kernel_hint(libraries, flags, environ=None) -> str | None:
    """A line for ``refnsm info`` when an OpenBLAS runs kernels narrower than the CPU's (AVX-512 in the CPU's flags,
    not in the kernel set OpenBLAS runs), saying why where it can (an ``OPENBLAS_CORETYPE`` in the environment);
    ``None`` otherwise."""
    environ = os.environ if environ is None else environ
    narrow = narrow_openblas_kernels(libraries, flags)
    if not narrow:
        return None
    where = "docs/performance.md, \"The BLAS kernels\""
    forced = environ.get("OPENBLAS_CORETYPE")
    if forced:
        return (f"note: OPENBLAS_CORETYPE={forced} in the environment keeps OpenBLAS on its {', '.join(narrow)} "
                "kernels although this CPU has AVX-512; OPENBLAS_CORETYPE=SkylakeX set before Python "
                f"starts selects its AVX-512 ones ({where})")
    return (f"note: this CPU has AVX-512 but OpenBLAS chose its {', '.join(narrow)} kernels; "
            f"OPENBLAS_CORETYPE=SkylakeX set before Python starts selects its AVX-512 ones ({where})")


def cmd_info(args) -> int:
    import numba
    import numpy
    import scipy

    import refnsm

    print(f"refnsm {refnsm.__version__}  ({ROOT})")
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores")
    print(f"numpy {numpy.__version__}, scipy {scipy.__version__}, numba {numba.__version__}")
    print(f"numba threads: {numba.get_num_threads()} (NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS})")
    import scipy.linalg  # noqa: F401 - loads SciPy's BLAS, so that it is reported too

    libs = blas_libraries()
    for lib, ver, arch, threads in libs:
        print(f"BLAS: {lib} {ver}, kernels {arch}, {threads} threads")
    if not libs:
        print("BLAS: not reported (threadpoolctl is not installed; `pip install threadpoolctl` to see each BLAS "
              "and its kernels)")
    hint = blas_kernel_hint(libs, cpu_flags())
    if hint:
        print(hint)
    print(f"CUDA: {gpu_status()}")
    from .crosscheck import _upstream

    rows = []
    for fam, (dist, spec_version) in _upstream.UPSTREAM.items():
        ver = _upstream.version(dist)
        status = "not installed" if ver is None else "installed"
        if ver is not None and not args.no_upstream:
            t0 = time.perf_counter()
            try:
                _upstream.load(dist)
                status = f"imports ({time.perf_counter() - t0:.1f} s)"
            except Exception as exc:
                status = f"does not import: {type(exc).__name__}: {str(exc)[:60]}"
        rows.append((fam, dist, ver or "-", spec_version, status))
    print("\nupstream libraries (for cross-checks; `make crosscheck` installs them in .venv-peers):")
    print(_table(("family", "upstream", "installed", "spec", "status"), rows))
    return 0


# ------------------------------------------------------------------------------------------------- warmup
def cmd_warmup(args) -> int:
    from . import _warmup

    import numba

    t0 = time.perf_counter()
    families = args.family or list(_warmup.FAMILIES)
    times = _warmup.warmup(families, args.dtype or ("float64", "float32"), stream=None if args.quiet else sys.stderr)
    missed = [k for k in _warmup.unreached() if args.family is None or any(f".{f}." in k for f in families)]
    total = time.perf_counter() - t0
    where = numba.config.CACHE_DIR or "__pycache__ folders next to refnsm's kernel modules"
    if not args.quiet:
        per_family = {f: sum(v for (g, _), v in times.items() if g == f) for f in families}
        print(_table(("family", "time"), [(f, f"{t:.1f} s") for f, t in per_family.items()]))
    print(f"refnsm warmup: compiled or loaded {len(families)} families in {total:.1f} s; Numba cache: {where}")
    if missed:
        print(f"refnsm warmup: {len(missed)} kernels not reached: {', '.join(missed)}", file=sys.stderr)
    return 1 if missed else 0


# --------------------------------------------------------------------------------------------------- demo
def cmd_demo(args) -> int:
    tdir = _checkout_dir("tutorials")
    scripts = sorted(p for p in tdir.glob("[0-9][0-9]_*.py"))
    env = dict(os.environ, MPLBACKEND="Agg", REFNSM_QUICK="0" if args.full else "1")
    rows, failed = [], 0
    for script in scripts:
        t0 = time.perf_counter()
        cmd = [sys.executable, str(script)] + ([] if args.full else ["--quick"])
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        dt = time.perf_counter() - t0
        results = [ln[len("RESULT:"):].strip() for ln in res.stdout.splitlines() if ln.startswith("RESULT:")]
        if res.returncode != 0:
            failed += 1
            print(res.stdout[-2000:], res.stderr[-4000:], sep="\n", file=sys.stderr)
            results = [f"FAILED (exit {res.returncode})"]
        rows.append((script.name, f"{dt:.1f} s", results[-1] if results else "(no RESULT line)"))
    print(f"\nrefnsm tutorial tour ({'full' if args.full else 'quick'} mode); figures in {ROOT / 'figures'}")
    print(_table(("tutorial", "time", "reproduced"), rows))
    return 1 if failed else 0


# --------------------------------------------------------------------------------------------- crosscheck
def cmd_crosscheck(args) -> int:
    from . import crosscheck as cc
    from .crosscheck import _upstream

    families = args.family or cc.available_families()
    all_rows, missing = [], []
    for fam in families:
        ad = cc.adapter(fam)
        try:
            _upstream.load(ad.UPSTREAM)
        except Exception as exc:
            missing.append((fam, ad.UPSTREAM, f"{type(exc).__name__}: {str(exc)[:70]}"))
            continue
        for case in ad.cases():
            try:
                all_rows.append(case.run())
            except Exception as exc:  # a crash is a failed row, not a crashed command
                all_rows.append(cc.CheckRow(fam, case.name, ad.UPSTREAM, float("inf"), float("inf"), 0.0,
                                            f"crashed: {type(exc).__name__}: {exc}"))
    if not args.no_golden:
        loaded = sorted({cc.adapter(f).UPSTREAM for f in families} - {d for _, d, _ in missing})
        all_rows += _golden_rows(loaded)
    if args.verbose:
        print(cc.format_table(all_rows))
        print()
    groups: dict = {}
    for r in all_rows:
        precision = "float32" if "float32" in r.function else "float64"
        key = (r.family, r.function.split("[")[0], r.upstream, precision)
        groups.setdefault(key, []).append(r)
    rows = []
    for (fam, fn, up, precision), rs in groups.items():
        npass = sum(r.passed for r in rs)
        rows.append((fam, fn, up, precision, len(rs), f"{max(r.value_err for r in rs):.1e}", f"{max(r.grad_err for r in rs):.1e}",
                     f"{max(r.tol for r in rs):.0e}", "pass" if npass == len(rs) else f"FAIL ({len(rs) - npass})"))
    print(_table(("family", "function", "upstream", "dtype", "cases", "max value rel err", "max grad rel err", "tol", "result"),
                 rows))
    for fam, dist, why in missing:
        print(f"{fam}: upstream {dist} does not import ({why}); run `make crosscheck`")
    for r in all_rows:
        if not r.passed:
            print("FAILED:", r)
    failed = sum(not r.passed for r in all_rows)
    print(f"\n{len(all_rows) - failed} passed, {failed} failed" + (f", {len(missing)} families skipped" if missing else ""))
    if missing and not all_rows:
        print(f"refnsm crosscheck: no upstream library could be imported, so nothing was checked.  Run it inside "
              f".venv-peers (`make crosscheck` builds it){'' if args.allow_missing else ', or pass --allow-missing'}.",
              file=sys.stderr)
    elif missing and not args.allow_missing:
        print(f"refnsm crosscheck: {len(missing)} of {len(families)} families were not checked (upstream missing); "
              "pass --allow-missing to accept that.", file=sys.stderr)
    strict = not args.allow_missing or os.environ.get("CI", "").lower() == "true"
    return 1 if failed or (missing and strict) else 0


def _golden_rows(libraries) -> list:
    """The golden cases through each upstream library's adapter (refnsm/golden/upstream.py), in both dtypes, as rows
    of the crosscheck table: function ``golden <function>[<variant>, <dtype>]``, the worst output's scaled error and
    its tolerance (docs/golden.md); a documented difference (xfail) passes with a note, an unexpected pass fails."""
    from .crosscheck import CheckRow
    from .golden import upstream as U

    rows = []
    for lib in libraries:
        if lib not in U.BACKENDS:
            continue
        for dtype in ("float64", "float32"):
            try:
                rep = U.run(lib, dtype)
            except Exception as exc:  # an adapter that cannot start is a failed row, not a crashed command
                rows.append(CheckRow("golden", f"adapter[{dtype}]", lib, float("inf"), float("inf"), 0.0,
                                     f"crashed: {type(exc).__name__}: {exc}"))
                continue
            for r in rep.results:
                if r.status == "not implemented":
                    continue
                fam, fn, var = r.name.split(".", 2)
                outs = [o for o in r.outputs.values() if isinstance(o, dict) and "rel" in o]
                worst = max(outs, key=lambda o: o["rel"] / o["tol"] if o["tol"] else float("inf"), default=None)
                err, tol = (worst["rel"], worst["tol"]) if worst else (0.0, 0.0)
                if r.status == "passed" or r.status == "xfailed":
                    err = min(err, tol)  # an xfail is a documented difference: it passes, with its note
                    note = "documented difference (xfail)" if r.status == "xfailed" else ""
                else:
                    err = err if worst and err > tol else float("inf")
                    note = f"{r.status}: {r.message}"[:200]
                rows.append(CheckRow(fam, f"golden {fn}[{var}, {dtype}]", lib, err, 0.0, tol, note))
    return rows


# -------------------------------------------------------------------------------------------------- bench
def cmd_bench(args) -> int:
    bdir = _checkout_dir("benchmarks")
    scripts = sorted(bdir.glob("bench_*.py"))
    if args.family:
        scripts = [s for s in scripts if s.stem[len("bench_"):] in args.family]
    env = dict(os.environ, MPLBACKEND="Agg", REFNSM_QUICK="1" if args.quick else "0")
    failed = 0
    for script in scripts:
        print(f"== {script.name}", flush=True)
        res = subprocess.run([sys.executable, str(script)], env=env, cwd=ROOT)
        failed += res.returncode != 0
    if not args.quick:
        parts = sorted((bdir / "results").glob("*.md"))
        text = ["# Benchmark results", "",
                "Generated by `python -m refnsm bench` (`make bench`) from `benchmarks/results/*.md`, each written by its",
                "benchmark script from a measured run: ratios are upstream time / refnsm time (above 1: refnsm faster),",
                "warm times are medians, the first call (Numba compilation or cache load) is reported apart; large-size",
                "rows give the fraction of the machine's limit (GEMM rate or copy bandwidth) measured in the same run.", ""]
        text += [p.read_text().strip() + "\n" for p in parts]
        (bdir / "RESULTS.md").write_text("\n".join(text))
        print(f"wrote {bdir / 'RESULTS.md'} from {len(parts)} result files")
    return 1 if failed else 0


def _HelpFormatter(prog):  # plain text, the command names in one column
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def main(argv=None) -> int:
    from . import __version__

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["golden"]:  # its own parser (refnsm/golden/_cli.py), so that `golden --help` and options pass
        from .golden._cli import main as golden_main

        return golden_main(argv[1:])

    parser = argparse.ArgumentParser(prog="python -m refnsm", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"refnsm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    p = sub.add_parser("info", help="versions, threads, GPU or CUDA simulator, which upstream libraries import")
    p.add_argument("--no-upstream", action="store_true", help="do not try to import the upstream libraries")
    p = sub.add_parser("demo", help="run every tutorial in quick mode and print what each reproduced")
    p.add_argument("--full", action="store_true", help="full-size runs instead of quick mode")
    p = sub.add_parser("crosscheck", help="compare against the upstream libraries (inside .venv-peers)")
    p.add_argument("--family", action="append", help="restrict to a family (repeatable)")
    p.add_argument("-v", "--verbose", action="store_true", help="print every case, not one row per function")
    p.add_argument("--allow-missing", action="store_true",
                   help="exit 0 even when an upstream library is missing (not under CI=true)")
    p.add_argument("--no-golden", action="store_true",
                   help="skip the golden cases through the upstream adapters (docs/golden.md); run only the adapters' rows")
    p = sub.add_parser("warmup", help="compile every kernel (float32 and float64) into the Numba cache")
    p.add_argument("--family", action="append", choices=("spiking", "similarity", "hopfield", "linear", "regularization"),
                   help="restrict to a family (repeatable)")
    p.add_argument("--dtype", action="append", choices=("float64", "float32"), help="restrict to a dtype (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or table, only the summary line")
    p = sub.add_parser("bench", help="run benchmarks/ and assemble benchmarks/RESULTS.md")
    p.add_argument("--family", action="append", help="restrict to a family (repeatable)")
    p.add_argument("--quick", action="store_true", help="tiny timing budget; does not write results")
    p = sub.add_parser("golden", help="the golden suite: verify a backend, export the cases (docs/golden.md)",
                       add_help=False)
    p.add_argument("golden_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "golden":  # its own parser: refnsm/golden/_cli.py
        from .golden._cli import main as golden_main

        return golden_main(args.golden_args)
    return {"info": cmd_info, "demo": cmd_demo, "crosscheck": cmd_crosscheck, "bench": cmd_bench,
            "warmup": cmd_warmup}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
