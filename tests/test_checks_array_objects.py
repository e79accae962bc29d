"""Array objects other than ndarrays: read through __array__ or DLPack; a tensor that requires grad is refused
with a message naming the argument and the fix (.detach()).  The real torch tensors are in
tests/crosscheck/test_torch_inputs.py (torch lives in .venv-peers)."""

import numpy as np
import pytest

from refnsm import _checks, spiking


class ArrayOnly:  # what torch/JAX/xarray expose: __array__
    def __init__(self, a):
        self._a = a

    def __array__(self, dtype=None, copy=None):
        return self._a if dtype is None else self._a.astype(dtype)


class DLPackOnly:  # an array library that speaks only DLPack
    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


class NeedsGrad(ArrayOnly):  # the attribute torch uses
    requires_grad = True


class OnGPU:  # __array__ raises, as a CUDA tensor's does
    def __array__(self, dtype=None, copy=None):
        raise TypeError("can't convert cuda:0 device type tensor to numpy")


@pytest.mark.parametrize("wrap", [ArrayOnly, DLPackOnly], ids=["__array__", "dlpack"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_array_objects_are_read_with_their_dtype(wrap, dtype, rng):
    a = rng.standard_normal((3, 4)).astype(dtype)
    out = _checks.as_float_array(wrap(a), "x", ndim=2)
    assert out.dtype == dtype and np.array_equal(out, a)


def test_dlpack_object_through_a_public_function(rng):
    spikes = (rng.random((4, 3, 5)) < 0.4).astype(float)
    labels = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=float)
    want = spiking.spike_similar_loss(spikes, labels, "linear", "mse")
    got = spiking.spike_similar_loss(DLPackOnly(spikes), ArrayOnly(labels), "linear", "mse")
    assert got == want


def test_a_tensor_that_requires_grad_names_the_argument_and_the_fix(rng):
    spikes = (rng.random((4, 3, 5)) < 0.4).astype(float)
    labels = np.eye(3)[[0, 1, 2, 0]]
    with pytest.raises(TypeError, match=r"spikes: .*requires grad.*spikes\.detach\(\)"):
        spiking.spike_similar_loss(NeedsGrad(spikes), labels, "linear", "mse")
    with pytest.raises(TypeError, match=r"labels: .*requires grad.*labels\.detach\(\)"):
        spiking.spike_similar_loss(spikes, NeedsGrad(labels), "linear", "mse")


def test_unreadable_object_names_the_argument():
    with pytest.raises(TypeError, match=r"x: could not read OnGPU as a NumPy array .*cuda.*\.cpu\(\)"):
        _checks.as_float_array(OnGPU(), "x")
    with pytest.raises(TypeError, match=r"target: could not read OnGPU"):
        _checks.as_index_array(OnGPU(), "target")


def test_scalar_grad_out_refuses_a_grad_tensor():
    with pytest.raises(TypeError, match=r"grad_out: .*grad_out\.detach\(\)"):
        _checks.scalar_grad_out(NeedsGrad(np.array(1.0)))
