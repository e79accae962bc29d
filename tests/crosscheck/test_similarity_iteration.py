"""refnsm.similarity's iteration optimizers, schedulers, a circuit on IterationLossModule and extract_embeddings
against torch / pynsm 1.0.1 (float64, 1e-10)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from refnsm import similarity as sim
from refnsm.crosscheck import rel_err

TOL = 1e-10
_spec = importlib.util.spec_from_file_location("_iter_circuit", Path(__file__).parents[1] / "test_similarity_iteration.py")
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
LinearSM, _circuit_data = _mod.LinearSM, _mod._circuit_data


@pytest.fixture(scope="module")
def torch(upstream):
    upstream("pynsm")
    import torch as _torch

    return _torch


@pytest.mark.parametrize("name, kw", [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.7, "nesterov": True, "maximize": True}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.02, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.02, "amsgrad": True, "maximize": True}),
])
def test_optimizer_steps_match_torch(torch, name, kw):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(8)]
    t = torch.tensor(p0.copy(), requires_grad=True)
    opt_t = getattr(torch.optim, name)([t], **kw)
    p = p0.copy()
    opt = getattr(sim, name)({"p": p}, **kw)
    for g in grads:
        t.grad = torch.tensor(g)
        opt_t.step()
        opt.step({"p": g})
    assert rel_err(p, t.detach().numpy()) < TOL


@pytest.mark.parametrize("name, kw", [("StepLR", {"step_size": 3, "gamma": 0.3}), ("ExponentialLR", {"gamma": 0.7})])
def test_scheduler_learning_rates_match_torch(torch, name, kw):
    t = torch.zeros(1, requires_grad=True)
    opt_t = torch.optim.SGD([t], lr=0.5)
    sched_t = getattr(torch.optim.lr_scheduler, name)(opt_t, **kw)
    opt = sim.SGD({"p": np.zeros(1)}, lr=0.5)
    sched = getattr(sim, name)(opt, **kw)
    for _ in range(10):
        opt_t.step()
        sched_t.step()
        sched.step()
        assert rel_err(opt.lr, opt_t.param_groups[0]["lr"]) < 1e-15


@pytest.mark.parametrize("optim, sched, okw, skw, proj", [
    ("SGD", None, {"momentum": 0.5}, {}, None),
    ("Adam", "StepLR", {"betas": (0.8, 0.99)}, {"step_size": 5, "gamma": 0.5}, None),
    ("Adam", "ExponentialLR", {}, {"gamma": 0.9}, "relu"),
])
def test_circuit_on_the_base_matches_pynsm_driven_by_torch_optimizers(torch, optim, sched, okw, skw, proj):
    """pynsm's SimilarityMatching with iteration_optimizer / iteration_scheduler set to torch's classes, against a
    refnsm circuit built on IterationLossModule with refnsm's optimizer and scheduler (same weights, 30 steps)."""
    import pynsm

    W, M, x = _circuit_data(4)
    torch.manual_seed(0)
    enc = torch.nn.Linear(6, 3, bias=False).double()
    with torch.no_grad():
        enc.weight.copy_(torch.tensor(W))
    up = pynsm.SimilarityMatching(enc, 3, iteration_optimizer=getattr(torch.optim, optim), iteration_lr=0.05,
                                  iteration_scheduler=None if sched is None else getattr(torch.optim.lr_scheduler, sched),
                                  it_optim_kwargs=dict(okw), it_sched_kwargs=dict(skw), max_iterations=30,
                                  iteration_projection=torch.relu if proj else None).double()
    with torch.no_grad():
        up.competitor.weight.copy_(torch.tensor(M))
    y_up = up(torch.tensor(x)).numpy()
    mine = LinearSM(W, M, iteration_optimizer=getattr(sim, optim), iteration_lr=0.05,
                    iteration_scheduler=None if sched is None else getattr(sim, sched), it_optim_kwargs=okw,
                    it_sched_kwargs=skw, max_iterations=30,
                    iteration_projection=(lambda p: np.maximum(p, 0.0)) if proj else None)
    assert rel_err(mine(x), y_up) < TOL


