"""F2, laziness: relative weight change ||W(t) - W(0)|| / ||W(0)|| per parameter group.

Claim tested: in the over-parameterized (lazy) regime the weights barely move, and less the
wider the network. NTK theory keeps ||W(t) - W(0)||_F = O(1) per group, so the relative
change falls like #weights^(-1/2): slope -1/2 on log-log axes for W1 and W4, -1 for Wmu,
Wsigma, W3 when the latent width grows with m. Left: relative change vs step at the widest
width. Right: final relative change vs width with the fitted slope (printed) and the
predicted slope (dotted guide through the narrowest width).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from . import style
from ..results import measures
from ..results.runs import by_run, describe, finite_or_nan, load_runs, usable

GROUP_COLORS = {"W1": "#1b9e77", "Wmu": "#d95f02", "Wsigma": "#7570b3", "W3": "#e7298a", "W4": "#66a61e"}


def moving_groups(run) -> list[str]:
    """Groups that changed at all (Wsigma is frozen in the Theorem 2 setting)."""
    wc = run.data.get("weight_change", {})
    return [g for g in measures.GROUPS if g in wc and np.nanmax(wc[g]) > 0]


def width_table(group_runs, group):
    """(widths, final relative change per seed at each width) of one group across a run's widths."""
    widths = np.array([r.width for r in group_runs])
    return widths, [measures.final(r.data["weight_change"][group]) for r in group_runs]


def plot(paths, pdf, png=None, dpi=150, dataset=None, **_unused):
    style.apply()
    runs = load_runs(paths)
    groups = by_run(runs)
    fig, axes = plt.subplots(len(groups), 2, figsize=(style.FULL_WIDTH_IN, 2.4 * len(groups)), squeeze=False)
    for row, (name, every) in enumerate(groups.items()):
        ax_t, ax_m = axes[row]
        group_runs = usable(every)
        if not group_runs:
            for ax in (ax_t, ax_m):
                style.nothing_to_show(ax, f"run {name}: every seed diverged at every width")
            continue
        widest = group_runs[-1]
        frozen = [g for g in measures.GROUPS if g in widest.data["weight_change"] and g not in moving_groups(widest)]
        for g in moving_groups(widest):
            steps = widest.data["eval"]["step"]
            later = steps > 0   # the change is 0 at step 0, off a log axis
            style.mean_and_band(ax_t, steps[later], finite_or_nan(widest.data["weight_change"][g])[:, later],
                                GROUP_COLORS[g], g, log=True)
            widths, finals = width_table(group_runs, g)
            centre, yerr = style.bars(finals)
            ax_m.errorbar(widths, centre, yerr=yerr, color=GROUP_COLORS[g], marker="o",
                          markersize=3, capsize=2, linewidth=1.0,
                          label=f"{g}: slope {measures.loglog_slope(widths, centre):+.2f} "
                                f"(theory {predicted(group_runs, g):+.2f})")
            guide = centre[0] * (widths / widths[0]) ** predicted(group_runs, g)
            ax_m.plot(widths, guide, color=GROUP_COLORS[g], linestyle=":", linewidth=1.0)
        note = f" ({', '.join(frozen)} frozen)" if frozen else ""
        ax_t.set_title(f"{name} ({describe(widest)}): m = {widest.width}{note}")
        ax_t.set_xlabel("gradient-descent step t")
        ax_t.set_ylabel(r"$\|W(t)-W(0)\|_F\,/\,\|W(0)\|_F$")
        ax_t.set_yscale("log")
        ax_t.legend(frameon=False, ncol=2)
        ax_m.set_xscale("log", base=2)
        ax_m.set_yscale("log")
        ax_m.set_xlabel("hidden width m")
        ax_m.set_ylabel("relative change at last step")
        ax_m.set_title(f"{name}: vs width (dotted: theory slope)")
        ax_m.legend(frameon=False, fontsize=6)
    fig.suptitle(f"F2 laziness on {dataset or runs[0].dataset} (mean over seeds; band/bars: min-max)")
    fig.tight_layout()
    style.divergence_footnote(fig, runs)
    style.save(fig, pdf, png, dpi)


def predicted(group_runs, group) -> float:
    widths = [r.width for r in group_runs]
    return measures.predicted_weight_change_slope(group, widths, group_runs[0].d,
                                                  [r.latent_width for r in group_runs])
