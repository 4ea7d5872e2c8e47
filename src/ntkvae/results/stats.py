"""Measured values with an interval from their seeds, and the verdict an interval supports (numpy only).

Every claim row carries an `Estimate`: the value, an interval, the per-seed values it came from
and how the interval was computed. Two kinds:

* `mean_interval`: the mean over seeds with the two-sided 95% Student-t interval
  mean +- t_{0.975, S-1} sd / sqrt(S) (S seeds, sample standard deviation): for claims about a
  typical network (a slope, a rate, a distance);
* `seed_range`: the smallest and largest seed's value: for claims that must hold for every seed
  (the Theorem 1 bound at every step).

A verdict compares the interval with the tolerance band [low, high] of the claim: holds when the
interval lies inside it, fails when it lies outside (disjoint), inconclusive otherwise (the
seeds' spread is wider than what the tolerance can decide). With one seed there is no interval:
the verdict is inconclusive unless the band is decided by a single point for every-seed claims.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

HOLDS, FAILS, INCONCLUSIVE = "holds", "fails", "inconclusive"
CONFIDENCE = 0.95


def student_t_quantile(p: float, dof: int) -> float:
    """Quantile of Student's t with `dof` degrees of freedom (bisection on the regularized incomplete
    beta function from its continued fraction; numpy only, accurate to 1e-10)."""
    if dof < 1:
        raise ValueError("a t quantile needs at least one degree of freedom")

    def cdf(t: float) -> float:
        x = dof / (dof + t * t)
        tail = 0.5 * _incomplete_beta(dof / 2.0, 0.5, x)
        return 1.0 - tail if t > 0 else tail

    lo, hi = -1e3, 1e3
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if cdf(mid) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularized incomplete beta function (Numerical Recipes' continued fraction)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - _incomplete_beta(b, a, 1.0 - x)
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    f = d
    for m in range(1, 300):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            f *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return math.exp(log_front) * f / a


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A measured value, its interval and the per-seed values (NaN where a seed is excluded)."""

    value: float
    low: float
    high: float
    per_seed: tuple[float, ...]
    method: str

    @property
    def seeds(self) -> int:
        return int(np.sum(np.isfinite(self.per_seed)))

    def text(self, fmt: str = ".3g") -> str:
        """'0.058 [0.052, 0.064]' (or the value alone when there is no interval)."""
        if not math.isfinite(self.value):
            return "not measured"
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return f"{self.value:{fmt}} (no interval: {self.seeds} seed)"
        return f"{self.value:{fmt}} [{self.low:{fmt}}, {self.high:{fmt}}]"


def _finite(values) -> np.ndarray:
    values = np.asarray(values, float).ravel()
    return values[np.isfinite(values)]


def mean_interval(values, confidence: float = CONFIDENCE) -> Estimate:
    """Mean over seeds with its Student-t interval (see the module docstring)."""
    per_seed = tuple(float(v) for v in np.asarray(values, float).ravel())
    ok = _finite(values)
    if ok.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), per_seed, "mean over seeds")
    mean = float(np.mean(ok))
    if ok.size == 1:
        return Estimate(mean, float("nan"), float("nan"), per_seed, "one seed: no interval")
    half = student_t_quantile(0.5 + confidence / 2, ok.size - 1) * float(np.std(ok, ddof=1)) / math.sqrt(ok.size)
    return Estimate(mean, mean - half, mean + half, per_seed,
                    f"mean over {ok.size} seeds, {confidence:.0%} Student-t interval")


def seed_range(values) -> Estimate:
    """Largest seed's value, with the range over seeds (claims that must hold for every seed)."""
    per_seed = tuple(float(v) for v in np.asarray(values, float).ravel())
    ok = _finite(values)
    if ok.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), per_seed, "range over seeds")
    return Estimate(float(np.max(ok)), float(np.min(ok)), float(np.max(ok)), per_seed,
                    f"range over {ok.size} seeds (every seed must satisfy it)")


def loglog_slopes(widths, values) -> np.ndarray:
    """Per seed (rows of `values`, shape (seeds, widths)) the least-squares slope of log value
    against log width over the finite positive entries (NaN with fewer than two)."""
    widths = np.asarray(widths, float)
    out = []
    for row in np.atleast_2d(np.asarray(values, float)):
        ok = np.isfinite(row) & (row > 0) & (widths > 0)
        out.append(np.polyfit(np.log(widths[ok]), np.log(row[ok]), 1)[0] if ok.sum() >= 2 else np.nan)
    return np.asarray(out, float)


def slope_estimate(widths, values, confidence: float = CONFIDENCE) -> Estimate:
    """The log-log slope against width, per seed, as a mean with its interval.

    Seeds are matched by position across widths (seed k at every width: independent draws, since
    the width changes every weight), so each seed gives one replicate of the whole fit."""
    return mean_interval(loglog_slopes(widths, values), confidence)


def decide(estimate: Estimate, low: float = -math.inf, high: float = math.inf) -> str:
    """holds / fails / inconclusive for the interval of `estimate` against the band [low, high]."""
    lo, hi = estimate.low, estimate.high
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return INCONCLUSIVE
    if low <= lo and hi <= high:
        return HOLDS
    if hi < low or lo > high:
        return FAILS
    return INCONCLUSIVE