def test_extract_embeddings_matches_pynsm(torch):
    import pynsm

    W, M, x = _circuit_data(5)
    labels = np.array([0, 1, 2, 1, 0])
    enc = torch.nn.Linear(6, 3, bias=False).double()
    with torch.no_grad():
        enc.weight.copy_(torch.tensor(W))
    up = pynsm.SimilarityMatching(enc, 3).double()
    with torch.no_grad():
        up.competitor.weight.copy_(torch.tensor(M))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(labels)),
                                         batch_size=2)
    res_up = pynsm.extract_embeddings(up, loader)
    mine = sim.SimilarityMatching(sim.Linear(6, 3, bias=False, weight=W), 3)
    mine.load_state_dict({"encoders.0.weight": W, "competitor.weight": M})
    res = sim.extract_embeddings(mine, [(x[i:i + 2], labels[i:i + 2]) for i in range(0, 5, 2)])
    assert rel_err(res.output, res_up.output.numpy()) < TOL
    np.testing.assert_array_equal(res.label, res_up.label.numpy())


@pytest.mark.parametrize("optim, sched, okw, skw, proj, tol", [
    ("SGD", None, {"momentum": 0.5}, {}, None, 0.0),
    ("Adam", "StepLR", {"betas": (0.8, 0.99)}, {"step_size": 5, "gamma": 0.5}, None, 0.0),
    ("Adam", "ExponentialLR", {}, {"gamma": 0.9}, "relu", 0.0),
    ("SGD", "StepLR", {"momentum": 0.3, "nesterov": True}, {"step_size": 10}, "relu", 0.0),
])
def test_built_in_circuit_with_plugins_matches_pynsm(torch, optim, sched, okw, skw, proj, tol):
    """refnsm's SimilarityMatching(iteration_optimizer=..., iteration_scheduler=...) against pynsm's with the torch
    classes: the fast-loop output and the training loss's gradients after it."""
    import pynsm

    W, M, x = _circuit_data(11)
    enc = torch.nn.Linear(6, 3, bias=False).double()
    with torch.no_grad():
        enc.weight.copy_(torch.tensor(W))
    up = pynsm.SimilarityMatching(enc, 3, iteration_optimizer=getattr(torch.optim, optim), iteration_lr=0.05,
                                  iteration_scheduler=None if sched is None else getattr(torch.optim.lr_scheduler, sched),
                                  it_optim_kwargs=dict(okw), it_sched_kwargs=dict(skw), max_iterations=30, tol=tol,
                                  iteration_projection=torch.relu if proj else None).double()
    with torch.no_grad():
        up.competitor.weight.copy_(torch.tensor(M))
    xt = torch.tensor(x)
    y_up = up(xt)
    loss = up.loss(xt, y_up)
    loss.backward()
    mine = sim.SimilarityMatching(sim.Linear(6, 3, bias=False, weight=W), 3, iteration_lr=0.05, tol=tol,
                                  iteration_optimizer=getattr(sim, optim), it_optim_kwargs=okw, max_iterations=30,
                                  iteration_scheduler=None if sched is None else getattr(sim, sched),
                                  it_sched_kwargs=skw, iteration_projection=proj)
    mine.load_state_dict({"encoders.0.weight": W, "competitor.weight": M})
    y = mine(x)
    assert rel_err(y, y_up.numpy()) < TOL
    assert rel_err(mine.loss(x, y), loss.item()) < TOL
    mine.backward()
    assert rel_err(mine.grads["encoders.0.weight"], enc.weight.grad.numpy()) < TOL
    assert rel_err(-mine.grads["competitor.weight"] / mine.tau, up.competitor.weight.grad.numpy()) < TOL
