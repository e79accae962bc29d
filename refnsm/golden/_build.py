"""Turn a generated case (program + inputs) into a golden case: expected values, scales, conditioning, tolerances."""

from __future__ import annotations

import numpy as np

from . import _policy
from ._case import Case
from ._runner import run_program


def _as_float64(value):
    return np.asarray(value, dtype=np.float64)


def finalize(case: Case, backend=None, rng_seed: int = 20261203) -> Case:
    """Fill ``expected``, ``scales``, ``conditioning``, ``tolerance`` from refnsm's float64 path (in place)."""
    if backend is None:
        from .backend import refnsm_backend
        backend = refnsm_backend("cpu")
    for k, v in case.inputs.items():
        v = np.asarray(v)
        if v.dtype.kind == "f" and "float32" in case.dtypes and not np.array_equal(v.astype(np.float32), v):
            raise ValueError(f"{case.name}: input {k!r} is not exactly representable in float32")
    out = {k: _as_float64(v) for k, v in run_program(case, backend, "float64").items()}
    case.expected = out
    # a declared term scale may be a number or a function of (expected outputs, inputs)
    terms = {k: (v(out, case.inputs) if callable(v) else v) for k, v in case.term_scale.items()}
    case.scales = {k: _policy.scale_of(v, terms.get(k)) for k, v in out.items()}
    # conditioning: relative perturbations of the float inputs that are not held
    gen = np.random.default_rng(rng_seed)
    kappa = {k: 0.0 for k in out}
    pert = [k for k, v in case.inputs.items() if np.asarray(v).dtype.kind == "f" and k not in case.hold]
    if pert:
        for _ in range(_policy.TRIALS):
            inputs = dict(case.inputs)
            for k in pert:
                v = np.asarray(case.inputs[k], dtype=np.float64)
                inputs[k] = v * (1.0 + _policy.DELTA * gen.uniform(-1.0, 1.0, size=v.shape))
            try:
                o2 = run_program(case, backend, "float64", inputs=inputs)
            except Exception:  # the perturbation left the domain (e.g. a bce input pushed above 1)
                continue
            for k in out:
                d = np.abs(_as_float64(o2[k]) - out[k])
                if d.size:
                    kappa[k] = max(kappa[k], float(np.max(d)) / (case.scales[k] * _policy.DELTA))
    kappa = {k: max(1.0, v) for k, v in kappa.items()}
    kappa.update(case.kappa)
    case.conditioning = {k: float(f"{v:.3g}") for k, v in kappa.items()}
    case.tolerance = {}
    dropped = []
    for d in case.dtypes:
        tol = {k: float(f"{_policy.rtol(d, kappa[k]):.3g}") for k in out}
        if d == "float32" and max(tol.values(), default=0.0) > _policy.MAX_RTOL32 and "float32" in case.dtypes:
            dropped.append(d)
            continue
        case.tolerance[d] = tol
    if dropped:
        worst = max(kappa, key=kappa.get)
        case.dtypes = tuple(d for d in case.dtypes if d not in dropped)
        case.tolerance_reason += (f" float64 only: {worst} has conditioning {kappa[worst]:.2g}, beyond what float32 "
                                  f"can resolve.").lstrip()
    if not case.tolerance_reason:
        case.tolerance_reason = "policy: max(floor, 128 u kappa), kappa estimated by relative input perturbation"
    return case
