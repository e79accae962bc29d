r"""Spike similarity and TET losses, mirroring spikingjelly 2.0.0 (``activation_based.functional.loss``).

Notation: :math:`X \in \mathbb{R}^{N \times D}` are the spikes flattened per sample, :math:`G = X X^\top`,
:math:`A = \partial L / \partial S`, :math:`\odot` and :math:`\oslash` elementwise product and division.

Similarity kernels (:func:`kernel_dot_product`), for rows :math:`x_i` of ``x`` and :math:`y_j` of ``y``:

* linear      :math:`K_{ij} = x_i \cdot y_j`
* polynomial  :math:`K_{ij} = (x_i \cdot y_j)^d` (no offset, no scale)
* sigmoid     :math:`K_{ij} = \sigma(\alpha\, x_i \cdot y_j)`
* gaussian    :math:`K_{ij} = \exp(-(\|x_i\|^2 + \|y_j\|^2 - 2 x_i \cdot y_j) / (2\sigma^2))`

Spike similarity loss (:func:`spike_similar_loss`): the output similarity
:math:`S = \kappa(X, X)`, cosine-normalised for the linear kernel as
:math:`S_{ij} = G_{ij} / (\|x_i\| \|x_j\| + 10^{-8})`, is pulled toward the label co-occurrence matrix
:math:`Y = \min(L L^\top, 1)` by a loss averaged over **all** :math:`N^2` pairs (diagonal included):
``mse`` :math:`\overline{(S-Y)^2}`, ``l1`` :math:`\overline{|S-Y|}`, ``bce``
:math:`-\overline{Y \max(\log S, -100) + (1-Y)\max(\log(1-S), -100)}`.

TET (Deng et al., ICLR 2022, :func:`temporal_efficient_training_cross_entropy`): the cross-entropy applied at every
time step and averaged, :math:`L = \frac1T \sum_t \mathrm{CE}(x_t, y)`, instead of the cross-entropy of the
time-averaged output (:func:`time_mean_cross_entropy`, the "SDT" baseline).  :class:`TETLoss` adds the paper's
regulariser :math:`\lambda\,\overline{(x - \phi)^2}`.

GPU: the functions that take ``device`` run the code below unchanged with ``device="cuda"``, with the kernel module
and array namespace of :func:`refnsm._backend.get` (:mod:`refnsm.spiking._cuda_kernels`, the twins of
:mod:`refnsm.spiking._kernels`, imported only then); inputs may be NumPy arrays (copied over, results returned as
NumPy) or Numba device arrays (kept on the device); validation and messages are the same.  See ``docs/cuda.md``.

Gradients (derived in the docstrings below and checked against finite differences in ``tests/``) follow
torch's conventions where they are sound: :math:`\mathrm{sign}(0) = 0` in L1, the BCE gradient
:math:`(S - Y)/\max(S(1-S), \epsilon)` with torch's :math:`\epsilon` (the float32 literal ``1e-12f``), the zero
norm-gradient of an all-zero row.  Where spikingjelly misbehaves refnsm does better and says so
(``docs/upstream_differences.md``).
"""

from __future__ import annotations

import math

import numpy as np

from .. import _backend
from .. import _checks
from . import _kernels

__all__ = [
    "kernel_dot_product",
    "kernel_dot_product_vjp",
    "spike_similarity_matrix",
    "spike_similarity_matrix_vjp",
    "label_similarity_matrix",
    "spike_similar_loss",
    "spike_similar_loss_vjp",
    "spike_similar_loss_value_and_grad",
    "temporal_efficient_training_cross_entropy",
    "temporal_efficient_training_cross_entropy_vjp",
    "temporal_efficient_training_cross_entropy_value_and_grad",
    "time_mean_cross_entropy",
    "time_mean_cross_entropy_vjp",
    "tet_loss",
    "tet_loss_vjp",
    "TETLoss",
    "firing_rate_mse",
    "firing_rate_mse_vjp",
    "KERNELS",
    "LOSSES",
]

KERNELS = ("linear", "polynomial", "sigmoid", "gaussian")
LOSSES = ("mse", "l1", "bce")
_KERNEL_CODE = {"linear": _kernels.LINEAR, "polynomial": _kernels.POLYNOMIAL, "sigmoid": _kernels.SIGMOID,
                "gaussian": _kernels.GAUSSIAN}
_KERNEL_ARG = {"polynomial": "d (the exponent)", "sigmoid": "alpha (the slope)", "gaussian": "sigma (the width)"}
#: the name the kernel argument goes by in error messages (built once, not per call)
_KERNEL_ARG_NAME = {k: f"{k} kernel argument {v.split()[0]}" for k, v in _KERNEL_ARG.items()}
_LOSS_CODE = {"mse": _kernels.MSE, "l1": _kernels.L1, "bce": _kernels.BCE}

#: epsilon of the cosine normalisation, added after the outer product of the row norms (spikingjelly)
COSINE_EPS = 1e-8
#: epsilon in torch's BCE gradient: the C float literal 1e-12f (eager CPU kernel), i.e. 9.999999960041972e-13
BCE_EPS = float(np.float32(1e-12))
#: the ignore_index of torch's cross-entropy
IGNORE_INDEX = -100


# ----------------------------------------------------------------------------------------------- validation
DEVICES = _backend.DEVICES
COMPAT = (None, "spikingjelly")
HOST = _backend.HOST  # the validators take the device's array namespace ``xp`` (refnsm._backend)


def _check_compat(compat):
    return _backend.check_compat(compat, COMPAT)


def _kernel_spec(kernel, args, name="kernel"):
    """Validate a kernel name and its positional argument; return (code, parameter)."""
    _checks.check_option(kernel, name, KERNELS)
    if kernel == "linear":
        if args:
            raise TypeError(f"{name}: 'linear' takes no kernel argument, got {len(args)}: {args!r}")
        return _kernels.LINEAR, 0.0
    what = _KERNEL_ARG[kernel]
    if len(args) != 1:
        raise TypeError(
            f"{name}: {kernel!r} needs exactly one kernel argument, {what}, passed positionally after the "
            f"kernel name; got {len(args)}: {args!r}"
        )
    p = _checks.check_real(args[0], _KERNEL_ARG_NAME[kernel], positive=kernel == "gaussian")
    return _KERNEL_CODE[kernel], p


def _check_kernel_domain(code, p, dtype, *named):
    r"""Refuse, before any work, kernel arguments whose value the kernel cannot form in ``dtype``.

    * polynomial with a non-integer ``d``: :math:`G^d` is undefined (NaN) for a negative dot product, so every
      input must be non-negative (spike trains are);
    * gaussian: :math:`2\sigma^2` is what the kernel divides by; it must not underflow to 0 in ``dtype``."""
    if code == _kernels.POLYNOMIAL and not float(p).is_integer() and all(isinstance(a, np.ndarray) for a, _ in named):
        for arr, name in named:
            if arr.size and arr.min() < 0:
                idx = tuple(int(i) for i in np.argwhere(arr < 0)[0])
                raise ValueError(
                    f"{name}: the polynomial kernel with non-integer d = {p!r} needs non-negative inputs "
                    f"((x_i . y_j)^d is undefined for a negative dot product), got {arr[idx]!r} at index {idx}; "
                    f"use an integer d or non-negative inputs"
                )
    if code != _kernels.GAUSSIAN:
        return
    smallest = float(np.finfo(dtype).smallest_normal)
    if not float(np.dtype(dtype).type(2.0 * p * p)) >= smallest:
        raise ValueError(
            f"gaussian kernel argument sigma: 2 * sigma**2 underflows in {np.dtype(dtype)} (the kernel divides "
            f"by it); expected sigma >= {np.sqrt(smallest / 2):.4g}, got {p!r}"
        )


