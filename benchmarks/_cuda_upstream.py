"""refnsm's CUDA path against the upstream libraries on *their* GPU backend, for ``bench_cuda.py``.

``cases(rc, rng, scale, torch_device)`` returns ``(case, size, refnsm_gpu_fn, upstream_fn)`` tuples, float32 (the
precision a GPU user runs upstream in): refnsm on device arrays (data kept on the GPU, synchronised by the caller)
against the same computation by spikingjelly 2.0.0 (``spike_similar_loss``, TET cross-entropy) and neuromancer
1.5.6 (``slim.linear`` maps) with torch tensors on ``torch_device``, forward plus ``backward()`` and a
``torch.cuda.synchronize()``.  ngclearn (JAX) and pynsm are not covered yet.

``available()`` says whether the comparison can run: torch with CUDA, and the two libraries importable.  On this
project's development machine torch is CPU-only, so ``bench_cuda.py`` reports these rows as not run; the smoke test
``tests/crosscheck/test_bench_cuda_upstream.py`` runs every case once at tiny sizes with ``torch_device="cpu"``
under the CUDA simulator and checks that both sides compute the same numbers, so the code path is exercised.
"""

import numpy as np


def available():
    """``(ok, reason)``: whether torch sees a CUDA GPU and spikingjelly and neuromancer import."""
    try:
        import torch
    except ImportError as exc:
        return False, f"torch is not importable ({exc})"
    if not torch.cuda.is_available():
        return False, f"torch {torch.__version__} has no CUDA device (a CPU-only build or no GPU)"
    try:
        from refnsm.crosscheck import _upstream

        _upstream.load("spikingjelly")
        _upstream.load("neuromancer")
    except ImportError as exc:
        return False, f"an upstream library is missing ({exc})"
    return True, ""


def _sync(torch, torch_device):
    if str(torch_device).startswith("cuda"):
        torch.cuda.synchronize()


def cases(rc, rng, scale, torch_device):
    import torch

    import refnsm.linear as L
    from refnsm import spiking as sp
    from refnsm.crosscheck import _upstream

    sj = _upstream.load("spikingjelly")
    nm = _upstream.load("neuromancer")
    dt, tdt = np.float32, torch.float32
    N, D = {"tiny": (6, 5), "quick": (256, 1024), "full": (1024, 4096)}[scale]
    T, NB, C = {"tiny": (2, 3, 4), "quick": (16, 256, 100), "full": (32, 1024, 256)}[scale]
    n, B = {"tiny": (4, 3), "quick": (256, 1024), "full": (1024, 8192)}[scale]
    n_hh = {"tiny": 4, "quick": 128, "full": 512}[scale]
    out = []

    # spike_similar_loss, linear kernel, MSE: value and gradient
    X = (rng.random((N, D)) < 0.2).astype(dt)
    cls = rng.integers(0, 10, N)
    lab = np.eye(10)[cls]
    Xd, labd = rc.to_device(X), rc.to_device(lab.astype(dt))
    Xt = torch.tensor(X, device=torch_device, requires_grad=True)
    lab_t = torch.tensor(cls, device=torch_device)
    lab_t = torch.nn.functional.one_hot(lab_t, 10)

    def ssl_up(Xt=Xt, lab_t=lab_t):
        Xt.grad = None
        loss = sj.spike_similar_loss(Xt, lab_t, "linear", "mse")
        loss.backward()
        _sync(torch, torch_device)
        return loss.detach().cpu().numpy(), Xt.grad.cpu().numpy()

    out.append(("spike_similar_loss value+grad linear/mse (float32)", f"N={N}, D={D}",
                lambda: sp.spike_similar_loss_value_and_grad(Xd, labd, "linear", "mse", device="cuda"), ssl_up))

    # TET cross-entropy: value and gradient
    xs = rng.standard_normal((T, NB, C)).astype(dt)
    tg = rng.integers(0, C, NB)
    xsd, tgd = rc.to_device(xs), rc.to_device(tg)
    xt = torch.tensor(xs, device=torch_device, requires_grad=True)
    tt = torch.tensor(tg, device=torch_device)

    def tet_up(xt=xt, tt=tt):
        xt.grad = None
        loss = sj.temporal_efficient_training_cross_entropy(xt, tt)
        loss.backward()
        _sync(torch, torch_device)
        return loss.detach().cpu().numpy(), xt.grad.cpu().numpy()

    out.append(("TET cross-entropy value+grad (float32)", f"T={T}, N={NB}, C={C}",
                lambda: sp.temporal_efficient_training_cross_entropy_value_and_grad(xsd, tgd, device="cuda"),
                tet_up))

    # slim.linear maps: forward + backward of one training step, parameters copied from upstream
    for refname, key, size in (("Linear", "linear", n), ("OrthogonalLinear", "orthogonal", n_hh)):
        torch.manual_seed(0)
        up = nm.maps[key](size, size, True).to(device=torch_device, dtype=tdt)
        compat = "neuromancer" if refname == "OrthogonalLinear" else None
        ref = getattr(L, refname)(size, size, True, compat=compat, dtype=dt, device="cuda")
        sd = up.state_dict()
        ref.load_params({k: sd[k].detach().cpu().numpy().astype(dt) for k in ref.params})
        x = rng.standard_normal((B, size)).astype(dt)
        g = rng.standard_normal((B, size)).astype(dt)
        xd, gd = rc.to_device(x), rc.to_device(g)
        tx = torch.tensor(x, device=torch_device, requires_grad=True)
        tg_ = torch.tensor(g, device=torch_device)

        def lin_me(ref=ref, xd=xd, gd=gd):
            y = ref.forward(xd)
            return y, ref.backward(gd)

        def lin_up(up=up, tx=tx, tg_=tg_):
            for p in up.parameters():
                p.grad = None
            tx.grad = None
            y = up(tx)
            y.backward(tg_)
            _sync(torch, torch_device)
            return y.detach().cpu().numpy(), tx.grad.cpu().numpy()

        out.append((f"{refname} forward+backward (float32)", f"{size}x{size}, B={B}", lin_me, lin_up))
    return out
