"""Reading the infinite-width kernel files and the empirical-NTK probes (numpy only).

Layout (docs/theory.md, "Data layout"): kernel files results/kernels/<dataset>/<activation>.h5
hold theta_inf/total and theta_inf/W4 (n, n) (every group with kernels.per_group: full),
probe/theta_inf/<group> (p, p) for W1, Wmu, Wsigma, W3, W4 and total on the first p examples
(same-example diagonal),
eigenvalues / eigenvectors of theta_inf/total, mean_eigenvalues of the mean kernel
Theta_bar = theta_inf - diag(D) (eigenvectors shared when D is constant, else
mean_eigenvectors), lambda0 and lambda0_mean. Prediction files
results/kernels/<dataset>/<run>/prediction.h5 hold the linearized loss curves of a run: step,
fresh/mean_function_mse (init-averaged, fresh noise: comparable to the job's
eval/mean_function_mse), theorem1_bound, theorem1_bound_mean. Training files carry
ntk/probe_index (p,) and ntk/init/<group>, ntk/final/<group> (seeds, p, p).

Where no prediction file is given (tests on synthetic kernels), the curve is computed here from
the spectrum: per output coordinate r_{t+1} = (I - eta Theta_bar / n) r_t, so with targets Y = X
and E f_0 = 0, L_lin(t) = 1/(2n) sum_k (1 - eta lambda_k / n)^(2t) ||v_k^T Y||^2, leaving out
the initial output's variance and the SGD-noise kicks that the theory's prediction includes.
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
        if p.name != "prediction.h5" and p.parent.name == dataset and (activation is None or p.stem == activation):
            return str(p)
    return None


def prediction_file_for(paths, dataset: str, run: str):
    """The prediction file results/kernels/<dataset>/<run>/prediction.h5 among `paths`, or None."""
    for path in paths or ():
        p = pathlib.Path(path)
        if p.name == "prediction.h5" and p.parent.name == run and p.parent.parent.name == dataset:
            return str(p)
    return None


def linearized_curve(run, kernel: "Kernel", paths, y) -> np.ndarray:
    """The theory's mean-function residual at the run's logged steps: from its prediction file when
    one is among `paths`, else computed from the kernel's spectrum (see the module docstring)."""
    steps = np.asarray(run.data["eval"]["step"], float)
    path = prediction_file_for(paths, run.dataset, run.run)
    if path is None:
        return kernel.linearized_loss(steps, y, run.settings["learning_rate"])
    with io.open_input(path, ("step", "fresh/mean_function_mse")) as f:
        grid, curve = io.read(f, "step", ndim=1), io.read(f, "fresh/mean_function_mse", ndim=1)
    io.check_shapes(path, {"step": grid, "fresh/mean_function_mse": curve},
                    {"step": ("steps",), "fresh/mean_function_mse": ("steps",)})
    return np.interp(steps, grid, curve)


def has_probes(run) -> bool:
    ntk = run.data.get("ntk", {})
    return "probe_index" in ntk and "init" in ntk and "final" in ntk


class Kernel:
    """Theta_inf of one dataset and activation, and its spectrum.

    The per-group kernels are read on demand: from probe/theta_inf/<group> (the first p
    examples) when the asked points lie there, else from theta_inf/<group> on all n.
    """

    def __init__(self, path):
        # Every array checked for presence and finiteness (io.read): a NaN eigenvalue never
        # reaches a figure or a claim.
        with io.open_input(path, KERNEL_REQUIRED) as f:
            self.path = str(path)
            self.probe = ({g: io.read(f["probe/theta_inf"], g, ndim=2) for g in f["probe/theta_inf"]}
                          if "probe/theta_inf" in f else {})
            mean = "mean_eigenvalues" in f
            self.eigenvalues = io.read(f, "mean_eigenvalues" if mean else "eigenvalues", ndim=1)
            # The mean kernel shares the eigenvectors of Theta_inf when the noise diagonal is constant.
            self.eigenvectors = io.read(f, "mean_eigenvectors" if "mean_eigenvectors" in f else "eigenvectors", ndim=2)
            self.lambda0 = float(io.read(f, "lambda0")) if "lambda0" in f else float(np.min(io.read(f, "eigenvalues")))
            self.kernel_kind = "mean kernel" if mean else "Theta_inf"
        io.check_shapes(path, {"eigenvalues": self.eigenvalues, "eigenvectors": self.eigenvectors},
                        {"eigenvalues": ("n",), "eigenvectors": ("n", "n")})

    def probe_block(self, index, group: str = "total") -> np.ndarray:
        """Theta_inf[group] on the points `index` (x index)."""
        index = np.asarray(index)
        block = self.probe.get(group)
        if block is not None and (index.size == 0 or index.max() < block.shape[0]):
            return block[np.ix_(index, index)]
        with io.open_input(self.path, ()) as f:
            if group not in f["theta_inf"]:
                p = 0 if block is None else block.shape[0]
                raise io.InputFileError(f"{self.path}: Theta_inf[{group}] is stored on the first {p} examples only; "
                                        "points beyond need kernels.per_group: full")
            rows, inverse = np.unique(index, return_inverse=True)   # h5py reads increasing rows only
            block = f["theta_inf"][group][rows][inverse][:, index]
        io.check_finite(block, self.path, f"theta_inf/{group}")
        return block

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
        return io.read(f, "x", ndim=2)


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
