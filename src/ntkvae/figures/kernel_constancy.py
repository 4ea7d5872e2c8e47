"""F3, kernel constancy: the empirical NTK barely changes in training and approaches Theta_inf.

Claims tested: ||Theta_m(T) - Theta_m(0)|| / ||Theta_m(0)|| = O(m^-1/2) (the kernel is
constant in the limit) and ||Theta_m(0) - Theta_inf|| / ||Theta_inf|| = O(m^-1/2) (the
finite-width kernel concentrates on its limit), both on the probe points stored by training,
per parameter group and summed. Black dashed: the m^-1/2 guide through the narrowest width.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from . import style
from ..results import measures
from ..results.kernels import Kernel, distance_to_limit, has_probes, kernel_change, kernel_file_for
from .laziness import GROUP_COLORS
from ..results.runs import by_run, load_runs, usable

COLORS = dict(GROUP_COLORS, total="black")


def groups_of(run):
    return [g for g in (*measures.GROUPS, "total") if g in run.data["ntk"]["init"]
            and np.any(run.data["ntk"]["init"][g])]


def panel(ax, widths, values_by_group, ylabel):
    """values_by_group: {group: one array of per-seed values per width}."""
    for group, values in values_by_group.items():
        centre, yerr = style.bars(values)
        ax.errorbar(widths, centre, yerr=yerr, color=COLORS[group], marker="o", markersize=3,
                    capsize=2, linewidth=1.6 if group == "total" else 0.9,
                    label=f"{group}: slope {measures.loglog_slope(widths, centre):+.2f}")
    total = style.bars(values_by_group["total"])[0]
    ax.plot(widths, total[0] * (widths / widths[0]) ** -0.5, **style.THEORY, label=r"$m^{-1/2}$ (theory)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("hidden width m")
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False, fontsize=6)


def plot(paths, pdf, png=None, dpi=150, dataset=None, kernels=(), **_unused):
    style.apply()
    every = load_runs(paths)
    groups = by_run(every)
    fig, axes = plt.subplots(len(groups), 2, figsize=(style.FULL_WIDTH_IN, 2.6 * len(groups)), squeeze=False)
    probes = 0
    for row, (name, runs) in enumerate(groups.items()):
        if not any(has_probes(r) for r in runs):   # kernels.probe_size: 0
            for ax in axes[row]:
                style.nothing_to_show(ax, f"run {name}: no NTK probes recorded (kernels.probe_size: 0)")
            continue
        runs = usable(runs)
        if not runs:
            for ax in axes[row]:
                style.nothing_to_show(ax, f"run {name}: every seed diverged at every width")
            continue
        kernel = Kernel(kernel_file_for(kernels, runs[0].dataset, runs[0].model["activation"]))
        widths = np.array([r.width for r in runs])
        names = groups_of(runs[-1])
        change = {g: [kernel_change(r, g) for r in runs] for g in names}
        limit = {g: [distance_to_limit(r, kernel, g) for r in runs] for g in names}
        probes = len(runs[0].data["ntk"]["probe_index"])
        panel(axes[row, 0], widths, change, r"$\|\Theta_m(T)-\Theta_m(0)\|_F / \|\Theta_m(0)\|_F$")
        panel(axes[row, 1], widths, limit, r"$\|\Theta_m(0)-\Theta_\infty\|_F / \|\Theta_\infty\|_F$")
        axes[row, 0].set_title(f"{name}: change during training")
        axes[row, 1].set_title(f"{name}: distance to the infinite-width kernel at init")
    fig.suptitle(f"F3 kernel constancy on {dataset or every[0].dataset} ({probes} probe examples; "
                 f"mean over seeds, bars: min-max)")
    fig.tight_layout()
    style.divergence_footnote(fig, every)
    style.save(fig, pdf, png, dpi)
