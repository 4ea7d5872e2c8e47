"""Theta_inf layer by layer, each layer named as in `model.py` (derivation: docs/theory.md, section 3).

As in neural-tangents' stax, each layer maps the kernels of its input to those of its output,
for one pair of examples (x, x') and per unit of the layer:

    nngp  E[f(x) f(x')], with each example's own variance E[f(x)^2], E[f(x')^2];
    ntk   per parameter group P, <df(x)/dP, df(x')/dP> (the groups below this layer and its own).

Two rules carry every layer of the VAE:

    dense  y = sigma W f / sqrt(fan_in) + sigma_b b:   nngp' = sigma^2 nngp + sigma_b^2,
           ntk'_P = sigma^2 ntk_P below, ntk'_W = sigma^2 nngp, ntk'_b = sigma_b^2
           (summed over the groups: ntk' = nngp' + sigma^2 ntk, stax's Dense);
    phi    h = phi(g):   nngp' = E[phi phi],  ntk'_P = E[phi' phi'] ntk_P   (gaussian.py);

and the latent layer `z` adds the noise. The forward pass, from the first pre-activation:

    h1 = phi(g1)            `h1`     g1 = sigma W1 x/sqrt(d) + sigma_b b1
    mu, s (dense of h1)     `mu_s`   independent weights, the same kernel
    z = mu + e^{s/2} eps    `z`      eps fresh per example
    h3 = phi(g3)            `h3`     g3 = sigma W3 z/sqrt(m_z) + sigma_b b3
    xhat (dense of h3)      `xhat`   the output: its ntk is Theta_inf per group

`group_kernels` chains them. Bias groups exist when sigma_b > 0.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax.numpy as jnp

from ..groups import SIGMA_GROUPS

# The groups of s reach the output only through the noise (`z`): zero between two different
# examples (independent noise), so they live on the same-example diagonal only.
SAME_EXAMPLE_ONLY = SIGMA_GROUPS


class Layer(NamedTuple):
    """The kernels of one layer's output for a pair of examples (x, x'), per unit."""

    nngp: jnp.ndarray                   # E[f(x) f(x')]
    var: tuple | None                   # (E[f(x)^2], E[f(x')^2]); None where no layer needs it
    ntk: dict[str, jnp.ndarray]         # per parameter group


def dense(layer: Layer, weight: str, bias: str, sw: float, sb: float) -> Layer:
    """y = sw W f / sqrt(fan_in) + sb b: the weights' kernel is the input's nngp."""
    sw2, sb2 = sw * sw, sb * sb
    ntk = {g: sw2 * k for g, k in layer.ntk.items()}
    ntk[weight] = sw2 * layer.nngp
    if sb > 0.0:
        ntk[bias] = sb2 * jnp.ones_like(layer.nngp)
    var = None if layer.var is None else tuple(sw2 * v + sb2 for v in layer.var)
    return Layer(sw2 * layer.nngp + sb2, var, ntk)


def activation(layer: Layer, stats: Callable, variances: bool = True) -> Layer:
    """h = phi(g): the gradients pass through phi'(g) (`stats` gives E[phi phi], E[phi' phi'])."""
    (va, vb), (ephi, edphi) = layer.var, stats(*layer.var, layer.nngp)
    var = (stats(va, va, va)[0], stats(vb, vb, vb)[0]) if variances else None
    return Layer(ephi, var, {g: edphi * k for g, k in layer.ntk.items()})


def h1(q1, va, vb, stats: Callable, sb: float) -> Layer:
    """h1 = phi(g1). g1's covariance is q1 = sw^2 x.x'/d + sb^2 (variances va, vb), so W1's
    kernel, sw^2 x.x'/d, is q1 - sb^2."""
    sb2 = sb * sb
    ntk = {"W1": q1 - sb2}
    if sb > 0.0:
        ntk["b1"] = sb2 * jnp.ones_like(q1)
    return activation(Layer(q1, (va, vb), ntk), stats)


def mu_s(h1: Layer, sw: float, sb: float) -> tuple[Layer, Layer]:
    """mu = sw Wmu h1 / sqrt(m) + sb bmu and s likewise: independent weights on the same input,
    so one kernel under two sets of names (computed once); their cross term in the ntk vanishes."""
    mu = dense(h1, "Wmu", "bmu", sw, sb)
    names_of_s = {"Wmu": "Wsigma", "bmu": "bsigma"}
    return mu, mu._replace(ntk={names_of_s.get(g, g): k for g, k in mu.ntk.items()})


def z(mu: Layer, s: Layer, same) -> Layer:
    """z = mu + e^{s/2} eps, eps ~ N(0, I) independent between two examples and one draw for the
    same example (`same` is 1.0 there, else 0.0).

    E[e^{s/2} eps e^{s'/2} eps'] is E[e^s] = exp(Var s / 2) for the same example and 0 between
    two, so it adds to the nngp on the same example only; each example's own variance always
    has it. dz/dmu = 1, dz/ds = e^{s/2} eps / 2: the groups below s enter with E[(dz/ds)^2] =
    E[e^s] / 4 on the same example, 0 between two."""
    noise_a, noise_b = (jnp.exp(v / 2.0) for v in s.var)
    through_s = same * 0.25 * noise_a
    ntk = dict(mu.ntk)
    for g, k in s.ntk.items():
        ntk[g] = ntk[g] + through_s * k if g in ntk else through_s * k
    return Layer(mu.nngp + same * noise_a, (mu.var[0] + noise_a, mu.var[1] + noise_b), ntk)


def h3(z: Layer, stats: Callable, sw: float, sb: float) -> Layer:
    """h3 = phi(g3), g3 = sw W3 z / sqrt(m_z) + sb b3 (each example's variance includes its noise)."""
    return activation(dense(z, "W3", "b3", sw, sb), stats, variances=False)


def xhat(h3: Layer, sw: float, sb: float) -> dict[str, jnp.ndarray]:
    """xhat = sw W4 h3 / sqrt(m) + sb b4, linear: its ntk per group is Theta_inf."""
    return dense(h3, "W4", "b4", sw, sb).ntk


def group_kernels(q1, va, vb, same, stats: Callable, sw: float, sb: float) -> dict[str, jnp.ndarray]:
    """Theta_inf per group (one output coordinate) from the first-layer covariances.

    q1: first-layer pre-activation covariance sw^2 x.x'/d + sb^2 (array); va, vb: the two
    examples' first-layer variances (broadcastable to q1); same: 1.0 where the pair is the same
    example (same noise), else 0.0; stats: the activation's Gaussian expectations.
    """
    mu, s = mu_s(h1(q1, va, vb, stats, sb), sw, sb)
    return xhat(h3(z(mu, s, same), stats, sw, sb), sw, sb)
