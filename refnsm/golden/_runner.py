"""The runner: execute a case's program on a backend, compare, report."""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from . import _policy
from ._case import Case

from ._errors import FAMILIES, NotImplementedByBackend  # noqa: F401  (re-exported)


class InputMutated(Exception):
    """The backend wrote into an input array."""


class BackendError(Exception):
    """The backend could not be loaded (exit status 2)."""


# ------------------------------------------------------------------------------------------------ backends
def load_backend(spec):
    """A backend from a module object, a namespace, ``"refnsm"`` / ``"refnsm:cuda"``, a ``.py`` file or a module name."""
    if not isinstance(spec, str):
        return spec
    if spec in ("refnsm", "refnsm:cpu"):
        from .backend import refnsm_backend
        return refnsm_backend("cpu")
    if spec == "refnsm:cuda":
        from .backend import refnsm_backend
        return refnsm_backend("cuda")
    if spec.endswith(".py") or os.path.sep in spec:
        path = Path(spec)
        if not path.is_file():
            raise BackendError(f"--backend: no such file {spec!r}")
        modname = f"_refnsm_golden_backend_{abs(hash(str(path.resolve())))}"
        loader = importlib.util.spec_from_file_location(modname, path)
        module = importlib.util.module_from_spec(loader)
        sys.modules[modname] = module
        module.BACKEND_NAME = path.name  # the file may override it
        try:
            loader.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[modname]
            raise BackendError(f"--backend: {spec} failed to import: {type(exc).__name__}: {exc}") from exc
        return module
    try:
        return importlib.import_module(spec)
    except Exception as exc:
        raise BackendError(f"--backend: cannot import module {spec!r}: {type(exc).__name__}: {exc}") from exc


def backend_name(backend) -> str:
    return str(getattr(backend, "BACKEND_NAME", getattr(backend, "__name__", type(backend).__name__)))


def backend_device(backend) -> str:
    return str(getattr(backend, "DEVICE", "unknown"))


# ---------------------------------------------------------------------------------------------- execution
def _lookup(ns, name: str, where: str):
    try:
        return getattr(ns, name)
    except AttributeError:
        raise NotImplementedByBackend(f"{where} has no {name!r}") from None


def _follow(value, path, where):
    for p in path:
        if isinstance(p, int):
            value = value[p]
        elif isinstance(value, Mapping):
            if p not in value:
                raise KeyError(f"{where}: the result has no key {p!r} (keys: {sorted(value)})")
            value = value[p]
        else:
            if not hasattr(value, p):
                raise AttributeError(f"{where}: the result ({type(value).__name__}) has no attribute {p!r}")
            value = getattr(value, p)
    return value


def _cast_input(a: np.ndarray, dtype):
    if a.dtype.kind == "f":
        return a.astype(dtype)  # a copy: the backend may not write into the suite's arrays
    return a.copy()


def run_program(case: Case, backend, dtype="float64", inputs=None):
    """Run ``case.program`` on ``backend`` with float inputs in ``dtype``; returns ``{output: value}`` (raw)."""
    fam_name = case.family
    try:
        fam = getattr(backend, fam_name)
    except AttributeError:
        raise NotImplementedByBackend(f"the backend has no family {fam_name!r}") from None
    dt = np.dtype(dtype)
    src = case.inputs if inputs is None else inputs
    arrays = {k: _cast_input(np.asarray(v), dt) for k, v in src.items()}
    results, objects, outputs = {}, {}, {}

    def resolve(a):
        if isinstance(a, dict):
            if set(a) == {"input"}:
                return arrays[a["input"]]
            if set(a) == {"copy"}:  # a fresh copy, for callables that update their argument in place
                return arrays[a["copy"]].copy()
            if set(a) == {"result", "path"}:
                return _follow(results[a["result"]], a["path"], a["result"])
            if set(a) == {"object"}:
                return objects[a["object"]]
            if set(a) == {"dtype"}:
                return dt
            if set(a) == {"float"}:  # JSON has no inf: {"float": "inf"} / {"float": "-inf"}
                return float(a["float"])
            return {k: resolve(v) for k, v in a.items()}
        if isinstance(a, list):
            return [resolve(v) for v in a]
        return a

    # every callable is looked up before anything runs, so a missing name skips the case cleanly
    for step in case.program:
        name = step.get("call", step.get("new"))
        if name is not None and step.get("on") is None:
            _lookup(fam, name, f"{fam_name}")
    for step in case.program:
        args = [resolve(a) for a in step.get("args", [])]
        kwargs = {k: resolve(v) for k, v in step.get("kwargs", {}).items()}
        if "new" in step:
            objects[step["as"]] = _lookup(fam, step["new"], fam_name)(*args, **kwargs)
            continue
        target = fam if step.get("on") is None else objects[step["on"]]
        where = fam_name if step.get("on") is None else f"{fam_name}.{step['on']} ({type(target).__name__})"
        if "get" in step:
            value = _lookup(target, step["get"], where)
        else:
            value = _lookup(target, step["call"], where)(*args, **kwargs)
        if step.get("as"):
            results[step["as"]] = value
        for out, path in step.get("save", {}).items():
            value_out = _follow(value, path, f"{where}.{step.get('call', step.get('get'))}")
            # the value at this step: a later in-place update (an optimizer step) must not change a saved array
            outputs[out] = value_out.copy() if isinstance(value_out, np.ndarray) else value_out
    for k, v in arrays.items():
        if not np.array_equal(v, _cast_input(np.asarray(src[k]), dt), equal_nan=True):
            raise InputMutated(f"the backend wrote into its input {k!r} (inputs must be left unchanged)")
    return outputs


