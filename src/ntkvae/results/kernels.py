"""Reading the infinite-width kernel files, the predictions and the empirical-NTK probes (numpy only).

Layout (docs/theory.md, "Data layout"): kernel files results/kernels/<dataset>/<activation>.h5
hold theta_inf/total and theta_inf/W4 (n, n) (every group with kernels.per_group: full; the
total is over every group), probe/theta_inf/<group> (p, p) on the first p examples,
noise_diagonal/<group> (n,), the mean kernel's mean_eigenvalues / mean_eigenvectors and
lambda_bar, and per set of trained groups (trained/sigma_frozen, trained/sigma_trained) the
eigenvalues, noise diagonal and lambda0 of the trained kernel Theta_bar + diag(D_trained)
(ntkvae.spectrum). Prediction files results/kernels/<dataset>/<run>/prediction.h5 hold the
linearized loss curves of a run. Training files carry ntk/probe_index (p,) and
ntk/init/<group>, ntk/final/<group> (seeds, p, p).

Every comparison uses the kernel of the groups the run trains: the Theta_m total of a run with
Wsigma frozen is the sum of its trained groups, as is the Theta_inf it is compared with.
"""

from __future__ import annotations

import numpy as np

from .. import io, paths
from ..spectrum import TRAINED_SETS, Spectrum, frozen_diagonal, trained_groups, trained_total

KERNEL_REQUIRED = ("theta_inf/total", "mean_eigenvalues", "mean_eigenvectors", "noise_diagonal/total",
                   "lambda_bar")


def kernel_file_for(kernel_paths, dataset: str, activation: str | None = None):
    """The kernel file of `dataset` (and `activation`, if given) among `kernel_paths`, or None."""
    for path in kernel_paths or ():
        kernel = paths.parse_kernel(path)
        if kernel and kernel["dataset"] == dataset and activation in (None, kernel["activation"]):
            return str(path)
    return None


def prediction_file_for(files, dataset: str, run: str):
    """The prediction file results/kernels/<dataset>/<run>/prediction.h5 among `files`, or None."""
    for path in files or ():
        if paths.parse_prediction(path) == {"dataset": dataset, "run": run}:
            return str(path)
    return None


def train_sigma_of(run) -> bool:
    return bool(run.settings.get("train_sigma", False))


