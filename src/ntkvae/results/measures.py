"""Numbers the figures and the claims table both need, computed from HDF5 contents (numpy only).

Keeping them in one place means a figure and the claims table can never disagree about
what was measured.
"""

from __future__ import annotations

import numpy as np

GROUPS = ("W1", "Wmu", "Wsigma", "W3", "W4")


def param_count(group: str, width: int, d: int, latent_width: int) -> int:
    """Number of weights of a group (shapes as in ntkvae.model.param_shapes, which imports JAX)."""
    m, mz = int(width), int(latent_width)
    shapes = {"W1": (m, d), "Wmu": (mz, m), "Wsigma": (mz, m), "W3": (m, mz), "W4": (d, m)}
    rows, cols = shapes[group]
    return rows * cols


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
