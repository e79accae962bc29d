"""The golden suite: versioned cases any backend (PyTorch, JAX, CUDA, C++, a student's NumPy) can be run against.

* :func:`cases` the shipped cases (``refnsm/golden/data/``; regenerated from :mod:`refnsm.golden.generators` only on a
  deliberate version bump, see ``CHANGELOG.md`` next to this file);
* :func:`verify` runs them on a backend and returns a :class:`Report`;
* :func:`export` writes them as files readable without refnsm;
* :func:`pytest_params` parametrizes a user's own tests over the cases.

The backend protocol, the tolerance policy and how to read a failure are in ``docs/golden.md``; the case format
is in :mod:`refnsm.golden._case`.  Nothing here is imported by ``import refnsm``.
"""

from __future__ import annotations

from ._case import Case
from ._runner import BackendError, NotImplementedByBackend, Report, load_backend, namespace, run_case, select, verify

#: version of the published vectors; bumped (with a CHANGELOG entry) whenever a shipped case changes
__version__ = "1.4.0"
SUITE_VERSION = __version__

__all__ = ["Case", "Report", "cases", "verify", "export", "load_backend", "namespace", "pytest_params", "run_case",
           "select", "BackendError", "NotImplementedByBackend", "SUITE_VERSION", "generate", "run",
           "cheapest_per_function"]

_CACHE = None


def cases() -> list:
    """The shipped golden cases (a fresh list; the cases themselves are shared, do not modify them)."""
    global _CACHE
    if _CACHE is None:
        from ._store import load

        _CACHE = load()[1]
    return list(_CACHE)


def generate(families=None) -> list:
    """Regenerate the cases from the generators with refnsm's float64 path (what the shipped data was made from)."""
    from .generators import FAMILIES, generate as _gen

    return _gen(families or FAMILIES)


def export(directory, **select_kwargs):
    """Write the (selected) cases to ``directory``: one folder per case and ``manifest.json``.  Returns its path."""
    from ._store import export as _export

    return _export(directory, select(cases(), **select_kwargs) if select_kwargs else None)


def run(device: str = "cpu", **verify_kwargs):
    """``verify`` of refnsm itself on ``device`` ("cpu" or "cuda"); returns the :class:`Report` (``report.ok``).

    Under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``), where every GPU thread runs in Python, ``device="cuda"``
    runs the cheapest case of each function and class in float64 (a smoke run; on a GPU every case runs).
    """
    import os

    if device == "cuda" and os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" and "cases" not in verify_kwargs:
        verify_kwargs.setdefault("dtype", "float64")
        verify_kwargs["cases"] = cheapest_per_function()
    return verify(f"refnsm:{device}", **verify_kwargs)


def cheapest_per_function(selected=None) -> list:
    """The cheapest case of each (family, function): shortest program, not an iteration to a fixed point."""
    best = {}
    for c in cases() if selected is None else selected:
        key = (c.family, c.function)
        cost = ("fixed-point" in c.variant, len(c.program), c.name)
        if key not in best or cost < best[key][0]:
            best[key] = (cost, c)
    return [c for _, c in best.values()]


def pytest_params(**select_kwargs):
    """``pytest.param`` objects (id = case name) for ``@pytest.mark.parametrize("case", pytest_params())``.

    Then, in the test: ``r = refnsm.golden.run_case(case, my_backend, "float32"); assert r.status != "failed", r.line()``.
    """
    import pytest

    return [pytest.param(c, id=c.name) for c in select(cases(), **select_kwargs)]
