# %% [markdown]
# # 02 · Similarity matching finds the principal subspace
#
# A linear similarity-matching (SM) circuit maps inputs $x_t \in \mathbb{R}^n$ to outputs $y_t \in \mathbb{R}^k$
# so that the outputs' similarities $y_t^\top y_{t'}$ match the inputs' $x_t^\top x_{t'}$ as well as $k < n$
# dimensions allow:
#
# $$\min_{Y} \frac{1}{T^2}\, \| X X^\top - Y Y^\top \|_F^2 .$$
#
# The optimum projects onto the top-$k$ principal subspace, and the best achievable mismatch is the energy of the
# discarded eigenvalues, $\sum_{i>k} \lambda_i^2$ (here the $\lambda_i = s_i^2$ are the data's variances).
#
# The circuit solves it online with two time scales.  For fixed weights the **fast dynamics** iterate
# $y \leftarrow y - \eta\,(M y - W x)$ to $y = M^{-1} W x$; the **slow** Hebbian/anti-Hebbian updates
# $W \leftarrow W + \tfrac{4\eta_W}{m}(\langle y x^\top\rangle - W)$ and
# $M \leftarrow M + \tfrac{2\eta_W}{\tau m}(\langle y y^\top\rangle - M)$ drive the filter $F = M^{-1}W$ to an
# orthonormal basis of the principal subspace ($F F^\top = I$), and $M$'s eigenvalues to the top-$k$ variances.
#
# This reproduces pynsm's `demo_pca` notebook: the same data law, model and schedule, with refnsm's
# hand-derived gradients and a Numba fast loop.

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
# ## Data: 50,000 samples of a 5-D Gaussian with standard deviations $s = (1.5, 1.2, 0.8, 0.2, 0.1)$ along random
# orthogonal axes (the columns of $U$).

# %%
S = np.array([1.5, 1.2, 0.8, 0.2, 0.1])


def make_data(n_samples, rng):
    U, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    X = (rng.standard_normal((n_samples, 5)) * S) @ U.T
    return X, U


# %% [markdown]
# ## Model and training loop (pynsm's settings)
# `SimilarityMatching(Linear(5, 3, bias=False), out_channels=3, tau=0.5, max_iterations=100, tol=1e-5,
# iteration_lr=0.1)`; slow SGD at $0.5 \cdot \max(1/(1 + 20\sqrt{i/50}), 0.01)$ for batch $i$, batches of 1000.
# `train_step` runs the fast loop, the loss, the hand gradients and the explicit update
# ($W$ descends at the learning rate, $M$ ascends at learning rate / $\tau$).


# %%
def train(X, rng, batch=1000, lr0=0.5):
    model = sim.SimilarityMatching(sim.Linear(5, 3, bias=False, rng=rng), 3, tau=0.5, max_iterations=100,
                                   tol=1e-5, iteration_lr=0.1)
    n_batches = X.shape[0] // batch
    order = rng.permutation(X.shape[0])
    xs, ys, losses, iters = [], [], [], []
    for i in range(n_batches):
        xb = X[order[i * batch:(i + 1) * batch]]
        lr = lr0 * max(1.0 / (1.0 + 20.0 * np.sqrt(i / n_batches)), 0.01)
        y, L = model.train_step(xb, lr=lr)
        xs.append(xb)
        ys.append(y)
        losses.append(float(L))
        iters.append(model.diagnostics.iterations)
    return model, np.concatenate(xs), np.concatenate(ys), np.array(losses), np.array(iters)


def rolling_mismatch(X, Y, window=2000, step=500):
    starts = np.arange(0, X.shape[0] - window + 1, step)
    return starts + window, np.array([sim.similarity_matching_cost(X[s:s + window], Y[s:s + window]) for s in starts])


# %%
def main(quick: bool = False) -> dict:
    # The whole experiment takes about a second, so quick mode runs it in full.
    rng = np.random.default_rng(0)
    X, U = make_data(50_000, rng)
    t0 = time.perf_counter()
    model, Xs, Ys, losses, iters = train(X, np.random.default_rng(42))
    train_time = time.perf_counter() - t0
    ends, mism = rolling_mismatch(Xs, Ys)
    floor = float(np.sum(S[3:] ** 4))
    W, M = model.params["encoders.0.weight"], model.M
    F = np.linalg.solve(M, W)
    cosines = sim.principal_angle_cosines(F.T, U[:, :3])
    eig_M = np.sort(np.linalg.eigvalsh(0.5 * (M + M.T)))
    target = np.sort(S[:3] ** 2)
    sample_var = np.sort(np.linalg.eigvalsh(np.cov(X.T, bias=True)))[-3:]

    # %% [markdown]
    # ## Figure: the similarity mismatch falls to the theoretical floor

    # %%
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    FIGURES.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.semilogy(ends, mism, label="rolling mismatch (windows of 2000)")
    ax.axhline(floor, color="k", ls="--", label=r"floor $\sum_{i>3} s_i^4$ = %.2e" % floor)
    ax.set_xlabel("training samples seen")
    ax.set_ylabel(r"$\|XX^\top - YY^\top\|_F^2 / T^2$")
    ax.set_title("Linear SM learns the principal subspace")
    ax.legend()
    fig.tight_layout()
    fig.savefig(FIGURES / "02_similarity_mismatch.png", dpi=120)
    plt.close(fig)

    out = {
        "final_mismatch": float(mism[-1]),
        "mean_last20_mismatch": float(mism[-20:].mean()),
        "theory_floor": floor,
        "principal_cosines": cosines.tolist(),
        "eig_M": eig_M.tolist(),
        "top3_variances": target.tolist(),
        "top3_sample_variances": sample_var.tolist(),
        "FFt_diag": np.diag(F @ F.T).tolist(),
        "first_loss": float(losses[0]),
        "last_loss": float(losses[-1]),
        "median_fast_iterations": float(np.median(iters)),
        "train_time_s": train_time,
    }
    for k, v in out.items():
        print(f"{k}: {np.round(v, 5).tolist() if isinstance(v, list) else round(v, 6)}")
    print(f"RESULT: similarity mismatch {out['final_mismatch']:.3e} (theory floor {floor:.3e}), principal-angle "
          f"cosines {np.round(cosines, 5).tolist()}, eig(M) {np.round(eig_M, 3).tolist()} vs variances "
          f"{np.round(target, 3).tolist()}")
    return out


if __name__ == "__main__":
    main(quick="--quick" in sys.argv or os.environ.get("REFNSM_QUICK", "") not in ("", "0"))
