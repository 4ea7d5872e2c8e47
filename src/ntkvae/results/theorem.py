"""Measures of the theorem-setting runs: noise fixed per example, Wsigma frozen, small n (numpy only).

A run in this setting is a deterministic function of (x_i, eps_i), so each seed can be compared
with *its own* infinite-width prediction, built from its own initial outputs and noise draw:

* Theorem 1: the residual r_m(t) = f_t(X; eps) - Y against the linearized trajectory
  r_lin(t) = (I - eta Theta / n)^t r_m(0) of the trained kernel Theta on the run's examples
  (`trajectory_gap`), the bound L(t) <= exp(-eta lambda0 t / n) L(0) at every logged step
  (`bound_ratio`), and the late decay rate (`late_rates`);
* Theorem 2: the noise-averaged output at convergence against f* = f_bar_0 + Theta_bar
  (Theta_bar + diag D)^{-1} (Y - f_0) of that seed (`krr_distances`), against the ridgeless
  predictor (which it must *not* approach), and the scalar ridge that best explains the outputs
  at each logged time (`effective_ridges`): the ridge beta adds at finite width.

The training job stores, for runs with `record_outputs`, outputs/sampled (seeds, points, n, d)
with the fixed noise, outputs/mean (the K-draw noise average) and outputs/mean_mc_variance (its
summed Monte-Carlo variance): squared distances of the mean are debiased by subtracting it.
"""

from __future__ import annotations

import numpy as np

from .. import dynamics, krr
from ..spectrum import Spectrum
from .kernels import Kernel, train_sigma_of


def has_outputs(run) -> bool:
    out = run.data.get("outputs", {})
    return all(k in out for k in ("step", "sampled", "mean", "mean_mc_variance"))


def outputs(run) -> dict:
    """outputs/* of a run as float64 arrays (steps (P,), sampled and mean (S, P, n, d), mc (S, P))."""
    out = run.data["outputs"]
    return {"step": np.asarray(out["step"], float), "sampled": np.asarray(out["sampled"], np.float64),
            "mean": np.asarray(out["mean"], np.float64), "mc": np.asarray(out["mean_mc_variance"], np.float64)}


def run_spectrum(run, kernel: Kernel) -> Spectrum:
    """The trained kernel and the mean kernel on the examples the run trained on (the first n)."""
    return kernel.spectrum_on(np.arange(run.n), train_sigma_of(run))


def targets(run, y) -> np.ndarray:
    return np.asarray(y, np.float64)[: run.n]


def sampled_losses(run, y) -> np.ndarray:
    """(S, P) L(t) = (1/2n) ||f_t(X; eps) - Y||^2 at the logged points, with the run's fixed noise."""
    r = outputs(run)["sampled"] - targets(run, y)[None, None]
    return 0.5 * np.sum(r**2, axis=(2, 3)) / run.n


def trajectory_gap(run, kernel: Kernel, y) -> np.ndarray:
    """Per seed sup_t ||r_m(t) - r_lin(t)||_F / ||r_m(0)||_F over the logged points (Theorem 1's
    linearization; theory: O(m^-1/2) at a fixed horizon)."""
    out, spec = outputs(run), run_spectrum(run, kernel)
    r = out["sampled"] - targets(run, y)[None, None]
    lr = run.settings["learning_rate"]
    gaps = []
    for seed_r in r:
        lin = dynamics.linearized_residuals(spec, seed_r[0], lr, out["step"])
        gaps.append(np.max(np.linalg.norm(seed_r - lin, axis=(1, 2))) / np.linalg.norm(seed_r[0]))
    return np.asarray(gaps)


def linearized_losses(run, kernel: Kernel, y) -> np.ndarray:
    """(S, P) the loss (1/2n) |r_lin(t)|^2 of each seed's own linearized trajectory."""
    out, spec = outputs(run), run_spectrum(run, kernel)
    r0 = out["sampled"][:, 0] - targets(run, y)[None]
    lr = run.settings["learning_rate"]
    return np.stack([0.5 * np.sum(dynamics.linearized_residuals(spec, r, lr, out["step"]) ** 2, axis=(1, 2)) / run.n
                     for r in r0])


def theorem1_bounds(run, kernel: Kernel, y) -> np.ndarray:
    """(S, P) Theorem 1's bound exp(-eta lambda0 t / n) L(0) per seed, lambda0 of the trained kernel on
    the run's examples."""
    loss = sampled_losses(run, y)
    steps = outputs(run)["step"]
    lam0 = run_spectrum(run, kernel).lambda0
    return np.exp(-run.settings["learning_rate"] * lam0 * steps / run.n)[None, :] * loss[:, :1]


def bound_ratio(run, kernel: Kernel, y) -> np.ndarray:
    """Per seed max over logged t of L(t) / (exp(-eta lambda0 t / n) L(0)); Theorem 1: <= 1."""
    return np.max(sampled_losses(run, y) / theorem1_bounds(run, kernel, y), axis=1)


def late_window(steps, start_fraction: float = 0.5) -> np.ndarray:
    steps = np.asarray(steps, float)
    return steps >= start_fraction * steps.max()


