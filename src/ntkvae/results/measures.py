"""Numbers the figures and the claims table both need, computed from HDF5 contents (numpy only).

Keeping them in one place means a figure and the claims table can never disagree about
what was measured.
"""

from __future__ import annotations

import numpy as np

from ..groups import WEIGHT_GROUPS as GROUPS, param_count  # noqa: F401  (defined once, JAX-free)


def predicted_weight_change_slope(group: str, widths, d: int, latent_widths) -> float:
    """Log-log slope of ||W(t) - W(0)|| / ||W(0)|| vs width that NTK theory predicts.

    In the lazy regime ||W(t) - W(0)||_F stays O(1) in the width for every group, while
    ||W(0)||_F = sqrt(#weights) for N(0, 1) entries, so the relative change scales like
    #weights^(-1/2): m^(-1/2) for W1 and W4, m^(-1) for Wmu, Wsigma, W3 when m_z = m.
    The slope is read off the weight counts at the widths actually trained.
    """
    counts = [param_count(group, w, d, mz) for w, mz in zip(widths, latent_widths)]
    return float(-0.5 * np.polyfit(np.log(widths), np.log(counts), 1)[0])


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x (NaN if fewer than two positive points)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = (x > 0) & (y > 0) & np.isfinite(y)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


def geometric_mean(values, axis=0) -> np.ndarray:
    values = np.asarray(values, float)
    return np.exp(np.mean(np.log(np.maximum(values, 1e-300)), axis=axis))


