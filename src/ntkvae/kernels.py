"""Neural tangent kernels of the stochastic VAE (SPEC section 3; derivations in docs/theory.md).

Two kernels, per parameter group and summed, per output coordinate:

* `theta_inf(x1, x2=None, arch=...)`: the infinite-width stochastic NTK Theta_inf, float64.
  Closed forms for erf and relu; Gauss-Hermite quadrature for any other activation (tanh,
  softplus, gelu, or a callable). With normalized inputs (every |x|^2/d equal, which the
  data pipeline guarantees) each entry is a function of the cosine x.x'/|x||x'| only, and
  the kernels are evaluated on a Chebyshev grid of cosines and interpolated (error measured
  by `interpolation_error`, used only where below 1e-10: not for relu). Computed in square
  tiles, the upper triangle only for a kernel matrix, so that n = 10,000 fits in memory and
  takes a small multiple of one X X^T product.
* `theta_m(params, x, arch, width, key, samples)`: the empirical stochastic NTK of a finite
  network, averaged over noise draws, in the layer-wise structured form
  Theta_l = (A_l A_l^T / fan_in) o (B_l B_l^T) (forward activations A_l, backpropagated
  vectors B_l), never materializing a Jacobian.

Noise convention (SPEC section 3): two different examples carry independent noise eps, eps';
`x2=None` makes the diagonal the same example (same eps), which adds the "noise diagonal";
with `x2` given every pair counts as two different examples, even at equal inputs.
"""

from __future__ import annotations

import concurrent.futures
import functools
import math
import os
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import threadpoolctl

from . import model as M

GROUPS = M.WEIGHT_GROUPS
BIAS_GROUP_OF = {"W1": "b1", "Wmu": "bmu", "Wsigma": "bsigma", "W3": "b3", "W4": "b4"}
CLOSED_FORM = ("erf", "relu")
DEFAULT_BLOCK = 1024
DEFAULT_ORDER = 96
DEFAULT_GRID = 129
NORMALIZED_RTOL = 1e-6


# ---------------------------------------------------------------------------- architecture


def _arch_fields(arch) -> dict:
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
    a = _arch_fields(arch)
    return GROUPS + (tuple(BIAS_GROUP_OF[g] for g in GROUPS) if a["bias"] else ())


# ---------------------------------------------------------------------------- Gaussian expectations
#
# For a centred Gaussian pair (u, v) with variances a, b and covariance c:
#   ephi(a, b, c)  = E[phi(u) phi(v)],   edphi(a, b, c) = E[phi'(u) phi'(v)].


@functools.lru_cache(maxsize=1)
def _asin_coefficients(degree: int = 14) -> tuple[float, ...]:
    """P with asin(y) = y + y^3 P(y^2) on |y| <= 1/2, fitted (weighted least squares on 4000
    Chebyshev points) against numpy's arcsin; max error 7e-16 over [-1, 1] with `fast_asin`."""
    k = np.arange(4000)
    t = 0.125 - 0.125 * np.cos(np.pi * (k + 0.5) / 4000)
    y = np.sqrt(t)
    basis = np.vander(t, degree + 1, increasing=True) * (y * t)[:, None]
    coef, *_ = np.linalg.lstsq(basis, np.arcsin(y) - y, rcond=None)
    return tuple(float(c) for c in coef)


def fast_asin(x):
    """arcsin in float64 by one polynomial (fdlibm's reduction): XLA's own asin is scalar code
    (~20 ns an entry on CPU), this one vectorizes, and it is two of the erf kernel's four
    special functions."""
    ax = jnp.abs(x)
    small = ax <= 0.5
    y = jnp.where(small, ax, jnp.sqrt(jnp.maximum(0.5 * (1.0 - ax), 0.0)))
    t = y * y
    poly = jnp.zeros_like(t)
    for c in _asin_coefficients()[::-1]:
        poly = poly * t + c
    p = y + y * t * poly
    return jnp.sign(x) * jnp.where(small, p, 0.5 * jnp.pi - 2.0 * p)