#: the largest float32 and float64 by item size (np.finfo per call costs a microsecond at training-step sizes)
_FLOAT_MAX = {4: float(np.finfo(np.float32).max), 8: float(np.finfo(np.float64).max)}


def _cosine_limit(dtype, D):
    """The largest max|X| for which the cosine's Gram matrix of rows of length D cannot overflow in ``dtype``."""
    return math.sqrt(_FLOAT_MAX[np.dtype(dtype).itemsize] / (4.0 * max(D, 1)))


def _cosine_scaled(X, code):
    r"""(X', eps', 1/c) for the cosine similarity of rows of entries so large that :math:`G = XX^\top` would overflow.

    The cosine :math:`S_{ij} = G_{ij}/(r_ir_j + \epsilon)` is scale-invariant up to :math:`\epsilon`:
    with :math:`X = cX'` (:math:`c` a power of 2, so the scaling is exact),
    :math:`S = G'_{ij}/(r'_ir'_j + \epsilon/c^2)` and :math:`\partial L/\partial X = c^{-1}\,\partial L/\partial X'`.
    Only the linear kernel and only when :math:`D\max|X|^2` could overflow; otherwise ``(X, COSINE_EPS, 1.0)``.
    (:math:`\epsilon/c^2` is kept at least the square root of the smallest normal number, so an all-zero row still
    gives 0 and the VJP's :math:`P^2 = (r_ir_j + \epsilon)^2` does not underflow.)"""
    if code != _kernels.LINEAR or X.size == 0 or not isinstance(X, np.ndarray):  # device arrays: not rescaled
        return X, COSINE_EPS, 1.0
    big = _kernels.max_abs(X)  # one pass, no |X| temporary (16 MB at N=512, D=4096)
    if big <= _cosine_limit(X.dtype, X.shape[1]):
        return X, COSINE_EPS, 1.0
    fi = np.finfo(X.dtype)
    k = int(np.frexp(big)[1])
    inv_c = float(np.ldexp(1.0, -k))
    eps = max(float(np.ldexp(COSINE_EPS, -2 * k)), float(np.sqrt(fi.smallest_normal)))
    return np.ascontiguousarray(X * X.dtype.type(inv_c)), eps, inv_c


def _flatten_spikes(spikes, dtype=None, xp=HOST):
    X = xp.asarray(spikes, "spikes", min_ndim=2, shape_hint="[N, ...] (batch first)", dtype=dtype)
    if X.shape[0] == 0:
        raise ValueError(f"spikes: expected at least one sample, got shape {X.shape}")
    return X, X.reshape(X.shape[0], X.size // X.shape[0])


def _labels_for(labels, n, dtype, compat, xp=HOST):
    """Validated labels [n, C] in the dtype the label matrix is formed in.

    spikingjelly forms Y in float32 whatever the spikes' dtype (labels.float()); refnsm uses the spikes' dtype
    unless compat="spikingjelly".  For 0/1 labels the two are identical."""
    L = xp.as_real(labels, "labels", ndim=2, shape_hint="[N, C] (multi-hot)")
    if L.shape[0] != n:
        raise ValueError(f"labels: expected {n} rows to match spikes' batch size, got shape {L.shape}")
    return xp.astype(L, np.float32 if compat == "spikingjelly" else dtype)


_GRAM_IN_KERNEL_BELOW = 1 << 20  # N^2 D
#: "form G in the kernel", by item size (only the shape is read; never written)
_NO_GRAM = {4: np.zeros((0, 0), np.float32), 8: np.zeros((0, 0), np.float64)}


def _gram(X):
    """G = X X^T by BLAS syrk (half the flops of a general product, exactly symmetric).

    SciPy's BLAS, not NumPy's ``X @ X.T``: the Numba kernels' ``np.dot`` calls SciPy's OpenBLAS, and NumPy wheels
    bundle a second OpenBLAS with its own thread pool; alternating the two makes their spinning threads fight
    for the cores (measured: 90 ms instead of 41 ms for the two products at N=512, D=4096 on 2 cores)."""
    n = X.shape[0]
    if X.size == 0:
        return np.zeros((n, n), dtype=X.dtype)
    from scipy.linalg import blas

    syrk = blas.dsyrk if X.dtype == np.float64 else blas.ssyrk
    # X.T is an F-ordered [D, N] view (no copy); trans=1 gives (X.T)^T X.T = X X^T, upper triangle only
    return _kernels.symmetric_from_upper(syrk(1.0, X.T, trans=1))


def _gram_matrix(kernels, xp, X):
    """``G = X X^T`` where the kernels run: BLAS syrk on the host (:func:`_gram`), the tiled product on the device."""
    return _gram(X) if xp is HOST else kernels.gram_matrix(X)


def _bce_range_check(S, Y, kernel, dtype):
    if not ((S >= 0) & (S <= 1)).all():
        idx = tuple(int(i) for i in np.argwhere(~((S >= 0) & (S <= 1)))[0])
        v = S[idx]
        if kernel == "linear" and v > 1:
            why = ("the cosine diagonal ||x||^2 / (||x||^2 + 1e-8) rounds above 1 in float32 because 1e-8 is below "
                   "float32 resolution; compute in float64" if dtype == np.float32 else "rounding of the cosine similarity")
        elif kernel == "linear":
            why = "the cosine similarity of signed inputs lies in [-1, 1]; BCE needs non-negative spikes"
        elif kernel == "gaussian":
            why = ("cancellation in ||x||^2 + ||y||^2 - 2 x.y made a squared distance slightly negative, as happens "
                   "with real-valued (e.g. smoothed) spikes; binary spikes give exact distances")
        elif kernel == "polynomial":
            why = "the polynomial kernel is not normalised"
        else:
            why = "the sigmoid kernel rounded outside [0, 1]"
        raise ValueError(
            f"spikes: loss_type 'bce' needs the similarity matrix S in [0, 1], but S{list(idx)} = {float(v)!r} "
            f"(kernel {kernel!r}): {why}. Use loss_type 'mse' or 'l1' for this kernel and data."
        )
    if not ((Y >= 0) & (Y <= 1)).all():
        idx = tuple(int(i) for i in np.argwhere(~((Y >= 0) & (Y <= 1)))[0])
        raise ValueError(
            f"labels: loss_type 'bce' needs the label matrix min(L L^T, 1) in [0, 1], but it is {float(Y[idx])!r} at "
            f"{list(idx)}; labels must be non-negative"
        )


# --------------------------------------------------------------------------------------- kernel_dot_product
def _kernel_dot_product_args(x, y, kernel, args, compat, xp=HOST):
    _check_compat(compat)
    dtype = xp.dtype_of(x, y)
    x = xp.asarray(x, "x", ndim=2, shape_hint="[Nx, M]", dtype=dtype)
    y = xp.asarray(y, "y", ndim=2, shape_hint="[Ny, M]", dtype=dtype)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"y: expected {x.shape[1]} columns to match x (shape {x.shape}), got shape {y.shape}")
    code, p = _kernel_spec(kernel, args)
    _check_kernel_domain(code, p, dtype, (x, "x"), (y, "y"))
    tile = False
    if code == _kernels.GAUSSIAN and x.shape[0] != y.shape[0] and x.shape[0] != 1:
        if compat == "spikingjelly" and y.shape[0] == 1:
            tile = True
        else:
            raise ValueError(
                f"y: the gaussian kernel needs as many rows as x (or x with one row); got x {tuple(x.shape)} and y "
                f"{tuple(y.shape)}. spikingjelly returns a wrong [Nx, Nx] matrix for Ny = 1 and crashes otherwise; "
                f"pass compat='spikingjelly' to reproduce the Ny = 1 output"
            )
    return x, y, code, p, tile


