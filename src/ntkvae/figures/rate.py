"""F4, rate vs lambda0: the convergence rate is set by the least eigenvalue of the NTK.

Claims tested (Theorem 1): lambda_min(Theta_m) approaches lambda0 = lambda_min(Theta_inf) as
the width grows (left, on the probe points), and the mean-function residual follows the
linearized trajectory of Theta_inf, whose slowest mode decays at 2 eta lambda_min / n per step
(middle: curves; right: decay rates fitted on the second half of training).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from . import style
from ..results import measures
from ..results.kernels import Kernel, data_targets, has_probes, kernel_file_for, lambda_min, linearized_curve
from ..results.runs import by_run, finite_or_nan, load_runs, usable


def plot(paths, pdf, png=None, dpi=150, dataset=None, kernels=(), data=None, **_unused):
    style.apply()
    every = load_runs(paths)
    groups = by_run(every)
    y = data_targets(data)
    fig, axes = plt.subplots(len(groups), 3, figsize=(style.FULL_WIDTH_IN, 2.5 * len(groups)), squeeze=False)
    for row, (name, runs) in enumerate(groups.items()):
        runs = usable(runs)
        ax_l, ax_c, ax_r = axes[row]
        if not runs:
            for ax in axes[row]:
                style.nothing_to_show(ax, f"run {name}: every seed diverged at every width")
            continue
        kernel = Kernel(kernel_file_for(kernels, runs[0].dataset, runs[0].model["activation"]))
        colors = style.width_colors([r.width for r in runs])
        widths = np.array([r.width for r in runs])
        if all(has_probes(r) for r in runs):
            centre, yerr = style.bars([lambda_min(r.data["ntk"]["init"]["total"]) for r in runs], log=False)
            ax_l.errorbar(widths, centre, yerr=yerr, marker="o", markersize=3, capsize=2,
                          color="tab:blue", label=r"$\lambda_{\min}(\Theta_m(0))$, measured")
            ax_l.axhline(lambda_min(kernel.probe_block(runs[0].data["ntk"]["probe_index"])), **style.THEORY,
                         label=r"$\lambda_{\min}(\Theta_\infty)$, theory")
            ax_l.set_xscale("log", base=2)
            ax_l.set_xlabel("hidden width m")
            ax_l.set_ylabel("least eigenvalue on probes")
            ax_l.legend(frameon=False, fontsize=6)
        else:
            style.nothing_to_show(ax_l, "no NTK probes recorded\n(kernels.probe_size: 0)")
        eta = runs[0].settings["learning_rate"]
        measured_rates, predicted_rates = [], []
        for r in runs:
            steps = r.data["eval"]["step"]
            curve = finite_or_nan(r.data["eval"]["mean_function_mse"])
            style.mean_and_band(ax_c, steps, curve, colors[r.width], f"m = {r.width}", log=True)
            predicted = linearized_curve(r, kernel, kernels, y)
            measured_rates.append([measures.decay_rate(steps, c) for c in curve])
            predicted_rates.append(measures.decay_rate(steps, predicted))
        ax_c.plot(steps, predicted, **style.THEORY, label=r"linearized $\Theta_\infty$")
        ax_c.set_yscale("log")
        ax_c.set_xlabel("gradient-descent step t")
        ax_c.set_ylabel("mean-function residual")
        ax_c.legend(frameon=False, fontsize=6)
        centre, yerr = style.bars(measured_rates, log=False)
        ax_r.errorbar(widths, centre, yerr=yerr, marker="o", markersize=3, capsize=2,
                      color="tab:blue", label="measured")
        ax_r.axhline(predicted_rates[-1], **style.THEORY, label=r"linearized $\Theta_\infty$, same window")
        slowest = 2 * eta * kernel.rate_lambda() / runs[0].n
        ax_r.axhline(slowest, color="black", linestyle=":", linewidth=1.0,
                     label=rf"$2\eta\lambda_{{\min}}/n$ = {slowest:.2g}")
        ax_r.set_xscale("log", base=2)
        ax_r.set_xlabel("hidden width m")
        ax_r.set_ylabel("late decay rate per step")
        ax_r.legend(frameon=False, fontsize=6)
        ax_c.set_title(f"{name} ({kernel.kernel_kind}, eta = {eta:g}, n = {runs[0].n})")
    fig.suptitle(f"F4 rate vs lambda0 on {dataset or every[0].dataset} (mean over seeds, band/bars: min-max)")
    fig.tight_layout()
    style.divergence_footnote(fig, every)
    style.save(fig, pdf, png, dpi)