def _safe_sqrt(x):
    """sqrt(max(x, 0)) whose derivative at 0 is 0 instead of inf (so jvp through a same-example
    pair, where the argument is exactly 0 along the whole direction, stays finite)."""
    positive = x > 0.0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def _erf_stats(a, b, c):
    ra, rb = 1.0 + 2.0 * a, 1.0 + 2.0 * b
    ephi = (2.0 / jnp.pi) * fast_asin(jnp.clip(2.0 * c / jnp.sqrt(ra * rb), -1.0, 1.0))
    edphi = (4.0 / jnp.pi) / jnp.sqrt(ra * rb - 4.0 * c * c)
    return ephi, edphi


def _relu_stats(a, b, c):
    # arctan2 form (stable at c^2 = ab, where theta = 0 exactly); see anchors.md B3.
    s = _safe_sqrt(a * b - c * c)
    theta = jnp.arctan2(s, c)
    ephi = (s + (jnp.pi - theta) * c) / (2.0 * jnp.pi)
    edphi = (jnp.pi - theta) / (2.0 * jnp.pi)
    return ephi, edphi


CLOSED_STATS = {"erf": _erf_stats, "relu": _relu_stats}


def _phi_and_derivative(activation) -> tuple[Callable, Callable]:
    phi = M.ACTIVATIONS[activation] if isinstance(activation, str) else activation
    dphi = jax.vmap(jax.grad(lambda u: phi(u)))
    return phi, lambda u: dphi(u.reshape(-1)).reshape(u.shape)