@_checks.finite_result
def kernel_dot_product(x, y, kernel="linear", *args, compat=None, device="cpu"):
    r"""Kernel matrix :math:`K_{ij} = \kappa(x_i, y_j)` between the rows of ``x`` and ``y``.

    Parameters
    ----------
    x : array_like, shape [Nx, M]
    y : array_like, shape [Ny, M]
    kernel : {"linear", "polynomial", "sigmoid", "gaussian"}
        ``linear`` :math:`x_i\cdot y_j`; ``polynomial`` :math:`(x_i\cdot y_j)^d`; ``sigmoid``
        :math:`\sigma(\alpha\,x_i\cdot y_j)`; ``gaussian``
        :math:`\exp(-(\|x_i\|^2+\|y_j\|^2-2x_i\cdot y_j)/(2\sigma^2))`, the squared distance expanded in exactly
        that order (as spikingjelly does), so real-valued inputs can give :math:`K` a few ulp above 1.
    *args
        The kernel's one argument, positionally: ``d``, ``alpha`` or ``sigma > 0``.
    compat : None or "spikingjelly"
        With ``"spikingjelly"``, the gaussian kernel with ``Ny == 1 < Nx`` returns spikingjelly's ``[Nx, Nx]``
        matrix (every column equal to :math:`k(x_i, y_0)`) instead of raising.

    Returns
    -------
    ndarray, shape [Nx, Ny]
        In the common float dtype of ``x`` and ``y`` (float32 only if both are float32).

    Raises
    ------
    ValueError
        Shapes that do not match; the gaussian kernel with ``Nx != Ny`` (and ``Nx != 1``), where spikingjelly
        silently returns a wrong matrix or crashes; ``sigma <= 0``; NaN or Inf.
    TypeError
        Unknown types; a missing or superfluous kernel argument.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import spiking
    >>> x = np.array([[1.0, 0.0], [1.0, 1.0]])
    >>> spiking.kernel_dot_product(x, x, "linear")
    array([[1., 1.],
           [1., 2.]])
    >>> spiking.kernel_dot_product(x, x, "polynomial", 2)
    array([[1., 1.],
           [1., 4.]])
    """
    kernels, xp = _backend.get("spiking", device, x, y)
    x, y, code, p, tile = _kernel_dot_product_args(x, y, kernel, args, compat, xp)
    Kmat, _ = kernels.kernel_forward(x, y, code, p)
    if tile:  # the compat="spikingjelly" corner: repeated on the host
        return xp.give_back_host(np.repeat(xp.to_host(Kmat), x.shape[0], axis=1))
    return xp.give_back(Kmat)


@_checks.finite_result
def kernel_dot_product_vjp(grad_out, x, y, kernel="linear", *args, compat=None, device="cpu"):
    r"""Gradients :math:`(\partial L/\partial x, \partial L/\partial y)` of :func:`kernel_dot_product`.

    With :math:`A = \partial L/\partial K` (``grad_out``, shape [Nx, Ny]) and :math:`G = x y^\top`:

    * linear, polynomial, sigmoid: :math:`\bar x = B y`, :math:`\bar y = B^\top x`, where :math:`B = \partial L/\partial G`
      is :math:`A`, :math:`A \odot d\,G^{d-1}` (identically 0 when :math:`d = 0`), or
      :math:`\alpha\,A \odot K \odot (1 - K)`;
    * gaussian: with :math:`Q = -A \odot K / (2\sigma^2) = \partial L/\partial \mathrm{Dist}`,
      :math:`\bar x = 2\,\mathrm{diag}(Q\mathbf 1)\,x - 2 Q y` and
      :math:`\bar y = 2\,\mathrm{diag}(Q^\top\mathbf 1)\,y - 2 Q^\top x`.

    When ``x`` and ``y`` are the same array the total gradient is the sum of the two.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import spiking
    >>> x = np.array([[1.0, 0.0], [1.0, 1.0]])
    >>> gx, gy = spiking.kernel_dot_product_vjp(np.ones((2, 2)), x, x, "linear")
    >>> gx + gy  # d sum(x x^T) / dx = 2 * (column sums of x), in every row
    array([[4., 2.],
           [4., 2.]])
    """
    kernels, xp = _backend.get("spiking", device, grad_out, x, y)
    x, y, code, p, tile = _kernel_dot_product_args(x, y, kernel, args, compat, xp)
    expected = (x.shape[0], x.shape[0] if tile else y.shape[0])
    A = xp.asarray(grad_out, "grad_out", dtype=x.dtype)
    _checks.check_shape(A, "grad_out", expected, "the kernel matrix's shape")
    if tile:  # every column of the tiled output is k(x_i, y_0): their gradients add (summed on the host)
        A = xp.from_host(np.ascontiguousarray(xp.to_host(A).sum(axis=1, keepdims=True)))
    gx, gy = kernels.kernel_vjp(A, x, y, code, p)
    return xp.give_back(gx), xp.give_back(gy)


# ------------------------------------------------------------------------------- similarity and its losses
@_checks.finite_result
def spike_similarity_matrix(spikes, kernel_type="linear", *args, compat=None, device="cpu"):
    r"""Output similarity :math:`S = \kappa(X, X)` of the flattened spikes, :math:`X` = ``spikes`` as [N, D].

    For the linear kernel :math:`S_{ij} = x_i\cdot x_j / (\|x_i\|\,\|x_j\| + 10^{-8})`: an all-zero row gives a
    zero row and column (:math:`S_{ii} = 0`), and :math:`S_{ii} = r^2/(r^2 + 10^{-8}) \le 1`.  The other kernels are
    used raw (not normalised).

    The diagonal is formed from its closed form (gaussian :math:`S_{ii} = 1`, cosine :math:`r_i r_i/(r_i r_i + \epsilon)`)
    rather than by the cancellation torch performs, which can round it a few ulp above 1 (in float32 for the
    cosine almost always) and makes a following BCE refuse the input.  ``compat="spikingjelly"`` keeps torch's
    rounding.  The gradient is the same either way (the closed form is the same function of X).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import spiking
    >>> spikes = np.array([[[1.0, 0.0]], [[1.0, 0.0]], [[0.0, 1.0]]])   # [N=3, M=1, T=2]
    >>> S = spiking.spike_similarity_matrix(spikes)
    >>> np.round(S, 6)  # cosine similarities of the flattened trains
    array([[1., 1., 0.],
           [1., 1., 0.],
           [0., 0., 1.]])
    """
    kernels, xp = _backend.get("spiking", device, spikes)
    _check_compat(compat)
    code, p = _kernel_spec(kernel_type, args, "kernel_type")
    _, X = _flatten_spikes(spikes, xp=xp)
    _check_kernel_domain(code, p, X.dtype, (X, "spikes"))
    X, eps, _ = _cosine_scaled(X, code)
    S, _ = kernels.similarity_forward(X, _gram_matrix(kernels, xp, X), code, p, eps, compat is None)
    return xp.give_back(S)


