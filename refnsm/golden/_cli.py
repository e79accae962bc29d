"""``python -m refnsm golden {verify, export, list, regenerate}``.

Exit status of ``verify``: 0 when every implemented case passes in every dtype run, 1 when any fails (or an
``--xfail`` case unexpectedly passes), 2 for a usage error or a backend that cannot be loaded.
"""

from __future__ import annotations

import argparse
import sys
import time


def _parser():
    p = argparse.ArgumentParser(prog="python -m refnsm golden", description="the golden conformance suite")
    sub = p.add_subparsers(dest="action", required=True)
    v = sub.add_parser("verify", help="run the golden cases on a backend")
    v.add_argument("--backend", required=True,
                   help="a .py file, an importable module, 'refnsm' or 'refnsm:cuda' (see docs/golden.md)")
    v.add_argument("--family", action="append", help="restrict to a family (repeatable)")
    v.add_argument("--dtype", choices=("float64", "float32"), help="one dtype only (default: both)")
    v.add_argument("--include", action="append", help="glob on case names, or a file of them (repeatable)")
    v.add_argument("--exclude", action="append", help="glob on case names, or a file of them (repeatable)")
    v.add_argument("--xfail", action="append", help="cases expected to fail: reported, not counted (repeatable)")
    v.add_argument("--compat", action="append", help="also run the compat=<library> cases (repeatable)")
    v.add_argument("--report", help="write the JSON report to this file")
    v.add_argument("-v", "--verbose", action="store_true", help="one line per case, not only failures")
    e = sub.add_parser("export", help="write the cases as files (one folder per case) and manifest.json")
    e.add_argument("directory")
    e.add_argument("--family", action="append")
    ls = sub.add_parser("list", help="list the case names")
    ls.add_argument("--family", action="append")
    u = sub.add_parser("crosscheck", help="run the upstream libraries through the golden runner (needs .venv-peers)")
    u.add_argument("--library", action="append", help="spikingjelly, neuromancer, neurotorch, ngclearn (repeatable)")
    u.add_argument("--dtype", choices=("float64", "float32"), help="one dtype only (default: both)")
    r = sub.add_parser("regenerate", help="(maintainers) regenerate refnsm/golden/data from the generators")
    r.add_argument("--check", action="store_true", help="only compare with the shipped data; write nothing")
    return p


def main(argv=None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on a usage error, 0 on --help
        return int(exc.code or 0)
    from . import BackendError, cases, export, select, verify

    if args.action == "list":
        for c in select(cases(), family=args.family):
            print(f"{c.name:70s} {','.join(c.dtypes):16s} {c.difficulty}")
        return 0
    if args.action == "export":
        path = export(args.directory, family=args.family) if args.family else export(args.directory)
        print(f"wrote {path}")
        return 0
    if args.action == "crosscheck":
        from . import upstream as U

        failed = 0
        for lib in args.library or sorted(U.BACKENDS):
            for d in ([args.dtype] if args.dtype else ["float64", "float32"]):
                try:
                    rep = U.run(lib, d)
                except ImportError as exc:
                    print(f"{lib}: cannot be imported ({exc}); run `make crosscheck`")
                    failed += 1
                    continue
                for r in rep.failures():
                    print(r.line())
                failed += not rep.ok
                print(f"{lib:13s} {d}: {rep.summary()}")
        return 1 if failed else 0
    if args.action == "regenerate":
        from .regenerate import main as regen

        return regen(check=args.check)
    t0 = time.perf_counter()

    def progress(r):
        if args.verbose or r.status in ("failed", "xpassed"):
            print(r.line(), flush=True)

    try:
        report = verify(args.backend, family=args.family, dtype=args.dtype, include=args.include,
                        exclude=args.exclude, xfail=args.xfail, compat=args.compat, progress=progress)
    except BackendError as exc:
        print(f"refnsm golden: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as exc:
        print(f"refnsm golden: {exc}", file=sys.stderr)
        return 2
    if args.report:
        report.write(args.report)
    m = report.meta
    print(f"golden suite {m['suite_version']} on {m['backend']} (device {m['device']}), dtypes {', '.join(m['dtypes'])}: "
          f"{report.summary()} in {time.perf_counter() - t0:.1f} s")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
