"""Cross-check of ``refnsm.spiking`` against spikingjelly 2.0.0 (torch, float64).

The matrix of spec section 9: 9 kernel settings x 3 losses x 4 data kinds for ``spike_similar_loss`` (every
sample labelled), ``kernel_dot_product`` with distinct x and y, the TET cross-entropy with spatial dims and
ignore_index, the wheel's ``TETLoss`` (``activation_based.examples.memopt.loss``), and two float32 checks at 1e-5.
Where torch raises, refnsm must raise too (the row then reports 0 error and says so), with one exception that no
row may depend on: where torch refuses a BCE input only because its own rounding put the similarity matrix a few
ulp above 1, which happens on some CPUs and not on others, the row judges refnsm against the exact value
(:func:`_ssl_pair`).

Two expressions are not spikingjelly functions and are compared against the torch expression the spikingjelly
docs and examples use: the time-mean cross-entropy ``F.cross_entropy(y.mean(0), t)`` (``TMeanCrossEntropyLoss``
is not in the 2.0.0 wheel) and the tutorial's firing-rate MSE ``F.mse_loss(s.mean(0), one_hot(t))``.

BCE in float64: spikingjelly forms the label matrix with ``labels.float()`` and torch's BCE does not promote, so
the upstream function raises for every float64 input (spec section 8, bug 1).  To compare in float64 anyway, the
adapter wraps ``F`` *inside spikingjelly's loss module* so that ``binary_cross_entropy`` receives its target in
the input's dtype; nothing else of the upstream code changes.  The same wrapper keeps the similarity matrix S
(``retain_grad``) so dL/dS can be compared on its own: in the unlabeled-sample BCE regime dL/dS is huge and
the pull-back through X is ill-conditioned (spec section 9), so there the row compares dL/dS.
"""

from __future__ import annotations

import importlib
from contextlib import contextmanager

import numpy as np

from . import Case, CheckRow, rel_err

UPSTREAM = "spikingjelly"
FAMILY = "spiking"
TOL = 1e-10
TOL32 = 1e-5

KERNEL_SETTINGS = [
    ("linear", ()),
    ("sigmoid", (0.3,)),
    ("sigmoid", (-0.7,)),
    ("gaussian", (1.3,)),
    ("gaussian", (4.0,)),
    ("polynomial", (0.0,)),
    ("polynomial", (1.5,)),
    ("polynomial", (2.0,)),
    ("polynomial", (3.0,)),
]
LOSSES = ("mse", "l1", "bce")
DATA_KINDS = ("binary", "real", "zero-row", "signed")


def _torch():
    import torch

    return torch


