# %% [markdown]
# # 06 — Structured linear maps: guarantees you can see, and why they matter for system identification
#
# A *structured linear map* replaces a free weight matrix by a parametrisation $W = W(\theta)$ whose
# structure carries a guarantee.  `refnsm.linear` implements the 31 classes of neuromancer's `slim.linear`
# with hand-derived gradients.  All act on row vectors, $y = xW + b$, with $W$ of shape [insize, outsize].
# A few examples:
#
# | map | parametrisation | guarantee |
# |---|---|---|
# | `PerronFrobeniusLinear` | $W = S\odot\mathrm{softmax}_\text{rows}(P)$, $S\in(\sigma_\min,\sigma_\max)$ | $W>0$, row sums in $(\sigma_\min,\sigma_\max)$, so $\rho(W) < \sigma_\max$ |
# | `SpectralLinear` | $W = Q_U\,\mathrm{diag}(s)\,Q_V$, Householder $Q$'s, $s = \sigma_\min + (\sigma_\max-\sigma_\min)\sigma(p)$ | singular values exactly $s$, so $\rho(W)\le\|W\|_2<\sigma_\max$ |
# | `SVDLinear` | $W = U\,\mathrm{diag}(s)\,V$ with a penalty $\|I-UU^\top\|+\|I-U^\top U\|+\dots$ | the same, but only softly |
# | `SkewSymmetricLinear` | $W = \mathrm{triu}(P) - \mathrm{triu}(P)^\top$ | purely imaginary eigenvalues |
# | `GershgorinLinear` | softmax-normalised off-diagonals, squashed diagonal | every Gershgorin disc inside $(\sigma_\min,\sigma_\max)$ |
#
# Part 1 draws the spectrum of every map at 16×16 against the unit circle.  Part 2 learns the matrix $A$ of a
# stable linear system $x_{t+1} = x_t A$ from short noisy trajectories, with an unconstrained map and with
# spectrally constrained ones, using only refnsm's own gradients (``forward``/``backward``) and Adam.
#
# Run as `python tutorials/06_structured_linear_maps.py` (about half a minute) or with `--quick`
# (or `REFNSM_QUICK=1`).  Figures: `figures/06_spectra.png`, `figures/06_sysid.png`.

# %%
from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import refnsm.linear as L  # noqa: E402

# Figures go to $REFNSM_FIGURES if set, else to the repository's figures/ folder.  Written without __file__,
# so that the same code runs as a script, imported, and as a notebook opened from tutorials/ or the repository.
_here = Path(globals().get("__file__", Path.cwd() / "_")).resolve().parent
FIGURES = Path(os.environ.get("REFNSM_FIGURES") or (_here.parent if _here.name == "tutorials" else _here) / "figures")

# every concrete class once (neuromancer's registry misses four of them; the registry has aliases)
ALL_MAPS = [
    L.Linear, L.IdentityInitLinear, L.IdentityLinear, L.BoundedNormLinear, L.NonNegativeLinear, L.SplitLinear,
    L.LassoLinear, L.LassoLinearRELU, L.L0Linear, L.LeftStochasticLinear, L.RightStochasticLinear,
    L.PerronFrobeniusLinear, L.StableSplitLinear, L.SymmetricLinear, L.SkewSymmetricLinear,
    L.DampedSkewSymmetricLinear, L.PSDLinear, L.SymplecticLinear, L.GershgorinLinear, L.SVDLinear,
    L.SVDLinearLearnBounds, L.SymmetricSVDLinear, L.OrthogonalLinear, L.SpectralLinear,
    L.SymmetricSpectralLinear, L.SchurDecompositionLinear, L.TrivialNullSpaceLinear, L.PowerBoundLinear,
    L.ButterflyLinear,
]


