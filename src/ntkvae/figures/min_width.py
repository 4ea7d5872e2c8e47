"""F9, minimum width: from which width training follows the infinite-width theory.

In Theorem 1's own setting (noise fixed per example, Wsigma frozen, MSE, SGD, the theorem runs'
small n), each seed's residual r_m(t) is compared with its own linearized trajectory
r_lin(t) = (I - eta Theta / n)^t r_m(0) of the trained kernel; the gap sup_t |r_m - r_lin| / |r(0)|
is taken over the whole trajectory to convergence. Dots: seeds; error bars: the 95% interval of
the mean; line and band: the power law fitted per seed (mean, and the spread of the seeds' fits);
dotted: the tolerance `figures.claims.gap_tolerance`. The minimum width is the smallest measured
width from which every interval lies below the tolerance (green triangle on the tolerance line);
where none does, the fit's crossing is marked as an extrapolation with its interval (red
diamond with horizontal bars, never as a measurement), the fit drawn out to it. Same numbers as the
min_width claim (ntkvae.results.measures.minimum_width_estimate).
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np

from . import style
from ..results import measures, stats
from ..results import theorem as T
from ..results.kernels import Kernel, data_targets, kernel_file_for
from ..results.runs import load_runs, regime_text


def plot(paths, pdf, png=None, dpi=150, dataset=None, kernels=(), data=None, settings=None, **_unused):
    style.apply()
    settings = settings or {}
    tolerance = settings.get("claims", {}).get("gap_tolerance", 0.1)
    name = (settings.get("theorem_runs") or {}).get("mse")
    runs = [r for r in load_runs(paths) if T.has_outputs(r) and (name is None or r.run == name)]
    fig, ax = plt.subplots(figsize=(style.COLUMN_WIDTH_IN, 3.0))
    if not runs:
        style.empty(ax, "no theorem-setting runs with recorded outputs (config `theorems`)")
        style.save(fig, pdf, png, dpi)
        return
    runs.sort(key=lambda r: r.width)
    kernel = Kernel(kernel_file_for(kernels, runs[0].dataset, runs[0].model["activation"]))
    y = data_targets(data)
    widths, gaps = measures.per_seed_table(runs, lambda r: T.trajectory_gap(r, kernel, y))
    found = measures.minimum_width_estimate(widths, gaps, tolerance)
    for i, row in enumerate(gaps):
        ax.plot(widths, row, "o", color="0.6", markersize=2.5, zorder=2, label="single seeds" if i == 0 else None)
    per_width = [stats.mean_interval(col) for col in gaps.T]
    centre = np.array([e.value for e in per_width])
    err = np.array([[e.value - e.low, e.high - e.value] for e in per_width]).T
    ax.errorbar(widths, centre, yerr=np.nan_to_num(err), fmt="o", color="tab:blue", markersize=4, capsize=2,
                zorder=3, label="gap, mean over seeds (95% interval)")
    # The fitted power law, over the measured widths and up to the extrapolated crossing.
    right = widths.max() * 2
    if found["extrapolated"] is not None and np.isfinite(found["extrapolated"].high):
        right = max(right, found["extrapolated"].high * 1.5)
    grid = np.geomspace(widths.min(), right, 60)
    fits = found["fits"][np.all(np.isfinite(found["fits"]), axis=1)]
    if fits.size:
        curves = np.exp(fits[:, :1] + fits[:, 1:] * np.log(grid)[None, :])
        slope = stats.mean_interval(fits[:, 1])
        ax.plot(grid, np.exp(np.mean(np.log(curves), axis=0)), color="tab:blue", linewidth=1.0,
                label=f"power-law fit, slope {slope.text('.2f')}")
        band = ax.fill_between(grid, curves.min(axis=0), curves.max(axis=0), color="tab:blue", alpha=0.15,
                               linewidth=0, label="band: fits of the single seeds")
        band.set_gid(style.FIT_BAND_GID)
    ax.axhline(tolerance, **style.THRESHOLD, label=f"tolerance {tolerance:g}")
    if found["measured"] is not None:
        ax.plot([found["measured"]], [tolerance], marker="v", color="tab:green", markersize=6, linestyle="none",
                zorder=4, label=f"minimum width {found['measured']} (measured)")
    elif found["extrapolated"] is not None:
        e = found["extrapolated"]
        xerr = [[e.value - e.low], [e.high - e.value]] if np.isfinite(e.high) else None
        ax.errorbar([e.value], [tolerance], xerr=xerr, fmt="D", color="tab:red", markersize=4, capsize=3,
                    label=f"extrapolated: m ≈ {e.value:.3g} (not measured)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    style.log_ticks(ax)
    ax.set_xlabel("hidden width m")
    ax.set_ylabel(r"$\sup_t\,|r_m(t) - r_{lin}(t)|\,/\,|r(0)|$")
    r0 = runs[0]
    ax.set_title(f"F9 minimum width, {dataset or r0.dataset}\n(theorem setting, n = {r0.n})")
    style.legend_below(ax, ncol=1, title=textwrap.fill(regime_text(runs), 52), alignment="left")
    style.save(fig, pdf, png, dpi)