@_checks.finite_result
def spike_similarity_matrix_vjp(grad_out, spikes, kernel_type="linear", *args, compat=None, device="cpu"):
    r"""Gradient :math:`\partial L/\partial\,\mathrm{spikes}` of :func:`spike_similarity_matrix`.

    Both kernel arguments are :math:`X`, so the two paths add: :math:`\bar X = (B + B^\top) X` for the linear
    (un-normalised), polynomial and sigmoid kernels and :math:`\bar X = 2\,\mathrm{diag}(Q\mathbf 1 + Q^\top\mathbf 1)X
    - 2(Q + Q^\top)X` for the gaussian (see :func:`kernel_dot_product_vjp`).  For the cosine normalisation
    :math:`S = G \oslash P`, :math:`P = r r^\top + \epsilon`:
    :math:`B = A \oslash P`, :math:`C = -A \odot G \oslash P^{2}`, :math:`g = (C + C^\top) r`,
    :math:`\bar X = (B + B^\top) X + \mathrm{diag}(g \oslash r) X`, with :math:`g_i/r_i := 0` where :math:`r_i = 0`
    (the subgradient of the norm at 0 that torch uses).  A silent row therefore receives gradients of order
    :math:`1/\epsilon = 10^8` through :math:`B`.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import spiking
    >>> spikes = np.array([[[1.0, 0.0]], [[1.0, 1.0]]])
    >>> g = spiking.spike_similarity_matrix_vjp(np.ones((2, 2)), spikes)
    >>> g.shape
    (2, 1, 2)
    """
    kernels, xp = _backend.get("spiking", device, grad_out, spikes)
    _check_compat(compat)
    code, p = _kernel_spec(kernel_type, args, "kernel_type")
    shape_in, X = _flatten_spikes(spikes, xp=xp)
    _check_kernel_domain(code, p, X.dtype, (X, "spikes"))
    A = xp.asarray(grad_out, "grad_out", dtype=X.dtype)
    _checks.check_shape(A, "grad_out", (X.shape[0], X.shape[0]), "the similarity matrix's shape")
    X, eps, inv_c = _cosine_scaled(X, code)
    G = _gram_matrix(kernels, xp, X)
    S, r = kernels.similarity_forward(X, G, code, p, eps, compat is None)
    gX = kernels.similarity_vjp(A, X, S, G, r, code, p, eps)
    if inv_c != 1.0:
        gX *= gX.dtype.type(inv_c)
    return xp.give_back(gX.reshape(*shape_in.shape))


@_checks.finite_result
def label_similarity_matrix(labels, dtype=np.float64, *, compat=None, device="cpu"):
    r"""Target similarity :math:`Y = \min(L L^\top, 1)` of multi-hot labels ``L`` [N, C].

    For 0/1 labels :math:`Y_{ij} = 1` iff samples *i* and *j* share a label, and :math:`Y_{ii} = 0` for a sample
    with no label.  Only the upper side is clamped (soft or negative labels pass through).  With
    ``compat="spikingjelly"`` the product is formed in float32 as spikingjelly does (``labels.float()``).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import spiking
    >>> labels = np.array([[1, 0, 1], [1, 0, 0], [0, 1, 0]])   # multi-hot
    >>> spiking.label_similarity_matrix(labels)   # 1 where two samples share a label
    array([[1., 1., 0.],
           [1., 1., 0.],
           [0., 0., 1.]])
    """
    _check_compat(compat)
    dtype = _checks.check_float_dtype(dtype)
    kernels, xp = _backend.get("spiking", device, labels)
    L = xp.as_real(labels, "labels", ndim=2, shape_hint="[N, C] (multi-hot)")
    return xp.give_back(kernels.label_matrix(_labels_for(L, L.shape[0], dtype, compat, xp), xp.empty(0, dtype=dtype)))