class Kernel:
    """Theta_inf of one dataset and activation: per-group probe blocks, noise diagonals, spectra.

    The per-group kernels are read on demand: from probe/theta_inf/<group> (the first p
    examples) when the asked points lie there, else from theta_inf/<group> on all n.
    """

    def __init__(self, path):
        with io.open_input(path, KERNEL_REQUIRED) as f:
            self.path = str(path)
            # io.read: every array present, a dataset, finite (a NaN eigenvalue never reaches a
            # figure or a claim); check_shapes below: of one size n.
            self.probe = ({g: io.read(f["probe/theta_inf"], g, ndim=2) for g in f["probe/theta_inf"]}
                          if "probe/theta_inf" in f else {})
            self.noise = {g: io.read(f["noise_diagonal"], g, ndim=1) for g in f["noise_diagonal"]}
            self.mean_eigenvalues = io.read(f, "mean_eigenvalues", ndim=1)
            self.mean_eigenvectors = io.read(f, "mean_eigenvectors", ndim=2)
            self.lambda_bar = float(io.read(f, "lambda_bar", ndim=0))
            self._trained = {}
            layout = {"mean_eigenvalues": ("n",), "mean_eigenvectors": ("n", "n"),
                      **{f"noise_diagonal/{g}": ("n",) for g in self.noise}}
            arrays = {"mean_eigenvalues": self.mean_eigenvalues, "mean_eigenvectors": self.mean_eigenvectors,
                      **{f"noise_diagonal/{g}": v for g, v in self.noise.items()}}
            for ts, name in TRAINED_SETS.items():
                if f"trained/{name}/eigenvalues" in f:
                    key = f"trained/{name}"
                    vec = io.read(f, f"{key}/eigenvectors", ndim=2) if f"{key}/eigenvectors" in f else None
                    self._trained[ts] = (io.read(f, f"{key}/eigenvalues", ndim=1), vec,
                                         io.read(f, f"{key}/noise_diagonal", ndim=1))
                    arrays.update({f"{key}/eigenvalues": self._trained[ts][0], f"{key}/noise_diagonal": self._trained[ts][2]})
                    layout.update({f"{key}/eigenvalues": ("n",), f"{key}/noise_diagonal": ("n",)})
                    if vec is not None:
                        arrays[f"{key}/eigenvectors"], layout[f"{key}/eigenvectors"] = vec, ("n", "n")
            self.n = io.check_shapes(path, arrays, layout)["n"]

    # ------------------------------------------------------------------ spectra

    def spectrum(self, train_sigma: bool) -> Spectrum:
        """The trained kernel of a run on the whole training set (its eigenpairs) and the mean kernel."""
        if train_sigma not in self._trained:
            raise io.InputFileError(f"{self.path} lacks trained/{TRAINED_SETS[train_sigma]}")
        lam, vec, dvec = self._trained[train_sigma]
        return Spectrum(lam, self.mean_eigenvectors if vec is None else vec, dvec, self.mean_eigenvalues,
                        self.mean_eigenvectors)

    def lambda0(self, train_sigma: bool) -> float:
        """lambda_min of the trained kernel on the whole training set (the paper's lambda_0)."""
        return self.spectrum(train_sigma).lambda0

    def spectrum_on(self, index, train_sigma: bool) -> Spectrum:
        """The trained kernel and the mean kernel restricted to the examples `index` (a run's `examples`)."""
        return self.spectrum(train_sigma).restricted(np.asarray(index))

    # ------------------------------------------------------------------ blocks

    def probe_block(self, index, group: str = "total") -> np.ndarray:
        """Theta_inf[group] on the points `index` (x index); 'total' is over every group."""
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

    def trained_block(self, index, train_sigma: bool) -> np.ndarray:
        """Theta_inf of the trained groups on the points `index`: the total less the frozen groups'
        diagonal (the variance weights are zero between different examples)."""
        index = np.asarray(index)
        frozen = frozen_diagonal({g: v[index] for g, v in self.noise.items()}, train_sigma)
        block = self.probe_block(index, "total")
        same = index[:, None] == index[None, :]
        return block - np.where(same, frozen[:, None], 0.0)

    def probe_groups(self) -> tuple[str, ...]:
        return tuple(g for g in self.probe if g != "total")

    def linearized_loss(self, steps, y, learning_rate: float) -> np.ndarray:
        """L_lin(t) of the mean function from f_0 = 0 (no init variance, no SGD kicks): a fallback for
        synthetic tests without prediction files. Per output coordinate r_{t+1} = (I - eta Theta_bar / n) r_t."""
        return mean_kernel_loss(self.mean_eigenvalues, self.mean_eigenvectors, steps, y, learning_rate)


def mean_kernel_loss(eigenvalues, eigenvectors, steps, y, learning_rate: float) -> np.ndarray:
    """1/(2n) sum_k (1 - eta lambda_k / n)^(2t) ||v_k^T Y||^2 at the given steps."""
    n = y.shape[0]
    coef = np.sum((eigenvectors.T @ np.asarray(y, float)) ** 2, axis=1)   # ||v_k^T Y||^2
    decay = (1.0 - learning_rate * eigenvalues / n)[None, :] ** (2 * np.asarray(steps, float)[:, None])
    return decay @ coef / (2 * n)


class Prediction:
    """A run's linearized prediction file (rule `predict`)."""

    REQUIRED = ("step", "fresh/mean_function_mse", "fixed/mse", "theorem1_bound", "lambda0", "lambda_bar")

    def __init__(self, path):
        with io.open_input(path, self.REQUIRED) as f:
            self.path = str(path)
            self.step = io.read(f, "step", ndim=1)
            self.fresh = {k: io.read(f["fresh"], k) for k in f["fresh"]}
            self.fixed = {k: io.read(f["fixed"], k) for k in f["fixed"]}
            self.theorem1_bound = io.read(f, "theorem1_bound", ndim=1)
            self.lambda0 = float(io.read(f, "lambda0", ndim=0))
            self.lambda_bar = float(io.read(f, "lambda_bar", ndim=0))
            self.attrs = dict(f.attrs)
        io.check_shapes(path, {"step": self.step, "fresh/mean_function_mse": self.fresh["mean_function_mse"],
                               "theorem1_bound": self.theorem1_bound},
                        {"step": ("steps",), "fresh/mean_function_mse": ("steps",), "theorem1_bound": ("steps",)})

    def at(self, steps, curve: str = "fresh/mean_function_mse") -> np.ndarray:
        protocol, key = curve.split("/")
        return np.interp(np.asarray(steps, float), self.step, getattr(self, protocol)[key])


