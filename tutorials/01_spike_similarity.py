# %% [markdown]
# # Tutorial 01: spike similarity and TET losses
#
# **What you will see.** Two families of losses for spiking networks, as spikingjelly defines them, and a small
# experiment trained with refnsm's hand-derived gradients (no autodiff anywhere).
#
# ## 1. The spike similarity loss
# For a batch of $N$ output spike trains flattened to rows $x_i \in \mathbb{R}^D$ ($D = M \cdot T$: neurons times
# steps), the *output similarity* with the linear kernel is the damped cosine
#
# $$ S_{ij} = \frac{x_i \cdot x_j}{\|x_i\|\,\|x_j\| + 10^{-8}}, $$
#
# and the *label similarity* of multi-hot labels $L$ is $Y = \min(L L^\top, 1)$: 1 when two samples share a
# label. The loss pulls $S$ toward $Y$ over **all** $N^2$ pairs, e.g. $L = \frac{1}{N^2}\sum_{ij}(S_{ij}-Y_{ij})^2$.
# Same-class outputs are pushed to be parallel, different-class outputs orthogonal: a metric-learning objective
# on spike trains, with no readout layer or class count built in.
#
# Its gradient (derived in `refnsm.spiking.losses.spike_similarity_matrix_vjp`) is, with $A = \partial L/\partial S$,
# $P = r r^\top + \epsilon$, $B = A \oslash P$, $C = -A \odot G \oslash P^2$ and $g = (C + C^\top) r$:
#
# $$ \frac{\partial L}{\partial X} = (B + B^\top) X + \operatorname{diag}(g \oslash r)\, X. $$
#
# ## 2. TET
# Temporal Efficient Training (Deng et al., ICLR 2022) applies the cross-entropy to the logits of **every** time
# step and averages, $L_{TET} = \frac1T\sum_t \mathrm{CE}(o_t, y)$, instead of to the time-averaged logits
# ("SDT", $\mathrm{CE}(\frac1T\sum_t o_t, y)$). Each step then gets its own gradient $(p_t - \mathrm{onehot})/(TN)$
# rather than a shared one.
#
# Run: `python tutorials/01_spike_similarity.py [--quick]`.  Figures go to `figures/`.

# %%
import os
import sys
import time
from pathlib import Path

import numpy as np

from refnsm import spiking as sp

# Figures go to $REFNSM_FIGURES if set, else to the repository's figures/ folder.  Written without __file__,
# so that the same code runs as a script, imported, and as a notebook opened from tutorials/ or the repository.
_here = Path(globals().get("__file__", Path.cwd() / "_")).resolve().parent
FIGURES = Path(os.environ.get("REFNSM_FIGURES") or (_here.parent if _here.name == "tutorials" else _here) / "figures")


def poisson_spike_trains(rng, n_per_class, n_classes=4, n_in=40, T=20, base=0.04, active=0.35):
    """Class-dependent Poisson (Bernoulli per step) input spikes [N, n_in, T] and integer labels [N].

    Class c drives its own block of n_in / n_classes input neurons at rate `active`; every other neuron fires at
    `base`.  Per-sample rate jitter makes the classes overlap a little."""
    labels = np.repeat(np.arange(n_classes), n_per_class)
    rates = np.full((labels.size, n_in), base)
    block = n_in // n_classes
    for n, c in enumerate(labels):
        rates[n, c * block:(c + 1) * block] = active
    rates *= rng.uniform(0.7, 1.3, rates.shape)
    spikes = (rng.random((labels.size, n_in, T)) < rates[:, :, None]).astype(np.float64)
    perm = rng.permutation(labels.size)
    return spikes[perm], labels[perm]


# %% [markdown]
# ## 3. A linear readout trained with the similarity loss
# The readout maps input spikes to output activity $o_{n,m,t} = \mathrm{relu}(\sum_i W_{mi}\, s_{n,i,t})$, shape
# [N, M, T]; the loss is `spike_similar_loss(o, onehot(labels))` with the linear kernel and MSE. The chain rule is
# written out by hand: `spike_similar_loss_vjp` gives $\partial L/\partial o$, the relu mask passes it where the
# pre-activation is positive, and $\partial L/\partial W_{mi} = \sum_{n,t} \delta_{n,m,t}\, s_{n,i,t}$.