def late_rates(run, kernel: Kernel, y) -> dict[str, np.ndarray | float]:
    """Late decay rates of L per step: measured per seed, the seed's own linearized trajectory over the
    same window, and the asymptote -2 log(1 - eta lambda0 / n) of the slowest mode."""
    out, spec = outputs(run), run_spectrum(run, kernel)
    lr, steps = run.settings["learning_rate"], out["step"]
    keep = late_window(steps)
    loss = sampled_losses(run, y)
    r0 = out["sampled"][:, 0] - targets(run, y)[None]

    def rate(curve):
        ok = keep & (curve > 0) & np.isfinite(curve)
        return float(-np.polyfit(steps[ok], np.log(curve[ok]), 1)[0]) if ok.sum() >= 2 else np.nan

    measured = np.asarray([rate(c) for c in loss])
    linear = np.asarray([rate(0.5 * np.sum(dynamics.linearized_residuals(spec, r, lr, steps) ** 2, axis=(1, 2)))
                         for r in r0])
    return {"measured": measured, "linearized": linear,
            "asymptote": dynamics.linear_loss_rate(lr, spec.lambda0, run.n), "lambda0": spec.lambda0}


def converged(run) -> np.ndarray:
    """Per seed whether the run met its convergence criterion (attrs `converged`: seed -> step or null)."""
    record = run.json_attr("converged", {}) or {}
    return np.asarray([record.get(str(int(s))) is not None for s in run.seeds], bool)


def debiased_distance(mean, mc, target, target_mc: float = 0.0) -> float:
    """||f_bar - target|| / ||target|| from K-draw Monte-Carlo estimates: `mean` with summed MC
    variance `mc`, `target` with its own independent MC variance `target_mc` (a target built from
    another logged point's mean, drawn with other keys). Both variances are removed from the
    squared distance, the target's from its squared norm."""
    d2 = float(np.sum((mean - target) ** 2)) - float(mc) - float(target_mc)
    norm2 = max(float(np.sum(np.asarray(target) ** 2)) - float(target_mc), 1e-300)
    return float(np.sqrt(max(d2, 0.0) / norm2))


def krr_distance_pair(spec: Spectrum, y, f0, mean0, mc0, mean, mc) -> tuple[float, float]:
    """One seed's noise-averaged output `mean` (MC variance `mc`) against its KRR limit with the
    derived ridge and against the ridgeless predictor, both built from the seed's initial outputs:
    f0 with its fixed noise (exact) and the K-draw mean `mean0` (MC variance `mc0`).

    The training job draws each logged point's evaluation noise with its own key
    (fold_in(eval_key, step)), so the MC errors of mean0 and mean are independent: the KRR
    limit f_bar_0 + ... carries mean0's error whole (its variance mc0 is removed too; removing
    only `mc` left a width-independent floor of sqrt(mc0)/|f*|, 0.23 on MNIST at 7x7, n = 32,
    K = 16). The ridgeless limit f_bar_0 + P (Y - f_bar_0) carries it through I - P, P the
    projection on the mean kernel's range: none when that kernel has full rank, else the
    dropped share of mc0 (taken as spread evenly over the examples)."""
    keep = krr.mean_kernel_range(spec)
    return (debiased_distance(mean, mc, krr.seed_limit(spec, y, f0, mean0), mc0),
            debiased_distance(mean, mc, krr.ridgeless_limit(spec, y, mean0), mc0 * np.mean(~keep)))


PAIRED = ("paired_initial_mean", "paired_initial_mc_variance", "paired_change_mean", "paired_change_mc_variance",
          "paired_final_mc_variance")


def has_paired(run) -> bool:
    """Whether the run recorded the common-noise estimate at its end (outputs/paired_*)."""
    out = run.data.get("outputs", {})
    return all(k in out for k in PAIRED)


def paired_krr_distance_pair(spec: Spectrum, y, f0, initial, mc: dict, change) -> tuple[float, float]:
    """One seed's distances at the end from the common-noise estimate (`mc`: the summed MC
    variances of the initial, change and final k-draw means). The KRR limit's change
    f* - f_bar_0 = Theta_bar (Theta_bar + D)^{-1} (Y - f_0) is exact (f_0 with the fixed noise), so
    only the change's MC variance is removed from the squared distance, and the initial mean's
    from |f*|^2. The ridgeless limit f_bar_0 + P (Y - f_bar_0) is Y where the mean kernel has full
    rank (P = I): the final mean's variance is removed; with a rank-deficient kernel the part of
    f_bar_0 outside its range is left in (an approximation, stated)."""
    y, f0, initial, change = (np.asarray(a, np.float64) for a in (y, f0, initial, change))
    limit_change = krr.seed_limit(spec, y, f0, np.zeros_like(initial))
    norm2 = max(float(np.sum((initial + limit_change) ** 2)) - float(mc["initial"]), 1e-300)
    d_krr = float(np.sum((change - limit_change) ** 2)) - float(mc["change"])
    d_ridgeless = float(np.sum((initial + change - krr.ridgeless_limit(spec, y, initial)) ** 2)) - float(mc["final"])
    return float(np.sqrt(max(d_krr, 0.0) / norm2)), float(np.sqrt(max(d_ridgeless, 0.0) / norm2))