def _ssl_fast(spikes, labels, kernel_type, loss_type, args, g, want_grad):
    """The CPU path for what a training loop passes: exact C-contiguous float32/float64 arrays, ``compat=None``, a
    problem small enough for the kernel to form G itself.  Returns ``(value, grad, verified)``, or None when the
    inputs are of another kind or a value check fails (NaN/Inf, a cosine that needs rescaling, a bce input outside
    [0, 1]): the full path then runs and raises its usual error, or computes.  Labels of the other float dtype are
    converted as the full path converts them (one ``astype``)."""
    X = spikes
    if (type(X) is not np.ndarray or type(labels) is not np.ndarray or X.dtype not in _checks._FLOAT_DTYPE_SET
            or labels.dtype not in _checks._FLOAT_DTYPE_SET or X.ndim < 2 or labels.ndim != 2
            or not X.flags.c_contiguous or not labels.flags.c_contiguous):
        return None
    n = X.shape[0]
    if n == 0 or labels.shape[0] != n or n * X.size >= _GRAM_IN_KERNEL_BELOW:  # N^2 D
        return None
    if labels.dtype != X.dtype:
        labels = labels.astype(X.dtype)
    code, p = _kernel_spec(kernel_type, args, "kernel_type")
    _checks.check_option(loss_type, "loss_type", LOSSES)
    X2 = X.reshape(n, X.size // n)
    _check_kernel_domain(code, p, X.dtype, (X2, "spikes"))
    status, value, grad, verified = _kernels.spike_similar_loss_checked(
        X2, _NO_GRAM[X.dtype.itemsize], labels, code, p, COSINE_EPS, True, _LOSS_CODE[loss_type], g, BCE_EPS,
        want_grad, _cosine_limit(X.dtype, X2.shape[1]))
    if status:
        return None
    value = np.asarray(value, dtype=X.dtype)
    return value, (grad.reshape(X.shape) if want_grad else None), verified and math.isfinite(value)


def _ssl_run(device, spikes, labels, kernel_type, loss_type, args, compat, g, want_grad):
    """Validate, then run the fused kernel on ``device``; returns (value, dL/dspikes or None, verified): verified
    when the kernel already tested the value and the gradient for NaN/Inf (see
    :func:`refnsm._checks.finite_result_verified`)."""
    if device == "cpu" and compat is None:
        fast = _ssl_fast(spikes, labels, kernel_type, loss_type, args, g, want_grad)
        if fast is not None:
            return fast
    kernels, xp = _backend.get("spiking", device, spikes, labels)
    _check_compat(compat)
    code, p = _kernel_spec(kernel_type, args, "kernel_type")
    _checks.check_option(loss_type, "loss_type", LOSSES)
    shaped, X = _flatten_spikes(spikes, xp=xp)
    _check_kernel_domain(code, p, X.dtype, (X, "spikes"))
    L = _labels_for(labels, X.shape[0], X.dtype, compat, xp)
    X, eps, inv_c = _cosine_scaled(X, code)
    # small problems: the kernel forms G itself (on the host a Python-level BLAS call costs more than the product)
    big = X.shape[0] ** 2 * X.shape[1] >= _GRAM_IN_KERNEL_BELOW
    G = _gram_matrix(kernels, xp, X) if big else xp.empty((0, 0), dtype=X.dtype)
    if xp is HOST:  # the CPU entry point (its checks pass here: the inputs are validated and rescaled)
        status, value, grad, _ = kernels.spike_similar_loss_checked(X, G, L, code, p, eps, compat is None,
                                                                    _LOSS_CODE[loss_type], g, BCE_EPS, want_grad,
                                                                    math.inf)
    else:
        status, value, grad = kernels.spike_similar_loss_fused(X, G, L, code, p, eps, compat is None,
                                                               _LOSS_CODE[loss_type], g, BCE_EPS, want_grad)
    if status:  # bce outside [0, 1]: recompute S and Y to say where and why
        S, _ = kernels.similarity_forward(X, _gram_matrix(kernels, xp, X), code, p, eps, compat is None)
        _bce_range_check(xp.to_host(S), xp.to_host(kernels.label_matrix(L, X)), kernel_type, np.dtype(X.dtype))
    if want_grad and inv_c != 1.0:
        grad *= grad.dtype.type(inv_c)
    return np.asarray(value, dtype=X.dtype), (xp.give_back(grad.reshape(*shaped.shape)) if want_grad else None), False


@_checks.finite_result_verified
def spike_similar_loss(spikes, labels, kernel_type="linear", loss_type="mse", *args, compat=None, device="cpu"):
    r"""Similarity-matching loss between output spike trains and their labels (spikingjelly's ``spike_similar_loss``).

    .. math::

        L = \frac{1}{N^2} \sum_{i,j} \ell(S_{ij}, Y_{ij}),\qquad S = \kappa(X, X),\quad Y = \min(L L^\top, 1)

    with :math:`\ell` the squared error (``mse``), absolute error (``l1``) or torch's clamped binary
    cross-entropy (``bce``: :math:`-[Y\max(\log S,-100) + (1-Y)\max(\log(1-S),-100)]`).  The linear kernel is
    cosine-normalised (:func:`spike_similarity_matrix`).  Every pair counts, the diagonal included.

    For the sigmoid and gaussian kernels, :math:`1 - S` is taken from the kernel's own formula
    (:math:`\sigma(-\alpha G)`, :math:`-\mathrm{expm1}(-\|x_i - x_j\|^2/2\sigma^2)`) wherever the loss needs it
    (:math:`S - Y` at :math:`Y = 1`, :math:`\log(1 - S)`, :math:`S(1 - S)`), not by subtraction: an :math:`S`
    within an ulp of 1 (a saturated sigmoid, near rows) keeps its distance to 1 (``docs/accuracy.md``).
    ``compat="spikingjelly"`` keeps torch's :math:`1 - S`.

    Parameters
    ----------
    spikes : array_like, shape [N, ...]
        Batch first (e.g. [N, M, T]); every other axis is flattened.  spikingjelly's multi-step layout
        [T, N, M] must be transposed first.
    labels : array_like, shape [N, C]
        Multi-hot labels (any real values; only the upper side of :math:`L L^\top` is clamped).
    kernel_type : {"linear", "polynomial", "sigmoid", "gaussian"}
    loss_type : {"mse", "l1", "bce"}
    *args
        The kernel's argument (see :func:`kernel_dot_product`).
    compat : None or "spikingjelly"
        Reproduce spikingjelly's rounding: :math:`Y` formed in float32 (identical for 0/1 labels) and the diagonal
        of :math:`S` formed by cancellation (see :func:`spike_similarity_matrix`).

    Returns
    -------
    float
        The loss, as a 0-d array of the spikes' dtype.

    Raises
    ------
    ValueError
        Mismatched batch sizes, NaN/Inf, and for ``bce`` a similarity or label matrix outside [0, 1], with the
        reason (float32 rounding of the cosine diagonal, cancellation in the gaussian distance, an unnormalised
        kernel, signed inputs).  Unlike spikingjelly, ``bce`` works in float64.

    Notes
    -----
    For training, :func:`spike_similar_loss_value_and_grad` returns the loss and its gradient from one forward
    pass; calling this function and then :func:`spike_similar_loss_vjp` forms the similarity matrix twice.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import spiking
    >>> spikes = np.array([[[1.0, 0.0]], [[1.0, 0.0]], [[0.0, 1.0]]])   # [N, M, T]
    >>> labels = np.array([[1, 0], [1, 0], [0, 1]])   # samples 0 and 1 share a class
    >>> round(float(spiking.spike_similar_loss(spikes, labels, "linear", "mse")), 12)   # S already matches Y
    0.0
    >>> float(spiking.spike_similar_loss(spikes, labels[::-1], "linear", "mse")) > 0
    True
    """
    value, _, verified = _ssl_run(device, spikes, labels, kernel_type, loss_type, args, compat, 1.0, False)
    return value, verified


@_checks.finite_result_verified
def spike_similar_loss_vjp(grad_out, spikes, labels, kernel_type="linear", loss_type="mse", *args, compat=None,
                           device="cpu"):
    r"""Gradient of :func:`spike_similar_loss` with respect to ``spikes`` (same shape as ``spikes``).

    First :math:`A = \partial L/\partial S`: ``mse`` :math:`2(S - Y)/N^2`; ``l1`` :math:`\mathrm{sign}(S-Y)/N^2`
    with :math:`\mathrm{sign}(0) = 0`; ``bce`` :math:`(S - Y)/\max(S(1-S), \epsilon)/N^2` with torch's
    :math:`\epsilon` = float32(1e-12) (this is torch's gradient, not the derivative of the clamped forward: where
    the log is clamped the forward is flat but the gradient is not 0).  Then :math:`A` is pulled back through
    :math:`S(X)` as in :func:`spike_similarity_matrix_vjp`.  ``labels`` get no gradient (they are treated as
    constants, as spikingjelly's ``labels.float()`` cuts the graph for integer labels).

    ``grad_out`` is the upstream gradient of the scalar loss (``None`` means 1.0).  To get both the
    value and the gradient, :func:`spike_similar_loss_value_and_grad` is the one call to make (one forward pass).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import spiking
    >>> rng = np.random.default_rng(0)
    >>> spikes = (rng.random((4, 3, 5)) < 0.5).astype(float)
    >>> labels = np.array([[1, 0], [1, 1], [0, 1], [1, 0]])
    >>> g = spiking.spike_similar_loss_vjp(None, spikes, labels, "linear", "mse")
    >>> g.shape == spikes.shape
    True
    """
    g = _checks.scalar_grad_out(grad_out)
    _, grad, verified = _ssl_run(device, spikes, labels, kernel_type, loss_type, args, compat, g, True)
    return grad, verified


@_checks.finite_result_verified
def spike_similar_loss_value_and_grad(spikes, labels, kernel_type="linear", loss_type="mse", *args, compat=None,
                                      device="cpu"):
    """``(spike_similar_loss(...), spike_similar_loss_vjp(None, ...))`` sharing one forward pass (for training).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import spiking
    >>> rng = np.random.default_rng(0)
    >>> spikes = (rng.random((4, 3, 5)) < 0.5).astype(float)
    >>> labels = np.array([[1, 0], [1, 1], [0, 1], [1, 0]])
    >>> loss, g = spiking.spike_similar_loss_value_and_grad(spikes, labels, "linear", "mse")
    >>> bool(loss == spiking.spike_similar_loss(spikes, labels, "linear", "mse"))
    True
    >>> np.allclose(g, spiking.spike_similar_loss_vjp(None, spikes, labels, "linear", "mse"))
    True
    """
    value, grad, verified = _ssl_run(device, spikes, labels, kernel_type, loss_type, args, compat, 1.0, True)
    return (value, grad), verified


# --------------------------------------------------------------------------------------------- TET losses
def check_target_values(tgt, T, C, ignore_index, x_shape):
    """Raise unless every target is a class in [0, C) or ignore_index, and at least one position counts."""
    if C == 0:
        raise ValueError(f"x_seq: expected at least one class (axis 2), got shape {x_shape}")
    n_valid, bad = _kernels.check_targets(tgt, C, ignore_index)
    if bad >= 0:
        idx = tuple(int(i) for i in np.unravel_index(bad, tgt.shape))
        raise ValueError(f"target: class indices must be in [0, {C}) or ignore_index={ignore_index}; got {tgt[idx]} at {idx}")
    if T == 0 or n_valid == 0:
        raise ValueError(
            f"target: no position to average over ({T} time steps, {n_valid} of {tgt.size} targets differ from "
            f"ignore_index={ignore_index}): the mean cross-entropy is undefined (torch returns nan)"
        )


def _ce_prepare(x_seq, target, ignore_index, xp=HOST):
    """``(x, x4 [T, N, C, S], t2 [N, S] int64, ignore_index)``, validated; a device ``target`` is validated on the
    host (it is C times smaller than ``x_seq``)."""
    x = xp.asarray(x_seq, "x_seq", min_ndim=3, shape_hint="[T, N, C, *spatial]")
    tgt = _checks.as_index_array(xp.to_host(target), "target", shape_hint="[N, *spatial]")
    ignore_index = _checks.check_int(ignore_index, "ignore_index")
    shape = tuple(x.shape)
    expected = shape[1:2] + shape[3:]
    if tgt.shape != expected:
        raise ValueError(
            f"target: expected shape {expected} (x_seq's batch and spatial dims, [N, *spatial]) for x_seq of shape "
            f"{tuple(x.shape)}, got {tgt.shape}"
        )
    T, N, C = shape[:3]
    check_target_values(tgt, T, C, ignore_index, shape)
    if len(shape) == 3:  # no spatial dimensions: S = 1
        return x, x.reshape(T, N, C, 1), xp.from_host(tgt.reshape(N, 1)), ignore_index
    S = math.prod(shape[3:])
    return x, x.reshape(T, N, C, S), xp.from_host(tgt.reshape(N, S)), ignore_index


def _ce_run(kernels, xp, x_seq, target, ignore_index, g, want_grad):
    """``(x, loss, grad)`` of ``cross_entropy_steps`` on the validated inputs (``grad`` [T, N, C, S], empty unless
    ``want_grad``).

    On the CPU an exact C-contiguous float array ``x_seq`` and int64 ``target`` of matching shapes go straight to
    ``cross_entropy_steps_checked``, which checks the values (targets in range, at least one position, finite
    logits) in the same compiled call; when that check fails, or the inputs need converting, the full validation
    (:func:`_ce_prepare`) runs and raises its usual error.  The arithmetic is the same on both paths."""
    if (xp is HOST and type(x_seq) is np.ndarray and type(target) is np.ndarray and x_seq.ndim >= 3
            and x_seq.dtype in _checks._FLOAT_DTYPE_SET and target.dtype == np.int64
            and x_seq.flags.c_contiguous and target.flags.c_contiguous):
        shape = x_seq.shape
        if target.shape == shape[1:2] + shape[3:]:
            ii = _checks.check_int(ignore_index, "ignore_index")
            T, N, C = shape[:3]
            S = 1 if len(shape) == 3 else math.prod(shape[3:])
            loss, grad, _, ok = _kernels.cross_entropy_steps_checked(x_seq.reshape(T, N, C, S),
                                                                     target.reshape(N, S), ii, g, want_grad)
            if ok:
                return x_seq, loss, grad
    x, x4, t2, ii = _ce_prepare(x_seq, target, ignore_index, xp)
    loss, grad, _ = kernels.cross_entropy_steps(x4, t2, ii, g, want_grad)
    return x, loss, grad


@_checks.finite_result
def temporal_efficient_training_cross_entropy(x_seq, target, ignore_index=IGNORE_INDEX, *, device="cpu"):
    r"""TET loss: the cross-entropy at every time step, averaged (Deng et al., ICLR 2022).

    .. math::

        L = -\frac{1}{|V|} \sum_{(t, n, s) \in V} \log \operatorname{softmax}(x_{t,n,:,s})_{y_{n,s}}
          = \frac1T \sum_t \mathrm{CE}(x_t, y)

    where :math:`V` are the positions whose target is not ``ignore_index`` (the same at every step, so the
    per-step means have equal weight).

    Parameters
    ----------
    x_seq : array_like, shape [T, N, C, \*spatial]
        Logits per time step.
    target : integer array_like, shape [N, \*spatial]
        Class indices in [0, C), or ``ignore_index``.
    ignore_index : int
        Target value excluded from the mean (torch's default -100).

    Returns
    -------
    0-d ndarray of x_seq's dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import spiking
    >>> x_seq = np.zeros((4, 2, 3))          # [T, N, C]: uniform logits at every step
    >>> target = np.array([0, 2])
    >>> round(float(spiking.temporal_efficient_training_cross_entropy(x_seq, target)), 6)   # log(3)
    1.098612
    >>> round(float(np.log(3)), 6)
    1.098612
    """
    kernels, xp = _backend.get("spiking", device, x_seq, target)
    x, loss, _ = _ce_run(kernels, xp, x_seq, target, ignore_index, 1.0, False)
    return np.asarray(loss, dtype=x.dtype)


@_checks.finite_result_verified
def temporal_efficient_training_cross_entropy_vjp(grad_out, x_seq, target, ignore_index=IGNORE_INDEX, *,
                                                  device="cpu"):
    r"""Gradient of the TET cross-entropy: :math:`\partial L/\partial x_{t,n,c,s} =
    (p_{t,n,c,s} - [c = y_{n,s}])\,[(n,s)\in V] / |V|`, with :math:`p` the softmax over classes (computed as
    ``exp(log_softmax)`` with the maximum subtracted).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import spiking
    >>> x_seq = np.zeros((2, 1, 2))
    >>> g = spiking.temporal_efficient_training_cross_entropy_vjp(None, x_seq, np.array([0]))
    >>> g[:, 0]   # (softmax - onehot) / (T N) at every step
    array([[-0.25,  0.25],
           [-0.25,  0.25]])
    """
    kernels, xp = _backend.get("spiking", device, x_seq, target)
    g = _checks.scalar_grad_out(grad_out)
    x, _, grad = _ce_run(kernels, xp, x_seq, target, ignore_index, g, True)
    return xp.give_back(grad.reshape(*x.shape)), _ce_grad_is_finite(g, x.dtype)


def _ce_grad_is_finite(g, dtype):
    """Whether the TET gradient of finite logits with cotangent ``g`` is finite, without reading it.

    Every entry is ``(p - [c = y]) g / |V|`` or 0, with ``p`` a softmax weight: the max-shifted row has an
    exponential exp(0) = 1, so the sum ``se >= 1`` and ``p = e / se`` lies in [0, 1] (the exponentials of finite
    shifted logits lie in [0, 1]).  So ``|entry| <= |g|`` (times ``1 + 2**-24`` in float32, where ``e`` is
    rounded before the division), finite in ``dtype`` whenever ``|g|`` is at most half its largest value."""
    return abs(g) <= 0.5 * _DTYPE_MAX[dtype.itemsize]


_DTYPE_MAX = {4: float(np.finfo(np.float32).max), 8: float(np.finfo(np.float64).max)}


@_checks.finite_result_verified
def temporal_efficient_training_cross_entropy_value_and_grad(x_seq, target, ignore_index=IGNORE_INDEX, *,
                                                             device="cpu"):
    """``(loss, d loss / d x_seq)`` of :func:`temporal_efficient_training_cross_entropy` in one pass (for training).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import spiking
    >>> x_seq = np.zeros((2, 1, 2))
    >>> loss, g = spiking.temporal_efficient_training_cross_entropy_value_and_grad(x_seq, np.array([1]))
    >>> round(float(loss), 6), g.shape
    (0.693147, (2, 1, 2))
    """
    kernels, xp = _backend.get("spiking", device, x_seq, target)
    x, loss, grad = _ce_run(kernels, xp, x_seq, target, ignore_index, 1.0, True)
    # the gradient is finite by construction (_ce_grad_is_finite); only the loss (rounded to x's dtype) needs its test
    loss = np.asarray(loss, dtype=x.dtype)
    return (loss, xp.give_back(grad.reshape(*x.shape))), math.isfinite(loss)


def _time_mean_1(kernels, x4):
    """The time-averaged logits [1, N, C, S] (a leading axis of one step, for cross_entropy_steps)."""
    m = kernels.time_mean(x4)
    return m.reshape(*((1,) + tuple(m.shape)))


@_checks.finite_result
def time_mean_cross_entropy(x_seq, target, ignore_index=IGNORE_INDEX, *, device="cpu"):
    r"""The "SDT" baseline: cross-entropy of the time-averaged logits, :math:`\mathrm{CE}(\frac1T\sum_t x_t, y)`.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import spiking
    >>> x_seq = np.array([[[2.0, 0.0]], [[0.0, 2.0]]])   # the time mean is uniform
    >>> round(float(spiking.time_mean_cross_entropy(x_seq, np.array([0]))), 6)   # log(2)
    0.693147
    """
    kernels, xp = _backend.get("spiking", device, x_seq, target)
    x, x4, t2, ii = _ce_prepare(x_seq, target, ignore_index, xp)
    loss, _, _ = kernels.cross_entropy_steps(_time_mean_1(kernels, x4), t2, ii, 1.0, False)
    return np.asarray(loss, dtype=x.dtype)


@_checks.finite_result
def time_mean_cross_entropy_vjp(grad_out, x_seq, target, ignore_index=IGNORE_INDEX, *, device="cpu"):
    r"""Gradient of :func:`time_mean_cross_entropy`: :math:`(\bar p - \mathrm{onehot})/(|V'|\,T)` at every step,
    with :math:`\bar p` the softmax of the time-averaged logits and :math:`|V'|` the valid (n, s) positions.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import spiking
    >>> x_seq = np.array([[[2.0, 0.0]], [[0.0, 2.0]]])
    >>> spiking.time_mean_cross_entropy_vjp(None, x_seq, np.array([0]))[:, 0]   # one shared gradient, split over T
    array([[-0.25,  0.25],
           [-0.25,  0.25]])
    """
    kernels, xp = _backend.get("spiking", device, x_seq, target)
    g = _checks.scalar_grad_out(grad_out)
    x, x4, t2, ii = _ce_prepare(x_seq, target, ignore_index, xp)
    _, grad_mean, _ = kernels.cross_entropy_steps(_time_mean_1(kernels, x4), t2, ii, g, True)
    grad_mean = grad_mean.reshape(*tuple(grad_mean.shape)[1:])
    return xp.give_back(kernels.broadcast_time(grad_mean, x.shape[0]).reshape(*x.shape))


def _tet_params(mean, tet_lambda):
    phi = _checks.check_real(mean, "mean")
    lam = _checks.check_in_interval(tet_lambda, "tet_lambda", 0.0, 1.0)
    return phi, lam


@_checks.finite_result
def tet_loss(x_seq, target, mean=1.0, tet_lambda=1e-3, ignore_index=IGNORE_INDEX, *, device="cpu"):
    r"""The full TET objective :math:`(1-\lambda)\,L_{TET} + \lambda\,\overline{(x - \phi)^2}`.

    The second term, a mean over all :math:`T \cdot N \cdot C \cdots` logits, pulls the outputs toward the constant
    :math:`\phi` (``mean``); the paper and spikingjelly's ``TETLoss`` use :math:`\phi = 1`,
    :math:`\lambda = 10^{-3}`.  The cross-entropy term is :func:`temporal_efficient_training_cross_entropy`.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import spiking
    >>> x_seq = np.zeros((4, 2, 3))
    >>> target = np.array([0, 2])
    >>> round(float(spiking.tet_loss(x_seq, target, mean=1.0, tet_lambda=0.0)), 6)   # lambda = 0: pure TET, log(3)
    1.098612
    >>> round(float(spiking.tet_loss(x_seq, target, mean=0.0, tet_lambda=1.0)), 6)   # lambda = 1: MSE to phi = 0
    0.0
    """
    kernels, xp = _backend.get("spiking", device, x_seq, target)
    phi, lam = _tet_params(mean, tet_lambda)
    x, ce, _ = _ce_run(kernels, xp, x_seq, target, ignore_index, 1.0, False)
    reg = kernels.mse_to_constant(x, phi, 1.0, False)[0] if lam != 0 else 0.0
    return np.asarray((1.0 - lam) * ce + lam * reg, dtype=x.dtype)


@_checks.finite_result
def tet_loss_vjp(grad_out, x_seq, target, mean=1.0, tet_lambda=1e-3, ignore_index=IGNORE_INDEX, *, device="cpu"):
    r"""Gradient of :func:`tet_loss`: :math:`(1-\lambda)\,\partial L_{TET}/\partial x + \lambda\,2(x-\phi)/\mathrm{numel}`.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import spiking
    >>> x_seq = np.zeros((4, 2, 3))
    >>> spiking.tet_loss_vjp(None, x_seq, np.array([0, 2]), tet_lambda=0.1).shape
    (4, 2, 3)
    """
    kernels, xp = _backend.get("spiking", device, x_seq, target)
    g = _checks.scalar_grad_out(grad_out)
    phi, lam = _tet_params(mean, tet_lambda)
    x, _, grad = _ce_run(kernels, xp, x_seq, target, ignore_index, g * (1.0 - lam), True)
    grad = grad.reshape(*x.shape)
    if lam != 0:
        grad = xp.add(grad, kernels.mse_to_constant(x, phi, g * lam, True)[1].reshape(*x.shape))
    return xp.give_back(grad)


class TETLoss:
    r"""Stateful form of :func:`tet_loss` (spikingjelly's example ``TETLoss``).

    ``loss = TETLoss()(x_seq, target)`` then ``TETLoss.backward()`` returns :math:`\partial L/\partial x_{seq}` for
    the last call.  With ``x_seq`` of shape [T, N, C, ...],

    .. math::

        L = (1-\lambda)\,\underbrace{\frac1T\sum_t \ell(x_t, y)}_{\texttt{base\_criterion\_loss}}
            + \lambda\,\overline{(x - \phi)^2}.

    Parameters
    ----------
    mean : float
        :math:`\phi`, the constant the regulariser pulls the logits toward (1.0).
    tet_lambda : float in [0, 1]
        :math:`\lambda`, the weight of the regulariser (1e-3).
    ignore_index : int
        Target value excluded from the cross-entropy (-100).
    base_criterion : "cross_entropy" or callable, keyword-only
        :math:`\ell`.  ``"cross_entropy"`` (default; spikingjelly's ``nn.CrossEntropyLoss()``, mean over the
        batch, ``ignore_index`` honoured) has its gradient derived by hand.  A callable ``f(x_t, target) -> scalar``
        on NumPy arrays is applied to each step as upstream; its gradient needs ``base_criterion_vjp``.
    base_criterion_vjp : callable, keyword-only, optional
        ``g(grad_out, x_t, target) -> dL/dx_t`` for a callable ``base_criterion`` (needed by :meth:`backward`).

    device : {"cpu", "cuda"}
        Where :func:`tet_loss` and :func:`tet_loss_vjp` run; with ``"cuda"`` the inputs may be device arrays (kept
        as device copies for ``backward``).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import spiking
    >>> loss_fn = spiking.TETLoss(mean=1.0, tet_lambda=0.0)
    >>> x_seq = np.zeros((4, 2, 3))
    >>> round(float(loss_fn.forward(x_seq, np.array([0, 2]))), 6)
    1.098612
    >>> loss_fn.backward().shape   # dL/dx_seq of the last forward
    (4, 2, 3)
    """

    def __init__(self, mean=1.0, tet_lambda=1e-3, ignore_index=IGNORE_INDEX, *, base_criterion="cross_entropy",
                 base_criterion_vjp=None, device="cpu"):
        self.mean, self.tet_lambda = _tet_params(mean, tet_lambda)
        self.ignore_index = _checks.check_int(ignore_index, "ignore_index")
        if callable(base_criterion):
            if base_criterion_vjp is not None and not callable(base_criterion_vjp):
                raise TypeError(f"base_criterion_vjp: expected None or a callable (grad_out, x_t, target) -> "
                                f"gradient, got {_checks._describe(base_criterion_vjp)}")
        else:
            _checks.check_option(base_criterion, "base_criterion", ("cross_entropy",))
            if base_criterion_vjp is not None:
                raise ValueError("base_criterion_vjp: only used with a callable base_criterion (the cross-entropy's "
                                 "gradient is built in)")
        self.base_criterion = base_criterion
        self.base_criterion_vjp = base_criterion_vjp
        self.device = _backend.check_device(device)
        self._saved = None

    # ------------------------------------------------------------------ the time-averaged base criterion
    def _steps(self, x_seq, target):
        x = _checks.as_float_array(x_seq, "y", shape_hint="[T, N, C, ...]")
        if x.ndim < 2 or x.shape[0] == 0:
            raise ValueError(f"y: expected [T, N, ...] with T >= 1, got shape {x.shape}")
        _checks.check_finite(x, "y")
        return np.ascontiguousarray(x), np.asarray(target)

    def base_criterion_loss(self, y, label):
        r""":math:`\frac1T\sum_t \ell(y_t, \text{label})` (spikingjelly's ``TETLoss.base_criterion_loss``); for the
        cross-entropy this is :func:`temporal_efficient_training_cross_entropy`."""
        if not callable(self.base_criterion):
            return temporal_efficient_training_cross_entropy(y, label, self.ignore_index)
        x, lab = self._steps(y, label)
        total = 0.0
        for t in range(x.shape[0]):
            v = np.asarray(self.base_criterion(x[t].copy(), lab.copy()), dtype=np.float64)
            if v.shape != ():
                raise ValueError(f"base_criterion: expected a scalar loss, got shape {v.shape}")
            total += float(v)
        return np.asarray(total / x.shape[0], dtype=x.dtype)

    def base_criterion_loss_vjp(self, grad_out, y, label):
        r"""Gradient of :meth:`base_criterion_loss` with respect to ``y``: :math:`\frac{\bar L}{T}\,
        \partial\ell/\partial y_t` at every step."""
        if not callable(self.base_criterion):
            return temporal_efficient_training_cross_entropy_vjp(grad_out, y, label, self.ignore_index)
        if self.base_criterion_vjp is None:
            raise ValueError("base_criterion_vjp: the gradient of a callable base_criterion needs its VJP "
                             "(pass base_criterion_vjp=...)")
        g = _checks.scalar_grad_out(grad_out)
        x, lab = self._steps(y, label)
        out = np.empty_like(x)
        for t in range(x.shape[0]):
            gt = np.asarray(self.base_criterion_vjp(g / x.shape[0], x[t].copy(), lab.copy()), dtype=x.dtype)
            if gt.shape != x[t].shape:
                raise ValueError(f"base_criterion_vjp: expected a gradient of shape {x[t].shape}, got {gt.shape}")
            out[t] = gt
        return out

    @_checks.finite_result
    def forward(self, x_seq, target):
        if callable(self.base_criterion):
            x, _ = self._steps(x_seq, target)
            reg = _kernels.mse_to_constant(x, self.mean, 1.0, False)[0] if self.tet_lambda != 0 else 0.0
            value = np.asarray((1.0 - self.tet_lambda) * float(self.base_criterion_loss(x, target))
                               + self.tet_lambda * reg, dtype=x.dtype)
        else:
            value = tet_loss(x_seq, target, self.mean, self.tet_lambda, self.ignore_index, device=self.device)
        xp = _backend.arrays(self.device, x_seq, target)
        self._saved = tuple(xp.copy(a) if xp.on_device and xp.is_native(a) else np.array(a, copy=True)
                            for a in (x_seq, target))
        return value

    __call__ = forward

    @_checks.finite_result
    def backward(self, grad_out=None):
        if self._saved is None:
            raise RuntimeError("TETLoss.backward: call the loss (forward) first")
        x_seq, target = self._saved
        if callable(self.base_criterion):
            g = _checks.scalar_grad_out(grad_out)
            grad = self.base_criterion_loss_vjp(g * (1.0 - self.tet_lambda), x_seq, target)
            if self.tet_lambda != 0:
                x, _ = self._steps(x_seq, target)
                grad = grad + _kernels.mse_to_constant(x, self.mean, g * self.tet_lambda, True)[1].reshape(x.shape)
            return grad
        return tet_loss_vjp(grad_out, x_seq, target, self.mean, self.tet_lambda, self.ignore_index, device=self.device)

    def __repr__(self):
        crit = "" if self.base_criterion == "cross_entropy" else f", base_criterion={self.base_criterion!r}"
        dev = f", device={self.device!r}" if self.device != "cpu" else ""
        return f"TETLoss(mean={self.mean}, tet_lambda={self.tet_lambda}, ignore_index={self.ignore_index}{crit}{dev})"


def _firing_rate_args(spikes_seq, labels, xp=HOST):
    x = xp.asarray(spikes_seq, "spikes_seq", ndim=3, shape_hint="[T, N, C]")
    lab = _checks.as_index_array(xp.to_host(labels), "labels", ndim=1, shape_hint="[N]")
    T, N, C = x.shape
    if lab.shape[0] != N:
        raise ValueError(f"labels: expected {N} labels to match spikes_seq's batch size (axis 1), got shape {lab.shape}")
    if T == 0 or N == 0 or C == 0:
        raise ValueError(f"spikes_seq: expected non-empty T, N and C, got shape {tuple(x.shape)}")
    if ((lab < 0) | (lab >= C)).any():
        bad = int(lab[(lab < 0) | (lab >= C)][0])
        raise ValueError(f"labels: class indices must be in [0, {C}), got {bad}")
    return x, xp.from_host(lab)


@_checks.finite_result
def firing_rate_mse(spikes_seq, labels, *, device="cpu"):
    r"""spikingjelly's tutorial loss: :math:`\overline{(\frac1T\sum_t s_t - \mathrm{onehot}(y))^2}` over [N, C].

    ``spikes_seq`` is [T, N, C] (multi-step layout), ``labels`` integer [N].

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import spiking
    >>> spikes_seq = np.array([[[1.0, 0.0]], [[1.0, 0.0]]])   # [T, N, C]: class 0 fires at every step
    >>> float(spiking.firing_rate_mse(spikes_seq, np.array([0])))   # the rate matches the one-hot target
    0.0
    """
    kernels, xp = _backend.get("spiking", device, spikes_seq, labels)
    x, lab = _firing_rate_args(spikes_seq, labels, xp)
    return np.asarray(kernels.firing_rate_mse(x, lab, 1.0, False)[0], dtype=x.dtype)


@_checks.finite_result
def firing_rate_mse_vjp(grad_out, spikes_seq, labels, *, device="cpu"):
    r"""Gradient of :func:`firing_rate_mse`: :math:`2(\mathrm{fr} - \mathrm{onehot})/(N C T)` at every step.

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import spiking
    >>> spikes_seq = np.array([[[0.0, 1.0]], [[0.0, 1.0]]])
    >>> spiking.firing_rate_mse_vjp(None, spikes_seq, np.array([0]))[:, 0]
    array([[-0.5,  0.5],
           [-0.5,  0.5]])
    """
    kernels, xp = _backend.get("spiking", device, spikes_seq, labels)
    g = _checks.scalar_grad_out(grad_out)
    x, lab = _firing_rate_args(spikes_seq, labels, xp)
    return xp.give_back(kernels.firing_rate_mse(x, lab, g, True)[1])
