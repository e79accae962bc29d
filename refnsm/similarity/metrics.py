r"""Metrics for similarity matching: the similarity-matching cost, principal angles, clustering accuracy."""

from __future__ import annotations

import numpy as np

from .. import _checks

__all__ = ["similarity_matching_cost", "principal_angle_cosines", "subspace_error", "clustering_accuracy",
           "best_permutation_confusion"]


_DIRECT_COST = 1 << 26  #: T^2 (n + k) below which similarity_matching_cost forms the Gram difference


@_checks.finite_result
def similarity_matching_cost(X, Y):
    r"""The similarity mismatch :math:`\|X X^\top - Y Y^\top\|_F^2 / T^2` of ``T`` samples (rows).

    For small problems (:math:`T^2 (n + k) \le 2^{26}`) the Gram difference is formed directly, in blocks of rows,
    and squared: accurate to a few ulp of its terms even at the optimum, where the cost is 0.  Larger problems avoid
    the :math:`O(T^2)` work through
    :math:`\|XX^\top - YY^\top\|_F^2 = \|X^\top X\|_F^2 - 2\|X^\top Y\|_F^2 + \|Y^\top Y\|_F^2`, whose three terms
    cancel near the optimum: there the result has an absolute error of order :math:`\varepsilon\|X^\top X\|_F^2/T^2`
    (see ``docs/accuracy.md``).

    Parameters
    ----------
    X : array_like, shape [T, n]
    Y : array_like, shape [T, k]

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> float(sim.similarity_matching_cost(X, X))   # equal Gram matrices
    0.0
    """
    X = _checks.as_float_array(X, "X", ndim=2, shape_hint="[T, n]", dtype=np.float64, allow_empty=False)
    Y = _checks.as_float_array(Y, "Y", ndim=2, shape_hint="[T, k]", dtype=np.float64, allow_empty=False)
    _checks.check_same_dim(X, "X", 0, Y, "Y", 0, "number of samples")
    T = X.shape[0]
    if T * T * (X.shape[1] + Y.shape[1]) <= _DIRECT_COST:
        acc = 0.0
        for s in range(0, T, 256):
            D = X[s:s + 256] @ X.T - Y[s:s + 256] @ Y.T
            acc += float(np.sum(D * D))
        return acc / T**2
    xx, xy, yy = X.T @ X, X.T @ Y, Y.T @ Y
    return float((np.sum(xx * xx) - 2.0 * np.sum(xy * xy) + np.sum(yy * yy)) / T**2)


@_checks.finite_result
def principal_angle_cosines(A, B):
    r"""Cosines of the principal angles between the column spaces of ``A`` ``[n, p]`` and ``B`` ``[n, q]``.

    With orthonormal bases :math:`Q_A, Q_B` (QR), they are the singular values of :math:`Q_A^\top Q_B`
    (Björck & Golub 1973), returned in decreasing order, ``min(p, q)`` of them, clipped to [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> A = np.eye(3)[:, :2]
    >>> np.round(sim.principal_angle_cosines(A, A[:, ::-1]), 6)   # the same subspace
    array([1., 1.])
    """
    dt = _checks.result_float_dtype(A, B)
    qa, qb = _bases(A, B)
    s = np.linalg.svd(qa.T @ qb, compute_uv=False)
    return np.clip(s, 0.0, 1.0).astype(dt, copy=False)


def _bases(A, B):
    """Validated orthonormal bases (QR) of the column spaces of A and B."""
    A = _checks.as_float_array(A, "A", ndim=2, shape_hint="[n, p]", dtype=np.float64, allow_empty=False)
    B = _checks.as_float_array(B, "B", ndim=2, shape_hint="[n, q]", dtype=np.float64, allow_empty=False)
    _checks.check_same_dim(A, "A", 0, B, "B", 0, "number of rows")
    for arr, name in ((A, "A"), (B, "B")):
        if np.linalg.matrix_rank(arr) < arr.shape[1]:
            raise ValueError(f"{name}: expected full column rank {arr.shape[1]}, got rank {np.linalg.matrix_rank(arr)}")
    return np.linalg.qr(A)[0], np.linalg.qr(B)[0]


