"""Cases for the BLAS-thread-count determinism check (tests/fuzz/test_determinism.py and ``make fuzz``).

Each case is ``name -> (uses_blas, thunk)``.  The promise (docs/reliability.md): a case without a BLAS call is
bitwise identical for every BLAS thread count; a case with one agrees to ``BLAS_NORMWISE_RTOL`` normwise
(``max|a - b| <= rtol * max|a|``), because OpenBLAS may split a reduction differently with more threads.
Sizes are large enough for OpenBLAS to use more than one thread."""

import numpy as np

#: normwise agreement promised for BLAS-backed results across BLAS thread counts (the measured differences of the
#: last make fuzz run are in docs/reliability.md; the spectral-norm gradient is the largest)
BLAS_NORMWISE_RTOL = 1e-11


def cases():
    import refnsm.hopfield as H
    import refnsm.linear as L
    import refnsm.regularization as R
    import refnsm.similarity as SIM
    import refnsm.spiking as S

    rng = np.random.default_rng(0)
    X = rng.standard_normal((96, 1024))
    Y = np.eye(96)[:, :8]
    A, B = rng.standard_normal((400, 40)), rng.standard_normal((400, 40))
    W = rng.standard_normal((300, 300))
    Xs, Ws = rng.standard_normal((64, 200)), rng.standard_normal((200, 300))
    lab = np.eye(8)[rng.integers(0, 8, 64)]
    x_seq = rng.standard_normal((4, 64, 10))
    tgt = rng.integers(0, 10, 64)
    Xi = np.where(rng.standard_normal((256, 8)) > 0, 1.0, -1.0)
    S0 = np.where(rng.standard_normal((16, 256)) > 0, 1.0, -1.0)
    U = np.triu(rng.standard_normal((64, 64))) + 3 * np.eye(64)

    def supervised():
        model = SIM.SupervisedSimilarityMatching(SIM.Linear(200, 32, rng=0), 8, 32, rng=1)
        return model(Xs, lab)

    return {
        # BLAS-backed
        "spike_similarity_matrix": (True, lambda: S.spike_similarity_matrix(X)),
        "spike_similar_loss_vjp": (True, lambda: S.spike_similar_loss_vjp(None, X, Y)),
        "kernel_dot_product": (True, lambda: S.kernel_dot_product(X, X[:50])),
        "principal_angle_cosines": (True, lambda: SIM.principal_angle_cosines(A, B)),
        "lp_norm_vjp(p=2, matrix)": (True, lambda: R.lp_norm_vjp(None, W, 2)),
        "retrieve": (True, lambda: H.retrieve(Xs, Ws, 2.0)[2]),
        "SupervisedSimilarityMatching.forward": (True, supervised),
        "Linear.forward": (True, lambda: L.Linear(300, 300, rng=0).forward(W)),
        # no BLAS call
        "tet_loss_vjp": (False, lambda: S.tet_loss_vjp(None, x_seq, tgt)),
        "exc_ratio_loss_vjp": (False, lambda: R.exc_ratio_loss_vjp(None, W)),
        "classical_update(async)": (False, lambda: H.classical_update(S0, H.hebbian_weights(Xi), mode="async",
                                                                      n_sweeps=4, rng=0)),
        "dense_update": (False, lambda: H.dense_update(S0, Xi, n_sweeps=4, rng=0)),
        "householder_matrix": (False, lambda: L.householder_matrix(U)),
    }


def run(thread_counts=(1, 2)):
    """{name: {"blas": bool, "bitwise": bool, "normwise": float}} comparing results across BLAS thread counts."""
    import scipy.linalg  # noqa: F401  (load SciPy's OpenBLAS, the one the Numba kernels call, before limiting it)
    from threadpoolctl import threadpool_limits

    table = cases()
    results = {n: {} for n in thread_counts}
    for n in thread_counts:
        with threadpool_limits(limits=n, user_api="blas"):
            for name, (_, thunk) in table.items():
                results[n][name] = np.asarray(thunk(), dtype=np.float64)
    out = {}
    base = results[thread_counts[0]]
    for name, (blas, _) in table.items():
        a = base[name]
        worst, bitwise = 0.0, True
        for n in thread_counts[1:]:
            b = results[n][name]
            bitwise &= bool(np.array_equal(a, b))
            scale = float(np.max(np.abs(a))) if a.size else 0.0
            worst = max(worst, float(np.max(np.abs(a - b))) / scale if scale else 0.0)
        out[name] = {"blas": blas, "bitwise": bitwise, "normwise": worst}
    return out
