"""The regularizers with device="cuda": device arrays in, the CPU's values, gradients back on the device.

They compute on the host (refnsm/regularization/functional.py: matrix-sized parameters, LAPACK for the spectral
norms), so the device results must equal the CPU's bit for bit.  Where the kernels run: tests/cuda_support.py.
"""

import numpy as np
import pytest
from cuda_support import MODE, dev as _dev, host as _host, is_dev as _isdev, needs_device, run_file_under_simulator

from refnsm.regularization import functional as F


@pytest.mark.skipif(MODE is not None, reason="the kernels run in this process")
def test_kernels_under_simulator():
    run_file_under_simulator(__file__)


@needs_device
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_values_and_gradients_on_device_arrays(dtype):
    rng = np.random.default_rng(0)
    W = rng.standard_normal((4, 3)).astype(dtype)
    R = rng.standard_normal((4, 3)).astype(dtype)
    cases = [
        (F.lp_norm, F.lp_norm_vjp, (W,), dict(p=2)),
        (F.lp_norm, F.lp_norm_vjp, (W,), dict(p=1, mode="entrywise")),
        (F.dale_law_l2, F.dale_law_l2_vjp, (W, R), dict(alpha=0.3)),
        (F.exc_ratio_loss, F.exc_ratio_loss_vjp, (W,), dict(exc_target_ratio=0.6)),
        (F.weights_distance, F.weights_distance_vjp, (W, R), dict(p=np.inf)),
    ]
    for f, vjp, args, kw in cases:
        v0 = f(*args, **kw)
        v1 = f(*(_dev(a) for a in args), **kw, device="cuda")
        assert v1 == v0 and v1.dtype == v0.dtype
        g0 = vjp(2.0, *args, **kw)
        g1 = vjp(2.0, *(_dev(a) for a in args), **kw, device="cuda")
        for a, b in zip(g1 if isinstance(g1, tuple) else (g1,), g0 if isinstance(g0, tuple) else (g0,)):
            assert _isdev(a)
            np.testing.assert_array_equal(_host(a), b)
        g2 = vjp(2.0, *args, **kw, device="cuda")  # NumPy in, NumPy out
        for a, b in zip(g2 if isinstance(g2, tuple) else (g2,), g0 if isinstance(g0, tuple) else (g0,)):
            assert isinstance(a, np.ndarray)
            np.testing.assert_array_equal(a, b)
    bad = W.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError) as cpu:
        F.dale_law_l2(bad, R)
    with pytest.raises(ValueError) as gpu:
        F.dale_law_l2(_dev(bad), R, device="cuda")
    assert str(gpu.value) == str(cpu.value)


def test_device_option_is_validated():
    with pytest.raises(ValueError, match="device: expected one of 'cpu', 'cuda'"):
        F.lp_norm(np.ones(3), device="gpu")