# ---------------------------------------------------------------------------------------------- reporting
@dataclass
class CaseResult:
    name: str
    dtype: str
    status: str  # "passed", "failed", "not implemented", "xfailed", "xpassed"
    message: str = ""
    outputs: dict = field(default_factory=dict)

    def as_dict(self):
        return {"name": self.name, "dtype": self.dtype, "status": self.status, "message": self.message,
                "outputs": self.outputs}

    def line(self) -> str:
        worst = ""
        if self.outputs:
            bad = {k: o for k, o in self.outputs.items() if not o["passed"]} or self.outputs
            k, o = max(bad.items(), key=lambda kv: kv[1]["rel"] / max(kv[1]["tol"], 1e-300))
            worst = (f"  worst {k}: err {o['rel']:.2e} (tol {o['tol']:.1e}), max abs {o['max_abs']:.2e}, "
                     f"normwise rel {o['normwise_rel']:.2e}, {o['ulps']:.3g} ulp")
            if not o["passed"]:
                worst += f" at {tuple(o['worst_index'])}: got {o['got']}, expected {o['expected']}"
        msg = f"  {self.message}" if self.message else ""
        show_worst = not self.message or any(not o["passed"] for o in self.outputs.values())
        return f"{self.status.upper():15s} {self.name} [{self.dtype}]{msg}{worst if show_worst else ''}"


@dataclass
class Report:
    results: list
    meta: dict

    @property
    def counts(self) -> dict:
        c = {"passed": 0, "failed": 0, "not implemented": 0, "xfailed": 0, "xpassed": 0}
        for r in self.results:
            c[r.status] += 1
        return c

    @property
    def ok(self) -> bool:
        c = self.counts
        return c["failed"] == 0 and c["xpassed"] == 0

    def summary(self) -> str:
        c = self.counts
        s = f"{c['passed']} passed, {c['failed']} failed, {c['not implemented']} not implemented"
        if c["xfailed"] or c["xpassed"]:
            s += f", {c['xfailed']} xfailed, {c['xpassed']} xpassed"
        return s

    def __str__(self):
        return self.summary()

    def failures(self) -> list:
        return [r for r in self.results if r.status in ("failed", "xpassed")]

    def as_dict(self) -> dict:
        return {**self.meta, "summary": self.summary(), "counts": self.counts,
                "results": [r.as_dict() for r in self.results]}

    def write(self, path):
        Path(path).write_text(json.dumps(self.as_dict(), indent=1))


def _check_output(name, got, exp, dtype):
    """A message for a malformed output (wrong type, shape, dtype, NaN), or None."""
    if isinstance(got, (float, int, np.floating, np.integer)) and not isinstance(got, bool):
        arr = np.asarray(got)
        scalar_py = isinstance(got, (float, int))
    else:
        scalar_py = False
        try:
            arr = np.asarray(got)
        except Exception as exc:
            return f"{name}: returned a {type(got).__name__} that is not convertible to an array ({exc})"
    if arr.dtype == object or arr.dtype.kind not in "fiub":
        return f"{name}: expected a real array, got {type(got).__name__} of dtype {arr.dtype}"
    if arr.shape != np.shape(exp):
        return f"{name}: wrong shape, expected {np.shape(exp)}, got {arr.shape}"
    if not scalar_py and arr.dtype.kind == "f" and arr.dtype != np.dtype(dtype):
        return f"{name}: wrong dtype, expected {dtype} (the inputs' dtype), got {arr.dtype}"
    e = np.asarray(exp, dtype=np.float64)
    bad = np.isnan(arr) & ~np.isnan(e)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        return f"{name}: NaN at {idx} (expected {float(e[idx] if e.ndim else e)!r}); {int(bad.sum())} NaN in all"
    bad = np.isinf(arr) & np.isfinite(e)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        return f"{name}: {float(arr[idx] if arr.ndim else arr)} at {idx} (expected {float(e[idx] if e.ndim else e)!r})"
    return None


