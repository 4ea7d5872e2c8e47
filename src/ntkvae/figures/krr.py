"""F5, KRR connection: Theorem 2 in its setting, the ridge beta adds at finite width, and practice.

Top left, the theorem setting (noise fixed, Wsigma frozen, trained to convergence): the distance
of each seed's noise-averaged output to its own KRR solution with the mean kernel and the noise
ridge D (filled circles; thin line: the fitted power law, band: the 95% interval of its slope),
and to the ridgeless kernel predictor (open squares), vs width: the limit is the ridge
regression, not the interpolant. Top right: the ridge the KL term adds (the full-objective
theorem runs, paired seed by seed with the beta = 0 run) relative to D, against
beta c(m_z) eta t, the KL's cumulative pull; one line per run and width through its logged times
(colour: the normalization c(m_z); marker: the width); dotted: a negligible ridge. Where the pull
is small (shaded) beta drops out; where it is not, the ridge grows with training time, so the
limits m -> inf and t -> inf do not commute. Bottom, as VAEs are trained (fresh noise): the beta
sweep's distance to the mean-kernel predictor after the same number of steps (ridgeless, finite
time), with Wsigma trained dash-dot (outside Theorem 2's assumptions). Red crosses: recorded
divergences or runs left out, at the top where the mean is not finite.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from . import style
from ..results import measures, stats
from ..results import theorem as T
from ..results.kernels import Kernel, data_targets, distance_to_predictor, kernel_file_for
from ..results.runs import by_run, load_runs

SCALING_COLORS = {"inv_width": "tab:green", "inv_sqrt_width": "tab:blue", "one": "tab:red"}
WIDTH_MARKERS = ("o", "s", "^", "D", "v")


def theorem_panel(ax, runs, kernel, y):
    converged = [r for r in runs if T.converged(r).all()]
    left = [r for r in runs if r not in converged]
    if not converged:   # nothing to draw on a log axis: say why instead (the claims say it too)
        style.empty(ax, f"theorem setting: no width converged within theorems.max_steps "
                        f"(widths {', '.join(str(r.width) for r in left)} left out)")
        return
    if converged:
        widths, dist = measures.per_seed_table(converged, lambda r: T.krr_distances(r, kernel, y)["krr"])
        centre = measures.geometric_mean(dist)
        ax.errorbar(widths, centre, yerr=style.spread(dist, centre), color="tab:purple", marker="o", markersize=3,
                    capsize=2, linestyle="none")
        slope = style.fit_line(ax, widths, dist, "tab:purple", label=None)
        ax.plot([], [], color="tab:purple", marker="o", markersize=3,
                label=f"to KRR (mean kernel + noise ridge D)\nslope {slope.text('+.2f')}")
        widths, dist = measures.per_seed_table(converged, lambda r: T.krr_distances(r, kernel, y)["ridgeless"])
        centre = measures.geometric_mean(dist)
        slope = stats.slope_estimate(widths, dist)
        ax.errorbar(widths, centre, yerr=style.spread(dist, centre), color="0.35", marker="s", mfc="none",
                    markersize=3.5, capsize=2, label=f"to the ridgeless predictor\nslope {slope.text('+.2f')}")
        style.fit_band_entry(ax)
    for r in left:
        style.mark_excluded(ax, [r.width], label="not converged (left out)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    style.log_ticks(ax)
    ax.set_xlabel("hidden width m")
    ax.set_ylabel(r"$|\bar f_T - f^*| / |f^*|$ at convergence")
    n = runs[0].n if runs else "?"
    ax.set_title(f"theorem setting (noise fixed, n = {n}): Theorem 2")


def ridge_panel(ax, kl_runs, reference, kernel, y):
    by_width = {r.width: r for r in reference}
    widths = sorted({r.width for r in kl_runs})
    drawn = set()
    for run in kl_runs:
        if run.width not in by_width:
            continue
        added = T.added_ridges(run, by_width[run.width], kernel, y)
        keep = added["drift"] > 0
        ratio = np.nanmean(added["added"], axis=0) / added["noise_ridge"]
        scaling = run.settings["kl_scaling"]
        marker = WIDTH_MARKERS[widths.index(run.width) % len(WIDTH_MARKERS)]
        ax.plot(added["drift"][keep], np.maximum(ratio[keep], 1e-4), color=SCALING_COLORS.get(scaling, "0.3"),
                marker=marker, markersize=2.5, linewidth=0.8,
                label=f"c = {scaling}" if scaling not in drawn else None)
        drawn.add(scaling)
        if run.diverged:
            style.mark_excluded(ax, added["drift"][-1:], label="diverged (recorded)")
    for w in widths:
        ax.plot([], [], color="0.4", marker=WIDTH_MARKERS[widths.index(w) % len(WIDTH_MARKERS)], linestyle="none",
                markersize=3, label=f"m = {w}")
    ax.axvspan(ax.get_xlim()[0] if ax.has_data() else 1e-3, T.KL_DRIFT_SMALL, color="0.9", zorder=0,
               label=rf"$\beta c \eta t \leq {T.KL_DRIFT_SMALL:g}$: should drop out")
    ax.axhline(T.KL_RIDGE_NEGLIGIBLE, label=f"negligible ridge ({T.KL_RIDGE_NEGLIGIBLE:g} D)", **style.THRESHOLD)
    ax.set_xscale("log")
    ax.set_yscale("log")
    style.log_ticks(ax)
    ax.set_xlabel(r"$\beta\, c(m_z)\, \eta\, t$")
    ax.set_ylabel("ridge added by the KL / D")
    ax.set_title("theorem setting: the ridge beta adds")


def practical_panel(ax, groups, kernel, y):
    frozen = sorted((g for g in groups if not g[0].settings["train_sigma"]), key=lambda g: g[0].settings["beta"])
    trained = [g for g in groups if g[0].settings["train_sigma"]]
    cmap = plt.get_cmap("plasma")
    for i, runs in enumerate(frozen + trained):
        runs = sorted(runs, key=lambda r: r.width)
        widths, dist = measures.per_seed_table(runs, lambda r: distance_to_predictor(r, kernel, y))
        centre = measures.geometric_mean(np.where(np.isfinite(dist), dist, np.nan))
        sigma = runs[0].settings["train_sigma"]
        color = "black" if sigma else cmap(0.85 * i / max(len(frozen) - 1, 1))
        label = rf"$\beta$ = {runs[0].settings['beta']:g}" + (", Wsigma trained\n(outside Theorem 2)" if sigma else "")
        ax.errorbar(widths, centre, yerr=style.spread(dist, centre), marker="o", markersize=3, capsize=2, color=color,
                    linestyle=style.LINESTYLES["outside assumptions"] if sigma else "-", label=label)
        for r in runs:
            if r.diverged:
                style.mark_excluded(ax, [r.width], centre[widths == r.width], label="a seed diverged (recorded)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    style.log_ticks(ax)
    ax.set_xlabel("hidden width m")
    ax.set_ylabel(r"$|\bar f_T - f_T^{lin}| / |f_T^{lin}|$")
    s = (frozen + trained)[0][0].settings
    ax.set_title(f"as VAEs are trained (fresh noise, {s['steps']} steps)")


def plot(paths, pdf, png=None, dpi=150, dataset=None, kernels=(), data=None, settings=None, **_unused):
    style.apply()
    settings = settings or {}
    runs = load_runs(paths)
    names = settings.get("theorem_runs") or {}
    y = data_targets(data)
    any_run = runs[0]
    kernel = Kernel(kernel_file_for(kernels, any_run.dataset, any_run.model["activation"]))
    theorem = sorted((r for r in runs if r.run == names.get("mse") and T.has_outputs(r)), key=lambda r: r.width)
    kl = [r for r in runs if r.run in names.get("kl", []) and T.has_outputs(r)]
    theorem_names = {names.get("mse"), *names.get("kl", [])}
    practical = [g for name, g in by_run(runs).items() if name not in theorem_names]
    fig, ((ax_t, ax_r), (ax_p, ax_legend)) = plt.subplots(2, 2, figsize=(style.FULL_WIDTH_IN, 6.2))
    ax_legend.set_axis_off()   # the bottom panel's legend sits here, to its right
    if theorem:
        theorem_panel(ax_t, theorem, kernel, y)
    else:
        style.empty(ax_t, "no theorem-setting runs (config `theorems`)")
    if kl and theorem:
        ridge_panel(ax_r, kl, theorem, kernel, y)
    else:
        style.empty(ax_r, "no full-objective theorem runs (theorems.kl)")
    if practical:
        practical_panel(ax_p, practical, kernel, y)
    else:
        style.empty(ax_p, "no beta sweep (figures.kl_betas)")
    for ax in (ax_t, ax_r):
        if ax.axison:
            style.legend_below(ax, ncol=1)
    if ax_p.axison:
        style.legend_right(ax_p)
    fig.suptitle(f"F5 KRR connection on {dataset or any_run.dataset} (mean over seeds, bars: min-max)")
    fig.tight_layout()
    style.save(fig, pdf, png, dpi)