@_checks.finite_result
def subspace_error(A, B):
    r"""Principal-angle subspace error :math:`\sqrt{\sum_i \sin^2\theta_i}`, where the :math:`\theta_i` are the
    principal angles between the column spaces of ``A`` and ``B`` (equal dimension :math:`p`); it equals
    :math:`\|P_A - P_B\|_F / \sqrt2` for the orthogonal projectors, 0 for identical subspaces.  Computed as
    :math:`\|Q_B - Q_A Q_A^\top Q_B\|_F` (orthonormal bases by QR), accurate for tiny angles too.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> A = np.eye(3)[:, :2]
    >>> round(float(sim.subspace_error(A, A)), 6)
    0.0
    """
    qa, qb = _bases(A, B)
    if qa.shape[1] != qb.shape[1]:
        raise ValueError(f"B: expected {qa.shape[1]} columns like A, got {qb.shape[1]}")
    # sum sin^2 = ||(I - Q_A Q_A^T) Q_B||_F^2: formed from the residual, not as 1 - cos^2 (which cancels, so angles
    # below ~sqrt(eps) came out as 0 or as sqrt(eps) of noise)
    return float(np.linalg.norm(qb - qa @ (qa.T @ qb)))


def best_permutation_confusion(labels_true, labels_pred):
    """Confusion matrix (rows: true class, columns: predicted cluster) with its columns reordered by the
    assignment of clusters to classes that maximises the matched count (Hungarian algorithm).

    Returns ``(confusion, classes, clusters_in_matched_order)``.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> sim.best_permutation_confusion([0, 0, 1, 1], [1, 1, 0, 1])
    (array([[2, 0],
           [1, 1]]), array([0, 1]), array([1, 0]))
    """
    from scipy.optimize import linear_sum_assignment

    t = np.asarray(labels_true)
    p = np.asarray(labels_pred)
    if t.dtype.kind not in "iub":
        raise TypeError(f"labels_true: expected a 1-D integer array, got {_checks._describe(t)}")
    if t.ndim != 1:
        raise ValueError(f"labels_true: expected a 1-D integer array, got {_checks._describe(t)}")
    if p.dtype.kind not in "iub":
        raise TypeError(f"labels_pred: expected a 1-D integer array, got {_checks._describe(p)}")
    if p.ndim != 1:
        raise ValueError(f"labels_pred: expected a 1-D integer array, got {_checks._describe(p)}")
    _checks.check_same_dim(t, "labels_true", 0, p, "labels_pred", 0, "length")
    if t.size == 0:
        raise ValueError("labels_true: expected a non-empty array, got shape (0,)")
    classes, ti = np.unique(t, return_inverse=True)
    clusters, pi = np.unique(p, return_inverse=True)
    C = np.zeros((classes.size, clusters.size), dtype=np.int64)
    np.add.at(C, (ti, pi), 1)
    rows, cols = linear_sum_assignment(C, maximize=True)
    order = list(cols[np.argsort(rows)]) + [j for j in range(clusters.size) if j not in set(cols)]
    return C[:, order], classes, clusters[order]


def clustering_accuracy(labels_true, labels_pred):
    """Fraction of samples whose cluster maps to their class under the best one-to-one assignment of clusters
    to classes (samples of unmatched clusters or classes count as errors).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> float(sim.clustering_accuracy([0, 0, 1, 1], [1, 1, 0, 0]))   # labels are matched up to a permutation
    1.0
    """
    from scipy.optimize import linear_sum_assignment

    C, _, _ = best_permutation_confusion(labels_true, labels_pred)
    rows, cols = linear_sum_assignment(C, maximize=True)
    return float(C[rows, cols].sum() / C.sum())
