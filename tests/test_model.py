"""The model against independent estimates: NumPy forward pass, finite differences,
the KL's Monte-Carlo value, and the infinite-width (NNGP) output variance at init."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import NUMPY_ACTIVATIONS, normalized_inputs, numpy_forward
from ntkvae import model as M
from ntkvae import objectives


@pytest.mark.parametrize("activation", sorted(M.ACTIVATIONS))
@pytest.mark.parametrize("bias", [False, True])
def test_forward_matches_numpy(activation, bias):
    arch = M.Architecture(activation=activation, weight_std=1.3, bias=bias, bias_std=0.2, latent_width=5)
    x = normalized_inputs(7, 11)
    params = M.init_params(jax.random.PRNGKey(3), arch, 11, 9)
    eps = np.asarray(M.sample_noise(jax.random.PRNGKey(4), 7, arch, 9))
    got = np.asarray(M.forward(params, jnp.asarray(x), jnp.asarray(eps), arch)["xhat"])
    want = numpy_forward(params, x, eps, activation, 1.3, 0.2 if bias else None)
    # float32 forward pass through four layers of width <= 11: rounding error ~1e-6 relative.
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


def test_shapes_and_latent_width():
    arch = M.Architecture(latent_width="same")
    shapes = M.param_shapes(arch, d=10, width=6)
    assert shapes == {"W1": (6, 10), "Wmu": (6, 6), "Wsigma": (6, 6), "W3": (6, 6), "W4": (10, 6)}
    assert M.param_shapes(M.Architecture(latent_width=3), 10, 6)["W3"] == (6, 3)
    params = M.init_params(jax.random.PRNGKey(0), arch, 10, 6)
    assert set(params) == set(M.WEIGHT_GROUPS)


def test_init_is_standard_normal():
    params = M.init_params(jax.random.PRNGKey(0), M.Architecture(), 64, 512)
    w = np.concatenate([np.ravel(v) for v in params.values()])
    # ~1.3e6 N(0,1) draws: the sample mean has SE 9e-4 and the variance SE 1.2e-3; 5 SE margins.
    assert abs(w.mean()) < 5e-3 and abs(w.var() - 1.0) < 7e-3
    # Groups use independent keys.
    assert not np.allclose(params["Wmu"], params["Wsigma"])


@pytest.mark.parametrize("kind,kl_scaling", [("mse", "one"), ("vae", "one"), ("vae", "inv_sqrt_width"), ("vae", "inv_width")])
def test_gradients_match_finite_differences(kind, kl_scaling):
    """jax.grad of the objective vs central differences, in float64."""
    with jax.enable_x64(True):
        arch = M.Architecture(activation="tanh", weight_std=1.1)
        x = jnp.asarray(normalized_inputs(5, 6), jnp.float64)
        params = M.init_params(jax.random.PRNGKey(1), arch, 6, 4, dtype=jnp.float64)
        eps = M.sample_noise(jax.random.PRNGKey(2), 5, arch, 4, dtype=jnp.float64)

        def f(p):
            out = M.forward(p, x, eps, arch)
            return objectives.objective(out, x, kind=kind, beta=0.7, kl_scaling=kl_scaling)[0]

        grads = jax.grad(f)(params)
        rng = np.random.default_rng(0)
        h = 1e-6
        for name, value in params.items():
            for _ in range(3):
                idx = tuple(rng.integers(0, s) for s in value.shape)
                plus = dict(params, **{name: value.at[idx].add(h)})
                minus = dict(params, **{name: value.at[idx].add(-h)})
                fd = (f(plus) - f(minus)) / (2 * h)
                # Central differences: truncation O(h^2 f''') ~1e-12, rounding ~1e-16/h = 1e-10.
                np.testing.assert_allclose(grads[name][idx], fd, rtol=1e-6, atol=1e-8)


def test_kl_matches_monte_carlo():
    """Closed-form KL(N(mu, e^s) || N(0, I)) vs E_q[log q(z) - log p(z)] by sampling."""
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(3, 4))
    logvar = rng.normal(scale=0.5, size=(3, 4))
    closed = np.asarray(objectives.kl_divergence(jnp.asarray(mu), jnp.asarray(logvar)))
    samples = 400_000
    sd = np.exp(0.5 * logvar)
    eps = rng.normal(size=(samples, 3, 4))
    z = mu + sd * eps
    log_q = -0.5 * eps**2 - np.log(sd) - 0.5 * np.log(2 * np.pi)
    log_p = -0.5 * z**2 - 0.5 * np.log(2 * np.pi)
    terms = (log_q - log_p).sum(axis=-1)
    estimate, se = terms.mean(axis=0), terms.std(axis=0) / np.sqrt(samples)
    # The Monte-Carlo estimate is unbiased; 5 standard errors bound its deviation.
    assert np.all(np.abs(estimate - closed) < 5 * se), (estimate, closed, se)


def test_kl_scaling_values():
    assert objectives.kl_scale("one", 100) == 1.0
    assert objectives.kl_scale("inv_sqrt_width", 100) == pytest.approx(0.1)
    assert objectives.kl_scale("inv_width", 100) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="kl_scaling"):
        objectives.kl_scale("half", 100)


def gauss_expectation(fn, variance: float, order: int = 200) -> float:
    """E[fn(u)], u ~ N(0, variance), by Gauss-Hermite quadrature (independent of ntkvae.kernels)."""
    t, w = np.polynomial.hermite_e.hermegauss(order)
    return float(np.sum(w * fn(np.sqrt(variance) * t)) / np.sqrt(2 * np.pi))


def nngp_output_variance(activation: str, weight_std: float) -> float:
    """Infinite-width Var[xhat_j(x)] at init over weights and noise, for ||x||^2 = d.

    h1 pre-activations ~ N(0, s^2); mu_k and s_k ~ N(0, s^2 A) with A = E phi^2; z_k has second
    moment s^2 A + E[e^{s_k}] = s^2 A + exp(s^2 A / 2); decoder pre-activations ~ N(0, s^2 E z^2);
    the output variance is s^2 E[phi^2] at that variance.
    """
    phi = NUMPY_ACTIVATIONS[activation]
    s2 = weight_std**2
    a = gauss_expectation(lambda u: phi(u) ** 2, s2)
    ez2 = s2 * a + np.exp(s2 * a / 2.0)
    return s2 * gauss_expectation(lambda u: phi(u) ** 2, s2 * ez2)


@pytest.mark.parametrize("activation", ["erf", "relu", "tanh"])
def test_initial_output_variance_matches_nngp(activation):
    """Second moment of xhat at init, over seeds, vs the infinite-width prediction."""
    arch = M.Architecture(activation=activation, weight_std=1.0)
    n, d, m, seeds = 16, 32, 4096, 8
    x = jnp.asarray(normalized_inputs(n, d))

    def one(key):
        k1, k2 = jax.random.split(key)
        params = M.init_params(k1, arch, d, m)
        _, mu, s = M.encode(params, x, arch)
        z = mu + jnp.exp(0.5 * s) * M.sample_noise(k2, n, arch, m)
        h3 = arch.phi(arch.weight_std * z @ params["W3"].T / jnp.sqrt(m))
        # E over W4 of xhat_j^2 given h3 is weight_std^2 ||h3||^2 / m: taking it exactly removes
        # the output layer's sampling noise, leaving only the O(1/sqrt(m)) hidden-layer fluctuation.
        return arch.weight_std**2 * jnp.mean(jnp.sum(h3**2, axis=1) / m)

    per_seed = np.asarray(jax.vmap(one)(jax.random.split(jax.random.PRNGKey(0), seeds)))
    predicted = nngp_output_variance(activation, arch.weight_std)
    se = per_seed.std(ddof=1) / np.sqrt(seeds)
    # Deviation allowed: 4 standard errors of the seed average plus the O(1/m) finite-width bias
    # (bounded generously by 2/m relative).
    assert abs(per_seed.mean() - predicted) < 4 * se + 2 * predicted / m, (per_seed.mean(), predicted, se)


def test_mean_output_averages_noise():
    arch = M.Architecture()
    x = jnp.asarray(normalized_inputs(4, 8))
    params = M.init_params(jax.random.PRNGKey(0), arch, 8, 16)
    a = M.mean_output(params, x, jax.random.PRNGKey(1), arch, 16, samples=2000)
    b = M.mean_output(params, x, jax.random.PRNGKey(2), arch, 16, samples=2000)
    single = M.forward(params, x, M.sample_noise(jax.random.PRNGKey(3), 4, arch, 16), arch)["xhat"]
    # Two independent 2000-draw averages agree far better than single draws scatter (SE shrinks 45x).
    assert float(jnp.std(a - b)) < 0.2 * float(jnp.std(single - a))


@pytest.mark.parametrize("bias", [False, True])
def test_init_is_jax_random_normal_per_group_bit_for_bit(bias):
    """init_params draws all groups in one fused hash (compile time); each group must still be
    jax.random.normal(fold_in(key, i), shape), the draw the results were made with."""
    arch = M.Architecture(bias=bias)
    key = jax.random.PRNGKey(7)
    got = jax.jit(lambda k: M.init_params(k, arch, 6, 5))(key)
    shapes = sorted(M.param_shapes(arch, 6, 5).items())
    for i, (name, shape) in enumerate(shapes):
        expected = jax.random.normal(jax.random.fold_in(key, i), shape, jnp.float32)
        assert np.array_equal(np.asarray(got[name]), np.asarray(expected)), name


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the rolled rule is JAX's CPU lowering")
def test_unrolled_threefry_gives_the_rolled_bits():
    """ntkvae.threefry lowers the hash unrolled on the CPU; JAX's rolled rule gives the same bits."""
    from ntkvae import threefry

    def draws(k):
        return jax.random.normal(k, (3, 7)), M.standard_normal(k, (5, 4)), jax.random.split(k, 3)

    key = jax.random.PRNGKey(3)
    assert "while" not in jax.jit(draws).lower(key).as_text()
    unrolled = jax.tree.map(np.asarray, jax.jit(draws)(key))
    try:
        threefry.use_rolled_on_cpu()
        rolled_fn = jax.jit(lambda k: draws(k))   # a new function: lowered anew, with the rolled loop
        assert "while" in rolled_fn.lower(key).as_text()
        rolled = jax.tree.map(np.asarray, rolled_fn(key))
    finally:
        threefry._DONE.clear()
        threefry.use_unrolled_on_cpu()
    for a, b in zip(jax.tree.leaves(unrolled), jax.tree.leaves(rolled)):
        assert np.array_equal(a, b)
