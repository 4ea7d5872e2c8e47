"""F4, rate vs lambda0: the convergence rate is set by the least eigenvalue of the trained kernel.

One column per setting: the theorem runs (left) and the first of `figures.kernel_runs` (right).
Top: lambda_min of the empirical kernel Theta_m(0) of the trained groups on the probe points, vs
width, against lambda_min of Theta_inf on the same points (dashed). Bottom left, the theorem
setting (noise fixed): the late decay rate of the loss per step, measured (bars: 95% interval of
the mean over seeds) and along each seed's own linearized trajectory over the same window (open
circles), and the slowest mode's asymptote -2 log(1 - eta lambda0 / n) (dashed), lambda0 of the
trained kernel on the theorem runs' examples. Bottom right, as VAEs are trained (fresh noise):
the late rate of the noise-averaged residual, and the prediction's rate over the same window
(open circles); the mean function's slowest mode is set by the mean kernel's lambda_bar, a
different eigenvalue with its own name (dashed). Red crosses: a seed diverged (recorded) at
that width, at the top where the mean is not finite.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from . import style
from ..dynamics import linear_loss_rate
from ..results import measures, stats
from ..results import theorem as T
from ..results.kernels import (Kernel, data_targets, has_probes, kernel_file_for, lambda_min, linearized_curve,
                               theta_inf_probe, theta_m)
from ..results.runs import by_run, finite_or_nan, load_runs


def errorbar_interval(ax, widths, values, **kw):
    """Mean over seeds (rows) with the 95% Student-t interval."""
    est = [stats.mean_interval(col) for col in np.asarray(values).T]
    centre = np.array([e.value for e in est])
    err = np.nan_to_num(np.array([[e.value - e.low, e.high - e.value] for e in est]).T)
    return ax.errorbar(widths, centre, yerr=err, capsize=2, markersize=3, **kw)


def lambda_panel(ax, runs, kernel, color, name):
    widths, lam = measures.per_seed_table(runs, lambda r: lambda_min(theta_m(r, "init")))
    errorbar_interval(ax, widths, lam, fmt="o-", color=color, label=r"$\Theta_m(0)$, mean over seeds (95% interval)")
    missing = ~np.all(np.isfinite(lam), axis=0)
    if missing.any():
        style.mark_excluded(ax, widths[missing], label="a seed diverged (recorded)")
    ax.axhline(lambda_min(theta_inf_probe(runs[-1], kernel)), label=r"$\Theta_\infty$ on the same points",
               **dict(style.THEORY, color=color))
    ax.set_title(f"{name}: least eigenvalue on the probe points")
    ax.set_ylabel(r"$\lambda_{\min}$ (trained groups)")


def plot(paths, pdf, png=None, dpi=150, dataset=None, kernels=(), data=None, settings=None, **_unused):
    style.apply()
    settings = settings or {}
    groups = by_run(load_runs(paths))
    y = data_targets(data)
    theorem = (settings.get("theorem_runs") or {}).get("mse")
    practical = next((n for n in settings.get("kernel_runs", []) if n in groups and n != theorem), None)
    fig, axes = plt.subplots(2, 2, figsize=(style.FULL_WIDTH_IN, 6.0))
    (ax_lt, ax_lp), (ax_t, ax_p) = axes
    colors = {theorem: "tab:blue", practical: "tab:orange"}
    any_run = next(iter(groups.values()))[0]
    kernel = Kernel(kernel_file_for(kernels, any_run.dataset, any_run.model["activation"]))
    for name, ax in ((theorem, ax_lt), (practical, ax_lp)):
        runs = sorted((r for r in groups.get(name, []) if has_probes(r)), key=lambda r: r.width)
        if runs:
            lambda_panel(ax, runs, kernel, colors[name], name)
        else:
            style.empty(ax, f"no empirical-NTK probes of {name}")
    runs = sorted((r for r in groups.get(theorem, []) if T.has_outputs(r)), key=lambda r: r.width)
    if runs:
        widths, measured = measures.per_seed_table(runs, lambda r: T.late_rates(r, kernel, y)["measured"])
        _, linear = measures.per_seed_table(runs, lambda r: T.late_rates(r, kernel, y)["linearized"])
        errorbar_interval(ax_t, widths, measured, fmt="o", color="tab:blue", label="measured (95% interval)")
        ax_t.plot(widths, np.nanmean(linear, axis=0), "o", mfc="none", color="black", markersize=4,
                  label="own linearized trajectory, same window")
        rate = T.late_rates(runs[-1], kernel, y)
        ax_t.axhline(rate["asymptote"], label=rf"slowest mode, $\lambda_0$ = {rate['lambda0']:.3g}", **style.THEORY)
        ax_t.set_title(f"theorem setting (noise fixed, n = {runs[0].n}): loss")
    else:
        style.empty(ax_t, "no theorem-setting runs")
    runs = sorted(groups.get(practical, []), key=lambda r: r.width)
    if runs:
        widths, measured = measures.per_seed_table(
            runs, lambda r: [measures.decay_rate(r.data["eval"]["step"], c) for c in finite_or_nan(r.data["eval"]["mean_function_mse"])])
        errorbar_interval(ax_p, widths, measured, fmt="o", color="tab:orange", label="measured (95% interval)")
        missing = ~np.all(np.isfinite(measured), axis=0)
        if missing.any():
            style.mark_excluded(ax_p, widths[missing], label="a seed diverged (recorded)")
        predicted = [measures.decay_rate(r.data["eval"]["step"], linearized_curve(r, kernel, kernels, y)) for r in runs]
        ax_p.plot(widths, predicted, "o", mfc="none", color="black", markersize=4,
                  label=r"mean kernel $\bar\Theta$ + SGD kicks, same window")
        eta, n = runs[0].settings["learning_rate"], runs[0].n
        ax_p.axhline(linear_loss_rate(eta, kernel.lambda_bar, n),
                     label=rf"slowest mode, $\bar\lambda$ = {kernel.lambda_bar:.3g}", **style.THEORY)
        ax_p.set_title(f"as VAEs are trained (fresh noise, n = {n}): residual")
    else:
        style.empty(ax_p, "no kernel run (figures.kernel_runs)")
    for ax in axes.ravel():
        if ax.axison:
            ax.set_xscale("log", base=2)
            style.log_ticks(ax)
            ax.set_xlabel("hidden width m")
            style.legend_below(ax, ncol=1)
    for ax in (ax_t, ax_p):
        if ax.axison:
            ax.set_ylabel("late decay rate per step")
    fig.suptitle(f"F4 rate vs lambda0 on {dataset or any_run.dataset}: theorem setting (left), as VAEs are trained "
                 "(right)\n(rates over the second half of training)")
    fig.tight_layout()
    style.save(fig, pdf, png, dpi)
