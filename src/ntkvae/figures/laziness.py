"""F2, laziness: how far each parameter group moves, against width.

Claim tested: in the lazy regime ||W(T) - W(0)||_F stays O(1) in the width for every group
(right: absolute change, flat), so the relative change ||W(T) - W(0)|| / ||W(0)|| falls like
#weights^-1/2 (left: slope -1/2 for W1 and W4, -1 for Wmu and W3 when m_z = m; dashed: the
prediction through the fitted line's middle). One row per setting: the theorem runs (noise
fixed, Wsigma frozen) and each run of `figures.laziness_runs` (as VAEs are trained). Points:
mean over seeds with min-max bars; thin lines: the fit over the widths that trained, band: the
95% interval of its slope; red crosses: widths left out of the fit (a seed diverged or the
residual did not halve; docs/figures.md), at their value or, where it is not finite, at the top.
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np

from . import style
from ..results import measures, stats
from ..results.runs import by_run, describe, load_runs, regime_text

GROUP_COLORS = {"W1": "#1b9e77", "Wmu": "#d95f02", "Wsigma": "#7570b3", "W3": "#e7298a", "W4": "#66a61e"}


def predicted(runs, group) -> float:
    return measures.predicted_weight_change_slope(group, [r.width for r in runs], runs[0].d,
                                                  [r.latent_width for r in runs])


def panel(ax, runs, absolute: bool):
    if absolute and "weight_change_absolute" not in runs[-1].data:
        style.empty(ax, "absolute weight change not recorded by these training files")
        return
    used, dropped = measures.trained_runs(runs)
    fit_runs = used if len(used) >= 2 else []
    for group in measures.moving_groups(runs[-1]):
        color = GROUP_COLORS[group]
        widths, values = measures.weight_change_table(runs, group, absolute)
        centre = measures.geometric_mean(np.where(np.isfinite(values), values, np.nan))
        keep = np.isin(widths, [r.width for r in used])
        ax.errorbar(widths[keep], centre[keep], yerr=style.spread(values[:, keep], centre[keep]), fmt="o",
                    color=color, markersize=3, capsize=2)
        if (~keep).any():
            style.mark_excluded(ax, widths[~keep], centre[~keep], label="left out: did not train")
        label = group
        if fit_runs:
            fw, fv = measures.weight_change_table(fit_runs, group, absolute)
            slope = style.fit_line(ax, fw, fv, color, label=None)
            mid = np.exp(np.mean(np.log(fw)))
            level = np.exp(np.nanmean(np.log(measures.geometric_mean(fv))))
            theory = 0.0 if absolute else predicted(fit_runs, group)
            ax.plot(fw, level * (fw / mid) ** theory, color=color, linestyle=style.LINESTYLES["prediction"],
                    linewidth=1.0)
            label = f"{group}: slope {slope.text('+.2f')}, theory {theory:+.1f}"
        ax.plot([], [], color=color, marker="o", markersize=3, label=label)
    ax.plot([], [], color="0.3", linestyle=style.LINESTYLES["prediction"], label="theory slope")
    if fit_runs:
        style.fit_band_entry(ax)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    style.log_ticks(ax)
    ax.set_xlabel("hidden width m")
    ax.set_ylabel(r"$\|W(T)-W(0)\|_F$" if absolute else r"$\|W(T)-W(0)\|_F / \|W(0)\|_F$")


def plot(paths, pdf, png=None, dpi=150, dataset=None, settings=None, **_unused):
    style.apply()
    settings = settings or {}
    runs = load_runs(paths)
    groups = by_run(runs)
    theorem = (settings.get("theorem_runs") or {}).get("mse")
    order = ([theorem] if theorem in groups else []) + [n for n in settings.get("laziness_runs", groups) if n in groups
                                                      and n != theorem]
    fig, axes = plt.subplots(len(order), 2, figsize=(style.FULL_WIDTH_IN, 3.7 * len(order)), squeeze=False)
    for row, name in enumerate(order):
        family = sorted(groups[name], key=lambda r: r.width)
        setting = "theorem setting" if name == theorem else "as trained"
        frozen = [g for g in measures.GROUPS if g in family[-1].data["weight_change"]
                  and g not in measures.moving_groups(family[-1])]
        note = f"; {', '.join(frozen)} frozen" if frozen else ""
        for col, absolute in enumerate((False, True)):
            ax = axes[row, col]
            panel(ax, family, absolute)
            ax.set_title(f"{name}, {setting}: {'absolute' if absolute else 'relative'}{note}")
            if ax.axison:
                title = regime_text(family) if col == 0 else describe(family[0])
                style.legend_below(ax, ncol=1, title=textwrap.fill(title, 48), alignment="left")
    fig.suptitle(f"F2 laziness on {dataset or runs[0].dataset}: weight change at the last step vs width\n"
                 "(mean over seeds, bars: min-max; thin lines: fit, band: 95% interval of its slope)")
    fig.tight_layout()
    style.save(fig, pdf, png, dpi)
