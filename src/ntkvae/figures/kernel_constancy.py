"""F3, kernel constancy: the empirical NTK barely changes in training and approaches Theta_inf.

Claims tested, on the probe points stored by training, per trained parameter group and for the
total over the trained groups (Wsigma is left out where frozen, on both sides): the relative
change ||Theta_m(T) - Theta_m(0)|| / ||Theta_m(0)|| (left) and the distance to the limit
||Theta_m(0) - Theta_inf|| / ||Theta_inf|| (middle), both O(m^-1/2) (dotted: m^-1/2 through the
total's narrowest point); right, their ratio for the total: the kernel counts as constant when it
moves less in training than its finite-width distance to Theta_inf (ratio below 1, the claim's
tolerance). One row per setting: the theorem runs and the first of `figures.kernel_runs`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from . import style
from ..results import measures, stats
from ..results.kernels import Kernel, distance_to_limit, has_probes, kernel_change, kernel_file_for, probed_groups
from ..results.runs import by_run, load_runs, regime_text
from .laziness import GROUP_COLORS

COLORS = dict(GROUP_COLORS, total="black")


def panel(ax, runs, values_of, ylabel):
    for group in probed_groups(runs[-1]):
        widths, values = measures.per_seed_table(runs, lambda r: values_of(r, group))
        centre = measures.geometric_mean(values)
        slope = stats.slope_estimate(widths, values)
        ax.errorbar(widths, centre, yerr=style.spread(values, centre), color=COLORS[group], marker="o", markersize=3,
                    capsize=2, linewidth=1.6 if group == "total" else 0.9,
                    label=f"{group}: slope {slope.text('+.2f')}")
        if group == "total":
            ax.plot(widths, centre[0] * (widths / widths[0]) ** -0.5, color="black", linestyle=":", linewidth=1.0,
                    label=r"$m^{-1/2}$")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    style.log_ticks(ax)
    ax.set_xlabel("hidden width m")
    ax.set_ylabel(ylabel)


def plot(paths, pdf, png=None, dpi=150, dataset=None, kernels=(), settings=None, **_unused):
    style.apply()
    settings = settings or {}
    groups = by_run([r for r in load_runs(paths) if has_probes(r)])
    theorem = (settings.get("theorem_runs") or {}).get("mse")
    practical = next((n for n in settings.get("kernel_runs", []) if n in groups and n != theorem), None)
    order = [n for n in (theorem, practical) if n in groups]
    fig, axes = plt.subplots(max(len(order), 1), 3, figsize=(style.FULL_WIDTH_IN, 2.9 * max(len(order), 1)),
                             squeeze=False, gridspec_kw={"width_ratios": [2, 2, 1.3]})
    if not order:
        for ax in axes[0]:
            style.empty(ax, "no runs with empirical-NTK probes (kernels.probe_size)")
    for row, name in enumerate(order):
        runs = sorted(groups[name], key=lambda r: r.width)
        kernel = Kernel(kernel_file_for(kernels, runs[0].dataset, runs[0].model["activation"]))
        setting = "theorem setting" if name == theorem else "as VAEs are trained"
        panel(axes[row, 0], runs, kernel_change, r"$\|\Theta_m(T)-\Theta_m(0)\| / \|\Theta_m(0)\|$")
        panel(axes[row, 1], runs, lambda r, g: distance_to_limit(r, kernel, g),
              r"$\|\Theta_m(0)-\Theta_\infty\| / \|\Theta_\infty\|$")
        widths, change = measures.per_seed_table(runs, kernel_change)
        _, limit = measures.per_seed_table(runs, lambda r: distance_to_limit(r, kernel))
        ratio = change / limit
        centre = np.nanmean(ratio, axis=0)
        ax = axes[row, 2]
        ax.errorbar(widths, centre, yerr=style.spread(ratio, centre), color="black", marker="o", markersize=3,
                    capsize=2, label="total: change / distance")
        ax.axhline(1.0, color="black", linestyle="--", linewidth=1.0, label="tolerance (constant below)")
        ax.set_xscale("log", base=2)
        style.log_ticks(ax)
        ax.set_xlabel("hidden width m")
        ax.set_ylabel("change / distance")
        ax.set_ylim(bottom=0)
        axes[row, 0].set_title(f"{name} ({setting}): change in training")
        axes[row, 1].set_title(f"{name}: distance to the limit at init")
        axes[row, 2].set_title("is it constant?")
        style.legend_below(axes[row, 0], ncol=2, title=regime_text(runs), title_fontsize=5.5)
        style.legend_below(axes[row, 1], ncol=2)
        style.legend_below(axes[row, 2], ncol=1)
    r0 = next(iter(groups.values()))[0] if groups else None
    probes = len(r0.data["ntk"]["probe_index"]) if r0 else 0
    fig.suptitle(f"F3 kernel constancy on {dataset or (r0.dataset if r0 else '')} ({probes} probe examples; "
                 "trained groups; mean over seeds, bars: min-max, slopes with 95% interval)")
    fig.tight_layout()
    style.save(fig, pdf, png, dpi)
