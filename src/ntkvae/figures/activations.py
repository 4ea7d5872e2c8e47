"""F10, activations: convergence of the reconstruction loss for several nonlinearities.

Open question 1 of the paper: does the convergence depend on the activation? The theory
needs a smooth Lipschitz phi (erf, tanh, softplus qualify; relu is not smooth). Left: the
mean-function residual vs step per activation (log scale: a straight line is a linear rate).
Right: the residual's late-time decay rate per activation, fitted on the second half of
training, one marker per seed.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from . import style
from ..results import measures
from ..results.runs import finite_or_nan, load_runs

SMOOTH = {"erf": True, "tanh": True, "softplus": True, "gelu": True, "relu": False}


def activation_of(run) -> str:
    return run.model["activation"]


def plot(paths, pdf, png=None, dpi=150, dataset=None, **_unused):
    style.apply()
    runs = load_runs(paths)
    widest = max(r.width for r in runs)
    runs = sorted((r for r in runs if r.width == widest), key=activation_of)
    cmap = plt.get_cmap("tab10")
    fig, (ax_c, ax_r) = plt.subplots(1, 2, figsize=(style.FULL_WIDTH_IN, 2.6), gridspec_kw={"width_ratios": [2, 1]})
    for i, r in enumerate(runs):
        ev = r.data["eval"]
        label = activation_of(r)
        if r.diverged:
            label += f" (diverged at step {min(r.diverged.values())}, lr {r.settings['learning_rate']:g})"
        style.mean_and_band(ax_c, ev["step"], finite_or_nan(ev["mean_function_mse"]), cmap(i), label,
                            log=True, linestyle="-" if SMOOTH.get(activation_of(r), True) else "-.")
        rates = [measures.decay_rate(ev["step"], seed_curve) for seed_curve in finite_or_nan(ev["mean_function_mse"])]
        ax_r.plot([i] * len(rates), rates, "o", color=cmap(i), markersize=3)
        ax_r.plot([i - 0.25, i + 0.25], [np.nanmean(rates)] * 2, color=cmap(i), linewidth=1.5)
    ax_c.set_yscale("log")
    ax_c.set_xlabel("gradient-descent step t")
    ax_c.set_ylabel("mean-function residual")
    ax_c.legend(frameon=False, title="activation (dash-dot: not smooth)")
    ax_r.set_xticks(range(len(runs)), [activation_of(r) for r in runs])
    ax_r.set_ylabel("late decay rate per step")
    ax_r.set_title("fit on 2nd half of training")
    s = runs[0].settings
    fig.suptitle(f"F10 activations on {dataset or runs[0].dataset}: m = {widest}, {s['objective']} objective, "
                 f"{s['steps']} steps (mean over {len(s['seeds'])} seeds, band: min-max)")
    fig.tight_layout()
    style.save(fig, pdf, png, dpi)
