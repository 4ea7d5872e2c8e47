"""Linearized training dynamics in the infinite-width limit (SPEC section 3; docs/theory.md section 3).

Our normalization: L_mse = (1/2n) sum_i ||xhat_i - x_i||^2, full-batch gradient descent with
step eta. Per output coordinate the linearized residual obeys r_{t+1} = (I - eta Theta / n) r_t.

Two noise protocols (docs/theory.md 3.2):
* fresh noise every step (the training job): the noise-averaged (mean) function follows the
  *mean kernel* Theta_bar = Theta_inf(X, X) (every pair two different examples), and the
  loss keeps a constant noise floor; fresh noise also kicks the mean function (SGD noise),
  whose accumulated variance is part of the prediction.
* noise fixed per example: the sampled outputs follow Theta = Theta_inf(X) (same-example
  diagonal) and reach zero loss; this is the setting of the paper's Theorem 1.
One eigendecomposition serves every time grid, learning rate and ridge. Numpy only (the figures and
claims use it too); `ntkvae.spectrum` holds the kernel of the trained groups and its eigenpairs.
"""

from __future__ import annotations

import numpy as np

from .spectrum import Spectrum


def theorem1_bound(steps, lr: float, lambda0: float, n: int, loss0: float) -> np.ndarray:
    """The paper's Theorem 1 in our normalization: L(t) <= exp(-lambda0 eta t / n) L(0)."""
    return loss0 * np.exp(-lambda0 * lr * np.asarray(steps, np.float64) / n)


def linear_loss_rate(lr: float, lambda0: float, n: int) -> float:
    """Asymptotic decay rate per step of the linearized loss, -log(1 - eta lambda0 / n)^2."""
    return -2.0 * np.log(abs(1.0 - lr * lambda0 / n))


def _powers(factors: np.ndarray, steps: np.ndarray, discrete: bool, lam: np.ndarray, lr: float, n: int) -> np.ndarray:
    """(T, n) array of a_k^t (discrete steps) or exp(-eta lam_k t / n) (gradient flow)."""
    if discrete:
        return factors[None, :] ** steps[:, None]
    return np.exp(-lr * lam[None, :] * steps[:, None] / n)


