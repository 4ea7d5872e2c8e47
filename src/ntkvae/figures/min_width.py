"""F9, minimum width: the width below which training stops following the infinite-width theory.

For each width, the RMS over logged steps of log(measured / linearized) mean-function residual
(0 = on the Theta_inf trajectory). The smallest width whose distance, and every wider one's,
stays under `figures.min_width_tolerance` is marked: the empirical minimum width (the paper's
next check 1; its bound m = Omega(n^5 d^3 / lambda0^4) is far larger).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from . import style
from ..results.kernels import Kernel, curve_distance, data_targets, kernel_file_for, linearized_curve
from ..results.measures import extrapolated_width, minimum_width
from ..results.runs import by_run, load_runs, usable


def distances(runs, kernel, y, paths=()) -> list[np.ndarray]:
    """Per width, the distance of each seed's curve from the linearized prediction."""
    out = []
    for r in runs:
        predicted = linearized_curve(r, kernel, paths, y)
        out.append(np.array([curve_distance(c, predicted) for c in r.data["eval"]["mean_function_mse"]]))
    return out


def plot(paths, pdf, png=None, dpi=150, dataset=None, kernels=(), data=None, settings=None, **_unused):
    style.apply()
    tolerance = (settings or {}).get("min_width_tolerance", 0.1)
    every = load_runs(paths)
    groups = by_run(usable(every))   # widths whose every seed diverged are named below the plot
    y = data_targets(data)
    fig, ax = plt.subplots(figsize=(style.COLUMN_WIDTH_IN, 2.4))
    for i, (name, runs) in enumerate(groups.items()):
        kernel = Kernel(kernel_file_for(kernels, runs[0].dataset, runs[0].model["activation"]))
        widths = np.array([r.width for r in runs])
        centre, yerr = style.bars(distances(runs, kernel, y, kernels), log=False)
        m_min = minimum_width(widths, centre, tolerance)
        color = plt.get_cmap("tab10")(i)
        guess = extrapolated_width(widths, centre, tolerance)
        extra = f", power-law extrapolation {guess:.3g}" if guess and not m_min else ""
        ax.errorbar(widths, centre, yerr=yerr, marker="o", markersize=3, capsize=2, color=color,
                    label=f"{name}: min width {m_min if m_min else '> ' + str(widths.max())}{extra}")
        if m_min:
            ax.axvline(m_min, color=color, linestyle=":", linewidth=0.8)
    ax.axhline(tolerance, **style.THEORY, label=f"tolerance {tolerance:g}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("hidden width m")
    ax.set_ylabel("RMS log(measured / linearized)")
    ax.legend(frameon=False, fontsize=6)
    ax.set_title(f"F9 minimum width on {dataset or every[0].dataset}")
    fig.tight_layout()
    style.divergence_footnote(fig, every)
    style.save(fig, pdf, png, dpi)
