"""Tests of ntkvae.kernels: the empirical kernel against a Jacobian computation, the
infinite-width kernel against quadrature, interpolation and finite wide networks."""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkvae import kernels as K
from ntkvae import model as M


def normalized_inputs(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Random inputs scaled to |x| = sqrt(d), as the data pipeline delivers them."""
    x = np.random.default_rng(seed).normal(size=(n, d))
    return x * np.sqrt(d) / np.linalg.norm(x, axis=1, keepdims=True)


# ---------------------------------------------------------------------------- Theta_m vs Jacobian


def jacobian_theta(params, x, arch, key, samples, coords):
    """Reference: materialized per-example Jacobians (jax.jacrev), same noise draws as theta_m."""
    mz = params["Wmu"].shape[0]
    keys = jax.random.split(key, samples)

    def xhat(p, xi, ei):
        return M.forward(p, xi[None], ei[None], arch)["xhat"][0][coords]

    jac = jax.vmap(jax.jacrev(xhat), in_axes=(None, 0, 0))
    acc = None
    for k in keys:
        eps = jax.random.normal(k, (x.shape[0], mz), x.dtype)
        J = jac(params, x, eps)  # group -> (n, k, *shape)
        flat = {g: np.asarray(J[g], np.float64).reshape(x.shape[0], len(coords), -1) for g in J}
        res = {g: np.einsum("iap,jap->ij", f, f) / len(coords) for g, f in flat.items()}
        acc = res if acc is None else {g: acc[g] + res[g] for g in res}
    return {g: v / samples for g, v in acc.items()}


@pytest.mark.parametrize("activation,bias,latent,outputs", [
    ("erf", False, "same", None),
    ("gelu", True, 7, 2),
    ("relu", False, 5, 3),
])
def test_theta_m_matches_jacobian(activation, bias, latent, outputs):
    d, width, n = 6, 24, 5
    arch = M.Architecture(activation=activation, bias=bias, bias_std=0.3, latent_width=latent, weight_std=1.3)
    params = M.init_params(jax.random.PRNGKey(3), arch, d, width)
    x = jnp.asarray(normalized_inputs(n, d), jnp.float32)
    key = jax.random.PRNGKey(11)
    got = K.theta_m(params, x, arch, width, key, 3, outputs=outputs)
    coords = K.output_coordinates(d, outputs)
    ref = jacobian_theta(params, x, arch, key, 3, jnp.asarray(coords))
    assert set(got) == set(ref) | {"total"}
    for g in ref:
        scale = np.max(np.abs(ref[g])) + 1e-30
        # Both sides accumulate O(width) float32 products: relative rounding ~ 1e-6, so 2e-5
        # of the largest entry is float32 rounding; a wrong factor (1/2, sigma_w^2) is > 1e-1.
        np.testing.assert_allclose(got[g], ref[g], atol=2e-5 * scale, rtol=0, err_msg=g)
    np.testing.assert_allclose(got["total"], sum(ref.values()), atol=2e-5 * np.max(np.abs(got["total"])), rtol=0)
