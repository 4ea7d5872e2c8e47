"""F3, kernel constancy: the empirical NTK barely changes in training and approaches Theta_inf.

Claims tested, on the probe points stored by training, per trained parameter group and for the
total over the trained groups (Wsigma is left out where frozen, on both sides): the relative
change ||Theta_m(T) - Theta_m(0)|| / ||Theta_m(0)|| (top) and the distance to the limit
||Theta_m(0) - Theta_inf|| / ||Theta_inf|| (middle), both O(m^-1/2) (dashed: m^-1/2 through the
total's narrowest point; thin lines: the fitted power laws, band: the 95% interval of the total's
slope); bottom, their ratio for the total: the kernel counts as constant when it moves less in
training than its finite-width distance to Theta_inf (ratio below 1, dotted: the claim's
tolerance). One column per setting: the theorem runs (left) and the first of
`figures.kernel_runs` (right, as VAEs are trained). Red crosses: a width where a seed diverged
(recorded), at the top where the mean over seeds is not finite.
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np

from . import style
from ..results import measures
from ..results.kernels import Kernel, distance_to_limit, has_probes, kernel_change, kernel_file_for, probed_groups
from ..results.runs import by_run, load_runs, regime_text
from .laziness import GROUP_COLORS

COLORS = dict(GROUP_COLORS, total="black")


def mark_diverged_widths(ax, widths, values, centre):
    """Widths where a seed is missing (diverged): marked at the mean, or at the top where it is not finite."""
    missing = ~np.all(np.isfinite(values), axis=0)
    if missing.any():
        style.mark_excluded(ax, widths[missing], centre[missing], label="a seed diverged (recorded)")


def panel(ax, runs, values_of, ylabel):
    for group in probed_groups(runs[-1]):
        widths, values = measures.per_seed_table(runs, lambda r: values_of(r, group))
        centre = measures.geometric_mean(values)
        total = group == "total"
        ax.errorbar(widths, centre, yerr=style.spread(values, centre), color=COLORS[group], marker="o", markersize=3,
                    capsize=2, linestyle="none")
        slope = style.fit_line(ax, widths, values, COLORS[group], label=None, band=total,
                               linewidth=1.4 if total else 0.7)
        ax.plot([], [], color=COLORS[group], marker="o", markersize=3, label=f"{group} {slope.text('+.2f')}")
        if total:
            mark_diverged_widths(ax, widths, values, centre)
            ax.plot(widths, centre[0] * (widths / widths[0]) ** -0.5, label=r"$m^{-1/2}$ (theory)",
                    **dict(style.THEORY, color="0.3"))
    ax.fill_between([], [], [], color="0.6", alpha=0.3, linewidth=0, label="band: the total's interval")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    style.log_ticks(ax)
    ax.set_xlabel("hidden width m")
    ax.set_ylabel(ylabel)


def ratio_panel(ax, runs, kernel):
    widths, change = measures.per_seed_table(runs, kernel_change)
    _, limit = measures.per_seed_table(runs, lambda r: distance_to_limit(r, kernel))
    ratio = change / limit
    centre = np.nanmean(ratio, axis=0)
    ax.errorbar(widths, centre, yerr=style.spread(ratio, centre), color="black", marker="o", markersize=3,
                capsize=2, label="total: change / distance")
    mark_diverged_widths(ax, widths, ratio, centre)
    ax.axhline(1.0, label="tolerance: constant below 1", **style.THRESHOLD)
    ax.set_xscale("log", base=2)
    style.log_ticks(ax)
    ax.set_xlabel("hidden width m")
    ax.set_ylabel("change / distance to the limit")
    ax.set_ylim(0, max(1.2, float(np.nanmax(centre)) * 1.15 if np.isfinite(centre).any() else 1.2))


def plot(paths, pdf, png=None, dpi=150, dataset=None, kernels=(), settings=None, **_unused):
    style.apply()
    settings = settings or {}
    groups = by_run([r for r in load_runs(paths) if has_probes(r)])
    theorem = (settings.get("theorem_runs") or {}).get("mse")
    practical = next((n for n in settings.get("kernel_runs", []) if n in groups and n != theorem), None)
    order = [n for n in (theorem, practical) if n in groups]
    columns = max(len(order), 1)
    fig, axes = plt.subplots(3, columns, figsize=(style.FULL_WIDTH_IN if columns > 1 else style.COLUMN_WIDTH_IN, 9.6),
                             squeeze=False, gridspec_kw={"height_ratios": [1, 1, 0.8]})
    if not order:
        for ax in axes[:, 0]:
            style.empty(ax, "no runs with empirical-NTK probes (kernels.probe_size)")
    for col, name in enumerate(order):
        runs = sorted(groups[name], key=lambda r: r.width)
        kernel = Kernel(kernel_file_for(kernels, runs[0].dataset, runs[0].model["activation"]))
        setting = "theorem setting" if name == theorem else "as VAEs are trained"
        top, middle, bottom = axes[:, col]
        panel(top, runs, kernel_change, r"$\|\Theta_m(T)-\Theta_m(0)\| / \|\Theta_m(0)\|$")
        panel(middle, runs, lambda r, g: distance_to_limit(r, kernel, g), r"$\|\Theta_m(0)-\Theta_\infty\| / \|\Theta_\infty\|$")
        ratio_panel(bottom, runs, kernel)
        top.set_title(f"{name} ({setting}):\nchange in training")
        middle.set_title(f"{name}: distance to the limit at init")
        bottom.set_title(f"{name}: is it constant?")
        style.legend_below(top, ncol=2, title="slope [95% interval]")
        style.legend_below(middle, ncol=2, title="slope [95% interval]")
        style.legend_below(bottom, ncol=1, title=textwrap.fill(regime_text(runs), 56), alignment="left")
    r0 = next(iter(groups.values()))[0] if groups else None
    probes = len(r0.data["ntk"]["probe_index"]) if r0 else 0
    fig.suptitle(f"F3 kernel constancy on {dataset or (r0.dataset if r0 else '')}: {probes} probe examples, "
                 "trained groups\n(mean over seeds, bars: min-max)")
    fig.tight_layout()
    style.save(fig, pdf, png, dpi)
