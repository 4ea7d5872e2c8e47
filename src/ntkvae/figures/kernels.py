"""Reading the infinite-width kernel files and the empirical-NTK probes (numpy only).

Layout assumed (rules/kernels.smk of the theory branch; one place to adapt if it changes):
kernel files results/kernels/<dataset>/<activation>.h5 hold theta_inf/<group> (n, n) for W1,
Wmu, Wsigma, W3, W4 and total, eigenvalues (n,) and eigenvectors (n, n) of theta_inf/total,
lambda0, and, when the theory provides them, mean_eigenvalues / mean_eigenvectors of the
mean kernel (every pair two different examples, the kernel of the noise-averaged function
under fresh noise). Training files carry ntk/probe_index (p,) and ntk/init/<group>,
ntk/final/<group> (seeds, p, p).

The linearized prediction for the mean-function residual, in our normalization
(L = 1/(2n) sum ||f(x_i) - x_i||^2, gradient descent with step eta): per output coordinate
r_{t+1} = (I - eta Theta / n) r_t, so with Theta = V diag(lambda) V^T and targets Y = X,

    L_lin(t) = 1/(2n) sum_k (1 - eta lambda_k / n)^(2t) ||v_k^T (Y - f_0)||^2,

averaged over initializations (E f_0 = 0). We drop the initial output's own contribution
E||v_k^T f_0||^2 (the network's output variance at init; about 10% of L(0) at the default
scale): the prediction starts at ||Y||^2 / (2n) instead of the measured L(0).
"""

from __future__ import annotations

import pathlib

import numpy as np

from .. import io

KERNEL_REQUIRED = ("theta_inf/total", "eigenvalues", "eigenvectors")


def kernel_file_for(kernel_paths, dataset: str, activation: str | None = None):
    """The kernel file of `dataset` (and `activation`, if given) among `kernel_paths`, or None."""
    for path in kernel_paths or ():
        p = pathlib.Path(path)
        if p.parent.name == dataset and (activation is None or p.stem == activation):
            return str(p)
    return None


def has_probes(run) -> bool:
    ntk = run.data.get("ntk", {})
    return "probe_index" in ntk and "init" in ntk and "final" in ntk


class Kernel:
    """Theta_inf of one dataset and activation, and its spectrum."""

    def __init__(self, path):
        with io.open_input(path, KERNEL_REQUIRED) as f:
            self.path = str(path)
            self.theta = {g: f["theta_inf"][g][()] for g in f["theta_inf"]}
            mean = "mean_eigenvalues" in f
            self.eigenvalues = f["mean_eigenvalues" if mean else "eigenvalues"][()]
            self.eigenvectors = f["mean_eigenvectors" if mean else "eigenvectors"][()]
            self.lambda0 = float(f["lambda0"][()]) if "lambda0" in f else float(np.min(f["eigenvalues"][()]))
            self.kernel_kind = "mean kernel" if mean else "Theta_inf"

    def probe_block(self, index, group: str = "total") -> np.ndarray:
        index = np.asarray(index)
        return self.theta[group][np.ix_(index, index)]

    def rate_lambda(self) -> float:
        """The smallest eigenvalue of the kernel that drives the mean function."""
        return float(np.min(self.eigenvalues))

    def linearized_loss(self, steps, y, learning_rate: float) -> np.ndarray:
        """L_lin(t) at the given steps (see the module docstring)."""
        n = y.shape[0]
        coef = np.sum((self.eigenvectors.T @ np.asarray(y, float)) ** 2, axis=1)   # ||v_k^T Y||^2
        decay = (1.0 - learning_rate * self.eigenvalues / n)[None, :] ** (2 * np.asarray(steps, float)[:, None])
        return decay @ coef / (2 * n)


def relative_frobenius(a, b) -> np.ndarray:
    """||a - b||_F / ||b||_F over the last two axes."""
    return np.linalg.norm(a - b, axis=(-2, -1)) / np.linalg.norm(b, axis=(-2, -1))


def kernel_change(run, group: str = "total") -> np.ndarray:
    """Per seed ||Theta_m(T) - Theta_m(0)|| / ||Theta_m(0)||."""
    ntk = run.data["ntk"]
    return relative_frobenius(ntk["final"][group], ntk["init"][group])


def distance_to_limit(run, kernel: Kernel, group: str = "total") -> np.ndarray:
    """Per seed ||Theta_m(0) - Theta_inf|| / ||Theta_inf|| on the probe points."""
    return relative_frobenius(run.data["ntk"]["init"][group], kernel.probe_block(run.data["ntk"]["probe_index"], group))


def lambda_min(matrices) -> np.ndarray:
    """Smallest eigenvalue of each (symmetrized) matrix of a stack."""
    m = np.asarray(matrices, float)
    return np.linalg.eigvalsh(0.5 * (m + np.swapaxes(m, -1, -2)))[..., 0]


def curve_distance(measured, predicted) -> float:
    """RMS over logged steps of log(measured / predicted): how far a loss curve is from the theory's."""
    measured, predicted = np.asarray(measured, float), np.asarray(predicted, float)
    ok = (measured > 0) & (predicted > 0)
    return float(np.sqrt(np.mean(np.log(measured[ok] / predicted[ok]) ** 2)))


def data_targets(path) -> np.ndarray:
    """The training targets Y = X (the autoencoder reconstructs its inputs) from the dataset file."""
    with io.open_input(path, ("x",)) as f:
        return f["x"][()]


def kernel_predictor(kernel: Kernel, y, learning_rate: float, steps: int) -> np.ndarray:
    """Outputs (n, d) of the linearized infinite-width model after `steps` steps from f_0 = 0.

    f_T = V diag(1 - (1 - eta lambda / n)^T) V^T Y: the kernel regression that gradient descent
    on the linearized model computes; as T grows it tends to the (ridgeless, under fresh noise)
    KRR solution.
    """
    y = np.asarray(y, float)
    n = y.shape[0]
    gain = 1.0 - (1.0 - learning_rate * kernel.eigenvalues / n) ** steps
    return kernel.eigenvectors @ (gain[:, None] * (kernel.eigenvectors.T @ y))


def distance_to_predictor(run, kernel: Kernel, y) -> np.ndarray:
    """Per seed ||f_net - f_T|| / ||f_T|| on the training examples whose reconstructions were stored."""
    rec = run.data["reconstructions"]
    target = kernel_predictor(kernel, y, run.settings["learning_rate"], run.settings["steps"])[rec["index"]]
    return np.linalg.norm(rec["mean"] - target, axis=(-2, -1)) / np.linalg.norm(target)
