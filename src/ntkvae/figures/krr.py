"""F5, KRR connection: the trained VAE (full objective) against the kernel predictor, vs width.

Claim tested (Theorem 2): with Wsigma frozen, training the full objective converges, as the
width grows, to the kernel ridge regression of Theta_inf. Our derivation (docs/theory.md)
finds that under the lazy KL normalizations beta's influence on the output vanishes with width
and fresh noise gives no ridge, so every beta should approach the same kernel predictor: here
the linearized Theta_inf model after the same number of steps (its t -> infinity limit is the
KRR solution). One line per beta; the Wsigma-trained run (dash-dot) tests the paper's frozen-
variance assumption. Distance on the training examples whose reconstructions were stored.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from . import style
from ..results.kernels import Kernel, data_targets, distance_to_predictor, kernel_file_for
from ..results.runs import by_run, load_runs, usable


def plot(paths, pdf, png=None, dpi=150, dataset=None, kernels=(), data=None, **_unused):
    style.apply()
    every = load_runs(paths)
    groups = by_run(usable(every))   # a beta run whose every seed diverged is named below the plot
    y = data_targets(data)
    fig, ax = plt.subplots(figsize=(style.COLUMN_WIDTH_IN, 2.6))
    frozen = sorted((g for g in groups.values() if not g[0].settings["train_sigma"]),
                    key=lambda g: g[0].settings["beta"])
    trained = [g for g in groups.values() if g[0].settings["train_sigma"]]
    cmap = plt.get_cmap("plasma")
    for i, runs in enumerate(frozen + trained):
        kernel = Kernel(kernel_file_for(kernels, runs[0].dataset, runs[0].model["activation"]))
        widths = np.array([r.width for r in runs])
        centre, yerr = style.bars([distance_to_predictor(r, kernel, y) for r in runs])
        sigma = runs[0].settings["train_sigma"]
        color = "black" if sigma else cmap(0.85 * i / max(len(frozen) - 1, 1))
        label = (rf"$\beta$ = {runs[0].settings['beta']:g}, Wsigma trained" if sigma
                 else rf"$\beta$ = {runs[0].settings['beta']:g}")
        ax.errorbar(widths, centre, yerr=yerr, marker="o", markersize=3, capsize=2, color=color,
                    linestyle="-." if sigma else "-", label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("hidden width m")
    ax.set_ylabel(r"$\|\bar f_{net} - f_{kernel}\| / \|f_{kernel}\|$")
    ax.legend(frameon=False, fontsize=6)
    s = (frozen + trained)[0][0].settings
    ax.set_title(f"F5 KRR connection on {dataset or s.get('dataset', '')} ({s['steps']} steps, {s['kl_scaling']})")
    fig.tight_layout()
    style.divergence_footnote(fig, every)
    style.save(fig, pdf, png, dpi)