def run_case(case: Case, backend, dtype: str) -> CaseResult:
    try:
        got = run_program(case, backend, dtype)
    except NotImplementedByBackend as exc:
        return CaseResult(case.name, dtype, "not implemented", str(exc))
    except InputMutated as exc:
        return CaseResult(case.name, dtype, "failed", str(exc))
    except NotImplementedError as exc:
        if str(exc).startswith("device:"):  # refnsm's refusal of a device mid-program (the step-by-step
            return CaseResult(case.name, dtype, "not implemented", str(exc))  # iteration on "cuda")
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" ({Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
        return CaseResult(case.name, dtype, "failed", f"the backend raised {type(exc).__name__}: {exc}{where}")
    except Exception as exc:
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" ({Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
        return CaseResult(case.name, dtype, "failed", f"the backend raised {type(exc).__name__}: {exc}{where}")
    outputs, messages, passed = {}, [], True
    for out in case.outputs():
        exp = case.expected[out]
        msg = _check_output(out, got.get(out), exp, dtype) if out in got else f"{out}: not produced"
        if msg:
            messages.append(msg)
            passed = False
            continue
        tol = case.tolerance[dtype][out]
        o = _policy.compare(np.asarray(got[out]), exp, case.scales[out], tol, dtype)
        outputs[out] = o
        passed &= o["passed"]
    return CaseResult(case.name, dtype, "passed" if passed else "failed", "; ".join(messages), outputs)


# ---------------------------------------------------------------------------------------------- selection
def _patterns(p):
    if p is None:
        return []
    if isinstance(p, str):
        p = [p]
    out = []
    for item in p:
        path = Path(item)
        if ("*" not in item and "?" not in item) and path.is_file():
            out += [ln.split("#")[0].strip() for ln in path.read_text().splitlines() if ln.split("#")[0].strip()]
        else:
            out.append(item)
    return out


def _matches(name, pats):
    return any(fnmatch.fnmatchcase(name, p) or name == p or name.startswith(p + ".") for p in pats)


def select(cases, family=None, include=None, exclude=None, compat=None):
    fams = [family] if isinstance(family, str) else family
    compat = [compat] if isinstance(compat, str) else (compat or [])
    inc, exc = _patterns(include), _patterns(exclude)
    out = []
    for c in cases:
        if fams and c.family not in fams:
            continue
        if c.compat is not None and c.compat not in compat:
            continue
        if inc and not _matches(c.name, inc):
            continue
        if exc and _matches(c.name, exc):
            continue
        out.append(c)
    return out


def _commit():
    try:
        root = Path(__file__).resolve().parents[2]
        r = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return r.stdout.strip() or None
    except Exception:
        return None


def verify(backend, *, family=None, dtype=None, include=None, exclude=None, xfail=None, compat=None, cases=None,
           progress=None) -> Report:
    """Run the golden cases on ``backend`` and return a :class:`Report` (``report.ok``, ``report.summary()``).

    Parameters
    ----------
    backend : module, namespace, or str
        An object with one attribute per family (see ``docs/golden.md``), ``"refnsm"``, ``"refnsm:cuda"``, a
        ``.py`` file or an importable module name.
    family : str or list of str, optional
    dtype : "float64", "float32" or None (both)
    include, exclude, xfail : glob pattern(s) on case names, or files of patterns (one a line)
    compat : str or list, optional
        Also run the cases that reproduce these upstream libraries' quirks (``compat=`` cases, off by default).
    cases : list of Case, optional
        Defaults to the shipped suite (:func:`refnsm.golden.cases`).
    """
    from . import __version__ as suite_version, cases as all_cases
    import refnsm

    backend = load_backend(backend)
    dtypes = [dtype] if isinstance(dtype, str) else list(dtype or ("float64", "float32"))
    for d in dtypes:
        if d not in ("float64", "float32"):
            raise ValueError(f"dtype: expected 'float64' or 'float32', got {d!r}")
    chosen = select(all_cases() if cases is None else cases, family, include, exclude, compat)
    xf = _patterns(xfail)
    results = []
    for c in chosen:
        for d in dtypes:
            if d not in c.dtypes:
                continue
            r = run_case(c, backend, d)
            if xf and _matches(c.name, xf):
                if r.status == "failed":
                    r.status = "xfailed"
                elif r.status == "passed":
                    r.status = "xpassed"
            results.append(r)
            if progress:
                progress(r)
    meta = {
        "suite_version": suite_version,
        "refnsm_version": refnsm.__version__,
        "refnsm_commit": _commit(),
        "backend": backend_name(backend),
        "device": backend_device(backend),
        "platform": f"{platform.platform()} python {platform.python_version()} numpy {np.__version__}",
        "dtypes": dtypes,
    }
    return Report(results, meta)


def namespace(**families) -> SimpleNamespace:
    """Convenience: ``namespace(spiking=my_spiking_module, ...)`` is a valid backend."""
    return SimpleNamespace(**families)
