"""Evaluating Theta_inf on data: tiles, threads, the choice of the cosine grid, the same-example
diagonal and the noise diagonal (docs/theory.md, section 3, "Tiles" and "Cosine grid").

Noise convention: two different examples carry independent noise eps, eps'; `x2=None` makes
the diagonal the same example (same eps), which adds the "noise diagonal"; with `x2` given
every pair counts as two different examples, even at equal inputs.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import threadpoolctl

from .. import groups as G
from .. import model as M
from . import grid as grid_
from .gaussian import CLOSED_STATS, DEFAULT_ORDER, stats_fn
from .grid import DEFAULT_GRID
from .layers import SAME_EXAMPLE_ONLY, group_kernels

DEFAULT_BLOCK = 1024
NORMALIZED_RTOL = 1e-6
GRID_TOLERANCE = 1e-10
METHODS = ("auto", "direct", "grid")


def arch_fields(arch) -> dict:
    """The `model` config section (dict or Architecture) as plain fields; activation may be callable."""
    if isinstance(arch, M.Architecture):
        arch = {f: getattr(arch, f) for f in ("activation", "weight_std", "bias", "bias_std", "latent_width")}
    arch = dict(arch or {})
    return {
        "activation": arch.get("activation", "erf"),
        "weight_std": float(arch.get("weight_std", 1.0)),
        "bias": bool(arch.get("bias", False)),
        "bias_std": float(arch.get("bias_std", 0.1)) if arch.get("bias", False) else 0.0,
    }


def group_names(arch) -> tuple[str, ...]:
    """Parameter groups of the kernel dict (weights, then biases when bias is on), without 'total'."""
    return G.group_names(arch_fields(arch)["bias"])


def theta_inf(x1, x2=None, arch=None, *, block_size: int = DEFAULT_BLOCK, quadrature_order: int = DEFAULT_ORDER,
              grid_size: int = DEFAULT_GRID, groups: tuple[str, ...] | None = None, method: str = "auto",
              threads: int | None = None) -> dict[str, np.ndarray]:
    """Infinite-width stochastic NTK per group and total, float64 arrays (n1, n2) per output coordinate.

    arch: the config's `model` section (activation, weight_std, bias, bias_std). x2=None: x1
    against itself, the diagonal being the same example (same noise); with x2 given every
    pair is two different examples. `groups`: the per-group kernels returned (default all);
    `total` is always returned and is always the whole NTK (the sum over every group), so
    asking for fewer groups only saves their memory and time.

    method: "direct" evaluates the closed forms (erf, relu) or a per-entry 2-d quadrature at
    every entry; "grid" evaluates, for normalized inputs (every |x|^2/d equal), a Chebyshev
    interpolant in the cosine built once from the direct values (`interpolation_error`);
    "auto" takes the grid where the inputs are normalized and its interpolation error is at
    most GRID_TOLERANCE (erf, tanh, softplus, gelu: ~1e-14; not relu, whose kernel has a
    square-root singularity at cosine 1), else direct.

    The result is computed in square tiles of `block_size` (only those on and above the
    diagonal when x2 is None, mirrored), on `threads` threads (default: one per CPU).
    """
    a = arch_fields(arch)
    sw, sb, act = a["weight_std"], a["bias_std"], a["activation"]
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    x1 = np.asarray(x1, np.float64)
    symmetric = x2 is None
    x2 = x1 if symmetric else np.asarray(x2, np.float64)
    if x1.ndim != 2 or x2.ndim != 2 or x1.shape[1] != x2.shape[1]:
        raise ValueError(f"x1 and x2 must be (n, d) with the same d, got {x1.shape} and {x2.shape}")
    every = group_names(a)
    names = every if groups is None else tuple(g for g in every if g in set(groups))
    unknown = set(groups or ()) - set(every) - {"total"}
    if unknown:
        raise ValueError(f"unknown groups {sorted(unknown)}; this architecture has {every}")
    v1a = first_layer_variance(x1, sw, sb)
    v1b = v1a if symmetric else first_layer_variance(x2, sw, sb)
    allv = np.concatenate([v1a, v1b])
    normalized = bool(np.ptp(allv) <= NORMALIZED_RTOL * np.max(allv))
    v1 = float(np.mean(allv))
    if method == "grid" and not normalized:
        raise ValueError("method='grid' needs normalized inputs (every |x|^2 / d equal)")
    use_grid = method == "grid" or (method == "auto" and normalized and (
        not (isinstance(act, str) and act in CLOSED_STATS)  # per-entry quadrature: the grid is the only fast path
        or _grid_error(act, sw, sb, v1, quadrature_order, grid_size) <= GRID_TOLERANCE))

    # Wsigma's gradient is the noise's, independent between two examples: its kernel lives on
    # the same-example diagonal only (zeros from calloc cost no memory traffic).
    computed = tuple(g for g in names if g not in SAME_EXAMPLE_ONLY) + ("total",)
    with jax.enable_x64(True):
        if use_grid:
            coefs = grid_.chebyshev_table(act, sw, sb, v1, quadrature_order, grid_size)
            # First-order correction in the variances only where they differ measurably
            # (float32 inputs: ~1e-7 relative); exactly normalized inputs skip its cost.
            slope = bool(np.max(np.abs(allv - v1)) > 1e-13 * v1)
            total = tuple(sum(coefs[g][i] for g in every) for i in (0, 1))
            table = tuple((g, grid_.trimmed_pair(coefs[g], slope)) for g in computed[:-1]) + \
                (("total", grid_.trimmed_pair(total, slope)),)
            tile_fn = grid_.tile_fn(table, sb, v1)
            va, vb = jnp.asarray(v1a - v1), jnp.asarray(v1b - v1)      # the tile map takes deviations
        else:
            tile_fn = _direct_tile_fn(act, sw, sb, names, quadrature_order)
            va, vb = jnp.asarray(v1a), jnp.asarray(v1b)
        n1, n2 = x1.shape[0], x2.shape[0]
        out = {g: np.empty((n1, n2), np.float64) for g in computed}
        out.update({g: np.zeros((n1, n2), np.float64) for g in names if g in SAME_EXAMPLE_ONLY})
        _fill_tiles({g: out[g] for g in computed}, x1, x2, symmetric, tile_fn, va, vb, sw * sw / x1.shape[1],
                    max(1, int(block_size)), threads)
        if symmetric:
            # The same-example diagonal: same noise in both factors (docs/theory.md, section 3).
            diag = _same_example(v1a, stats_fn(act, quadrature_order), sw, sb, names, every)
            idx = np.arange(n1)
            for g in out:
                out[g][idx, idx] = diag[g]
    return out


def _fill_tiles(out: dict, x1, x2, symmetric: bool, tile_fn, va, vb, scale: float, step: int, threads) -> None:
    """out[g][tile] = tile_fn(x1 x2^T tile, ...)[g] for every square tile of `step`; for a kernel
    matrix (symmetric) only the tiles on and above the diagonal, each also written transposed."""
    n1, n2 = x1.shape[0], x2.shape[0]

    def one_tile(tile):
        r0, c0 = tile
        r1, c1 = min(n1, r0 + step), min(n2, c0 + step)
        with jax.enable_x64(True):
            gram = x1[r0:r1] @ x2[c0:c1].T              # the only O(n^2 d) step (BLAS)
            res = tile_fn(jnp.asarray(gram), va[r0:r1], vb[c0:c1], scale)
        for g, block in out.items():
            value = np.asarray(res[g])
            block[r0:r1, c0:c1] = value
            if symmetric and c0 != r0:                  # the mirrored tile below the diagonal
                block[c0:c1, r0:r1] = value.T

    # XLA runs an elementwise map on one core: tiles go to a thread per core (the jitted
    # map, BLAS and numpy's copies release the GIL).
    tiles = [(r0, c0) for r0 in range(0, n1, step) for c0 in range(r0 if symmetric else 0, n2, step)]
    workers = max(1, min(len(tiles), threads or os.cpu_count() or 1))
    if workers == 1:
        for tile in tiles:
            one_tile(tile)
    else:
        # One BLAS thread per tile: threaded BLAS inside each worker oversubscribes the cores
        # (measured: 3.2 s against 3.8 s for all groups at n = 10,000 on 2 cores).
        with threadpoolctl.threadpool_limits(1, "blas"), concurrent.futures.ThreadPoolExecutor(workers) as pool:
            list(pool.map(one_tile, tiles))


def first_layer_variance(x: np.ndarray, sw: float, sb: float) -> np.ndarray:
    """Each example's first-layer pre-activation variance sw^2 |x|^2 / d + sb^2, (n,)."""
    return sw * sw * np.einsum("ij,ij->i", x, x) / x.shape[1] + sb * sb


