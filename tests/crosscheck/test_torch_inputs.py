"""Real torch tensors as inputs (torch is in .venv-peers): CPU tensors are read without a copy of the graph,
a tensor that requires grad gets a clear error naming the argument and `.detach()`."""

import numpy as np
import pytest

from refnsm import spiking


@pytest.fixture(scope="module")
def torch():
    try:
        import torch
    except ImportError as exc:
        import os

        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"torch cannot be imported under CI ({exc}); run `make crosscheck`")
        pytest.skip(f"torch is not installed ({exc})")
    return torch


def _data(rng):
    spikes = (rng.random((4, 3, 5)) < 0.4).astype(np.float64)
    labels = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=np.float64)
    return spikes, labels


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cpu_tensors_give_the_numpy_result(torch, dtype, rng):
    spikes, labels = _data(rng)
    spikes, labels = spikes.astype(dtype), labels.astype(dtype)
    want = spiking.spike_similar_loss(spikes, labels, "gaussian", "mse", 2.0)
    got = spiking.spike_similar_loss(torch.from_numpy(spikes), torch.from_numpy(labels), "gaussian", "mse", 2.0)
    assert np.asarray(got).dtype == np.dtype(dtype) and got == want


def test_tensor_requiring_grad_is_refused_by_name(torch, rng):
    spikes, labels = _data(rng)
    t = torch.from_numpy(spikes).requires_grad_(True)
    with pytest.raises(TypeError, match=r"spikes: got a torch\.Tensor that requires grad; pass spikes\.detach\(\)"):
        spiking.spike_similar_loss(t, labels, "linear", "mse")
    assert spiking.spike_similar_loss(t.detach(), labels, "linear", "mse") == spiking.spike_similar_loss(
        spikes, labels, "linear", "mse")
