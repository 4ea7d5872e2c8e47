"""CLI: the infinite-width kernel of one (dataset, activation) and its spectra (one per set of trained groups);
or the linearized prediction of one training run from that kernel file.

    python -m ntkvae.compute_kernels kernel --data results/data/digits.h5 --model '{...}' \
        --kernels '{...}' --out results/kernels/digits/erf.h5
    python -m ntkvae.compute_kernels predict --data results/data/digits.h5 \
        --kernel results/kernels/digits/erf.h5 --training '{...}' --out results/kernels/digits/mse/prediction.h5

The file layouts are documented in docs/theory.md, "Data layout".
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

import numpy as np

from . import datasets, dynamics, io, kernels, krr, spectrum
from .config import ConfigError

log = logging.getLogger("ntkvae.compute_kernels")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m ntkvae.compute_kernels", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    k = sub.add_parser("kernel", help="Theta_inf per group, noise diagonals, spectra and lambda0 per trained set")
    k.add_argument("--data", required=True)
    k.add_argument("--model", required=True, help="the `model` config section as JSON (activation resolved)")
    k.add_argument("--kernels", default="{}", help="the `kernels` config section as JSON")
    k.add_argument("--out", required=True)
    r = sub.add_parser("predict", help="linearized loss-curve prediction of one training run")
    r.add_argument("--data", required=True)
    r.add_argument("--kernel", required=True, help="kernel file written by the `kernel` command")
    r.add_argument("--training", required=True, help="the run's resolved training settings as JSON")
    r.add_argument("--run", default="")
    r.add_argument("--out", required=True)
    return p.parse_args(argv)


PER_GROUP = ("probe", "full")


def spectrum_of(x: np.ndarray, arch, train_sigma: bool = False) -> tuple[spectrum.Spectrum, dict, dict]:
    """Theta_inf(X) per group, its noise diagonal per group, and the spectrum of the kernel of the
    groups a run trains (`train_sigma: false` leaves Wsigma and bsigma out: ntkvae.spectrum)."""
    theta = kernels.theta_inf(x, arch=arch)
    noise = kernels.noise_diagonal(x, arch)
    frozen = spectrum.frozen_diagonal(noise, train_sigma)
    spec = spectrum.Spectrum.from_kernel(theta["total"] - np.diag(frozen), noise["total"] - frozen)
    return spec, theta, noise


def kernel_command(args) -> None:
    model = json.loads(args.model)
    opts = json.loads(args.kernels)
    x, attrs = datasets.load_inputs(args.data)
    n, d = x.shape
    per_group = opts.get("per_group", "probe")
    if per_group not in PER_GROUP:
        raise ConfigError(f"kernels.per_group: must be one of {PER_GROUP}, got {per_group!r}")
    options = dict(block_size=opts.get("block_size", kernels.DEFAULT_BLOCK),
                   quadrature_order=opts.get("quadrature_order", kernels.DEFAULT_ORDER),
                   grid_size=opts.get("grid_size", kernels.DEFAULT_GRID), method=opts.get("method", "auto"))
    t0 = time.perf_counter()
    # On all n: the total (spectra) and W4 (the output's NNGP, for the prediction's initial
    # variance); every group only with per_group: full. The groups on the probe points are a
    # separate small call: the same entries as the top-left block (pointwise in the inputs).
    theta = kernels.theta_inf(x, arch=model, groups=None if per_group == "full" else ("W4",), **options)
    t_kernel = time.perf_counter() - t0
    p = min(int(opts.get("probe_size", 32)), n)
    probe = kernels.theta_inf(x[:p], arch=model, **options) if p else {}
    noise = kernels.noise_diagonal(x, model, quadrature_order=opts.get("quadrature_order", kernels.DEFAULT_ORDER))
    # One eigendecomposition of the mean kernel Theta_bar (the same for every set of trained
    # groups: the frozen variance weights live on the diagonal only); each trained set's
    # kernel Theta_bar + diag(D_trained) shares its eigenvectors when D is constant.
    full = spectrum.Spectrum.from_kernel(theta["total"], noise["total"])
    constant = spectrum.diagonal_is_constant(noise["total"])
    trained = {ts: spectrum.Spectrum.from_mean_kernel(full.mean_eigenvalues, full.mean_eigenvectors,
                                                      noise["total"] - spectrum.frozen_diagonal(noise, ts))
               for ts in spectrum.TRAINED_SETS}
    log.info("Theta_inf for n=%d, d=%d (%s) in %.1f s; lambda0 = %.4g (Wsigma frozen), %.4g (trained); "
             "lambda_bar = %.4g", n, d, model.get("activation"), t_kernel, trained[False].lambda0,
             trained[True].lambda0, full.lambda_bar)
    prov = io.provenance({"model": model, "kernels": opts}, dataset=str(attrs.get("dataset", "")), n=int(n), d=int(d),
                         activation=str(model.get("activation")), data_file=str(args.data), seconds_theta=t_kernel,
                         noise_diagonal_constant=bool(constant), per_group=per_group, probe_size=int(p))
    with io.atomic_h5(args.out, prov) as f:
        for g, v in theta.items():
            f[f"theta_inf/{g}"] = v
        f["probe/index"] = np.arange(p)
        for g, v in probe.items():
            f[f"probe/theta_inf/{g}"] = v
        for g, v in noise.items():
            f[f"noise_diagonal/{g}"] = v
        f["mean_eigenvalues"] = full.mean_eigenvalues
        f["mean_eigenvectors"] = full.mean_eigenvectors
        f["lambda_bar"] = full.lambda_bar
        for ts, name in spectrum.TRAINED_SETS.items():
            spec = trained[ts]
            f[f"trained/{name}/eigenvalues"] = spec.eigenvalues
            f[f"trained/{name}/noise_diagonal"] = spec.noise_diagonal
            f[f"trained/{name}/lambda0"] = spec.lambda0
            if not spectrum.diagonal_is_constant(spec.noise_diagonal):
                f[f"trained/{name}/eigenvectors"] = spec.eigenvectors
            f[f"trained/{name}"].attrs["groups"] = json.dumps(spectrum.trained_groups(noise, ts))
    log.info("wrote %s", args.out)


KERNEL_REQUIRED = ("mean_eigenvalues", "mean_eigenvectors", "noise_diagonal/total", "noise_diagonal/W4", "theta_inf/W4")


def read_spectrum(path, train_sigma: bool = False) -> tuple[spectrum.Spectrum, dict]:
    """The spectrum of the trained kernel of a run (its `train_sigma`) from a kernel file."""
    name = spectrum.TRAINED_SETS[bool(train_sigma)]
    with io.open_input(path, KERNEL_REQUIRED + (f"trained/{name}/eigenvalues",)) as f:
        mvec = f["mean_eigenvectors"][()]
        vec = f[f"trained/{name}/eigenvectors"][()] if f"trained/{name}/eigenvectors" in f else mvec
        spec = spectrum.Spectrum(f[f"trained/{name}/eigenvalues"][()], vec, f[f"trained/{name}/noise_diagonal"][()],
                                 f["mean_eigenvalues"][()], mvec)
        extra = {"w4": f["theta_inf/W4"][()], "noise_w4": f["noise_diagonal/W4"][()], "attrs": dict(f.attrs)}
    return spec, extra


def predict_command(args) -> None:
    settings = json.loads(args.training)
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


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    args = parse_args(argv)
    try:
        kernel_command(args) if args.command == "kernel" else predict_command(args)
    except (io.InputFileError, ConfigError, NotImplementedError, ValueError) as err:
        log.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