def interpolation_error(arch, v1: float = None, order: int = DEFAULT_ORDER, grid: int = DEFAULT_GRID,
                        points: int = 257) -> float:
    """Max abs error of the cosine-grid interpolant against direct evaluation at off-grid cosines."""
    a = arch_fields(arch)
    sw, sb = a["weight_std"], a["bias_std"]
    v1 = sw * sw + sb * sb if v1 is None else v1
    coefs = grid_.chebyshev_table(a["activation"], sw, sb, v1, order, grid)
    with jax.enable_x64(True):
        cos = np.linspace(-1.0, 1.0, points)
        q1 = jnp.asarray(sb * sb + (v1 - sb * sb) * cos)
        exact = group_kernels(q1, v1, v1, 0.0, stats_fn(a["activation"], order), sw, sb)
        return max(float(np.max(np.abs(np.polynomial.chebyshev.chebval(cos, grid_.trim(coefs[g][0]))
                                        - np.asarray(exact[g]))))
                   for g in exact)


@functools.lru_cache(maxsize=32)
def _grid_error(act, sw, sb, v1, order, grid) -> float:
    return interpolation_error({"activation": act, "weight_std": sw, "bias": sb > 0, "bias_std": sb}, v1, order, grid)


@functools.lru_cache(maxsize=32)
def _direct_tile_fn(act, sw, sb, names, order):
    """Jitted tile map: Gram tile x.x' -> the kernels of `names` and the total, by closed form or
    per-entry quadrature."""
    stats = stats_fn(act, order)

    @jax.jit
    def fn(gram, va, vb, scale):
        q1 = scale * gram + sb * sb
        res = group_kernels(q1, va[:, None], vb[None, :], 0.0, stats, sw, sb)
        out = {g: res[g] for g in names if g not in SAME_EXAMPLE_ONLY}
        out["total"] = sum(res.values())
        return out

    return fn


