"""Tutorial 07 (Dale's law in a recurrent rate network): its BPTT gradient and its reproduced numbers (quick mode)."""

from pathlib import Path

import numpy as np
import pytest

from refnsm.gradcheck import gradcheck

@pytest.fixture(scope="module")
def tut(load_tutorial):
    return load_tutorial("07_dale_law")


def test_tutorial_bptt_gradient_matches_finite_differences(tut):
    rng = np.random.default_rng(0)
    P = tut.init_params(5, rng)
    x, y = tut.task_batch(6, 3, rng)
    keys = ["W", "U", "b", "V"]

    def f(W, U, b, V):
        return tut.task_loss({"W": W, "U": U, "b": b, "V": V}, x, y)

    def vjp(g, W, U, b, V):
        _, grads = tut.task_loss_and_grads({"W": W, "U": U, "b": b, "V": V}, x, y)
        return tuple(g * grads[k] for k in keys)

    gradcheck(f, vjp, tuple(P[k] for k in keys), raise_on_fail=True)


def test_tutorial_reproduces_dale_network(tut, tmp_path):
    res = tut.main(quick=True, out_dir=tmp_path)
    base, reg = res["none"], res["dale+exc"]
    # the task is solved with and without the penalties (normalised MSE; 1.0 = always answering 0)
    assert base["task_loss"] < 0.05
    assert reg["task_loss"] < 0.3
    # without penalties no neuron obeys Dale's law and the weights are about half positive
    assert base["dale_fraction"] < 0.1
    assert abs(base["exc_weight_fraction"] - 0.5) < 0.1
    # with them most neurons do, and the excitatory weight ratio sits at the 0.8 target
    assert reg["dale_fraction"] >= 0.5
    assert abs(reg["exc_weight_fraction"] - 0.8) < 0.05
    # neurotorch's untempered soft ratio stays near 0.5 for weights of this size (the tutorial's point)
    assert abs(reg["soft_ratio"] - 0.5) < 0.05
    for p in res["figures"]:
        assert Path(p).is_file() and Path(p).stat().st_size > 10_000
