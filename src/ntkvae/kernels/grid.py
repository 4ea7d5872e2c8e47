"""The cosine grid (docs/theory.md, section 3, "Cosine grid").

With normalized inputs every different-example entry of Theta_inf is a function of the cosine
t = x.x'/(|x||x'|) only: each group (and the total, as its own series) is fitted once by a
Chebyshev series at `DEFAULT_GRID` nodes of t, together with its slope in the first-layer
variance (for float32 data, whose variances differ by ~1e-7), and the tile map evaluates the
series on the Gram matrix (Clenshaw).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .gaussian import stats_fn
from .layers import group_kernels

DEFAULT_GRID = 129


@functools.lru_cache(maxsize=32)
def chebyshev_table(activation, sw: float, sb: float, v1: float, order: int, grid: int):
    """Per group, Chebyshev coefficients in the cosine t of the different-example kernel
    F(t) = f(v1, v1, q1(t)) and of its slope G(t) = d f / d va at (v1, v1, q1(t)) (equal to
    d f / d vb by symmetry), q1(t) = sb^2 + (v1 - sb^2) t. G makes the grid exact to first order
    for inputs whose first-layer variances va = v1 + da differ slightly (float32 data)."""
    stats = stats_fn(activation, order)
    with jax.enable_x64(True):
        nodes = np.cos(np.pi * (np.arange(grid) + 0.5) / grid)
        q1 = jnp.asarray(sb * sb + (v1 - sb * sb) * nodes)
        vals, slopes = jax.jvp(lambda va: group_kernels(q1, va, v1, 0.0, stats, sw, sb),
                               (jnp.asarray(v1, jnp.float64),), (jnp.asarray(1.0, jnp.float64),))
        fit = lambda v: np.polynomial.chebyshev.chebfit(nodes, np.broadcast_to(np.asarray(v), nodes.shape), grid - 1)
        return {g: (fit(vals[g]), fit(slopes[g])) for g in vals}


def clenshaw(coef: jnp.ndarray, c: jnp.ndarray) -> jnp.ndarray:
    """The Chebyshev series with coefficients `coef` at c."""
    b1 = jnp.zeros_like(c)
    b2 = jnp.zeros_like(c)
    for ck in coef[:0:-1]:
        b1, b2 = 2.0 * c * b1 - b2 + ck, b1
    return c * b1 - b2 + coef[0]


def trim(coef: np.ndarray, tol: float = 1e-14) -> np.ndarray:
    """Drop trailing Chebyshev coefficients below tol * max (their sum bounds the change, ~1e-12)."""
    keep = np.flatnonzero(np.abs(coef) > tol * np.max(np.abs(coef)))
    return coef[: (keep[-1] + 1 if keep.size else 1)]


def trimmed_pair(pair, slope: bool):
    """(F, G) of one kernel as hashable tuples for `tile_fn`; G None where the slope term is off."""
    return tuple(trim(pair[0])), (tuple(trim(pair[1])) if slope else None)


@functools.lru_cache(maxsize=32)
def tile_fn(table, sb, v1):
    """Jitted tile map for (nearly) normalized inputs: f = F(t) + (da + db) G(t) per kernel in
    `table` ((name, (F, G or None)) pairs, the total among them: one recurrence, not a sum),
    with da, db the deviations of the two examples' first-layer variances from v1."""

    @jax.jit
    def fn(gram, da, db, scale):
        # Not clipped to [-1, 1]: with da, db != 0 the cosine in v1's units may pass 1 by ~1e-7,
        # where the (analytic) interpolant extrapolates correctly.
        t = scale * gram / (v1 - sb * sb)
        out = {}
        for g, (value, slope) in table:
            out[g] = clenshaw(jnp.asarray(value, jnp.float64), t)
            if slope is not None:
                out[g] = out[g] + (da[:, None] + db[None, :]) * clenshaw(jnp.asarray(slope, jnp.float64), t)
        return out

    return fn
