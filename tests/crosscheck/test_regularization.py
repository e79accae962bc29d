import numpy as np
import pytest

from refnsm.crosscheck import regularization as adapter


@pytest.mark.parametrize("case", adapter.cases(), ids=lambda c: c.name)
def test_crosscheck(case, upstream):
    upstream(adapter.UPSTREAM)          # skips locally, FAILS under CI=true, when the library is missing
    row = case.run()
    assert row.passed, str(row)


@pytest.mark.parametrize("inh_first", [True, False])
def test_dale_statistics_match_upstream(upstream, inh_first):
    """dale_ against upstream statistically: sign pattern (one sign per row), E/I counts, sparsity."""
    upstream(adapter.UPSTREAM)
    up, ref = adapter.dale_statistics(shape=(60, 60), inh_ratio=0.25, rho=0.8, inh_first=inh_first)
    for u, r in zip(up, ref):
        assert u["one_sign"] and r["one_sign"]
        assert u["n_inh"] == r["n_inh"] == 15
        if inh_first:
            assert u["inh_rows"] == r["inh_rows"] == list(range(15))
        # refnsm: exactly int((1 - rho) * N * M) zeros; upstream: ~ (1 - rho) of the entries (a Bernoulli mask)
        assert r["zero_frac"] == int((1 - 0.8) * 3600) / 3600  # int() truncation of 719.99..., as upstream
        assert abs(u["zero_frac"] - 0.2) < 0.03
    assert abs(np.mean([u["zero_frac"] for u in up]) - np.mean([r["zero_frac"] for r in ref])) < 0.015


@pytest.mark.parametrize("n, inh_ratio, rho, inh_first, seed", [
    (3, 0.5, 0.99, True, 0), (5, 0.2, 0.7, False, 1), (17, 0.5, 0.9, True, 7), (40, 0.25, 0.8, False, 123),
    (64, 0.5, 0.99, True, None), (100, 0.3, 0.5, False, 2**40 + 5)])
def test_dale_torch_is_bit_compatible(upstream, n, inh_ratio, rho, inh_first, seed):
    """refnsm.regularization.dale_torch against neurotorch.init.dale_ on this torch: the same signs (all that
    DaleLawL2 uses), bit for bit; values to 1e-5 of the largest magnitude (for n >= 16 torch's AVX2 normal kernel
    uses avx_mathfun's approximate log/sincos, up to ~2e-6 absolute; the serial path of tiny sizes is exact)."""
    upstream(adapter.UPSTREAM)
    import torch
    from neurotorch.init import dale_

    from refnsm.regularization import dale_torch

    up = dale_(torch.empty(n, n), inh_ratio, rho, inh_first, seed=seed).numpy()
    ours = dale_torch(n, inh_ratio, rho, inh_first, seed=seed)
    np.testing.assert_array_equal(np.sign(ours), np.sign(up))
    np.testing.assert_allclose(ours, up, rtol=0, atol=1e-5 * np.abs(up[np.isfinite(up)]).max())


def test_dale_law_l2_generated_reference_matches_upstream(upstream):
    """With compat='neurotorch' the generated reference, hence the loss and gradient, are upstream's (float32)."""
    upstream(adapter.UPSTREAM)
    import torch
    from neurotorch.regularization.connectome import DaleLawL2

    from refnsm import regularization as R
    from refnsm.crosscheck import rel_err

    W = np.random.default_rng(0).standard_normal((30, 30)).astype(np.float32)
    tW = torch.nn.Parameter(torch.tensor(W))
    up = DaleLawL2([tW], alpha=0.3, inh_ratio=0.4, rho=0.9, seed=5)
    v = up()
    v.backward()
    ours = R.DaleLawL2({"W": W}, 0.3, compat="neurotorch", inh_ratio=0.4, rho=0.9, rng=5)
    val, grads = ours.value_and_grad()
    assert rel_err(val, v.item()) < 1e-5
    assert rel_err(grads["W"], tW.grad.numpy()) < 1e-6
