"""F6, KL regularization: reconstruction error and latent statistics vs the KL weight beta.

Claim tested (Theorem 2 and the KRR connection): the KL term acts as a regularizer; a larger
beta trades reconstruction error for a smaller KL, pulling the latent means towards the
prior. With the KL normalized by c(m_z), how strongly beta acts depends on the width; one
line per width shows whether its effect fades as the network widens. Wsigma is frozen in
these runs (the Theorem 2 setting), so only the latent means respond to beta: the last panel is
the spread of the encoded means along their first principal direction (the standard deviation
the traversals of F8 step by), which a stronger pull to the prior shrinks. Open squares: the
noise floor beside the residual. Red crosses: a seed diverged (recorded), at the top where the
mean over seeds is not finite.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from . import style
from ..results import measures
from ..results.runs import load_runs, usable


def beta_table(runs, key_fn):
    """{width: (betas, per-seed values at each beta)} for the runs of a beta sweep, betas sorted."""
    table = {}
    for width in sorted({r.width for r in runs}):
        at = sorted((r for r in runs if r.width == width), key=lambda r: r.settings["beta"])
        betas = np.array([r.settings["beta"] for r in at])
        # The seeds that diverged are left out (measures.finite_seeds); widths keep different counts.
        table[width] = betas, [np.asarray(key_fn(r), float)[measures.finite_seeds(r)] for r in at]
    return table


def diverged_betas(runs, width) -> np.ndarray:
    """The betas at which a seed of this width diverged (recorded)."""
    return np.array(sorted(r.settings["beta"] for r in runs if r.width == width and r.diverged), float)


PANELS = (
    ("final mean-function residual", lambda r: measures.final(r.data["eval"]["mean_function_mse"]), True),
    ("final KL per example", lambda r: measures.final(r.data["eval"]["kl"]), True),
    (r"mean squared latent mean $\langle\mu^2\rangle$", lambda r: r.data["generation"]["latent"]["mu_sq"], True),
    ("spread of the latent means\n(sd along their 1st principal direction)",
     lambda r: np.asarray(r.data["generation"]["latent"]["direction_sd"], float)[:, 0], True),
)


def plot(paths, pdf, png=None, dpi=150, dataset=None, **_unused):
    style.apply()
    every = load_runs(paths)
    runs = usable(every)   # a beta run whose every seed diverged is named below the plot
    colors = style.width_colors({r.width for r in runs})
    fig, axes = plt.subplots(2, 2, figsize=(style.FULL_WIDTH_IN, 5.2))
    for ax, (ylabel, key_fn, log) in zip(axes.flat, PANELS):
        for width, (betas, values) in beta_table(runs, key_fn).items():
            centre, yerr = style.bars(values, log=log)
            ax.errorbar(betas, centre, yerr=yerr, color=colors[width], marker="o",
                        markersize=3, capsize=2, linewidth=1.0, label=f"m = {width}")
            bad = diverged_betas(every, width)   # at the top where every seed at that beta diverged
            if bad.size:
                at = {b: c for b, c in zip(betas, centre)}
                style.mark_excluded(ax, bad, [at.get(b, np.nan) for b in bad], label="a seed diverged (recorded)")
        ax.set_xscale("log")
        if log:
            ax.set_yscale("log")
        ax.set_xlabel(r"KL weight $\beta$")
        ax.set_ylabel(ylabel)
    floor_ax = axes[0, 0]
    for width, (betas, values) in beta_table(runs, lambda r: measures.final(r.data["eval"]["noise_floor"])).items():
        floor_ax.plot(betas, [np.mean(v) for v in values], color=colors[width], marker="s", mfc="none", markersize=3.5,
                      linewidth=0.8, label=f"noise floor, m = {width}")
    all_betas = sorted({r.settings["beta"] for r in runs})
    for ax in axes.flat:
        style.log_ticks(ax)
        ax.set_xticks(all_betas, [f"{b:g}" for b in all_betas])
        ax.set_xticks([], minor=True)
    style.legend_below(axes[1, 0], ncol=2, source=[axes[0, 0]])
    style.legend_below(axes[1, 1], ncol=1, source=[axes[0, 1]])
    s = runs[0].settings
    fig.suptitle(f"F6 KL regularization on {dataset or runs[0].dataset}: full objective, Wsigma frozen, "
                 f"c(m_z) = {s['kl_scaling']}, {s['steps']} steps\n(mean over {len(s['seeds'])} seeds, bars: min-max)")
    fig.tight_layout()
    style.divergence_footnote(fig, every)
    style.save(fig, pdf, png, dpi)