def _spikes(kind: str, seed: int, shape=(6, 3, 4)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "binary":
        return (rng.random(shape) < 0.4).astype(np.float64)
    if kind == "real":
        return rng.random(shape)
    if kind == "zero-row":
        x = (rng.random(shape) < 0.4).astype(np.float64)
        x[1] = 0.0
        return x
    if kind == "signed":
        return rng.standard_normal(shape)
    raise ValueError(kind)


def _labels(n: int, c: int, seed: int, unlabeled: bool = False) -> np.ndarray:
    """Multi-hot integer labels, every sample with at least one label (unless ``unlabeled``: sample 0 has none)."""
    rng = np.random.default_rng(seed + 1000)
    lab = np.zeros((n, c), dtype=np.int64)
    lab[np.arange(n), rng.integers(0, c, n)] = 1
    lab[rng.random((n, c)) < 0.15] = 1  # a few multi-label samples
    if unlabeled:
        lab[0] = 0
    return lab


@contextmanager
def _capture_similarity(captured: list):
    """Wrap ``F`` in spikingjelly's loss module: keep S (retain_grad) and give BCE its target in S's dtype."""
    mod = importlib.import_module("spikingjelly.activation_based.functional.loss")
    real_F = mod.F

    class _F:
        def __getattr__(self, name):
            return getattr(real_F, name)

        @staticmethod
        def _keep(s):
            if s.requires_grad:
                s.retain_grad()
            captured.append(s)

        def mse_loss(self, s, y, *a, **k):
            self._keep(s)
            return real_F.mse_loss(s, y, *a, **k)

        def l1_loss(self, s, y, *a, **k):
            self._keep(s)
            return real_F.l1_loss(s, y, *a, **k)

        def binary_cross_entropy(self, s, y, *a, **k):
            self._keep(s)
            return real_F.binary_cross_entropy(s, y.to(s.dtype), *a, **k)

    mod.F = _F()
    try:
        yield
    finally:
        mod.F = real_F


def _upstream_ssl(X, labels, kernel, loss, args):
    """(value, dL/dX, dL/dS, S) from spikingjelly, or ("raise", message)."""
    torch = _torch()
    from ._upstream import load

    sj = load(UPSTREAM)
    xs = torch.tensor(X, requires_grad=True)
    cap: list = []
    try:
        with _capture_similarity(cap):
            out = sj.spike_similar_loss(xs, torch.tensor(labels), kernel, loss, *args)
        out.backward()
    except RuntimeError as exc:
        return "raise", str(exc)
    return float(out.detach()), xs.grad.numpy().copy(), cap[0].grad.numpy().copy(), cap[0].detach().numpy().copy()


def _refnsm_ssl(X, labels, kernel, loss, args, compat=None):
    """(value, dL/dX, dL/dS, S) from refnsm, or ("raise", message)."""
    from refnsm import spiking as sp
    from refnsm.spiking import _kernels as K
    from refnsm.spiking.losses import BCE_EPS, _LOSS_CODE

    try:
        value = float(sp.spike_similar_loss(X, labels, kernel, loss, *args, compat=compat))
        grad = sp.spike_similar_loss_vjp(None, X, labels, kernel, loss, *args, compat=compat)
    except ValueError as exc:
        return "raise", str(exc)
    S = sp.spike_similarity_matrix(X, kernel, *args, compat=compat)
    Y = sp.label_similarity_matrix(labels, X.dtype)
    A = K.pairwise_loss_grad(S, Y, _LOSS_CODE[loss], 1.0, BCE_EPS)
    return value, grad, A, S


def _rowwise_err(a, b) -> float:
    """Worst normwise error over the samples (rows of the leading axis), each against its own scale.

    A silent sample's gradient is ~1e8-1e20 (spec section 3) while the others are O(1); one normwise error over
    the whole array would be blind to the ordinary rows.
    """
    a = np.asarray(a).reshape(np.shape(a)[0], -1)
    b = np.asarray(b).reshape(np.shape(b)[0], -1)
    if a.shape != b.shape:
        return float("inf")
    return max((rel_err(ai, bi) for ai, bi in zip(a, b)), default=0.0)


def _compare(name, up, me, tol, use_dS=False, note=""):
    if up[0] == "raise" or me[0] == "raise":
        both = up[0] == "raise" and me[0] == "raise"
        err = 0.0 if both else float("inf")
        msg = "both raise" if both else f"only {'upstream' if up[0] == 'raise' else 'refnsm'} raises: {(up if up[0] == 'raise' else me)[1][:80]}"
        return CheckRow(FAMILY, name, UPSTREAM, err, err, tol, msg)
    gi = 2 if use_dS else 1
    value_err = max(rel_err(me[0], up[0]), rel_err(me[3], up[3]))  # the loss and the similarity matrix S itself
    return CheckRow(FAMILY, name, UPSTREAM, value_err, _rowwise_err(me[gi], up[gi]), tol,
                    (note + " (grad = dL/dS)").strip() if use_dS else note)


def _ssl_pair(X, lab, kernel, loss, args, compat=None):
    """The reference and refnsm's result for one spike_similar_loss row, and a note.

    The reference is spikingjelly's result, except where spikingjelly *refuses* a BCE input whose exact
    similarity matrix lies in [0, 1]: it refuses only because its own rounding put an entry (a gaussian diagonal
    ``exp(-(r^2 + r^2 - 2 G_ii) / 2 sigma^2)``, exactly 1) a few ulp above 1, and whether that happens depends on
    the CPU and BLAS torch runs on.  There the row judges refnsm's default result against the extended-precision
    value (:mod:`refnsm.crosscheck._exact`) instead, on every machine, and says so; the refusal itself is a
    documented difference (``docs/upstream_differences.md``).  Where the exact S leaves [0, 1] the input is
    invalid and both libraries must refuse it.

    A polynomial kernel with a non-integer degree is undefined on a negative dot product: spikingjelly returns
    NaN there and refnsm refuses the input.  Such a row passes only if upstream's result really holds a NaN (its
    way of refusing) and refnsm raised its domain error."""
    up = _upstream_ssl(X, lab, kernel, loss, args)
    if up[0] == "raise" and loss == "bce":
        from . import _exact

        if _exact.similarity_in_unit_interval(X, kernel, args):
            note = "upstream refuses (its rounding puts S above 1; the exact S is in [0, 1]): judged against extended precision"
            return _exact.spike_similar_loss(X, lab, kernel, loss, args), _refnsm_ssl(X, lab, kernel, loss, args), note
    me = _refnsm_ssl(X, lab, kernel, loss, args, compat=compat)
    if (me[0] == "raise" and "non-integer d" in me[1] and up[0] != "raise"
            and not (np.isfinite(up[0]) and np.isfinite(up[1]).all())):
        return ("raise", "upstream returns NaN"), me, "upstream returns NaN (G^d of a negative dot product), refnsm refuses"
    return up, me, ""


def _ssl_case(kernel, args, loss, kind, seed):
    def run():
        X = _spikes(kind, seed)
        lab = _labels(X.shape[0], 4, seed)
        up, me, note = _ssl_pair(X, lab, kernel, loss, args)
        row = _compare(f"spike_similar_loss[{kernel}{list(args) or ''},{loss},{kind}]", up, me, TOL)
        row.note = (row.note + "; " + note).strip("; ") if note else row.note
        return row

    return run


def _ssl_unlabeled_case(kernel, args):
    def run():
        # With S_00 ~ 1 - 3e-9 against Y_00 = 0 the loss is -log(1 - S_00): torch's diagonal G/(r r + eps) has a
        # relative error ~3e-8 in 1 - S_00, refnsm's exact diagonal ~1e-16 (tests/test_spiking.py proves it
        # against rational arithmetic).  To check the formulas against upstream, refnsm runs with torch's rounding.
        X = _spikes("binary", 7)
        lab = _labels(X.shape[0], 4, 7, unlabeled=True)
        up, me, note = _ssl_pair(X, lab, kernel, "bce", args, compat="spikingjelly")
        return _compare(f"spike_similar_loss[{kernel},bce,unlabeled]", up, me, TOL, use_dS=True,
                        note=note or "ill-conditioned dL/dX; compat rounding")

    return run


def _kdp_case(kernel, args, nx, ny, compat=None):
    def run():
        torch = _torch()
        from ._upstream import load
        from refnsm import spiking as sp

        sj = load(UPSTREAM)
        rng = np.random.default_rng(nx * 10 + ny)
        x, y = rng.random((nx, 5)), rng.random((ny, 5))
        xt, yt = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
        Kt = sj.kernel_dot_product(xt, yt, kernel, *args)
        A = rng.standard_normal(tuple(Kt.shape))
        Kt.backward(torch.tensor(A))
        Km = sp.kernel_dot_product(x, y, kernel, *args, compat=compat)
        gx, gy = sp.kernel_dot_product_vjp(A, x, y, kernel, *args, compat=compat)
        gerr = max(rel_err(gx, xt.grad.numpy()), rel_err(gy, yt.grad.numpy()))
        tag = f",compat={compat}" if compat else ""
        return CheckRow(FAMILY, f"kernel_dot_product[{kernel}{list(args) or ''},{nx}x{ny}{tag}]", UPSTREAM,
                        rel_err(Km, Kt.detach().numpy()), gerr, TOL)

    return run


def _tet_case(shape, ignore, dtype=np.float64):
    def run():
        torch = _torch()
        from ._upstream import load
        from refnsm import spiking as sp

        sj = load(UPSTREAM)
        rng = np.random.default_rng(sum(shape))
        x = rng.standard_normal(shape).astype(dtype)
        tgt = rng.integers(0, shape[2], (shape[1],) + tuple(shape[3:]))
        if ignore:
            tgt.reshape(-1)[:: 3] = -100
        xt = torch.tensor(x, requires_grad=True)
        out = sj.temporal_efficient_training_cross_entropy(xt, torch.tensor(tgt))
        out.backward()
        val = sp.temporal_efficient_training_cross_entropy(x, tgt)
        g = sp.temporal_efficient_training_cross_entropy_vjp(None, x, tgt)
        tol = TOL if dtype == np.float64 else TOL32
        name = f"temporal_efficient_training_cross_entropy[{'x'.join(map(str, shape))}{',ignore' if ignore else ''}" \
               f"{',float32' if dtype == np.float32 else ''}]"
        return CheckRow(FAMILY, name, UPSTREAM, rel_err(val, out.detach().numpy()), rel_err(g, xt.grad.numpy()), tol)

    return run


def _tetloss_case(lam, phi):
    def run():
        torch = _torch()
        from refnsm import spiking as sp

        TETLoss = importlib.import_module("spikingjelly.activation_based.examples.memopt.loss").TETLoss
        rng = np.random.default_rng(3)
        y = rng.standard_normal((5, 4, 3))
        lab = rng.integers(0, 3, 4)
        yt = torch.tensor(y, requires_grad=True)
        out = TETLoss(mean=phi, tet_lambda=lam)(yt, torch.tensor(lab))
        out.backward()
        mine = sp.TETLoss(mean=phi, tet_lambda=lam)
        val = mine(y, lab)
        g = mine.backward()
        return CheckRow(FAMILY, f"TETLoss[lambda={lam},mean={phi}]", UPSTREAM,
                        rel_err(val, out.detach().numpy()), rel_err(g, yt.grad.numpy()), TOL)

    return run


def _tetloss_base_case(criterion, lam=0.3):
    """``TETLoss.base_criterion_loss`` (value and gradient), and for ``criterion="mse"`` the whole loss with a
    callable criterion: torch ``nn.MSELoss()`` on one-hot targets upstream, a NumPy callable with its VJP here."""
    def run():
        torch = _torch()
        from refnsm import spiking as sp

        TETLoss = importlib.import_module("spikingjelly.activation_based.examples.memopt.loss").TETLoss
        rng = np.random.default_rng(11)
        y = rng.standard_normal((4, 6, 3))
        lab = rng.integers(0, 3, 6)
        yt = torch.tensor(y, requires_grad=True)
        if criterion == "ce":
            up = TETLoss(mean=1.0, tet_lambda=lam)
            out = up.base_criterion_loss(yt, torch.tensor(lab))
            mine = sp.TETLoss(mean=1.0, tet_lambda=lam)
            val, g = mine.base_criterion_loss(y, lab), mine.base_criterion_loss_vjp(None, y, lab)
        else:
            onehot = np.eye(3)[lab]
            up = TETLoss(base_criterion=torch.nn.MSELoss(), mean=0.5, tet_lambda=lam)
            out = up(yt, torch.tensor(onehot))
            mine = sp.TETLoss(mean=0.5, tet_lambda=lam, base_criterion=lambda a, b: np.mean((a - np.eye(3)[b]) ** 2),
                              base_criterion_vjp=lambda gr, a, b: gr * 2 * (a - np.eye(3)[b]) / a.size)
            val = mine(y, lab)
            g = mine.backward()
        out.backward()
        name = ("TETLoss.base_criterion_loss[cross-entropy]" if criterion == "ce"
                else f"TETLoss[base_criterion=MSELoss (callable),lambda={lam}]")
        return CheckRow(FAMILY, name, UPSTREAM, rel_err(val, out.detach().numpy()), rel_err(g, yt.grad.numpy()), TOL)

    return run


def _torch_expression_case(name, upstream_label, make_inputs, torch_loss, value, vjp):
    """A refnsm loss against the torch expression spikingjelly's docs and examples use for it."""
    def run():
        torch = _torch()
        x, target = make_inputs(np.random.default_rng(len(name)))
        xt = torch.tensor(x, requires_grad=True)
        out = torch_loss(torch, xt, torch.tensor(target))
        out.backward()
        return CheckRow(FAMILY, name, upstream_label, rel_err(value(x, target), out.detach().numpy()),
                        rel_err(vjp(None, x, target), xt.grad.numpy()), TOL)

    return run


def _tmean_case():
    from refnsm import spiking as sp

    return _torch_expression_case(
        "time_mean_cross_entropy", "torch (F.cross_entropy(y.mean(0)))",
        lambda rng: (rng.standard_normal((6, 5, 4)), rng.integers(0, 4, 5)),
        lambda torch, y, t: torch.nn.functional.cross_entropy(y.mean(0), t),
        sp.time_mean_cross_entropy, sp.time_mean_cross_entropy_vjp)


def _frmse_case():
    from refnsm import spiking as sp

    return _torch_expression_case(
        "firing_rate_mse", "torch (F.mse_loss(s.mean(0), one_hot))",
        lambda rng: ((rng.random((8, 5, 10)) < 0.3).astype(np.float64), rng.integers(0, 10, 5)),
        lambda torch, s, t: torch.nn.functional.mse_loss(s.mean(0), torch.nn.functional.one_hot(t, 10).double()),
        sp.firing_rate_mse, sp.firing_rate_mse_vjp)


def _ssl32_case(kernel, args, loss):
    def run():
        X = _spikes("binary", 11).astype(np.float32)
        lab = _labels(X.shape[0], 4, 11)
        up, me, _ = _ssl_pair(X, lab, kernel, loss, args)
        return _compare(f"spike_similar_loss[{kernel}{list(args) or ''},{loss},binary,float32]", up, me, TOL32)

    return run


def cases() -> list[Case]:
    out = []
    seed = 0
    for kernel, args in KERNEL_SETTINGS:
        for loss in LOSSES:
            for kind in DATA_KINDS:
                seed += 1
                c = _ssl_case(kernel, args, loss, kind, seed)
                out.append(Case(FAMILY, f"ssl-{kernel}{''.join(map(str, args))}-{loss}-{kind}", c))
    out.append(Case(FAMILY, "ssl-linear-bce-unlabeled", _ssl_unlabeled_case("linear", ())))
    out.append(Case(FAMILY, "ssl-gaussian-bce-unlabeled", _ssl_unlabeled_case("gaussian", (1.3,))))
    for kernel, args in KERNEL_SETTINGS[:5] + KERNEL_SETTINGS[7:]:
        out.append(Case(FAMILY, f"kdp-{kernel}{''.join(map(str, args))}-4x4", _kdp_case(kernel, args, 4, 4)))
        if kernel != "gaussian":
            out.append(Case(FAMILY, f"kdp-{kernel}{''.join(map(str, args))}-4x3", _kdp_case(kernel, args, 4, 3)))
    out.append(Case(FAMILY, "kdp-gaussian-1x3", _kdp_case("gaussian", (1.3,), 1, 3)))
    out.append(Case(FAMILY, "kdp-gaussian-4x1-compat", _kdp_case("gaussian", (1.3,), 4, 1, compat="spikingjelly")))
    for shape, ignore in [((7, 5, 4), False), ((3, 4, 6, 2, 3), False), ((1, 2, 3), False), ((4, 6, 5, 3), True)]:
        out.append(Case(FAMILY, f"tet-{'x'.join(map(str, shape))}{'-ignore' if ignore else ''}", _tet_case(shape, ignore)))
    out.append(Case(FAMILY, "tet-7x5x4-float32", _tet_case((7, 5, 4), False, np.float32)))
    for lam, phi in [(0.0, 1.0), (1e-3, 1.0), (0.3, 0.5)]:
        out.append(Case(FAMILY, f"tetloss-{lam}-{phi}", _tetloss_case(lam, phi)))
    out.append(Case(FAMILY, "tetloss-base-criterion-loss", _tetloss_base_case("ce")))
    out.append(Case(FAMILY, "tetloss-callable-mse-criterion", _tetloss_base_case("mse")))
    out.append(Case(FAMILY, "time-mean-ce", _tmean_case()))
    out.append(Case(FAMILY, "firing-rate-mse", _frmse_case()))
    out.append(Case(FAMILY, "ssl-linear-mse-float32", _ssl32_case("linear", (), "mse")))
    out.append(Case(FAMILY, "ssl-gaussian-l1-float32", _ssl32_case("gaussian", (1.3,), "l1")))
    return out
