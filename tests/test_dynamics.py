"""Tests of ntkvae.dynamics: spectrum bookkeeping and the linearized loss curve against training."""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import conftest

from ntkvae import dynamics as D
from ntkvae import spectrum as S
from ntkvae.compute_kernels import spectrum_of
from ntkvae import kernels as K
from ntkvae import model as M
from ntkvae.training import Settings, Trainer


# Exactly normalized float64 inputs (the float32 storage case is tested separately).
normalized_inputs = functools.partial(conftest.normalized_inputs, dtype=np.float64)


def test_spectrum_and_closed_form_curves():
    x = normalized_inputs(12, 7)
    spec, theta, diag = spectrum_of(x, {"activation": "erf"})
    pair = K.theta_inf(x, x, arch={"activation": "erf"})["total"]
    np.testing.assert_allclose(np.linalg.eigvalsh(pair), spec.mean_eigenvalues, atol=1e-12)
    # Wsigma frozen (the default): the trained kernel leaves out Wsigma, which is only on the diagonal.
    frozen = theta["total"] - np.diag(diag["Wsigma"])
    assert spec.lambda0 == pytest.approx(np.linalg.eigvalsh(frozen)[0], abs=1e-12)
    assert spectrum_of(x, {"activation": "erf"}, train_sigma=True)[0].lambda0 == pytest.approx(
        np.linalg.eigvalsh(theta["total"])[0], abs=1e-12)
    assert spec.lambda0 > spec.lambda_bar > 0
    # The eigenbasis prediction equals explicit matrix powers of (I - eta Theta_bar / n).
    y, lr, n = x, 0.7, x.shape[0]
    r0 = np.random.default_rng(1).normal(size=y.shape)
    steps = np.array([0, 1, 5, 40])
    pred = D.predict_fresh_noise(spec, y, lr, steps, r0=r0, noise_var=np.zeros(n))
    a = np.eye(n) - lr * pair / n
    for t, value in zip(steps, pred["mean_function_mse_exact"]):
        r = np.linalg.matrix_power(a, int(t)) @ r0
        assert value == pytest.approx(0.5 * np.sum(r**2) / n, rel=1e-10)
    # SGD-noise variance: the sum over steps of the propagated kicks, done by brute force.
    fvar = diag["W4"]
    kicks = D.predict_fresh_noise(spec, y, lr, [3], r0=np.zeros_like(y), noise_var=fvar)["sgd_noise_part"][0]
    b = lr / n * pair
    cov = sum(np.linalg.matrix_power(a, s) @ b @ np.diag(fvar) @ b.T @ np.linalg.matrix_power(a, s).T for s in range(3))
    assert kicks == pytest.approx(y.shape[1] * np.trace(cov) / (2 * n), rel=1e-10)
    # The fixed-noise curve uses the kernel with the diagonal and the paper's bound holds for it.
    fixed = D.predict_fixed_noise(spec, r0, lr, np.arange(50))
    bound = D.theorem1_bound(np.arange(50), lr, spec.lambda0, n, fixed[0])
    assert np.all(fixed <= bound * (1 + 1e-12))


@pytest.mark.slow
def test_prediction_follows_training_at_large_width():
    """The training job's mean-function residual follows the fresh-noise prediction (mean kernel)."""
    n, d, width, lr, steps, every = 16, 8, 2048, 1.0, 80, 8
    x = normalized_inputs(n, d, seed=5)
    cfg = {"activation": "erf"}
    spec, _, diag = spectrum_of(x, cfg)
    arch = M.Architecture.from_config(cfg)
    settings = Settings(steps=steps, seeds=(0, 1), learning_rate=lr, log_every=every, eval_noise_samples=32)
    trainer = Trainer(arch, width, settings, x)
    state = trainer.init_state()
    # Initial noise-averaged outputs of each seed's network (1024 draws: MC error 1e-3 of the residual).
    r0 = [np.asarray(M.mean_output(jax.tree.map(lambda a: a[i], state["params"]), jnp.asarray(x, jnp.float32),
                                   jax.random.PRNGKey(7), arch, width, 1024), np.float64) - x for i in range(2)]
    evals = [trainer.evaluate(state)]
    for _ in range(steps // every):
        trainer.run_chunk(state, every)
        evals.append(trainer.evaluate(state))
    measured = np.stack([e["mean_function_mse"] for e in evals], axis=-1)
    floor = np.stack([e["noise_floor"] for e in evals], axis=-1)
    # The job logs an unbiased residual (its K-draw average's floor / K is subtracted) and floor.
    corrected = measured
    grid = np.arange(0, steps + 1, every)
    k = settings.eval_noise_samples
    for i in range(2):
        kw = dict(r0=r0[i], noise_var=diag["W4"])
        parts = D.predict_fresh_noise(spec, x, lr, grid, **kw)
        pred = parts["mean_function_mse_exact"]
        with_diag = S.Spectrum(spec.eigenvalues, spec.eigenvectors, spec.noise_diagonal, spec.eigenvalues,
                               spec.eigenvectors)
        wrong = D.predict_fresh_noise(with_diag, x, lr, grid, **kw)["mean_function_mse_exact"]
        # Tolerance: 15% relative, because the width-2048 kernel differs from Theta_inf by ~2-3%
        # (test_kernels), which shifts mode k of r_t by ~ eta lambda_k t delta / n; plus an absolute
        # allowance for the two random parts of a single run: the SGD kicks (their realization is
        # of the size of their predicted mean) and the K-draw evaluation (standard deviation
        # (floor / K) sqrt(2 / (n d)) of the corrected residual, 3 of them).
        eval_sd = floor[i] / k * np.sqrt(2.0 / (n * d))
        allowance = 0.15 * pred + parts["sgd_noise_part"] + 3 * eval_sd
        assert np.all(np.abs(corrected[i] - pred) < allowance), (i, corrected[i], pred)
        # The kernel with the same-example diagonal (the noise-fixed dynamics) is far off.
        assert np.max(np.abs(corrected[i] / wrong - 1)) > 1.0, (i, corrected[i], wrong)


def test_fixed_noise_mean_curve_limits():
    """B_t starts at 0 and tends to Theta_bar (Theta_bar + D)^{-1}: the init-averaged curve starts at
    |Y|^2 + d tr K0 and ends at the KRR value, both computed directly."""
    x = normalized_inputs(10, 4, seed=2)
    cfg = {"activation": "erf"}
    spec, theta, diag = spectrum_of(x, cfg, train_sigma=True)  # every group trained: Theta = total
    bar_w4 = theta["W4"] - np.diag(diag["W4"])
    n, d = x.shape
    out = D.predict_fixed_noise_mean(spec, x, 1.0, [0, 10**6], noise_var=diag["W4"], init_cov=bar_w4)
    start = (np.sum(x**2) + d * np.trace(bar_w4)) / (2 * n)
    bar = theta["total"] - np.diag(diag["total"])
    b = bar @ np.linalg.inv(theta["total"])
    i_b = np.eye(n) - b
    end = (np.sum((i_b @ x) ** 2) + d * np.trace(i_b @ bar_w4 @ i_b.T) + d * np.sum(b**2 * diag["W4"])) / (2 * n)
    assert out["mean_function_mse_exact"][0] == pytest.approx(start, rel=1e-10)
    assert out["mean_function_mse_exact"][1] == pytest.approx(end, rel=1e-8)
