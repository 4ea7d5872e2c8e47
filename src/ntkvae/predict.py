"""CLI: the linearized prediction of one training run from its kernel file (numpy only: no JAX).

    python -m ntkvae.predict --data results/data/digits.h5 --kernel results/kernels/digits/erf.h5 \
        --training '{...}' --run mse --out results/kernels/digits/mse/prediction.h5

The loss curves of the linearized infinite-width dynamics (fresh noise: the mean kernel with the
initial variance and the SGD kicks; noise fixed: the trained kernel with its diagonal) and
Theorem 1's bound, at the run's logged steps, for the groups the run trains. A separate CLI from
`compute_kernels` so that it starts in well under a second (the kernel job needs JAX, this does
not). Layout: docs/theory.md, "Data layout".
"""

from __future__ import annotations

import argparse
import logging
import sys

import numpy as np

from . import datasets, dynamics, io, krr, spectrum
from .config import ConfigError, parse_run_settings

log = logging.getLogger("ntkvae.predict")


KERNEL_REQUIRED = ("mean_eigenvalues", "mean_eigenvectors", "noise_diagonal/total", "noise_diagonal/W4", "theta_inf/W4")


def read_spectrum(path, train_sigma: bool = False) -> tuple[spectrum.Spectrum, dict]:
    """The spectrum of the trained kernel of a run (its `train_sigma`) from a kernel file."""
    name = spectrum.TRAINED_SETS[bool(train_sigma)]
    trained = f"trained/{name}"
    layout = {"mean_eigenvalues": ("n",), "mean_eigenvectors": ("n", "n"), f"{trained}/eigenvalues": ("n",),
              f"{trained}/eigenvectors": ("n", "n"), f"{trained}/noise_diagonal": ("n",), "noise_diagonal/W4": ("n",),
              "theta_inf/W4": ("n", "n")}
    with io.open_input(path, KERNEL_REQUIRED + (f"{trained}/eigenvalues", f"{trained}/noise_diagonal")) as f:
        # Every array present, finite (a NaN eigenvalue would make every predicted loss NaN) and of one size n.
        a = {key: io.read(f, key) for key in layout if key in f}
        attrs = dict(f.attrs)
    io.check_shapes(path, a, layout)
    mvec = a["mean_eigenvectors"]
    spec = spectrum.Spectrum(a[f"{trained}/eigenvalues"], a.get(f"{trained}/eigenvectors", mvec),
                             a[f"{trained}/noise_diagonal"], a["mean_eigenvalues"], mvec)
    extra = {"w4": a["theta_inf/W4"], "noise_w4": a["noise_diagonal/W4"], "attrs": attrs}
    return spec, extra


def predict_command(args) -> None:
    settings = parse_run_settings(args.training, "--training")
    x, attrs = datasets.load_inputs(args.data)
    spec, extra = read_spectrum(args.kernel, settings.get("train_sigma", False))
    if spec.n != x.shape[0]:
        raise io.InputFileError(f"kernel file {args.kernel} has n={spec.n}, data file {args.data} has n={x.shape[0]}")
    examples = settings.get("examples")
    if examples:  # the run trains on the first k examples: the kernels restricted to them
        x = x[:examples]
        spec = spec.restricted(np.arange(examples))
        extra = dict(extra, w4=extra["w4"][:examples, :examples], noise_w4=extra["noise_w4"][:examples])
    n, d = x.shape
    lr, steps, every = float(settings["learning_rate"]), int(settings["steps"]), int(settings["log_every"])
    grid = np.asarray(list(range(0, steps, every)) + [steps], np.float64)
    init_bar = extra["w4"] - np.diag(extra["noise_w4"])   # NNGP of the mean function (two-example W4 block)
    # The training job logs an unbiased mean-function residual (floor / K removed): no eval_samples.
    fresh = dynamics.predict_fresh_noise(spec, x, lr, grid, noise_var=extra["noise_w4"], init_cov=init_bar)
    fixed = dynamics.predict_fixed_noise(spec, -x, lr, grid, init_cov=extra["w4"])
    fixed_mean = dynamics.predict_fixed_noise_mean(spec, x, lr, grid, noise_var=extra["noise_w4"], init_cov=init_bar)
    protocol = settings.get("noise", "fresh")
    objective = settings.get("objective", "mse")
    lazy = objective == "mse" or settings.get("kl_scaling") in krr.LAZY_KL_SCALINGS
    if settings.get("optimizer", "sgd") != "sgd":
        log.warning("optimizer %s: the linearized prediction is for plain gradient descent", settings.get("optimizer"))
    prov = io.provenance({"training": settings}, dataset=str(attrs.get("dataset", "")), run=args.run,
                         kernel_file=str(args.kernel), valid_lazy_limit=bool(lazy), noise_protocol=str(protocol),
                         optimizer=str(settings.get("optimizer", "sgd")),
                         trained_set=spectrum.TRAINED_SETS[bool(settings.get("train_sigma", False))], n=int(n))
    with io.atomic_h5(args.out, prov) as f:
        f["step"] = grid
        for key in ("mean_function_mse", "mean_function_mse_exact", "deterministic_part", "init_part",
                    "sgd_noise_part", "noise_floor", "expected_mse"):
            f[f"fresh/{key}"] = fresh[key]
        f["fixed/mse"] = fixed
        for key in ("mean_function_mse", "mean_function_mse_exact", "noise_floor"):
            f[f"fixed/{key}"] = fixed_mean[key]
        # Theorem 1 applies to the sampled outputs with the noise fixed per example (rate lambda0
        # of the trained kernel); the mean function under fresh noise has no such bound.
        f["theorem1_bound"] = dynamics.theorem1_bound(grid, lr, spec.lambda0, n, float(fixed[0]))
        f["lambda0"] = spec.lambda0
        f["lambda_bar"] = spec.lambda_bar
        f["learning_rate"] = lr
        f["max_stable_learning_rate"] = spectrum.max_stable_lr(spec, n)
    log.info("wrote %s", args.out)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m ntkvae.predict", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--kernel", required=True, help="kernel file written by `python -m ntkvae.compute_kernels kernel`")
    p.add_argument("--training", required=True, help="the run's resolved training settings as JSON")
    p.add_argument("--run", default="")
    p.add_argument("--out", required=True)
    return p.parse_args(argv)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    args = parse_args(argv)
    try:
        predict_command(args)
    except (io.WorkflowFileError, ConfigError, ValueError) as err:
        log.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