@functools.lru_cache(maxsize=8)
def _hermite(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilists' Gauss-Hermite nodes and weights normalized to the N(0, 1) measure."""
    t, w = np.polynomial.hermite_e.hermegauss(order)
    return t, w / math.sqrt(2.0 * math.pi)


def quadrature_stats(activation, a, b, c, order: int = DEFAULT_ORDER):
    """E[phi phi], E[phi' phi'] by order x order Gauss-Hermite in the Cholesky coordinates.

    u = sqrt(a) t1, v = sqrt(b) (rho t1 + sqrt(1 - rho^2) t2) with (t1, t2) ~ N(0, I), so the
    integrand is smooth in t for smooth phi even at rho = +-1. Arrays broadcast; float64.
    """
    phi, dphi = _phi_and_derivative(activation)
    t, w = (jnp.asarray(v, jnp.float64) for v in _hermite(order))
    a, b, c = (jnp.asarray(v, jnp.float64)[..., None, None] for v in (a, b, c))
    rho = jnp.clip(c / jnp.sqrt(a * b), -1.0, 1.0)
    u = jnp.sqrt(a) * t[:, None]
    v = jnp.sqrt(b) * (rho * t[:, None] + _safe_sqrt(1.0 - rho * rho) * t[None, :])
    ww = w[:, None] * w[None, :]
    ephi = jnp.sum(ww * phi(u) * phi(v), axis=(-2, -1))
    edphi = jnp.sum(ww * dphi(u) * dphi(v), axis=(-2, -1))
    return ephi, edphi


def polar_quadrature_stats(activation, a, b, c, radial: int = 40, angular: int = 48):
    """E[phi phi], E[phi' phi'] in polar coordinates, split where u = 0 or v = 0.

    (t1, t2) = r (cos al, sin al); with s = r^2 / 2 the radial integral is Gauss-Laguerre and
    the angular one Gauss-Legendre on the four arcs between the zero lines of u and v. For
    activations with a kink at 0 (relu) each piece is smooth, so this converges exponentially
    where Gauss-Hermite converges only algebraically; it is the independent check of the relu
    closed forms.
    """
    phi, dphi = _phi_and_derivative(activation)
    a, b, c = (np.atleast_1d(np.asarray(v, np.float64)) for v in (a, b, c))
    a, b, c = np.broadcast_arrays(a, b, c)
    rho = np.clip(c / np.sqrt(a * b), -1.0, 1.0)
    s_nodes, s_w = np.polynomial.laguerre.laggauss(radial)
    g_nodes, g_w = np.polynomial.legendre.leggauss(angular)
    kv = np.mod(np.arctan2(-rho, np.sqrt(1.0 - rho * rho)), np.pi)          # v = 0 on al = kv, kv + pi
    cuts = np.sort(np.stack([np.full_like(rho, np.pi / 2), np.full_like(rho, 1.5 * np.pi), kv, kv + np.pi], -1), -1)
    edges = np.concatenate([cuts[..., -1:] - 2 * np.pi, cuts], -1)         # 4 arcs covering a full turn
    lo, hi = edges[..., :-1, None], edges[..., 1:, None]
    al = 0.5 * (hi - lo) * g_nodes + 0.5 * (hi + lo)                        # (..., 4, angular)
    wal = 0.5 * (hi - lo) * g_w
    r = np.sqrt(2.0 * s_nodes)
    t1 = r[:, None, None] * np.cos(al)[..., None, :, :]
    t2 = r[:, None, None] * np.sin(al)[..., None, :, :]
    ex = lambda v: v[..., None, None, None]
    with jax.enable_x64(True):
        u = jnp.asarray(np.sqrt(ex(a)) * t1)
        v = jnp.asarray(np.sqrt(ex(b)) * (ex(rho) * t1 + np.sqrt(1.0 - ex(rho) ** 2) * t2))
        w = jnp.asarray(s_w[:, None, None] * wal[..., None, :, :] / (2.0 * np.pi))
        axes = (-3, -2, -1)
        return (np.asarray(jnp.sum(w * phi(u) * phi(v), axis=axes)),
                np.asarray(jnp.sum(w * dphi(u) * dphi(v), axis=axes)))


def _stats_fn(activation, order: int) -> Callable:
    if isinstance(activation, str) and activation in CLOSED_STATS:
        return CLOSED_STATS[activation]
    return functools.partial(quadrature_stats, activation, order=order)


# ---------------------------------------------------------------------------- the recursion


def _group_kernels(q1, va, vb, same, stats, sw, sb) -> dict:
    """Theta_inf per group from first-layer covariances (derivation: docs/theory.md, section 2).

    q1: first-layer pre-activation covariance sigma_w^2 x.x'/d + sigma_b^2 (array);
    va, vb: the two examples' first-layer variances (broadcastable to q1);
    same: 1.0 where the pair is the same example (same noise), else 0.0.
    """
    sw2, sb2 = sw * sw, sb * sb
    k1, dk1 = stats(va, vb, q1)                     # E[phi phi], E[phi' phi'] at layer 1
    ka, _ = stats(va, va, va)                       # E[phi(u)^2] for each example
    kb, _ = stats(vb, vb, vb)
    sig_mu = sw2 * k1 + sb2                         # covariance of mu (and of s) between the pair
    sa, sb_ = sw2 * ka + sb2, sw2 * kb + sb2        # Var(mu) = Var(s) of each example
    na, nb = jnp.exp(sa / 2.0), jnp.exp(sb_ / 2.0)  # E[e^s]: the noise's contribution to E[z^2]
    kz = sig_mu + same * na                         # E[z z'] per latent unit
    v3a, v3b = sw2 * (sa + na) + sb2, sw2 * (sb_ + nb) + sb2
    q3 = sw2 * kz + sb2                             # decoder pre-activation covariance
    k3, dk3 = stats(v3a, v3b, q3)
    back = sw2 * dk3 * sw2                          # through phi'(g3) (W4 scale) and the linear W3 map
    noise = same * 0.25 * na                        # E[(dz/ds)^2] = E[e^s eps^2] / 4, same example only
    out = {
        "W4": sw2 * k3,
        "W3": sw2 * dk3 * sw2 * kz,
        "Wmu": back * sw2 * k1,
        "Wsigma": back * noise * sw2 * k1,
        "W1": back * sw2 * dk1 * (q1 - sb2) * (1.0 + noise),
    }
    if sb > 0.0:
        out.update({
            "b4": sb2 * jnp.ones_like(q1),
            "b3": sw2 * dk3 * sb2,
            "bmu": back * sb2,
            "bsigma": back * noise * sb2,
            "b1": back * sw2 * dk1 * sb2 * (1.0 + noise),
        })
    return out


# ---------------------------------------------------------------------------- cosine-grid path


@functools.lru_cache(maxsize=32)
def _chebyshev_table(activation, sw: float, sb: float, v1: float, order: int, grid: int):
    """Per group, Chebyshev coefficients in the cosine t of the different-example kernel
    F(t) = f(v1, v1, q1(t)) and of its slope G(t) = d f / d va at (v1, v1, q1(t)) (equal to
    d f / d vb by symmetry), q1(t) = sb^2 + (v1 - sb^2) t. G makes the grid exact to first order
    for inputs whose first-layer variances va = v1 + da differ slightly (float32 data)."""
    stats = _stats_fn(activation, order)
    with jax.enable_x64(True):
        nodes = np.cos(np.pi * (np.arange(grid) + 0.5) / grid)
        q1 = jnp.asarray(sb * sb + (v1 - sb * sb) * nodes)
        vals, slopes = jax.jvp(lambda va: _group_kernels(q1, va, v1, 0.0, stats, sw, sb),
                               (jnp.asarray(v1, jnp.float64),), (jnp.asarray(1.0, jnp.float64),))
        fit = lambda v: np.polynomial.chebyshev.chebfit(nodes, np.broadcast_to(np.asarray(v), nodes.shape), grid - 1)
        return {g: (fit(vals[g]), fit(slopes[g])) for g in vals}


def interpolation_error(arch, v1: float = None, order: int = DEFAULT_ORDER, grid: int = DEFAULT_GRID,
                        points: int = 257) -> float:
    """Max abs error of the cosine-grid interpolant against direct evaluation at off-grid cosines."""
    a = _arch_fields(arch)
    sw, sb = a["weight_std"], a["bias_std"]
    v1 = sw * sw + sb * sb if v1 is None else v1
    coefs = _chebyshev_table(a["activation"], sw, sb, v1, order, grid)
    with jax.enable_x64(True):
        cos = np.linspace(-1.0, 1.0, points)
        q1 = jnp.asarray(sb * sb + (v1 - sb * sb) * cos)
        exact = _group_kernels(q1, v1, v1, 0.0, _stats_fn(a["activation"], order), sw, sb)
        return max(float(np.max(np.abs(np.polynomial.chebyshev.chebval(cos, _trim(coefs[g][0])) - np.asarray(exact[g]))))
                   for g in exact)


def _clenshaw(coef: jnp.ndarray, c: jnp.ndarray) -> jnp.ndarray:
    b1 = jnp.zeros_like(c)
    b2 = jnp.zeros_like(c)
    for ck in coef[:0:-1]:
        b1, b2 = 2.0 * c * b1 - b2 + ck, b1
    return c * b1 - b2 + coef[0]


def _trim(coef: np.ndarray, tol: float = 1e-14) -> np.ndarray:
    """Drop trailing Chebyshev coefficients below tol * max (their sum bounds the change, ~1e-12)."""
    keep = np.flatnonzero(np.abs(coef) > tol * np.max(np.abs(coef)))
    return coef[: (keep[-1] + 1 if keep.size else 1)]


# ---------------------------------------------------------------------------- public API

METHODS = ("auto", "direct", "grid")


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
    a = _arch_fields(arch)
    sw, sb, act = a["weight_std"], a["bias_std"], a["activation"]
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    x1 = np.asarray(x1, np.float64)
    symmetric = x2 is None
    x2 = x1 if symmetric else np.asarray(x2, np.float64)
    if x1.ndim != 2 or x2.ndim != 2 or x1.shape[1] != x2.shape[1]:
        raise ValueError(f"x1 and x2 must be (n, d) with the same d, got {x1.shape} and {x2.shape}")
    d = x1.shape[1]
    every = group_names(a)
    names = every if groups is None else tuple(g for g in every if g in set(groups))
    unknown = set(groups or ()) - set(every) - {"total"}
    if unknown:
        raise ValueError(f"unknown groups {sorted(unknown)}; this architecture has {every}")
    v1a = _first_layer_variance(x1, sw, sb)
    v1b = v1a if symmetric else _first_layer_variance(x2, sw, sb)
    allv = np.concatenate([v1a, v1b])
    normalized = bool(np.ptp(allv) <= NORMALIZED_RTOL * np.max(allv))
    v1 = float(np.mean(allv))
    stats = _stats_fn(act, quadrature_order)
    if method == "grid" and not normalized:
        raise ValueError("method='grid' needs normalized inputs (every |x|^2 / d equal)")
    use_grid = method == "grid" or (method == "auto" and normalized and (
        not (isinstance(act, str) and act in CLOSED_STATS)  # per-entry quadrature: the grid is the only fast path
        or _grid_error(act, sw, sb, v1, quadrature_order, grid_size) <= GRID_TOLERANCE))

    with jax.enable_x64(True):
        if use_grid:
            coefs = _chebyshev_table(act, sw, sb, v1, quadrature_order, grid_size)
            # First-order correction in the variances only where they differ measurably
            # (float32 inputs: ~1e-7 relative); exactly normalized inputs skip its cost.
            slope = bool(np.max(np.abs(allv - v1)) > 1e-13 * v1)
            total = tuple(sum(coefs[g][i] for g in every) for i in (0, 1))
            table = tuple((g, _trimmed_pair(coefs[g], slope)) for g in names if g not in SAME_EXAMPLE_ONLY) + \
                (("total", _trimmed_pair(total, slope)),)
            tile_fn = _grid_tile_fn(table, sb, v1)
            va, vb = jnp.asarray(v1a - v1), jnp.asarray(v1b - v1)      # the tile map takes deviations
        else:
            tile_fn = _direct_tile_fn(act, sw, sb, names, quadrature_order)
            va, vb = jnp.asarray(v1a), jnp.asarray(v1b)
        n1, n2 = x1.shape[0], x2.shape[0]
        # Wsigma's gradient is the noise's, independent between two examples: its kernel lives on
        # the same-example diagonal only (zeros from calloc cost no memory traffic).
        computed = tuple(g for g in names if g not in SAME_EXAMPLE_ONLY) + ("total",)
        out = {g: np.empty((n1, n2), np.float64) for g in computed}
        out.update({g: np.zeros((n1, n2), np.float64) for g in names if g in SAME_EXAMPLE_ONLY})
        step = max(1, int(block_size))
        scale = sw * sw / d

        def one_tile(tile):
            r0, c0 = tile
            r1, c1 = min(n1, r0 + step), min(n2, c0 + step)
            with jax.enable_x64(True):
                gram = x1[r0:r1] @ x2[c0:c1].T              # the only O(n^2 d) step (BLAS)
                res = tile_fn(jnp.asarray(gram), va[r0:r1], vb[c0:c1], scale)
            for g in computed:
                block, value = out[g], np.asarray(res[g])
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
        if symmetric:
            # The same-example diagonal: same noise in both factors (docs/theory.md, section 3).
            diag = _same_example(v1a, stats, sw, sb, names, every)
            idx = np.arange(n1)
            for g in out:
                out[g][idx, idx] = diag[g]
    return out


GRID_TOLERANCE = 1e-10
SAME_EXAMPLE_ONLY = ("Wsigma", "bsigma")


def _first_layer_variance(x: np.ndarray, sw: float, sb: float) -> np.ndarray:
    """Each example's first-layer pre-activation variance sw^2 |x|^2 / d + sb^2, (n,)."""
    return sw * sw * np.einsum("ij,ij->i", x, x) / x.shape[1] + sb * sb


@functools.lru_cache(maxsize=32)
def _grid_error(act, sw, sb, v1, order, grid) -> float:
    return interpolation_error({"activation": act, "weight_std": sw, "bias": sb > 0, "bias_std": sb}, v1, order, grid)


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
    res = _per_example(lambda v: _group_kernels(v, v, v, 1.0, stats, sw, sb), v1)
    out = {g: res[g] for g in names}
    out["total"] = sum(res[g] for g in every)
    return out


@functools.lru_cache(maxsize=32)
def _direct_tile_fn(act, sw, sb, names, order):
    """Jitted tile map: Gram tile x.x' -> the kernels of `names` and the total, by closed form or
    per-entry quadrature."""
    stats = _stats_fn(act, order)

    @jax.jit
    def fn(gram, va, vb, scale):
        q1 = scale * gram + sb * sb
        res = _group_kernels(q1, va[:, None], vb[None, :], 0.0, stats, sw, sb)
        out = {g: res[g] for g in names if g not in SAME_EXAMPLE_ONLY}
        out["total"] = sum(res.values())
        return out

    return fn


def _trimmed_pair(pair, slope: bool):
    return tuple(_trim(pair[0])), (tuple(_trim(pair[1])) if slope else None)


@functools.lru_cache(maxsize=32)
def _grid_tile_fn(table, sb, v1):
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
            out[g] = _clenshaw(jnp.asarray(value, jnp.float64), t)
            if slope is not None:
                out[g] = out[g] + (da[:, None] + db[None, :]) * _clenshaw(jnp.asarray(slope, jnp.float64), t)
        return out

    return fn


# ---------------------------------------------------------------------------- empirical kernel


def output_coordinates(d: int, outputs: int | None) -> np.ndarray:
    """The output coordinates whose kernels Theta_m averages: all d, or `outputs` evenly spaced."""
    if outputs is None or outputs >= d:
        return np.arange(d)
    return np.unique(np.linspace(0, d - 1, int(outputs)).round().astype(int))


def _structured_sample(params, x, eps, arch: M.Architecture, coords, cache):
    """Per-group kernels of one noise draw, averaged over the output coordinates `coords`.

    For a layer y = sw W a / sqrt(fan_in), d(xhat_j)/dW = (sw / sqrt(fan_in)) B_j a^T with
    B_j = d(xhat_j)/dy, so <d xhat_j(x)/dW, d xhat_j(x')/dW> = (sw^2 a.a'/fan_in) (B_j(x).B_j(x')).
    Summing over j is one matrix product of the (n, k*fan_out) stacked backward vectors.
    """
    sw, sb, phi = arch.weight_std, (arch.bias_std if arch.bias else 0.0), arch.phi
    dphi = jax.vmap(jax.vmap(jax.grad(phi)))
    h1, dh1, mu, s, x_gram, h1_gram = cache
    n = x.shape[0]
    m, mz = params["W1"].shape[0], params["Wmu"].shape[0]
    k = coords.shape[0]
    sd = jnp.exp(0.5 * s)
    z = mu + sd * eps
    g3 = sw * z @ params["W3"].T / jnp.sqrt(mz) + (sb * params["b3"] if arch.bias else 0.0)
    h3, dh3 = phi(g3), dphi(g3)
    # Backward vectors for every chosen output coordinate j, stacked as (k, n, .).
    b3 = (sw / jnp.sqrt(m)) * params["W4"][coords][:, None, :] * dh3[None]            # d xhat_j / d g3
    bz = (sw / jnp.sqrt(mz)) * b3 @ params["W3"]                                         # d xhat_j / d mu
    bs = bz * (0.5 * sd * eps)[None]                                                     # d xhat_j / d s
    b1 = (sw / jnp.sqrt(m)) * (bz @ params["Wmu"] + bs @ params["Wsigma"]) * dh1[None]  # d xhat_j / d g1

    def gram_of(b):  # (1/k) sum_j B_j B_j^T
        flat = jnp.moveaxis(b, 0, 1).reshape(n, -1)
        return flat @ flat.T / k

    gb3, gbz, gbs, gb1 = gram_of(b3), gram_of(bz), gram_of(bs), gram_of(b1)
    out = {
        "W4": sw * sw * h3 @ h3.T / m,
        "W3": (sw * sw * z @ z.T / mz) * gb3,
        "Wmu": h1_gram * gbz,
        "Wsigma": h1_gram * gbs,
        "W1": x_gram * gb1,
    }
    if arch.bias:
        sb2 = sb * sb
        out.update({"b4": sb2 * jnp.ones((n, n), x.dtype), "b3": sb2 * gb3, "bmu": sb2 * gbz, "bsigma": sb2 * gbs,
                    "b1": sb2 * gb1})
    return out


@functools.partial(jax.jit, static_argnames=("arch", "samples"))
def _theta_m_jit(params, x, arch, key, samples, coords):
    sw = arch.weight_std
    dphi = jax.vmap(jax.vmap(jax.grad(arch.phi)))
    d = x.shape[1]
    m, mz = params["W1"].shape[0], params["Wmu"].shape[0]
    g1 = sw * x @ params["W1"].T / jnp.sqrt(d) + (arch.bias_std * params["b1"] if arch.bias else 0.0)
    h1, dh1 = arch.phi(g1), dphi(g1)
    _, mu, s = M.encode(params, x, arch)
    cache = (h1, dh1, mu, s, sw * sw * x @ x.T / d, sw * sw * h1 @ h1.T / m)

    def body(acc, k):
        eps = jax.random.normal(k, (x.shape[0], mz), x.dtype)
        res = _structured_sample(params, x, eps, arch, coords, cache)
        return jax.tree.map(jnp.add, acc, res), None

    zero = {g: jnp.zeros((x.shape[0], x.shape[0]), x.dtype) for g in arch.groups()}
    acc, _ = jax.lax.scan(body, zero, jax.random.split(key, samples))
    return jax.tree.map(lambda v: v / samples, acc)


def theta_m(params, x, arch, width: int, key, samples: int, *, outputs: int | None = None) -> dict[str, np.ndarray]:
    """Empirical stochastic NTK of a finite network, per group and total, averaged over `samples` noise draws.

    Each draw gives every example its own eps (independent between examples; the diagonal
    is the same example with the same eps), exactly the convention of `theta_inf(x)`. The
    kernel is per output coordinate: the mean over the output coordinates chosen by
    `outputs` (None: all d, the exact trace / d) of <d xhat_j(x)/d theta, d xhat_j(x')/d theta>.
    Computed in the dtype of x (float32 for the training network).
    """
    arch = arch if isinstance(arch, M.Architecture) else M.Architecture.from_config(arch)
    del width  # the width is carried by the parameter shapes
    x = jnp.asarray(x, params["W1"].dtype)
    coords = jnp.asarray(output_coordinates(x.shape[1], outputs))
    res = _theta_m_jit(params, x, arch, key, int(samples), coords)
    out = {g: np.asarray(v) for g, v in res.items()}
    out["total"] = sum(out.values())
    return out


def noise_diagonal(x, arch=None, *, quadrature_order: int = DEFAULT_ORDER) -> dict[str, np.ndarray]:
    """Per group, Theta_inf(x_i, x_i) for the same example minus that for two examples at x_i (n,).

    This is what the same noise adds on the diagonal of `theta_inf(x)` over `theta_inf(x, x)`.
    Its W4 entry is the infinite-width variance of one output coordinate over the noise (the
    noise floor per coordinate, docs/theory.md 3.3).
    """
    a = _arch_fields(arch)
    sw, sb = a["weight_std"], a["bias_std"]
    x = np.asarray(x, np.float64)
    v1 = _first_layer_variance(x, sw, sb)
    stats = _stats_fn(a["activation"], quadrature_order)

    def added_by_same_noise(v):
        same = _group_kernels(v, v, v, 1.0, stats, sw, sb)
        diff = _group_kernels(v, v, v, 0.0, stats, sw, sb)
        return {g: same[g] - diff[g] for g in group_names(a)}

    out = _per_example(added_by_same_noise, v1)
    out["total"] = sum(out.values())
    return out