def _per_example(fn, v1: np.ndarray) -> dict[str, np.ndarray]:
    """fn(v) -> dict of arrays, at each example's first-layer variance v1 (n,), float64.

    Where the variances differ by at most NORMALIZED_RTOL (normalized float32 data: ~1e-7),
    fn is evaluated once at their mean with its derivative (jvp): exact when they are equal,
    error O(dv^2) ~ 1e-14 otherwise, and n times cheaper than quadrature on n copies."""
    with jax.enable_x64(True):
        if np.ptp(v1) <= NORMALIZED_RTOL * np.max(v1):
            center = float(np.mean(v1))
            value, slope = jax.jvp(fn, (jnp.asarray(center, jnp.float64),), (jnp.asarray(1.0, jnp.float64),))
            dv = v1 - center
            return {g: np.asarray(value[g]) + dv * np.asarray(slope[g]) for g in value}
        res = fn(jnp.asarray(v1))
        return {g: np.broadcast_to(np.asarray(res[g]), v1.shape).copy() for g in res}


def _same_example(v1: np.ndarray, stats, sw, sb, names, every) -> dict[str, np.ndarray]:
    """Same-example kernel values of `names` and the total over `every` group, (n,) each, given
    first-layer variances v1."""
    res = _per_example(lambda v: group_kernels(v, v, v, 1.0, stats, sw, sb), v1)
    out = {g: res[g] for g in names}
    out["total"] = sum(res[g] for g in every)
    return out


def noise_diagonal(x, arch=None, *, quadrature_order: int = DEFAULT_ORDER) -> dict[str, np.ndarray]:
    """Per group, Theta_inf(x_i, x_i) for the same example minus that for two examples at x_i (n,).

    This is what the same noise adds on the diagonal of `theta_inf(x)` over `theta_inf(x, x)`.
    Its W4 entry is the infinite-width variance of one output coordinate over the noise (the
    noise floor per coordinate, docs/theory.md, section 4).
    """
    a = arch_fields(arch)
    sw, sb = a["weight_std"], a["bias_std"]
    x = np.asarray(x, np.float64)
    v1 = first_layer_variance(x, sw, sb)
    stats = stats_fn(a["activation"], quadrature_order)

    def added_by_same_noise(v):
        same = group_kernels(v, v, v, 1.0, stats, sw, sb)
        diff = group_kernels(v, v, v, 0.0, stats, sw, sb)
        return {g: same[g] - diff[g] for g in group_names(a)}

    out = _per_example(added_by_same_noise, v1)
    out["total"] = sum(out.values())
    return out
