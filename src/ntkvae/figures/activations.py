"""F10, activations: convergence of the reconstruction loss for several nonlinearities.

Open question 1 of the paper: does the convergence depend on the activation? The theory
needs a smooth Lipschitz phi (erf, tanh, softplus qualify; relu is not smooth). Left: the
mean-function residual vs step per activation (log scale: a straight line is a linear rate).
Right: the residual's late-time decay rate per activation, fitted on the second half of
training, one marker per seed, the bar their mean. Dash-dot: a run outside the theory's
assumptions (an activation that is not smooth, or a learning rate above the finite-width
stability limit measured at initialization, its ratio in the label). Red crosses: a seed
diverged (recorded), above its step on the left and above its activation on the right.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from . import style
from ..results import measures
from ..results.runs import finite_or_nan, load_runs, lr_over_stability

SMOOTH = {"erf": True, "tanh": True, "softplus": True, "gelu": True, "relu": False}


def activation_of(run) -> str:
    return run.model["activation"]


def plot(paths, pdf, png=None, dpi=150, dataset=None, **_unused):
    style.apply()
    runs = load_runs(paths)
    widest = max(r.width for r in runs)
    runs = sorted((r for r in runs if r.width == widest), key=activation_of)
    cmap = plt.get_cmap("tab10")
    fig, (ax_c, ax_r) = plt.subplots(1, 2, figsize=(style.FULL_WIDTH_IN, 3.3))
    for i, r in enumerate(runs):
        ev = r.data["eval"]   # every seed: a diverged one is drawn up to its divergence
        smooth = SMOOTH.get(activation_of(r), True)
        label = activation_of(r) + ("" if smooth else " (not smooth)")
        # Above the finite-width stability limit (trained anyway: on_divergence record) the run
        # is outside the theory as well: said in its label and drawn in the same line style.
        over = lr_over_stability(r)
        unstable = over is not None and over > 1
        if unstable:
            label += f"\nlr {over:.3g}x the stability limit"
        if r.diverged:
            label += f"\ndiverged at step {min(r.diverged.values())}, lr {r.settings['learning_rate']:g}"
        style.mean_and_band(ax_c, ev["step"], finite_or_nan(ev["mean_function_mse"]), cmap(i), label,
                            log=True, linestyle="-" if smooth and not unstable else style.LINESTYLES["outside assumptions"])
        style.mark_diverged(ax_c, r.diverged)
        rates = np.array([measures.decay_rate(ev["step"], seed_curve)
                          for seed_curve in finite_or_nan(ev["mean_function_mse"])], float)
        ax_r.plot([i] * len(rates), rates, "o", color=cmap(i), markersize=3)
        if np.isfinite(rates).any():
            ax_r.plot([i - 0.25, i + 0.25], [np.nanmean(rates)] * 2, color=cmap(i), linewidth=1.5)
        if (~np.isfinite(rates)).any():
            style.mark_excluded(ax_r, [i], label="diverged (recorded)" if r.diverged else "not finite")
    ax_c.set_yscale("log")
    style.log_ticks(ax_c)
    ax_c.set_xlabel("gradient-descent step t")
    ax_c.set_ylabel("mean-function residual")
    ax_c.set_title("convergence per activation")
    style.legend_below(ax_c, ncol=2, title="activation")
    ax_r.set_xticks(range(len(runs)), [activation_of(r) for r in runs])
    ax_r.set_xlim(-0.6, len(runs) - 0.4)
    ax_r.set_xlabel("activation")
    ax_r.set_ylabel("late decay rate per step")
    ax_r.set_title("fit on the 2nd half of training")
    ax_r.plot([], [], "o", color="0.4", markersize=3, label="one seed")
    ax_r.plot([], [], color="0.4", linewidth=1.5, label="mean over seeds")
    style.legend_below(ax_r, ncol=1)
    s = runs[0].settings
    fig.suptitle(f"F10 activations on {dataset or runs[0].dataset}: m = {widest}, {s['objective']} objective, "
                 f"{s['steps']} steps\n(mean over {len(s['seeds'])} seeds, band: min-max)")
    fig.tight_layout()
    style.save(fig, pdf, png, dpi)