def krr_distances(run, kernel: Kernel, y, point: int = -1) -> dict[str, np.ndarray]:
    """Per seed, at logged point `point` (default the last): the noise-averaged output's relative
    distance to the seed's KRR limit with the derived ridge D, and to the ridgeless predictor.
    At the end of a run that recorded the common-noise estimate (`has_paired`) from that
    (`paired_krr_distance_pair`: the change over the same draws, whose MC error is O(m^-1/2)
    smaller); otherwise from the logged means (`krr_distance_pair`)."""
    out, spec, yy = outputs(run), run_spectrum(run, kernel), targets(run, y)
    if point in (-1, out["mean"].shape[1] - 1) and has_paired(run):
        o = run.data["outputs"]
        pairs = [paired_krr_distance_pair(
            spec, yy, out["sampled"][s, 0], o["paired_initial_mean"][s],
            {k: o[f"paired_{k}_mc_variance"][s] for k in ("initial", "change", "final")}, o["paired_change_mean"][s])
            for s in range(out["mean"].shape[0])]
    else:
        pairs = [krr_distance_pair(spec, yy, out["sampled"][s, 0], out["mean"][s, 0], out["mc"][s, 0],
                                   out["mean"][s, point], out["mc"][s, point]) for s in range(out["mean"].shape[0])]
    return {"krr": np.asarray([p[0] for p in pairs]), "ridgeless": np.asarray([p[1] for p in pairs])}


# Where the KL's cumulative pull beta c(m_z) eta t is below this, the theory has it drop out (<< 1);
# where the run's final pull is at least KL_DRIFT_LARGE it should act as a growing ridge.
KL_DRIFT_SMALL, KL_DRIFT_LARGE = 0.3, 1.0
# An added ridge below this fraction of the noise ridge D is indistinguishable from none: the KRR
# solutions differ by less than the finite-width distance the KRR claim accepts at these widths.
KL_RIDGE_NEGLIGIBLE = 0.1

# Ridges searched, relative to the noise ridge D: from 1e-4 D (indistinguishable from none) to 1e3 D.
RIDGE_GRID = np.concatenate([[0.0], np.logspace(-4, 3, 141)])


def effective_ridges(run, kernel: Kernel, y) -> np.ndarray:
    """(S, P) the scalar ridge lambda >= 0, added to D, whose KRR solution f_bar_0 + Theta_bar
    (Theta_bar + D + lambda)^{-1} (Y - f_0) is nearest the noise-averaged output at each logged
    point (least squares over a log grid of RIDGE_GRID * mean(D), refined between neighbours).
    Gradient descent stopped early acts like a ridge too: compare with the beta = 0 run at the same time."""
    out, spec, yy = outputs(run), run_spectrum(run, kernel), targets(run, y)
    dmean = float(np.mean(spec.noise_diagonal))
    lam, vec = spec.mean_eigenvalues, spec.mean_eigenvectors
    grid = RIDGE_GRID * dmean
    fine = np.concatenate([[0.0], np.logspace(-4, 3, 1401)]) * dmean
    result = np.empty(out["mean"].shape[:2])
    for s in range(out["mean"].shape[0]):
        coef = vec.T @ (yy - out["sampled"][s, 0])                         # (n, d)
        for p in range(out["mean"].shape[1]):
            u = vec.T @ (out["mean"][s, p] - out["mean"][s, 0])

            def misfit(ridges):
                gain = lam[None, :] / (lam[None, :] + spec.noise_diagonal.mean() + ridges[:, None])   # (R, n)
                return np.sum((u[None] - gain[:, :, None] * coef[None]) ** 2, axis=(1, 2))

            best = int(np.argmin(misfit(grid)))
            lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
            candidates = fine[(fine >= lo) & (fine <= hi)]
            result[s, p] = candidates[int(np.argmin(misfit(candidates)))]
    return result


def added_ridges(run, reference, kernel: Kernel, y) -> dict[str, np.ndarray]:
    """The ridge beta adds at finite width: per seed and logged point, the effective ridge of `run`
    (full objective) less that of `reference` (the same seeds, width and noise with beta = 0) at the
    same time; beyond the reference's last point (it stopped at convergence) its last value.
    Returns {"step": (P,), "added": (S, P), "drift": (P,) beta c(m_z) eta t, "noise_ridge": mean D}."""
    from ..regime import kl_drift

    steps = outputs(run)["step"]
    ridge = effective_ridges(run, kernel, y)
    ref_steps = outputs(reference)["step"]
    ref = effective_ridges(reference, kernel, y)
    base = np.stack([np.interp(steps, ref_steps, row) for row in ref])
    s = run.settings
    drift = np.asarray([kl_drift(s["beta"], s["kl_scaling"], run.latent_width, s["learning_rate"], t) for t in steps])
    return {"step": steps, "added": ridge - base, "drift": drift,
            "noise_ridge": float(np.mean(run_spectrum(run, kernel).noise_diagonal))}
