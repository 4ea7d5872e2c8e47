"""F1, convergence: training loss vs step per width, and the mean-function residual.

Claim tested (Theorem 1): over-parameterized VAEs trained by gradient descent converge at a
linear rate. The training objective is stochastic (fresh noise each step) and keeps an
irreducible noise floor, so the right-hand panel separates the residual of the
noise-averaged output, the quantity that converges, from that floor (dashed).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from . import style
from ..results.kernels import Kernel, data_targets, kernel_file_for, linearized_curve
from ..results.runs import by_run, describe, finite_or_nan, load_runs, usable


def theory_overlay(ax, group, kernels, y):
    """Black dashed: the linearized Theta_inf trajectory of the mean-function residual; dotted: the
    Theorem 1 bound exp(-eta lambda0 t / n) L(0) in our normalization (docs/theory.md), from the
    measured L(0) of the widest width."""
    path = kernel_file_for(kernels, group[0].dataset, group[0].model["activation"])
    group = usable(group)   # the widest width with a seed that did not diverge
    if path is None or not group:
        return
    kernel = Kernel(path)
    steps = group[-1].data["eval"]["step"]
    eta = group[-1].settings["learning_rate"]
    predicted = linearized_curve(group[-1], kernel, kernels, y)
    ax.plot(steps, predicted, **style.THEORY, label=r"linearized $\Theta_\infty$")
    loss0 = float(np.exp(np.mean(np.log(group[-1].data["eval"]["mean_function_mse"][:, 0]))))
    ax.plot(steps, loss0 * np.exp(-eta * kernel.lambda0 * steps / group[-1].n), color="black",
            linestyle=":", linewidth=1.0, label=r"Thm 1 bound $e^{-\eta\lambda_0 t/n}L(0)$")
    ax.legend(frameon=False, fontsize=6)


def plot(paths, pdf, png=None, dpi=150, dataset=None, kernels=(), data=None, **_unused):
    style.apply()
    runs = load_runs(paths)
    y = data_targets(data) if kernels and data else None
    groups = by_run(runs)
    widths = sorted({r.width for r in runs})
    colors = style.width_colors(widths)
    fig, axes = plt.subplots(len(groups), 2, figsize=(style.FULL_WIDTH_IN, 2.2 * len(groups)), squeeze=False)
    for row, (name, group) in enumerate(groups.items()):
        ax_obj, ax_res = axes[row]
        for r in group:
            # Every seed, a diverged one up to its divergence (named in the legend).
            label = f"m = {r.width}" + (f" (diverged at step {min(r.diverged.values())})" if r.diverged else "")
            steps = r.raw["train"]["step"]
            style.mean_and_band(ax_obj, steps, finite_or_nan(r.raw["train"]["objective"]), colors[r.width],
                                label, log=True)
            ev = r.raw["eval"]
            style.mean_and_band(ax_res, ev["step"], finite_or_nan(ev["mean_function_mse"]), colors[r.width],
                                label, log=True)
            floor = np.nanmean(finite_or_nan(ev["noise_floor"]), axis=0)
            ax_res.plot(ev["step"], floor, color=colors[r.width], linestyle="--", linewidth=0.8)
        if y is not None:
            theory_overlay(ax_res, group, kernels, y)
        ax_obj.set_title(f"run '{name}': training objective")
        ax_obj.text(0.98, 0.95, describe(group[0]), transform=ax_obj.transAxes, ha="right", va="top", fontsize=6)
        ax_res.set_title(f"run '{name}': noise-averaged residual (dashed: noise floor)")
        for ax in (ax_obj, ax_res):
            ax.set_yscale("log")
            ax.set_xlabel("gradient-descent step t")
        ax_obj.set_ylabel("objective, one noise draw")
        ax_res.set_ylabel(r"$\frac{1}{2n}\sum_i\|E_\epsilon\hat x_i - x_i\|^2$")
        ax_obj.legend(frameon=False, title="width", loc="lower left")
    title = dataset or (runs[0].dataset if runs else "")
    fig.suptitle(f"F1 convergence on {title} (n = {runs[0].n if runs else '?'}; mean over seeds, band: min-max)")
    fig.tight_layout()
    style.save(fig, pdf, png, dpi)
