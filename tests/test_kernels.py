"""Tests of ntkvae.kernels: the empirical kernel against a Jacobian computation, the
infinite-width kernel against quadrature, interpolation and finite wide networks."""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import conftest

from ntkvae import kernels as K
from ntkvae import model as M


# Exactly normalized float64 inputs (the float32 storage case is tested separately).
normalized_inputs = functools.partial(conftest.normalized_inputs, dtype=np.float64)


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


# ---------------------------------------------------------------------------- Theta_inf pieces


def random_covariances(count: int, seed: int = 0):
    """Variances in [0.2, 3] and correlations in [-1, 1], the endpoints included."""
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.2, 3.0, count), rng.uniform(0.2, 3.0, count)
    rho = np.concatenate([[-1.0, 1.0, 0.0], rng.uniform(-1, 1, count - 3)])
    return a, b, rho * np.sqrt(a * b)


def test_fast_asin():
    x = np.linspace(-1.0, 1.0, 200001)
    with jax.enable_x64(True):
        got = np.asarray(K.fast_asin(jnp.asarray(x)))
    # float64 rounding: numpy's arcsin is itself within 1 ulp (2.2e-16 near pi/2).
    np.testing.assert_allclose(got, np.arcsin(x), atol=1e-15, rtol=0)


@pytest.mark.parametrize("activation", ["erf", "relu"])
def test_closed_forms_match_quadrature(activation):
    a, b, c = random_covariances(40)
    with jax.enable_x64(True):
        closed = [np.asarray(v) for v in K.CLOSED_STATS[activation](a, b, c)]
    if activation == "relu":
        # Kinked at 0: Gauss-Hermite converges only algebraically (1e-2 at 96 nodes), so the
        # reference is the polar rule split at the kink lines, exponentially convergent here.
        reference = K.polar_quadrature_stats(activation, a, b, c)
    else:
        # Smooth: the Gauss-Hermite rule that serves tanh, softplus and gelu.
        with jax.enable_x64(True):
            reference = [np.asarray(v) for v in K.quadrature_stats(activation, a, b, c)]
    for got, ref in zip(closed, reference):
        np.testing.assert_allclose(got, ref, atol=1e-8, rtol=0)


@pytest.mark.parametrize("activation", ["tanh", "softplus", "gelu"])
def test_cosine_grid_interpolation(activation):
    arch = {"activation": activation}
    # The Chebyshev interpolant of an analytic function of the cosine: stated error < 1e-10.
    assert K.interpolation_error(arch) < 1e-10
    x = normalized_inputs(7, 9, seed=1)
    grid = K.theta_inf(x, arch=arch)
    # Direct per-entry quadrature: the same inputs, one norm nudged by 1e-4 (disables the grid),
    # compared on the entries the nudge does not touch.
    x_direct = x.copy()
    x_direct[0] *= 1.0001
    direct = K.theta_inf(x_direct, arch=arch)
    for g in grid:
        np.testing.assert_allclose(grid[g][1:, 1:], direct[g][1:, 1:], atol=1e-10, rtol=0, err_msg=g)


def test_blocks_and_the_two_set_form():
    x = normalized_inputs(11, 5, seed=2)
    arch = {"activation": "erf", "weight_std": 1.2}
    whole = K.theta_inf(x, arch=arch)
    blocked = K.theta_inf(x, arch=arch, block_size=3)
    pair = K.theta_inf(x, x, arch=arch)
    off = ~np.eye(11, dtype=bool)
    for g in whole:
        np.testing.assert_array_equal(whole[g], blocked[g])
        np.testing.assert_allclose(whole[g], whole[g].T, atol=1e-15)
        np.testing.assert_allclose(pair[g][off], whole[g][off], atol=1e-15)
    # Same example vs two examples at the same input: the noise adds to the diagonal;
    # Wsigma lives only on the same-example diagonal.
    assert np.all(np.diag(whole["total"]) > np.diag(pair["total"]) + 0.1)
    np.testing.assert_array_equal(pair["Wsigma"], 0.0)
    assert np.all(np.diag(whole["Wsigma"]) > 0)
    assert np.linalg.eigvalsh(whole["total"]).min() > 0


def test_bias_groups_raise_nothing_and_sum():
    x = normalized_inputs(4, 6)
    k = K.theta_inf(x, arch={"activation": "relu", "bias": True, "bias_std": 0.5})
    assert set(k) == set(K.GROUPS) | {"b1", "bmu", "bsigma", "b3", "b4", "total"}
    np.testing.assert_allclose(k["total"], sum(v for g, v in k.items() if g != "total"))


@pytest.mark.parametrize("activation", ["erf", "relu", "tanh"])
def test_group_subsets_tiles_and_the_total(activation):
    x = normalized_inputs(13, 6, seed=3)
    y = normalized_inputs(9, 6, seed=4)
    arch = {"activation": activation, "bias": True, "bias_std": 0.3}
    full = K.theta_inf(x, arch=arch)
    # Asking for fewer groups returns only those, and the total is still the whole NTK.
    some = K.theta_inf(x, arch=arch, groups=("W1", "b3"), block_size=4)
    assert set(some) == {"W1", "b3", "total"}
    only_total = K.theta_inf(x, arch=arch, groups=())
    assert set(only_total) == {"total"}
    for g in some:
        np.testing.assert_allclose(some[g], full[g], rtol=1e-13, atol=1e-15, err_msg=g)
    np.testing.assert_allclose(only_total["total"], full["total"], rtol=1e-13, atol=1e-15)
    # Rectangular tiles of the two-set form agree with one tile.
    pair_tiled = K.theta_inf(x, y, arch=arch, block_size=4)
    pair = K.theta_inf(x, y, arch=arch)
    for g in pair:
        np.testing.assert_allclose(pair_tiled[g], pair[g], rtol=1e-13, atol=1e-15, err_msg=g)
    with pytest.raises(ValueError, match="unknown groups"):
        K.theta_inf(x, arch=arch, groups=("W9",))


