"""spike_similar_loss then spike_similar_loss_vjp: the VJP reuses the loss's work only on the exact same inputs,
and returns the same bits as a VJP computed from scratch (issue 17)."""

import numpy as np
import pytest

from refnsm.spiking import losses as sl

CASES = [("linear", "mse", ()), ("gaussian", "mse", (2.0,)), ("sigmoid", "bce", (0.3,)), ("polynomial", "l1", (2.0,))]
SIZES = [(8, 3, 4), (64, 16, 16)]  # small (G formed in the kernel) and large (N^2 D = 2^20: G by BLAS, memoised)


def _data(rng, shape, dtype):
    X = (rng.random(shape) < 0.3).astype(dtype)
    lab = np.eye(3)[rng.integers(0, 3, shape[0])]
    return X, lab


def _fresh_vjp(g, X, lab, kernel, loss, args, **kw):
    sl._memo = None
    out = sl.spike_similar_loss_vjp(g, X, lab, kernel, loss, *args, **kw)
    sl._memo = None
    return out


def _bits_equal(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SIZES)
@pytest.mark.parametrize("kernel,loss,args", CASES)
def test_pair_equals_fresh_vjp_and_value_and_grad(rng, dtype, shape, kernel, loss, args):
    X, lab = _data(rng, shape, dtype)
    want = _fresh_vjp(None, X, lab, kernel, loss, args)
    v_ref, g_ref = sl.spike_similar_loss_value_and_grad(X, lab, kernel, loss, *args)
    sl._memo = None
    v = sl.spike_similar_loss(X, lab, kernel, loss, *args)
    assert sl._memo is not None  # the loss left its work for the VJP
    g = sl.spike_similar_loss_vjp(None, X, lab, kernel, loss, *args)
    assert _bits_equal(g, want) and _bits_equal(g, g_ref)
    assert _bits_equal(np.asarray(v), np.asarray(v_ref))
    sl.spike_similar_loss(X, lab, kernel, loss, *args)  # value_and_grad after the loss: still both, same bits
    v2, g2 = sl.spike_similar_loss_value_and_grad(X, lab, kernel, loss, *args)
    assert _bits_equal(np.asarray(v2), np.asarray(v_ref)) and _bits_equal(g2, g_ref)
    g[...] = 7.0  # the caller owns the returned array: the memo is not aliased
    assert _bits_equal(sl.spike_similar_loss_vjp(1.0, X, lab, kernel, loss, *args), want)
    # another grad_out, other options: computed, and right
    assert _bits_equal(sl.spike_similar_loss_vjp(2.5, X, lab, kernel, loss, *args),
                       _fresh_vjp(2.5, X, lab, kernel, loss, args))
    sl.spike_similar_loss(X, lab, kernel, loss, *args)
    assert _bits_equal(sl.spike_similar_loss_vjp(None, X, lab, kernel, loss, *args, compat="spikingjelly"),
                       _fresh_vjp(None, X, lab, kernel, loss, args, compat="spikingjelly"))


@pytest.mark.parametrize("shape", SIZES)
def test_changed_inputs_are_never_served_from_the_memo(rng, shape):
    kernel, loss, args = "gaussian", "mse", (2.0,)
    X, lab = _data(rng, shape, np.float64)
    variants = []
    X1 = X.copy()
    X1[1, 2, 3] = 1.0 - X1[1, 2, 3]  # one spike flipped (as an in-place update between the two calls would)
    variants.append((X1, lab, args))
    lab2 = lab.copy()
    lab2[0] = np.roll(lab2[0], 1)
    variants.append((X, lab2, args))  # other labels
    variants.append((X, lab, (3.0,)))  # another kernel width
    variants.append((X.astype(np.float32), lab, args))  # another dtype
    variants.append((X.reshape(shape[0], -1), lab, args))  # same flattened values, other shape: same gradient bits
    Xm = X.copy()
    Xm[X == 0] = -0.0  # same values, other bits
    variants.append((Xm, lab, args))
    for Xv, labv, argsv in variants:
        want = _fresh_vjp(None, Xv, labv, kernel, loss, argsv)
        Xa = X.copy()
        sl.spike_similar_loss(Xa, lab, kernel, loss, *args)
        if Xv.shape == X.shape and Xv.dtype == X.dtype:  # mutate the very array the loss saw
            Xa[...] = Xv
            Xv = Xa
        got = sl.spike_similar_loss_vjp(None, Xv, labv, kernel, loss, *argsv)
        assert _bits_equal(got, want)


def test_strided_spikes_still_correct(rng):
    X, lab = _data(rng, (64, 16, 32), np.float64)
    Xs = X[:, :, ::2]  # not C-contiguous: never a memo hit, still the right gradient
    want = _fresh_vjp(None, np.ascontiguousarray(Xs), lab, "linear", "mse", ())
    sl.spike_similar_loss(Xs, lab, "linear", "mse")
    assert _bits_equal(sl.spike_similar_loss_vjp(None, Xs, lab, "linear", "mse"), want)


def test_raw_fast_path_only_for_the_same_raw_arguments(rng):
    """A hit before validation needs the same raw arrays' bits and the same options, types included."""
    X, lab = _data(rng, (8, 3, 4), np.float64)
    want = _fresh_vjp(None, X, lab, "polynomial", "mse", (2.0,))
    sl.spike_similar_loss(X, lab, "polynomial", "mse", 2.0)
    assert _bits_equal(sl.spike_similar_loss_vjp(None, X.copy(), lab.copy(), "polynomial", "mse", 2.0), want)
    # the same values with other types still go through validation (and its errors)
    sl.spike_similar_loss(X, lab, "polynomial", "mse", 2.0)
    with pytest.raises(TypeError):
        sl.spike_similar_loss_vjp(None, X, lab, "polynomial", "mse", 2.0, 1.0)
    with pytest.raises(ValueError):
        sl.spike_similar_loss_vjp(None, X, lab[:4], "polynomial", "mse", 2.0)
    assert _bits_equal(sl.spike_similar_loss_vjp(None, X, lab.astype(np.float32), "polynomial", "mse", 2),
                       _fresh_vjp(None, X, lab.astype(np.float32), "polynomial", "mse", (2,)))
    Xn = X.copy()
    Xn[0, 0, 0] = np.nan
    sl.spike_similar_loss(X, lab, "polynomial", "mse", 2.0)
    with pytest.raises(ValueError):
        sl.spike_similar_loss_vjp(None, Xn, lab, "polynomial", "mse", 2.0)
    # a list is never matched before validation, and is still right
    sl.spike_similar_loss(X, lab, "polynomial", "mse", 2.0)
    assert _bits_equal(sl.spike_similar_loss_vjp(None, X.tolist(), lab, "polynomial", "mse", 2.0), want)
