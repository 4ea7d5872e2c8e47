"""Training objectives (SPEC section 2), full batch of n examples.

    L_mse = (1 / 2n) sum_i ||xhat(x_i; eps_i) - x_i||^2
    L_vae = L_mse + beta * c(m_z) * (1 / n) sum_i KL(N(mu_i, diag e^{s_i}) || N(0, I))

c(m_z) is selected by `kl_scaling`; docs/theory.md works out the regime each gives.
"""

from __future__ import annotations

import jax.numpy as jnp

from .regime import KL_SCALINGS, kl_scale  # noqa: F401  (c(m_z) is defined once, JAX-free)


def reconstruction_loss(xhat: jnp.ndarray, x: jnp.ndarray) -> jnp.ndarray:
    """(1 / 2n) sum_i ||xhat_i - x_i||^2."""
    return 0.5 * jnp.mean(jnp.sum((xhat - x) ** 2, axis=-1))


def kl_divergence(mu: jnp.ndarray, logvar: jnp.ndarray) -> jnp.ndarray:
    """Per-example KL(N(mu, diag e^logvar) || N(0, I)), shape (n,)."""
    return 0.5 * jnp.sum(mu**2 + jnp.exp(logvar) - logvar - 1.0, axis=-1)


def objective(out: dict, x: jnp.ndarray, *, kind: str, beta: float, kl_scaling: str) -> tuple[jnp.ndarray, dict]:
    """The training objective and its parts, from a `model.forward` output."""
    mse = reconstruction_loss(out["xhat"], x)
    kl = jnp.mean(kl_divergence(out["mu"], out["logvar"]))
    if kind == "mse":
        total = mse
    elif kind == "vae":
        total = mse + beta * kl_scale(kl_scaling, out["mu"].shape[-1]) * kl
    else:
        raise ValueError(f"objective must be 'mse' or 'vae', got {kind!r}")
    return total, {"mse": mse, "kl": kl}