def linearized_curve(run, kernel: Kernel, prediction_paths, y) -> np.ndarray:
    """The theory's mean-function residual at the run's logged steps: from its prediction file when
    one is among `prediction_paths`, else the mean-kernel fallback (Kernel.linearized_loss)."""
    steps = np.asarray(run.data["eval"]["step"], float)
    path = prediction_file_for(prediction_paths, run.dataset, run.run)
    if path is None:
        return kernel.linearized_loss(steps, y, run.settings["learning_rate"])
    return Prediction(path).at(steps)


# ---------------------------------------------------------------------- empirical NTK probes

def has_probes(run) -> bool:
    ntk = run.data.get("ntk", {})
    return "probe_index" in ntk and "init" in ntk and "final" in ntk


def theta_m(run, stage: str, group: str = "total") -> np.ndarray:
    """Theta_m per seed (seeds, p, p) at 'init' or 'final'; 'total' sums the groups the run trains."""
    blocks = run.data["ntk"][stage]
    if group != "total":
        return np.asarray(blocks[group], float)
    per_group = {g: v for g, v in blocks.items() if g != "total"}
    return trained_total(per_group, train_sigma_of(run)) if per_group else np.asarray(blocks["total"], float)


def theta_inf_probe(run, kernel: Kernel, group: str = "total") -> np.ndarray:
    """Theta_inf on the run's probe points: one group, or (total) the sum of the groups it trains."""
    index = run.data["ntk"]["probe_index"]
    if group != "total":
        return kernel.probe_block(index, group)
    return kernel.trained_block(index, train_sigma_of(run))


def probed_groups(run) -> list[str]:
    """The groups the run trains that its probes hold, then 'total'."""
    names = [g for g in run.data["ntk"]["init"] if g != "total"]
    return [*trained_groups(names, train_sigma_of(run)), "total"]


def relative_frobenius(a, b) -> np.ndarray:
    """||a - b||_F / ||b||_F over the last two axes."""
    return np.linalg.norm(a - b, axis=(-2, -1)) / np.linalg.norm(b, axis=(-2, -1))


def kernel_change(run, group: str = "total") -> np.ndarray:
    """Per seed ||Theta_m(T) - Theta_m(0)|| / ||Theta_m(0)|| (trained groups for the total)."""
    return relative_frobenius(theta_m(run, "final", group), theta_m(run, "init", group))


def distance_to_limit(run, kernel: Kernel, group: str = "total") -> np.ndarray:
    """Per seed ||Theta_m(0) - Theta_inf|| / ||Theta_inf|| on the probe points (trained groups for the total)."""
    return relative_frobenius(theta_m(run, "init", group), theta_inf_probe(run, kernel, group))


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
    """Outputs (n, d) of the linearized mean function after `steps` steps from f_0 = 0 (fresh noise):
    f_T = V diag(1 - (1 - eta lambda / n)^T) V^T Y with the mean kernel's eigenpairs."""
    y = np.asarray(y, float)
    n = y.shape[0]
    lam, vec = kernel.mean_eigenvalues, kernel.mean_eigenvectors
    gain = 1.0 - (1.0 - learning_rate * lam / n) ** steps
    return vec @ (gain[:, None] * (vec.T @ y))


def distance_to_predictor(run, kernel: Kernel, y) -> np.ndarray:
    """Per seed ||f_net - f_T|| / ||f_T|| on the training examples whose reconstructions were stored."""
    rec = run.data["reconstructions"]
    target = kernel_predictor(kernel, y, run.settings["learning_rate"], run.settings["steps"])[rec["index"]]
    return np.linalg.norm(rec["mean"] - target, axis=(-2, -1)) / np.linalg.norm(target)