def _quadratic_forms(vec: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """v_k^T C v_k for every column k of vec: one BLAS product (numpy's three-operand einsum
    would run the n^3 sum as a naive loop, several times slower and on one core)."""
    return np.sum(vec * (cov @ vec), axis=0)


def predict_fresh_noise(spectrum: Spectrum, y: np.ndarray, lr: float, steps, *, noise_var: np.ndarray,
                        r0: np.ndarray | None = None, init_cov: np.ndarray | None = None,
                        eval_samples: int | None = None, discrete: bool = True) -> dict[str, np.ndarray]:
    """Predicted loss curves of gradient descent with fresh noise each step (the training job).

    y: targets (n, d). r0: initial mean-function residual f_bar_0(X) - Y (n, d); if None it is
    averaged over initializations: r0 = -Y plus the init covariance `init_cov` (n, n, per
    output coordinate; the W4 block of Theta_bar). noise_var: per-example output variance over
    the noise (n,), at infinite width the W4 entry of `kernels.noise_diagonal`. eval_samples:
    draws averaged by the job's evaluation (adds noise_var / K to the measured residual).
    Returns (per logged step): mean_function_mse (what the job logs as eval/mean_function_mse),
    its parts, noise_floor and expected_mse, all in the (1/2n) sum normalization.
    """
    y = np.asarray(y, np.float64)
    n, d = y.shape
    steps = np.asarray(steps, np.float64)
    lam, vec = spectrum.mean_eigenvalues, spectrum.mean_eigenvectors
    a = 1.0 - lr * lam / n
    pw = _powers(a, steps, discrete, lam, lr, n)                      # (T, n)
    resid = -y if r0 is None else np.asarray(r0, np.float64)
    proj = np.sum((vec.T @ resid) ** 2, axis=1)                       # |component k| summed over coordinates
    bias = pw**2 @ proj
    init = np.zeros_like(steps)
    if init_cov is not None:
        init = d * (pw**2 @ _quadratic_forms(vec, init_cov))
    fvar = np.asarray(noise_var, np.float64)
    # SGD-noise variance accumulated by the mean function: sum_s a^{2s} (eta/n)^2 lam^2 <v_k, F v_k>.
    kick = (lr / n) ** 2 * lam**2 * np.einsum("ik,i,ik->k", vec, fvar, vec)
    denom = 1.0 - a**2
    safe = np.where(np.abs(denom) > 1e-300, denom, 1.0)
    growth = np.where(np.abs(denom) > 1e-300, (1.0 - pw**2) / safe, steps[:, None])
    sgd = d * (growth @ kick)
    floor = d * float(np.sum(fvar)) / (2.0 * n)
    eval_bias = floor / eval_samples if eval_samples else 0.0
    mean_mse = (bias + init + sgd) / (2.0 * n)
    return {
        "step": steps,
        "mean_function_mse": mean_mse + eval_bias,
        "mean_function_mse_exact": mean_mse,
        "deterministic_part": bias / (2.0 * n),
        "init_part": init / (2.0 * n),
        "sgd_noise_part": sgd / (2.0 * n),
        "noise_floor": np.full_like(steps, floor),
        "expected_mse": mean_mse + floor,
    }


def predict_fixed_noise(spectrum: Spectrum, r0: np.ndarray, lr: float, steps, *, init_cov: np.ndarray | None = None,
                        discrete: bool = True) -> np.ndarray:
    """(1/2n) ||r_t||^2 for noise fixed per example: r_t = (I - eta Theta / n)^t r0, Theta with the diagonal.

    With init_cov (n, n per output coordinate: the W4 block of Theta_inf(X), same-example
    diagonal included) the curve is averaged over initializations, r0 then being -Y.
    """
    r0 = np.asarray(r0, np.float64)
    n, d = r0.shape
    steps = np.asarray(steps, np.float64)
    lam, vec = spectrum.eigenvalues, spectrum.eigenvectors
    pw = _powers(1.0 - lr * lam / n, steps, discrete, lam, lr, n)
    total = pw**2 @ np.sum((vec.T @ r0) ** 2, axis=1)
    if init_cov is not None:
        total = total + d * (pw**2 @ _quadratic_forms(vec, init_cov))
    return total / (2.0 * n)


def predict_fixed_noise_mean(spectrum: Spectrum, y: np.ndarray, lr: float, steps, *, noise_var: np.ndarray,
                             init_cov: np.ndarray, eval_samples: int | None = None,
                             discrete: bool = True) -> dict[str, np.ndarray]:
    """Init-averaged curves for noise fixed per example (training.noise: fixed).

    The sampled outputs follow r_t = A^t r_0 with A = I - eta Theta / n (Theta with the noise
    diagonal); the noise-averaged function is f_bar_t = f_bar_0 + B_t (Y - f_0(X; eps)) with
    B_t = Theta_bar Theta^{-1} (I - A^t) (docs/theory.md section 5), so, averaged over the
    initialization (f_bar_0 ~ N(0, init_cov), the output noise xi ~ N(0, diag noise_var),
    independent), E |f_bar_t - Y|^2 = |(I - B_t) Y|^2 + d tr((I - B_t) K0 (I - B_t)^T)
    + d tr(B_t diag(F) B_t^T). B_t -> Theta_bar (Theta_bar + diag D)^{-1}: the KRR limit.
    """
    y = np.asarray(y, np.float64)
    n, d = y.shape
    steps = np.asarray(steps, np.float64)
    lam, vec = spectrum.eigenvalues, spectrum.eigenvectors
    pw = _powers(1.0 - lr * lam / n, steps, discrete, lam, lr, n)       # (T, n)
    theta = (vec * lam) @ vec.T
    theta_bar = theta - np.diag(spectrum.noise_diagonal)
    left = theta_bar @ vec / lam                                         # Theta_bar Theta^{-1} V
    fvar = np.asarray(noise_var, np.float64)
    mean = []
    for row in pw:
        b = (left * (1.0 - row)) @ vec.T                                 # B_t
        i_b = np.eye(n) - b
        res = i_b @ y
        # tr(I_b K0 I_b^T) as an elementwise sum: one n^3 product per point, not two
        mean.append(np.sum(res**2) + d * np.sum((i_b @ init_cov) * i_b) + d * np.sum((b**2) * fvar[None, :]))
    floor = d * float(np.sum(fvar)) / (2.0 * n)
    mean = np.asarray(mean) / (2.0 * n)
    return {"step": steps, "mean_function_mse_exact": mean,
            "mean_function_mse": mean + (floor / eval_samples if eval_samples else 0.0),
            "noise_floor": np.full_like(steps, floor)}


def linearized_residuals(spectrum: Spectrum, r0: np.ndarray, lr: float, steps) -> np.ndarray:
    """(T, n, d) residuals r_t = (I - eta Theta / n)^t r0 of gradient descent on the linearized network,
    Theta the trained kernel with its same-example diagonal (noise fixed per example): the trajectory a
    seed follows at infinite width from its own initial residual r0 = f_0(X; eps) - Y."""
    r0 = np.asarray(r0, np.float64)
    steps = np.asarray(steps, np.float64)
    lam, vec = spectrum.eigenvalues, spectrum.eigenvectors
    powers = (1.0 - lr * lam / spectrum.n)[None, :] ** steps[:, None]          # (T, n)
    return np.einsum("ik,tk,kd->tid", vec, powers, vec.T @ r0)