# %% [markdown]
# ## 1. Spectra of every map at 16×16
#
# Each map is drawn at its (random) initialisation; L0 is put in evaluation mode (its training-mode weight is
# random at every call).  What to look for: the stochastic and Perron–Frobenius maps have their dominant
# eigenvalue at (or inside) the row-sum bound; the orthogonal map sits exactly on the unit circle; the spectral
# maps sit inside the disc of radius $\sigma_\max = 1$; skew-symmetric maps on the imaginary axis, the damped
# one on the vertical line $\mathrm{Re}\,\lambda = \gamma$; the Gershgorin map on the real segment
# $(\sigma_\min,\sigma_\max) = (0, 1)$; the Schur map at $\gamma_k e^{\pm i\theta_k}$ with $\gamma = 1$.  The
# symplectic map's eigenvalues come in pairs $\lambda, 1/\lambda$.

# %%
def spectra(n=16, seed=0):
    out = {}
    for i, cls in enumerate(ALL_MAPS):
        m = cls(n, n, rng=seed + i) if cls is not L.L0Linear else cls(n, n, rng=seed + i).eval()
        out[cls.__name__] = np.linalg.eigvals(m.effective_W())
    return out


def plot_spectra(spec, path):
    names = list(spec)
    cols = 6
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows))
    t = np.linspace(0, 2 * np.pi, 200)
    for ax, name in zip(axes.flat, names):
        ev = spec[name]
        ax.plot(np.cos(t), np.sin(t), color="0.6", lw=0.8)
        ax.axhline(0, color="0.85", lw=0.5)
        ax.axvline(0, color="0.85", lw=0.5)
        ax.scatter(ev.real, ev.imag, s=10, color="C3", zorder=3)
        r = max(1.1, 1.1 * np.abs(ev).max())
        ax.set_xlim(-r, r)
        ax.set_ylim(-r, r)
        ax.set_aspect("equal")
        ax.set_title(name if name == "Linear" else name.replace("Linear", ""), fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle("Eigenvalues of effective_W() at 16×16 (grey: unit circle)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# %% [markdown]
# ## 2. System identification: learn $A$ from short noisy trajectories
#
# The true system $x_{t+1} = x_t A$ ($n = 12$) is stable: $A = Q\,\mathrm{blockdiag}(r_k R(\theta_k))\,Q^\top$
# with radii $r_k \in (0.9, 0.99)$.  We observe 3 trajectories of 6 states each, with measurement noise of
# standard deviation 0.1: 15 one-step pairs for 12 unknowns per output, a data-starved but realistic regime.
# Each map is fitted to the one-step loss
#
# $$\mathcal L(\theta) = \frac1N\sum_{t}\|x_t W(\theta) - x_{t+1}\|^2 \;(+\;\lambda\,\texttt{reg\_error}),$$
#
# with full-batch Adam.  The gradient is the chain the maps implement: $\bar y = \tfrac2N(\hat y - y)$,
# `backward(ȳ)` pulls it back through $y = xW$ and then through $W(\theta)$.
#
# The least-squares fit of an unconstrained map interpolates the noise; nothing stops its spectral radius from
# crossing 1, and a long rollout then diverges.  (The rollout error is relative: predicting $x_t = 0$ scores 1.
# With 15 noisy pairs, no map predicts 100 steps ahead well; the point is which ones stay bounded.)  `SpectralLinear` and `PerronFrobeniusLinear` with
# $\sigma_\max = 1$ cannot leave the unit disc, whatever the data; `SVDLinear` only approximately.

# %%
def true_system(n, rng, radii=(0.9, 0.99)):
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    T = np.zeros((n, n))
    for k in range(n // 2):
        r, th = rng.uniform(*radii), rng.uniform(0.1, 0.6)
        T[2 * k:2 * k + 2, 2 * k:2 * k + 2] = r * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    return Q @ T @ Q.T


def simulate(A, x0, steps):
    xs = [x0]
    for _ in range(steps):
        xs.append(xs[-1] @ A)
    return np.array(xs)


def make_data(n=12, n_traj=3, length=6, noise=0.1, seed=3):
    rng = np.random.default_rng(seed)
    A = true_system(n, rng)
    trajs = [simulate(A, rng.standard_normal(n), length - 1) + noise * rng.standard_normal((length, n))
             for _ in range(n_traj)]
    X = np.concatenate([t[:-1] for t in trajs])
    Y = np.concatenate([t[1:] for t in trajs])
    return A, X, Y, rng


def fit(m, X, Y, steps, lr=3e-2, reg_weight=0.0):
    """Full-batch Adam on the one-step loss, with refnsm's forward/backward and reg_error_vjp."""
    keys = m.trainable
    mom = {k: np.zeros_like(m.params[k]) for k in keys}
    vel = {k: np.zeros_like(m.params[k]) for k in keys}
    b1, b2, eps = 0.9, 0.999, 1e-8
    losses = []
    for it in range(1, steps + 1):
        Yh = m.forward(X)
        R = Yh - Y
        losses.append(float(np.mean(np.sum(R * R, axis=1))) + reg_weight * m.reg_error())
        m.backward(2.0 * R / X.shape[0])
        grads = dict(m.grads)
        if reg_weight:
            for k, g in m.reg_error_vjp(reg_weight).items():
                grads[k] = grads[k] + g
        new = {}
        for k in keys:
            mom[k] = b1 * mom[k] + (1 - b1) * grads[k]
            vel[k] = b2 * vel[k] + (1 - b2) * grads[k] ** 2
            step = lr * (mom[k] / (1 - b1**it)) / (np.sqrt(vel[k] / (1 - b2**it)) + eps)
            new[k] = m.params[k] - step
        m.load_params(new)
    return np.array(losses)


def rollout_error(W, A, x0s, horizon):
    """Mean over initial states of the relative RMS error of a horizon-step rollout."""
    errs = []
    for x0 in x0s:
        xt, xh = simulate(A, x0, horizon), simulate(W, x0, horizon)
        errs.append(np.sqrt(np.mean(np.sum((xh - xt) ** 2, axis=1)) / np.mean(np.sum(xt**2, axis=1))))
    return float(np.mean(errs))


MODELS = {
    "Linear (unconstrained)": lambda n: L.Linear(n, n, rng=0),
    "SpectralLinear σ∈(0,1)": lambda n: L.SpectralLinear(n, n, sigma_min=0.0, sigma_max=1.0, rng=0),
    "PerronFrobenius σ∈(0,1)": lambda n: L.PerronFrobeniusLinear(n, n, sigma_min=0.0, sigma_max=1.0, rng=0),
    "SVDLinear σ∈(0,1), soft": lambda n: L.SVDLinear(n, n, sigma_min=0.0, sigma_max=1.0, rng=0),
}
REG = {"SVDLinear σ∈(0,1), soft": 0.1}


def sysid(quick):
    n = 12
    A, X, Y, rng = make_data(n=n)
    steps = 600 if quick else 3000
    horizon = 100
    x0s = rng.standard_normal((20, n))
    rho_true = float(np.abs(np.linalg.eigvals(A)).max())
    res = {}
    for name, make in MODELS.items():
        m = make(n)
        losses = fit(m, X, Y, steps, reg_weight=REG.get(name, 0.0))
        W = m.effective_W()
        res[name] = {
            "rho": float(np.abs(np.linalg.eigvals(W)).max()),
            "spectral_norm": float(np.linalg.norm(W, 2)),
            "train_loss": float(losses[-1]),
            "rollout_err": rollout_error(W, A, x0s, horizon),
            "rollout_err_10": rollout_error(W, A, x0s, 10),
            "eig": np.linalg.eigvals(W),
            "W": W,
            "losses": losses,
        }
    return A, rho_true, res, x0s[0], horizon


def plot_sysid(A, res, x0, horizon, path):
    fig, axes = plt.subplots(2, len(res) + 1, figsize=(3.2 * (len(res) + 1), 6.2))
    t = np.linspace(0, 2 * np.pi, 200)
    xt = simulate(A, x0, horizon)
    ax = axes[0, 0]
    ax.plot(xt[:, 0], color="k", lw=1.5, label="true")
    ax.set_title("true system, coordinate 0", fontsize=9)
    ax = axes[1, 0]
    ev = np.linalg.eigvals(A)
    ax.plot(np.cos(t), np.sin(t), color="0.6", lw=0.8)
    ax.scatter(ev.real, ev.imag, s=14, color="k")
    ax.set_aspect("equal")
    ax.set_title(f"true spectrum, ρ = {np.abs(ev).max():.3f}", fontsize=9)
    for j, (name, r) in enumerate(res.items(), start=1):
        xh = simulate(r["W"], x0, horizon)
        ax = axes[0, j]
        ax.plot(xt[:, 0], color="k", lw=1.2)
        ax.plot(xh[:, 0], color="C3", lw=1.2)
        lim = 3 * np.abs(xt[:, 0]).max()
        ax.set_ylim(-lim, lim)
        ax.set_title(f"{name}\nrollout err {r['rollout_err']:.3g}", fontsize=8)
        ax = axes[1, j]
        ax.plot(np.cos(t), np.sin(t), color="0.6", lw=0.8)
        ax.scatter(ev.real, ev.imag, s=10, color="k", alpha=0.4)
        ax.scatter(r["eig"].real, r["eig"].imag, s=12, color="C3")
        rr = max(1.1, 1.1 * np.abs(r["eig"]).max())
        ax.set_xlim(-rr, rr)
        ax.set_ylim(-rr, rr)
        ax.set_aspect("equal")
        ax.set_title(f"learned ρ = {r['rho']:.3f}", fontsize=9)
    fig.suptitle("System identification from 3 noisy trajectories of 6 states (black: true, red: learned)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# %%
def main(quick: bool = False) -> dict:
    FIGURES.mkdir(parents=True, exist_ok=True)
    spec = spectra()
    plot_spectra(spec, FIGURES / "06_spectra.png")
    rho = {k: float(np.abs(v).max()) for k, v in spec.items()}
    print("spectral radius at init (16x16):")
    for k, v in rho.items():
        print(f"  {k:28s} {v:8.4f}")

    A, rho_true, res, x0, horizon = sysid(quick)
    plot_sysid(A, res, x0, horizon, FIGURES / "06_sysid.png")
    print(f"\ntrue spectral radius {rho_true:.4f}; {horizon}-step rollouts from 20 fresh initial states:")
    print("(relative RMS error; predicting x_t = 0 scores exactly 1)")
    print(f"  {'map':28s} {'train loss':>10s} {'rho(W)':>8s} {'||W||_2':>8s} {'err 10 steps':>12s} {'err 100 steps':>13s}")
    for name, r in res.items():
        print(f"  {name:28s} {r['train_loss']:10.4f} {r['rho']:8.4f} {r['spectral_norm']:8.4f} "
              f"{r['rollout_err_10']:12.4g} {r['rollout_err']:13.4g}")
    lin, spe = res["Linear (unconstrained)"], res["SpectralLinear σ∈(0,1)"]
    print(f"RESULT: unconstrained Linear learned rho = {lin['rho']:.3f} (rollout error {lin['rollout_err']:.3g}); "
          f"SpectralLinear rho = {spe['rho']:.3f} (rollout error {spe['rollout_err']:.3g}); "
          f"PerronFrobenius rho = {res['PerronFrobenius σ∈(0,1)']['rho']:.3f}; true rho = {rho_true:.3f}")
    return {
        "init_rho": rho,
        "init_spectra": spec,
        "rho_true": rho_true,
        "sysid": {k: {kk: vv for kk, vv in v.items() if kk not in ("W", "eig", "losses")} for k, v in res.items()},
        "losses": {k: v["losses"] for k, v in res.items()},
    }


if __name__ == "__main__":
    main(quick="--quick" in sys.argv or os.environ.get("REFNSM_QUICK", "") not in ("", "0"))