def per_width(values, *, log: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre (geometric mean, or the mean with log false), minimum and maximum over seeds of one
    value per seed at each width (a list with one array per width: widths may keep different
    numbers of seeds, since the seeds that diverged are left out)."""
    values = [np.asarray(v, float) for v in values]
    centre = [float(geometric_mean(v)) if log else float(np.mean(v)) for v in values]
    return np.array(centre), np.array([float(np.min(v)) for v in values]), np.array([float(np.max(v)) for v in values])


def spearman(x, y) -> float:
    """Spearman rank correlation (ties broken by order; NaN for fewer than 3 points)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


def decay_rate(steps, values, start_fraction: float = 0.5) -> float:
    """Exponential decay rate of `values` (per step) over the last part of the run.

    Fits log(values) = a - rate * t on the steps t >= start_fraction * t_max. For a loss
    L(t) = exp(-2 eta lambda t / n) L(0) (a squared residual) the rate is 2 eta lambda / n.
    """
    steps, values = np.asarray(steps, float), np.asarray(values, float)
    keep = (steps >= start_fraction * steps.max()) & (values > 0) & np.isfinite(values)
    if keep.sum() < 2:
        return float("nan")
    return float(-np.polyfit(steps[keep], np.log(values[keep]), 1)[0])


def floor_drop(run) -> tuple[np.ndarray, np.ndarray]:
    """The noise floor's relative drop 1 - floor(t) / floor(0), per seed (rows), against the
    horizon eta t / m of each logged step: (horizons (P,), drops (S, P)). F1 draws it, and the
    noise-floor claim reads it at one horizon (`floor_drop_at`)."""
    ev = run.data["eval"]
    floor = np.asarray(ev["noise_floor"], float)
    horizon = float(run.settings["learning_rate"]) * np.asarray(ev["step"], float) / run.width
    return horizon, 1.0 - floor / floor[:, :1]


def floor_drop_at(run, horizon: float) -> np.ndarray | None:
    """Per seed the floor's relative drop at eta t / m = `horizon`, linearly interpolated between
    the logged steps around it; None if the run's logged steps after t = 0 do not reach from
    below `horizon` to above it (no extrapolation, and no interpolation from t = 0, where the
    drop is 0 by definition and its curve is steepest)."""
    h, drop = floor_drop(run)
    if h.size < 3 or not (h[1] <= horizon <= h[-1]):
        return None
    return np.asarray([np.interp(horizon, h, row) for row in drop])


def final(values) -> np.ndarray:
    """Last logged value of each seed (rows)."""
    return np.asarray(values, float)[..., -1]


def minimum_width(widths, distance, tolerance):
    """Smallest width from which on every (mean) distance is within tolerance, or None."""
    ok = np.asarray(distance) <= tolerance
    for i in range(len(widths)):
        if ok[i:].all():
            return int(widths[i])
    return None


def extrapolated_width(widths, distance, tolerance):
    """Width at which the power law fitted to distance(m) reaches the tolerance (None if not falling)."""
    slope = loglog_slope(widths, distance)
    if not slope < 0:
        return None
    # In logs: a nearly flat fit puts the width beyond float range, which is an honest +inf.
    log_width = np.log(widths[-1]) + np.log(tolerance / distance[-1]) / slope
    return float(np.exp(log_width)) if log_width < 700 else float("inf")


# ---------------------------------------------------------------------- which seeds and widths count

# A width "trained" when no seed diverged and the noise-averaged residual fell to at most this
# fraction of its initial value (docs/figures.md, "Which widths a fit uses"): a network that does
# not train has no lazy regime to measure, and its weight change would bend every fitted slope.
TRAINED_RESIDUAL_RATIO = 0.5


def finite_seeds(run) -> np.ndarray:
    """Per seed: not recorded as diverged and every logged evaluation finite."""
    seeds = np.asarray(run.data["seeds"])
    diverged = {int(s) for s in run.diverged}
    curve = np.asarray(run.data["eval"]["mean_function_mse"], float)
    return np.asarray([int(s) not in diverged for s in seeds]) & np.all(np.isfinite(curve), axis=1)


def trained(run) -> bool:
    """Whether this width trained (see TRAINED_RESIDUAL_RATIO): every seed finite and the residual halved."""
    ok = finite_seeds(run)
    if not ok.all():
        return False
    curve = np.asarray(run.data["eval"]["mean_function_mse"], float)
    return bool(np.all(curve[:, -1] <= TRAINED_RESIDUAL_RATIO * curve[:, 0]))


def trained_runs(runs) -> tuple[list, list]:
    """(the widths that trained, the others), each sorted by width."""
    runs = sorted(runs, key=lambda r: r.width)
    return [r for r in runs if trained(r)], [r for r in runs if not trained(r)]


def left_out(runs) -> str:
    """Why each width of `runs` (those trained_runs left out) did not count: the seeds that
    diverged (and from which step), or the residual that did not halve."""
    parts = []
    for r in runs:
        if r.diverged:
            where = ", ".join(f"seed {s} diverged at step {t}" for s, t in sorted(r.diverged.items(), key=lambda i: int(i[0])))
            parts.append(f"{r.width} ({where})")
        elif not finite_seeds(r).all():
            parts.append(f"{r.width} (non-finite evaluations)")
        else:
            parts.append(f"{r.width} (residual did not fall to {TRAINED_RESIDUAL_RATIO:g} of its start)")
    return ", ".join(parts)


def per_seed_table(runs, values_of) -> tuple[np.ndarray, np.ndarray]:
    """(widths, values (seeds, widths)) with `values_of(run)` giving one value per seed; diverged seeds NaN.

    Seeds are matched by position (every width trains the same seed list)."""
    widths = np.array([r.width for r in runs])
    columns = []
    for r in runs:
        values = np.asarray(values_of(r), float)
        columns.append(np.where(finite_seeds(r), values, np.nan))
    return widths, np.stack(columns, axis=1) if columns else np.zeros((0, 0))


def weight_change_table(runs, group: str, absolute: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(widths, final ||W(T) - W(0)|| (absolute) or that over ||W(0)|| (relative), (seeds, widths))."""
    key = "weight_change_absolute" if absolute else "weight_change"
    return per_seed_table(runs, lambda r: final(r.data[key][group]))


def moving_groups(run) -> list[str]:
    """Groups that changed at all (Wsigma is frozen in the theorem setting)."""
    wc = run.data.get("weight_change", {})
    return [g for g in GROUPS if g in wc and np.nanmax(np.asarray(wc[g], float)) > 0]


def minimum_width_estimate(widths, gaps, tolerance: float) -> dict:
    """The smallest width from which every wider width's gap interval lies below `tolerance`.

    gaps: (seeds, widths). Returns {"measured": the width or None, "estimate": the gap Estimate at
    that width (or at the widest), "extrapolated": an Estimate of the width where per-seed power
    laws gap = a m^b reach the tolerance (only when no measured width qualifies and every slope is
    negative; in log width, so its interval is multiplicative), "fits": per-seed (log a, b) for
    drawing the fit, "detail": text}. F9 and the min_width claim both call this.
    """
    from . import stats

    widths = np.asarray(widths, float)
    gaps = np.atleast_2d(np.asarray(gaps, float))
    per_width = [stats.mean_interval(gaps[:, i]) for i in range(widths.size)]
    below = [e.high <= tolerance if np.isfinite(e.high) else False for e in per_width]
    measured = next((int(widths[i]) for i in range(widths.size) if all(below[i:])), None)
    fits = []
    for row in gaps:
        ok = np.isfinite(row) & (row > 0)
        fits.append(np.polyfit(np.log(widths[ok]), np.log(row[ok]), 1)[::-1] if ok.sum() >= 2 else (np.nan, np.nan))
    fits = np.asarray(fits, float)                        # (seeds, 2): log a, b
    detail = "gap per width " + ", ".join(f"m = {int(w)}: {e.text('.3g')}" for w, e in zip(widths, per_width))
    extrapolated = None
    if measured is None and fits.size and np.all(fits[:, 1] < 0):
        log_width = (np.log(tolerance) - fits[:, 0]) / fits[:, 1]
        e = stats.mean_interval(log_width)
        # Beyond float range a nearly flat fit is an honest +inf.
        expo = lambda v: float(np.exp(v)) if v < 700 else float("inf")  # noqa: E731
        extrapolated = stats.Estimate(expo(e.value), expo(e.low), expo(e.high), tuple(np.exp(np.minimum(log_width, 700))),
                                      e.method + ", of log width")
    index = widths.size - 1 if measured is None else int(np.flatnonzero(widths == measured)[0])
    return {"measured": measured, "estimate": per_width[index] if per_width else None, "extrapolated": extrapolated,
            "fits": fits, "detail": detail}
