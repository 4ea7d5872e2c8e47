"""The kernel of what is trained, on the training set, and its spectrum (numpy only).

Theta_inf(X) = Theta_bar + diag(D) (docs/theory.md §3): the mean kernel Theta_bar (every pair
two different examples) and the noise diagonal D, each a sum over parameter groups. A run
trains some groups and freezes others (`train_sigma: false` freezes Wsigma and bsigma), and
gradient descent moves the output only along the gradients of the trained groups, so every
prediction uses the kernel of the trained groups. The frozen variance weights live entirely on
the same-example diagonal (their gradient is the noise's, independent across examples), so
freezing them changes D and not Theta_bar: D_trained = D - D_Wsigma (- D_bsigma), and the
trained kernel is Theta_bar + diag(D_trained).

Names used everywhere (figures, claims, docs):
  lambda0    = lambda_min(Theta_bar + diag(D_trained)), the trained kernel on the training set
               (the paper's lambda_0; the rate of Theorem 1, noise fixed per example);
  lambda_bar = lambda_min(Theta_bar), the mean kernel's least eigenvalue (the rate of the
               noise-averaged function when the noise is fresh every step).
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping

import numpy as np

# SIGMA_GROUPS: the groups frozen by `train_sigma: false` (the paper's setting for Theorem 2).
from .groups import SIGMA_GROUPS

# Names of the two trained-group sets, as stored in kernel files (`trained/<name>/...`).
TRAINED_SETS = {False: "sigma_frozen", True: "sigma_trained"}
CONSTANT_DIAGONAL_RTOL = 1e-6


def trained_groups(groups: Iterable[str], train_sigma: bool) -> tuple[str, ...]:
    """The groups a run trains, out of `groups` ('total' never counts as a group)."""
    return tuple(g for g in groups if g != "total" and (train_sigma or g not in SIGMA_GROUPS))


def trained_total(blocks: Mapping[str, np.ndarray], train_sigma: bool) -> np.ndarray:
    """Sum of the per-group kernels (or noise diagonals) of the trained groups."""
    names = trained_groups(blocks, train_sigma)
    if not names:
        raise ValueError("no trained parameter group among " + ", ".join(blocks))
    return sum(np.asarray(blocks[g], np.float64) for g in names)


def frozen_diagonal(noise: Mapping[str, np.ndarray], train_sigma: bool) -> np.ndarray:
    """What the frozen groups contribute to Theta_inf(X): only a diagonal (n,), zero when all are trained."""
    total = np.asarray(noise["total"], np.float64)
    if train_sigma:
        return np.zeros_like(total)
    return sum((np.asarray(noise[g], np.float64) for g in SIGMA_GROUPS if g in noise), np.zeros_like(total))


def diagonal_is_constant(dvec) -> bool:
    """Whether the noise diagonal D is a constant up to CONSTANT_DIAGONAL_RTOL (normalized inputs,
    float32 rounding included): the mean kernel is then Theta - mean(D) I."""
    dvec = np.asarray(dvec, np.float64)
    return bool(np.ptp(dvec) <= CONSTANT_DIAGONAL_RTOL * max(1e-300, float(np.max(np.abs(dvec)))))


@dataclasses.dataclass(frozen=True)
class Spectrum:
    """Eigendecomposition of the trained kernel Theta = Theta_bar + diag(D) and of Theta_bar."""

    eigenvalues: np.ndarray        # of Theta, ascending
    eigenvectors: np.ndarray       # columns
    noise_diagonal: np.ndarray     # D of the trained groups (n,)
    mean_eigenvalues: np.ndarray   # of Theta_bar, ascending
    mean_eigenvectors: np.ndarray

    @classmethod
    def from_kernel(cls, theta: np.ndarray, noise_diagonal: np.ndarray) -> "Spectrum":
        """From Theta (with its same-example diagonal) and its noise diagonal D."""
        theta = np.asarray(theta, np.float64)
        dvec = np.asarray(noise_diagonal, np.float64)
        lam, vec = np.linalg.eigh(theta)
        if diagonal_is_constant(dvec):
            # Normalized inputs: D is a constant, Theta_bar = Theta - D I shares the eigenvectors
            # (for float32 data D varies by ~1e-7 relative; by Weyl's inequality the mean
            # eigenvalues are then exact to max |D - mean D|, and one eigh is saved).
            return cls(lam, vec, dvec, lam - float(np.mean(dvec)), vec)
        mlam, mvec = np.linalg.eigh(theta - np.diag(dvec))
        return cls(lam, vec, dvec, mlam, mvec)

    @classmethod
    def from_mean_kernel(cls, mean_eigenvalues, mean_eigenvectors, noise_diagonal) -> "Spectrum":
        """From the eigendecomposition of Theta_bar and the trained groups' D (one eigh saved when D is constant)."""
        mlam = np.asarray(mean_eigenvalues, np.float64)
        mvec = np.asarray(mean_eigenvectors, np.float64)
        dvec = np.asarray(noise_diagonal, np.float64)
        if diagonal_is_constant(dvec):
            return cls(mlam + float(np.mean(dvec)), mvec, dvec, mlam, mvec)
        lam, vec = np.linalg.eigh((mvec * mlam) @ mvec.T + np.diag(dvec))
        return cls(lam, vec, dvec, mlam, mvec)

    @property
    def lambda0(self) -> float:
        """lambda_min of the trained kernel Theta_bar + diag(D) on the training set (the paper's lambda_0)."""
        return float(self.eigenvalues[0])

    @property
    def lambda_bar(self) -> float:
        """lambda_min of the mean kernel Theta_bar: the mean function's rate under fresh noise."""
        return float(self.mean_eigenvalues[0])

    @property
    def n(self) -> int:
        return int(self.eigenvalues.shape[0])

    def restricted(self, index) -> "Spectrum":
        """The same kernels on a subset of the training points (a principal submatrix, re-diagonalized)."""
        index = np.asarray(index)
        bar = ((self.mean_eigenvectors * self.mean_eigenvalues) @ self.mean_eigenvectors.T)[np.ix_(index, index)]
        dvec = self.noise_diagonal[index]
        return Spectrum.from_kernel(bar + np.diag(dvec), dvec)


def max_stable_lr(spectrum: Spectrum, n: int) -> float:
    """Gradient descent on the linearized model is stable for eta < 2 n / lambda_max (infinite width)."""
    return 2.0 * n / float(spectrum.eigenvalues[-1])
