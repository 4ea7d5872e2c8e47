"""Kernel ridge regression limits of training with the full objective (SPEC section 3; docs/theory.md section 4).

With Wsigma frozen and a KL normalization that keeps the lazy regime (c = 1/sqrt(m_z) or
1/m_z), the KL term's influence on the network vanishes as the width grows, and the noise-
averaged network converges (at infinite width, t -> infinity) to

    f*(X) = f_bar_0(X) + Theta_bar (Theta_bar + Lambda)^{-1} (Y - f_0(X))

with the mean kernel Theta_bar = Theta_inf(X, X) (two different examples in every pair) and
the ridge Lambda set by the noise protocol, not by beta:
* noise fixed per example: Lambda = diag(D), D the same-example noise diagonal of Theta_inf(X)
  (f_0(X) is then the initial output with that noise);
* fresh noise every step (the training job): Lambda = 0 (ridgeless; the noise only leaves a
  constant loss floor), f_0 = f_bar_0.
With c = 1 the lazy regime breaks and no kernel limit exists (`derived_ridge` returns None).
Averaged over initializations (f_0 has mean 0) f* = Theta_bar (Theta_bar + Lambda)^{-1} Y.
One eigendecomposition of Theta_bar serves every ridge. Numpy only (figures and claims use it).
"""

from __future__ import annotations

import numpy as np

from .regime import KL_SCALINGS
from .spectrum import Spectrum

NOISE_PROTOCOLS = ("fresh", "fixed")
LAZY_KL_SCALINGS = ("inv_sqrt_width", "inv_width")


def derived_ridge(kl_scaling: str, beta: float, protocol: str, noise_diagonal: np.ndarray) -> np.ndarray | None:
    """The ridge Lambda (n,) of the infinite-width limit, or None where no kernel limit exists.

    beta enters only through c(m_z): under the lazy normalizations its contribution to the
    output dynamics is O(beta c(m_z) sqrt(m_z)) -> 0 (docs/theory.md 4.2), so the ridge does not
    depend on it; under c = 1 the latent means move by O(beta) and the kernel does not stay fixed.
    """
    if kl_scaling not in KL_SCALINGS:
        raise ValueError(f"kl_scaling must be one of {KL_SCALINGS}, got {kl_scaling!r}")
    if protocol not in NOISE_PROTOCOLS:
        raise ValueError(f"noise protocol must be one of {NOISE_PROTOCOLS}, got {protocol!r}")
    del beta
    if kl_scaling not in LAZY_KL_SCALINGS:
        return None
    dvec = np.asarray(noise_diagonal, np.float64)
    return dvec.copy() if protocol == "fixed" else np.zeros_like(dvec)


def solve(spectrum: Spectrum, y: np.ndarray, ridges, *, dual: bool = True) -> dict[str, np.ndarray]:
    """KRR with the mean kernel for a grid of scalar ridges, from one eigendecomposition.

    Returns fitted values Theta_bar (Theta_bar + lam I)^{-1} y, (R, n, d), and (dual=True) dual
    coefficients (Theta_bar + lam I)^{-1} y, (R, n, d) (lam = 0 uses the pseudo-inverse). All
    ridges go through one matrix product with the eigenvectors (the n^2 d R floor).
    """
    lam, vec = spectrum.mean_eigenvalues, spectrum.mean_eigenvectors
    y = np.asarray(y, np.float64)
    coef = vec.T @ y                                                     # (n, d), once
    ridges = np.atleast_1d(np.asarray(ridges, np.float64))
    denom = lam[None, :] + ridges[:, None]                               # (R, n)
    inv = np.where(np.abs(denom) > 1e-12 * np.max(np.abs(lam)), 1.0 / np.where(denom == 0, 1.0, denom), 0.0)
    weights = [lam * inv] + ([inv] if dual else [])

    def back(w):  # vec @ (w_r * coef) for every ridge r, as one (n, n) x (n, R d) product
        r, (n, d) = w.shape[0], coef.shape
        stacked = (w.T[:, :, None] * coef[:, None, :]).reshape(n, r * d)
        return np.ascontiguousarray((vec @ stacked).reshape(n, r, d).transpose(1, 0, 2))

    out = {"fit": back(weights[0])}
    if dual:
        out["dual"] = back(weights[1])
    return out


def solve_diagonal(theta_bar: np.ndarray, y: np.ndarray, ridge: np.ndarray) -> np.ndarray:
    """Theta_bar (Theta_bar + diag(ridge))^{-1} y for a non-constant diagonal ridge (Cholesky)."""
    from scipy.linalg import cho_factor, cho_solve

    mat = np.asarray(theta_bar, np.float64) + np.diag(np.asarray(ridge, np.float64))
    return theta_bar @ cho_solve(cho_factor(mat), np.asarray(y, np.float64))


def network_limit(theta_bar: np.ndarray, ridge: np.ndarray, y: np.ndarray, f0: np.ndarray, f0_bar: np.ndarray) -> np.ndarray:
    """f*(X) = f_bar_0 + Theta_bar (Theta_bar + Lambda)^{-1} (Y - f_0): the trained network's
    noise-averaged outputs on the training inputs for a given initialization (and fixed noise)."""
    return np.asarray(f0_bar, np.float64) + solve_diagonal(theta_bar, np.asarray(y) - np.asarray(f0), ridge)


def seed_limit(spectrum: Spectrum, y: np.ndarray, f0: np.ndarray, f0_bar: np.ndarray, extra_ridge: float = 0.0) -> np.ndarray:
    """f*(X) of one initialization with the noise fixed per example: f_bar_0 + Theta_bar (Theta_bar +
    diag(D) + extra_ridge I)^{-1} (Y - f_0(X; eps)), D the trained groups' noise diagonal.

    f0: the initial outputs with that seed's fixed noise draw; f0_bar: its noise-averaged initial
    outputs. extra_ridge: a scalar ridge added to D (0 is the derived limit; the fitted
    `effective_ridge` of a run is the one that best explains its outputs)."""
    y, f0, f0_bar = (np.asarray(a, np.float64) for a in (y, f0, f0_bar))
    dvec = spectrum.noise_diagonal + float(extra_ridge)
    lam, vec = spectrum.mean_eigenvalues, spectrum.mean_eigenvectors
    if np.ptp(dvec) <= 1e-6 * max(1e-300, float(np.max(np.abs(dvec)))):
        gain = lam / (lam + float(np.mean(dvec)))
        return f0_bar + vec @ (gain[:, None] * (vec.T @ (y - f0)))
    return f0_bar + solve_diagonal((vec * lam) @ vec.T, y - f0, dvec)


def mean_kernel_range(spectrum: Spectrum) -> np.ndarray:
    """Which eigenvectors of the mean kernel span its range (eigenvalue above 1e-12 of the largest)."""
    lam = spectrum.mean_eigenvalues
    return lam > 1e-12 * np.max(np.abs(lam))


def ridgeless_limit(spectrum: Spectrum, y: np.ndarray, f0_bar: np.ndarray) -> np.ndarray:
    """The noise-free kernel regression limit f_bar_0 + Theta_bar Theta_bar^+ (Y - f_bar_0): what the
    mean function interpolates to under fresh noise, the candidate that fixed noise should *not* reach."""
    y, f0_bar = np.asarray(y, np.float64), np.asarray(f0_bar, np.float64)
    keep = mean_kernel_range(spectrum)
    vec = spectrum.mean_eigenvectors
    return f0_bar + vec[:, keep] @ (vec[:, keep].T @ (y - f0_bar))

