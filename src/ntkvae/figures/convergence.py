"""F1, convergence: Theorem 1 in its own setting, beside the way VAEs are trained.

Left, the theorem setting (noise fixed per example, Wsigma frozen, MSE, SGD, small n): the loss
L(t) of each width (solid), each seed's own linearized trajectory of the trained kernel
(dashed, same colour: a prediction), and Theorem 1's bound exp(-eta lambda0 t / n) L(0) (dotted:
a bound), lambda0 of the trained kernel on these examples; below, L(t) / bound(t), which the
theorem keeps below 1 (dotted). Right, as VAEs are trained (fresh noise every step): the
noise-averaged residual (solid) and the prediction of the mean kernel with the SGD kicks (dashed
black), each width labelled with its horizon eta T / m; red crosses above a step: a seed diverged
there (recorded); below, the noise floor relative to its start against eta t / m: it is not
irreducible at finite width, and it drifts on that time scale (the claim compares the widths at
the dotted line, the widest run's eta T / m).
Curves: geometric mean over seeds; band: min-max over seeds. One legend per column, below it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from . import style
from ..results import measures
from ..results import theorem as T
from ..results.kernels import Kernel, data_targets, kernel_file_for, linearized_curve
from ..results.runs import describe, finite_or_nan, load_runs


def theorem_panels(ax_loss, ax_ratio, runs, kernels, y):
    colors = style.width_colors([r.width for r in runs])
    kernel = Kernel(kernel_file_for(kernels, runs[0].dataset, runs[0].model["activation"]))
    for r in runs:
        steps = T.outputs(r)["step"]
        loss = T.sampled_losses(r, y)
        style.mean_and_band(ax_loss, steps, loss, colors[r.width], f"m = {r.width}", log=True)
        lin = T.linearized_losses(r, kernel, y)
        ax_loss.plot(steps, measures.geometric_mean(lin), color=colors[r.width], linestyle=style.LINESTYLES["prediction"],
                     linewidth=0.9)
        bounds = T.theorem1_bounds(r, kernel, y)
        style.mean_and_band(ax_ratio, steps, loss / bounds, colors[r.width], None, log=False)
    widest = runs[-1]
    steps = T.outputs(widest)["step"]
    bound = measures.geometric_mean(T.theorem1_bounds(widest, kernel, y))
    lam0 = T.run_spectrum(widest, kernel).lambda0
    ax_loss.plot([], [], color="0.3", linestyle=style.LINESTYLES["prediction"], linewidth=0.9,
                 label=r"each seed's own linearized $\Theta_\infty$ trajectory")
    ax_loss.plot(steps, bound, label=rf"Theorem 1 bound, $\lambda_0$ = {lam0:.3g} (m = {widest.width}); ratio 1 below",
                 **style.THRESHOLD)
    ax_ratio.axhline(1.0, **style.THRESHOLD)
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel(r"loss $L(t)=\frac{1}{2n}\|f_t-Y\|^2$")
    ax_loss.set_title(f"theorem setting: noise fixed, Wsigma frozen, n = {widest.n}")
    ax_ratio.set_ylabel("L(t) / Theorem 1 bound")
    ax_ratio.set_ylim(0, 1.15)
    for ax in (ax_loss, ax_ratio):
        ax.set_xlabel("gradient-descent step t")


def practical_panels(ax_res, ax_floor, runs, kernels, y):
    colors = style.width_colors([r.width for r in runs])
    kernel_path = kernel_file_for(kernels, runs[0].dataset, runs[0].model["activation"]) if kernels else None
    for r in runs:
        ev = r.data["eval"]
        eta = r.settings["learning_rate"]
        horizon = eta * ev["step"][-1] / r.width
        label = f"m = {r.width} (ηT/m = {horizon:.2g})"
        style.mean_and_band(ax_res, ev["step"], finite_or_nan(ev["mean_function_mse"]), colors[r.width], label,
                            log=True)
        horizons, drop = measures.floor_drop(r)     # the noise-floor claim reads the same curves
        style.mean_and_band(ax_floor, horizons, finite_or_nan(1.0 - drop), colors[r.width], None, log=False)
        style.mark_diverged(ax_res, r.diverged)
        unrecorded = ~measures.finite_seeds(r) & ~np.isin(r.seeds, [int(s) for s in r.diverged])
        if unrecorded.any():   # not finite without a recorded divergence: marked at the last step
            style.mark_excluded(ax_res, [ev["step"][-1]])
    if kernel_path and y is not None:
        widest = runs[-1]
        predicted = linearized_curve(widest, Kernel(kernel_path), kernels, y)
        ax_res.plot(widest.data["eval"]["step"], predicted, label=r"mean kernel $\bar\Theta$ + SGD kicks (m = ∞)",
                    **style.THEORY)
    ax_res.set_yscale("log")
    ax_res.set_xlabel("gradient-descent step t")
    ax_res.set_ylabel(r"residual $\frac{1}{2n}\sum_i|E_\epsilon\hat x_i - x_i|^2$")
    ax_res.set_title(f"as VAEs are trained: fresh noise, n = {runs[0].n}\n({describe(runs[0])})")
    # where the noise-floor claim compares the widths: the widest run's horizon eta T / m
    ax_floor.axvline(measures.floor_drop(runs[-1])[0][-1], **style.THRESHOLD)
    ax_floor.set_xlabel(r"$\eta t / m$")
    ax_floor.set_ylabel("noise floor / its value at t = 0")


def plot(paths, pdf, png=None, dpi=150, dataset=None, kernels=(), data=None, settings=None, **_unused):
    style.apply()
    settings = settings or {}
    runs = load_runs(paths)
    y = data_targets(data) if data else None
    name = (settings.get("theorem_runs") or {}).get("mse")
    theorem = sorted((r for r in runs if r.run == name and T.has_outputs(r)), key=lambda r: r.width)
    practical_name = (settings.get("convergence_runs") or [None])[0]
    practical = sorted((r for r in runs if r.run == practical_name), key=lambda r: r.width)
    fig, axes = plt.subplots(2, 2, figsize=(style.FULL_WIDTH_IN, 5.4), gridspec_kw={"height_ratios": [3, 2]})
    if theorem and kernels and y is not None:
        theorem_panels(axes[0, 0], axes[1, 0], theorem, kernels, y)
    else:
        for ax in axes[:, 0]:
            style.empty(ax, "no theorem-setting runs (config `theorems`) or no kernel file")
    if practical:
        practical_panels(axes[0, 1], axes[1, 1], practical, kernels, y)
    else:
        for ax in axes[:, 1]:
            style.empty(ax, "no convergence run (figures.convergence_runs)")
    for ax in axes.ravel():
        if ax.axison:
            style.log_ticks(ax)
    for top, bottom in axes.T:   # one legend per column, under its lower panel
        if top.axison:
            style.legend_below(bottom if bottom.axison else top, ncol=1, source=[top])
    title = dataset or (runs[0].dataset if runs else "")
    fig.suptitle(f"F1 convergence on {title}: Theorem 1 in its setting (left), as VAEs are trained (right)")
    fig.tight_layout()
    style.save(fig, pdf, png, dpi)
