"""Determinism across BLAS thread counts: the exact promise of docs/reliability.md, checked.

Results are bitwise reproducible within a process, across processes and across Numba thread counts.  Across BLAS
thread counts (1 vs 2 here): paths without a BLAS call stay bitwise identical; BLAS-backed paths agree normwise to
``BLAS_NORMWISE_RTOL`` (OpenBLAS may change a reduction's order with the number of threads)."""

import pytest

pytest.importorskip("threadpoolctl")

from determinism_cases import BLAS_NORMWISE_RTOL, run  # noqa: E402  (tests/fuzz is on sys.path, see conftest)


def test_results_across_blas_thread_counts_keep_the_documented_promise():
    table = run((1, 2))
    for name, row in table.items():
        if not row["blas"]:
            assert row["bitwise"], f"{name}: no BLAS call, so it must be bitwise identical across BLAS threads"
        assert row["normwise"] <= BLAS_NORMWISE_RTOL, f"{name}: {row['normwise']:.3g} > {BLAS_NORMWISE_RTOL}"
