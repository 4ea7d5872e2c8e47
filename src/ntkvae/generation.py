"""Decoding from a trained VAE for the image-generation figure (F8) and latent statistics (F6).

Three things per seed, all jitted and vmapped over seeds:
- prior samples: the decoder at z ~ N(0, I) (the VAE's generative model p(x|z)p(z));
- latent traversals: the decoder along the principal directions of the encoded means,
  z = mean(mu) + t * sd_k * v_k for t in a symmetric grid, v_k the k-th principal
  direction of mu over the training set and sd_k its standard deviation. With m_z = m
  latent units, one coordinate alone moves the output by O(1/sqrt(m_z)), so coordinate
  traversals would show nothing; principal directions are the directions the encoder uses;
- latent statistics of q(z|x) on the training set: mean squared latent mean, mean posterior
  variance e^s, and the fraction of latent units whose mean varies across examples
  ("active units", variance of mu_k over the data above ACTIVE_THRESHOLD).

The sizes below are presentation choices of the figure, not experimental settings.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from . import model as M

PRIOR_SAMPLES = 8
TRAVERSAL_DIRECTIONS = 4
TRAVERSAL_VALUES = np.linspace(-2.5, 2.5, 7)
ACTIVE_THRESHOLD = 0.01  # variance of mu_k across examples; the convention of Burda et al. (2016)


def _one_seed(params, key, x, arch, width, directions, values):
    _, mu, s = M.encode(params, x, arch)
    z_prior = M.sample_noise(key, PRIOR_SAMPLES, arch, width, x.dtype)
    prior = M.decode(params, z_prior, arch)
    centre = jnp.mean(mu, axis=0)
    # Principal directions of the encoded means (rows of vt), largest variance first.
    _, sv, vt = jnp.linalg.svd(mu - centre, full_matrices=False)
    sd = sv[:directions] / jnp.sqrt(mu.shape[0])
    z_trav = centre + values[None, :, None] * (sd[:, None, None] * vt[:directions, None, :])
    traversal = M.decode(params, z_trav.reshape(-1, mu.shape[1]), arch).reshape(directions, values.shape[0], -1)
    latent = {
        "mu_sq": jnp.mean(mu**2),
        "posterior_variance": jnp.mean(jnp.exp(s)),
        "active_fraction": jnp.mean(jnp.var(mu, axis=0) > ACTIVE_THRESHOLD),
        "direction_sd": sd,
    }
    return {"prior": prior, "traversal": traversal, "latent": latent}


def generate_one(params, key, x, arch: M.Architecture, width: int) -> dict:
    """Prior samples, traversals and latent statistics of one seed, as a traceable function
    (the training job folds it into its final program); no `values`."""
    directions = min(TRAVERSAL_DIRECTIONS, arch.latent_dim(width), x.shape[0])
    return _one_seed(params, key, x, arch, width, directions, jnp.asarray(TRAVERSAL_VALUES, x.dtype))


def generate_lanes(params, keys, x, arch: M.Architecture, width: int) -> dict:
    """generate_one for stacked (over seeds) params and keys (vmapped)."""
    return jax.vmap(lambda p, k: generate_one(p, k, x, arch, width))(params, keys)


def generate(params, keys, x, arch: M.Architecture, width: int) -> dict:
    """Prior samples, traversals and latent statistics for stacked (over seeds) params.

    params: the parameter dict with a leading seed axis; keys: (seeds, 2) PRNG keys; x: (n, d).
    Returns numpy arrays with a leading seed axis, plus the traversal grid `values`.
    """
    x = jnp.asarray(x, jnp.float32)
    out = jax.tree.map(np.asarray, _generate_jit(params, keys, x, arch, int(width)))
    out["values"] = np.asarray(TRAVERSAL_VALUES)
    return out


_generate_jit = jax.jit(generate_lanes, static_argnums=(3, 4))