def test_evaluation_methods():
    """The cosine grid against the closed forms it replaces: within GRID_TOLERANCE for erf;
    relu's kernel is not analytic at cosine 1, so auto keeps the closed form there."""
    x = normalized_inputs(40, 8, seed=5)
    erf = {"activation": "erf", "weight_std": 1.3}
    direct, grid = K.theta_inf(x, arch=erf, method="direct"), K.theta_inf(x, arch=erf, method="grid")
    auto = K.theta_inf(x, arch=erf)
    for g in direct:
        assert np.max(np.abs(grid[g] - direct[g])) < K.GRID_TOLERANCE, g
        np.testing.assert_array_equal(auto[g], grid[g])
    relu = {"activation": "relu"}
    assert K.interpolation_error(relu) > K.GRID_TOLERANCE
    direct, auto = K.theta_inf(x, arch=relu, method="direct"), K.theta_inf(x, arch=relu)
    for g in direct:
        np.testing.assert_array_equal(auto[g], direct[g])
    with pytest.raises(ValueError, match="normalized"):
        K.theta_inf(x * np.linspace(0.5, 1.5, 40)[:, None], arch=erf, method="grid")
    # Normalized data stored in float32: norms off by ~1e-7. The grid's first-order term in the
    # variances keeps it at the closed form (without it the error would be ~1e-8), the diagonal too.
    x32 = x.astype(np.float32)
    assert np.ptp(np.sum(np.square(x32, dtype=np.float64), axis=1)) > 1e-7
    direct = K.theta_inf(x32, arch=erf, method="direct")
    for method in ("grid", "auto"):
        near = K.theta_inf(x32, arch=erf, method=method)
        for g in direct:
            assert np.max(np.abs(near[g] - direct[g])) < K.GRID_TOLERANCE, (method, g)
    # And for a quadrature activation, whose direct path is per-entry 2-d quadrature; the same
    # for the noise diagonal, which is evaluated once with its derivative.
    tanh = {"activation": "tanh", "bias": True, "bias_std": 0.2}
    x_near = x[:12] * (1.0 + 2e-7 * np.random.default_rng(6).normal(size=(12, 1)))
    near, direct = K.theta_inf(x_near, arch=tanh), K.theta_inf(x_near, arch=tanh, method="direct")
    for g in direct:
        assert np.max(np.abs(near[g] - direct[g])) < K.GRID_TOLERANCE, g
    noise = K.noise_diagonal(x_near, tanh)
    per_example = [K.noise_diagonal(x_near[i:i + 1], tanh) for i in range(12)]
    for g in noise:
        np.testing.assert_allclose(noise[g], [p[g][0] for p in per_example], rtol=1e-12, atol=1e-15, err_msg=g)
        assert np.ptp(noise[g]) > 0 or g in ("b4",)
    with pytest.raises(ValueError, match="method"):
        K.theta_inf(x, arch=erf, method="fast")


# ---------------------------------------------------------------------------- Theta_m -> Theta_inf


def relative_errors(arch_cfg, widths, x, seeds, samples=4, outputs=2):
    arch = M.Architecture.from_config(arch_cfg)
    inf = K.theta_inf(x, arch=arch_cfg)
    errors = {g: [] for g in inf}
    for width in widths:
        per_seed = {g: [] for g in inf}
        for seed in seeds:
            params = M.init_params(jax.random.PRNGKey(seed), arch, x.shape[1], width)
            emp = K.theta_m(params, jnp.asarray(x, jnp.float32), arch, width, jax.random.PRNGKey(100 + seed), samples,
                            outputs=outputs)
            for g in inf:
                per_seed[g].append(np.linalg.norm(emp[g] - inf[g]) / np.linalg.norm(inf[g]))
        for g in inf:
            errors[g].append(float(np.sqrt(np.mean(np.square(per_seed[g])))))
    return {g: np.asarray(v) for g, v in errors.items()}


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["erf", "tanh"])
def test_theta_m_approaches_theta_inf(activation):
    widths = [512, 1024, 2048, 4096, 8192] if activation == "erf" else [512, 2048, 8192]
    x = normalized_inputs(8, 16, seed=3)
    errors = relative_errors({"activation": activation}, widths, x, seeds=[0, 1])
    for g, err in errors.items():
        slope = np.polyfit(np.log(widths), np.log(err), 1)[0]
        # Finite-width fluctuations of every entry are O(m^-1/2): the fitted log-log slope over
        # a 16x range of widths, with 2 seeds, lies within 0.25 of -1/2 (a wrong limit would
        # give a slope near 0 and a plateau).
        assert -0.8 < slope < -0.25, (g, slope, err)
        assert err[-1] < 0.05, (g, err)


@pytest.mark.slow
def test_theta_m_approaches_theta_inf_with_bias():
    cfg = {"activation": "relu", "bias": True, "bias_std": 0.4, "weight_std": 1.1}
    errors = relative_errors(cfg, [4096], normalized_inputs(6, 10, seed=4), seeds=[0, 1], samples=16)
    for g, err in errors.items():
        # ~ a few / sqrt(4096); Wsigma carries the heavy-tailed e^s eps^2 factor, hence 16 draws.
        assert err[0] < 0.06, (g, err)
