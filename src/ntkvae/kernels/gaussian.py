"""Gaussian expectations of the activation: for a centred Gaussian pair (u, v) with variances
a, b and covariance c, every function here returns

    E[phi(u) phi(v)]  and  E[phi'(u) phi'(v)]

(docs/theory.md, section 3, "Gaussian expectations"): closed forms for erf (Williams) and relu
(arc-cosine), Gauss-Hermite quadrature for any other activation (tanh, softplus, gelu or a
callable), and a polar rule split at the kink lines, the independent check of relu's forms.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .. import model as M

DEFAULT_ORDER = 96


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


def erf_stats(a, b, c):
    """erf (Williams): E phi phi = (2/pi) asin(2c / sqrt((1+2a)(1+2b))),
    E phi' phi' = (4/pi) / sqrt((1+2a)(1+2b) - 4c^2)."""
    ra, rb = 1.0 + 2.0 * a, 1.0 + 2.0 * b
    ephi = (2.0 / jnp.pi) * fast_asin(jnp.clip(2.0 * c / jnp.sqrt(ra * rb), -1.0, 1.0))
    edphi = (4.0 / jnp.pi) / jnp.sqrt(ra * rb - 4.0 * c * c)
    return ephi, edphi


def relu_stats(a, b, c):
    """relu (arc-cosine): E phi phi = (sqrt(ab - c^2) + (pi - theta) c) / 2pi,
    E phi' phi' = (pi - theta) / 2pi, theta the angle between u and v."""
    # arctan2 form: stable at c^2 = ab, where theta = 0 exactly (arccos loses half the digits).
    s = _safe_sqrt(a * b - c * c)
    theta = jnp.arctan2(s, c)
    ephi = (s + (jnp.pi - theta) * c) / (2.0 * jnp.pi)
    edphi = (jnp.pi - theta) / (2.0 * jnp.pi)
    return ephi, edphi


CLOSED_STATS = {"erf": erf_stats, "relu": relu_stats}
CLOSED_FORM = tuple(CLOSED_STATS)


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


def stats_fn(activation, order: int = DEFAULT_ORDER) -> Callable:
    """(a, b, c) -> (E[phi phi], E[phi' phi']): the closed form where there is one, else
    order x order Gauss-Hermite."""
    if isinstance(activation, str) and activation in CLOSED_STATS:
        return CLOSED_STATS[activation]
    return functools.partial(quadrature_stats, activation, order=order)