# %%
def readout(W, s):
    pre = np.einsum("mi,nit->nmt", W, s)
    return np.maximum(pre, 0.0), pre


def readout_grad(W, s, pre, g_out):
    return np.einsum("nmt,nit->mi", g_out * (pre > 0), s)


class Adam:
    def __init__(self, lr=0.02, b1=0.9, b2=0.999, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps, self.t, self.m, self.v = lr, b1, b2, eps, 0, 0.0, 0.0

    def step(self, param, grad):
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * grad
        self.v = self.b2 * self.v + (1 - self.b2) * grad**2
        mhat, vhat = self.m / (1 - self.b1**self.t), self.v / (1 - self.b2**self.t)
        return param - self.lr * mhat / (np.sqrt(vhat) + self.eps)


def class_similarity(S, labels):
    same = labels[:, None] == labels[None, :]
    off = ~np.eye(len(labels), dtype=bool)
    return S[same & off].mean(), S[~same].mean()


def nearest_mean_accuracy(W, s_train, y_train, s_test, y_test):
    """Classify test outputs by the cosine to each class's mean training output."""
    def feats(s):
        o = readout(W, s)[0].reshape(len(s), -1)
        return o / (np.linalg.norm(o, axis=1, keepdims=True) + 1e-12)

    f_tr, f_te = feats(s_train), feats(s_test)
    means = np.stack([f_tr[y_train == c].mean(0) for c in np.unique(y_train)])
    return float(np.mean(np.argmax(f_te @ means.T, axis=1) == y_test))


def train_similarity(rng, s, y, n_out=10, steps=200, batch=32, lr=0.02):
    n_classes = y.max() + 1
    W = rng.normal(0.05, 0.05, (n_out, s.shape[1]))
    opt = Adam(lr)
    history = []
    for _ in range(steps):
        idx = rng.choice(len(y), batch, replace=False)
        sb, lab = s[idx], np.eye(n_classes)[y[idx]]
        out, pre = readout(W, sb)
        loss, g_out = sp.spike_similar_loss_value_and_grad(out, lab, "linear", "mse")
        W = opt.step(W, readout_grad(W, sb, pre, g_out))
        history.append(float(loss))
    return W, np.array(history)


# %% [markdown]
# ## 4. TET against the time-mean cross-entropy
# A linear classifier producing logits at every step, $o_t = W s_t$ ([T, N, C]), trained once with TET and once
# with the SDT baseline on a harder version of the data (class blocks at rate 0.10 against 0.05); prediction uses
# the time-averaged logits. Expect **SDT to win here** (in the full run: three seeds, 200 steps; quick mode is too
# short and noisy to order them): for a linear readout of rate-coded inputs the time-averaged
# logit is the natural statistic, and TET asks every single, Bernoulli-noisy step to be classified on its own.
# TET's advantage in the paper comes from re-weighting gradients through the membrane dynamics of deep spiking
# networks trained with surrogate gradients, which a linear readout does not have. The losses and their
# gradients are the same either way; what they are good for depends on the model.

# %%
def train_classifier(rng, s, y, loss, steps=150, batch=32, lr=0.05):
    n_classes = y.max() + 1
    W = rng.normal(0, 0.05, (n_classes, s.shape[1]))
    opt = Adam(lr)
    value, vjp = {"tet": (sp.temporal_efficient_training_cross_entropy, sp.temporal_efficient_training_cross_entropy_vjp),
                  "sdt": (sp.time_mean_cross_entropy, sp.time_mean_cross_entropy_vjp)}[loss]
    for _ in range(steps):
        idx = rng.choice(len(y), batch, replace=False)
        logits = np.einsum("ci,nit->tnc", W, s[idx])
        g = vjp(None, logits, y[idx])
        W = opt.step(W, np.einsum("tnc,nit->ci", g, s[idx]))
    return W


def classifier_accuracy(W, s, y):
    return float(np.mean(np.einsum("ci,nit->tnc", W, s).mean(0).argmax(1) == y))


# %%
def main(quick: bool = False) -> dict:
    rng = np.random.default_rng(0)
    n_train, n_test = (24, 24) if quick else (64, 64)
    s_tr, y_tr = poisson_spike_trains(rng, n_train)
    s_te, y_te = poisson_spike_trains(rng, n_test)
    t0 = time.perf_counter()

    W0 = np.random.default_rng(1).normal(0.05, 0.05, (10, s_tr.shape[1]))
    lab_te = np.eye(4)[y_te]
    S_before = sp.spike_similarity_matrix(readout(W0, s_te)[0])
    loss_before = float(sp.spike_similar_loss(readout(W0, s_te)[0], lab_te))
    W, history = train_similarity(np.random.default_rng(1), s_tr, y_tr, steps=80 if quick else 300)
    S_after = sp.spike_similarity_matrix(readout(W, s_te)[0])
    loss_after = float(sp.spike_similar_loss(readout(W, s_te)[0], lab_te))
    within_b, between_b = class_similarity(S_before, y_te)
    within_a, between_a = class_similarity(S_after, y_te)
    acc = nearest_mean_accuracy(W, s_tr, y_tr, s_te, y_te)

    steps, seeds = (60, (2,)) if quick else (200, (2, 3, 4))
    hard = np.random.default_rng(5)
    c_tr, cy_tr = poisson_spike_trains(hard, 32 if quick else 64, active=0.10, base=0.05)
    c_te, cy_te = poisson_spike_trains(hard, 64 if quick else 256, active=0.10, base=0.05)
    acc_tet, acc_sdt = (float(np.mean([classifier_accuracy(train_classifier(np.random.default_rng(k), c_tr, cy_tr,
                                                                            loss, steps), c_te, cy_te)
                                       for k in seeds])) for loss in ("tet", "sdt"))
    elapsed = time.perf_counter() - t0

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = np.argsort(y_te, kind="stable")
    fig, ax = plt.subplots(1, 3, figsize=(13, 4))
    ax[0].plot(history, lw=1)
    ax[0].set(xlabel="training step", ylabel="spike similarity loss (MSE)", title="training loss (minibatch)",
              yscale="log")
    for a, S, name in [(ax[1], S_before, "before"), (ax[2], S_after, "after")]:
        im = a.imshow(S[np.ix_(order, order)], vmin=0, vmax=1, cmap="viridis")
        a.set(title=f"output similarity S, {name} training\nwithin class {class_similarity(S, y_te)[0]:.2f}, "
                    f"between {class_similarity(S, y_te)[1]:.2f}", xlabel="test sample (sorted by class)")
    fig.colorbar(im, ax=ax[2], fraction=0.046)
    fig.tight_layout()
    FIGURES.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURES / "01_spike_similarity.png", dpi=110)
    plt.close(fig)

    result = dict(loss_before=loss_before, loss_after=loss_after, within_before=within_b, between_before=between_b,
                  within_after=within_a, between_after=between_a, nearest_mean_accuracy=acc,
                  tet_accuracy=acc_tet, sdt_accuracy=acc_sdt, seconds=elapsed)
    print(f"similarity loss on held-out samples: {loss_before:.4f} -> {loss_after:.4f}")
    print(f"cosine within class {within_b:.3f} -> {within_a:.3f}, between classes {between_b:.3f} -> {between_a:.3f}")
    print(f"nearest-class-mean accuracy of the trained readout: {acc:.3f}")
    print(f"linear classifier on the harder data, test accuracy (mean over seeds): TET {acc_tet:.3f}, "
          f"time-mean CE {acc_sdt:.3f}")
    print(f"RESULT: similarity loss {loss_before:.3f} -> {loss_after:.3f}; within/between-class cosine "
          f"{within_a:.2f}/{between_a:.2f}; readout accuracy {acc:.2f}; TET {acc_tet:.2f} vs SDT {acc_sdt:.2f} "
          f"({elapsed:.1f} s)")
    return result


if __name__ == "__main__":
    main(quick="--quick" in sys.argv or os.environ.get("REFNSM_QUICK", "0") not in ("", "0"))
