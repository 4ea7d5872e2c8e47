"""CLI: the infinite-width kernel of one (dataset, activation), its spectrum and KRR solutions;
or the linearized prediction of one training run from that kernel file.

    python -m ntkvae.compute_kernels kernel --data results/data/digits.h5 --model '{...}' \
        --kernels '{...}' --kl-scalings '["one","inv_sqrt_width","inv_width"]' \
        --out results/kernels/digits/erf.h5
    python -m ntkvae.compute_kernels predict --data results/data/digits.h5 \
        --kernel results/kernels/digits/erf.h5 --training '{...}' --out results/kernels/digits/mse/prediction.h5

The file layouts are documented in docs/theory.md, "Data layout".
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import numpy as np

from . import datasets, dynamics, io, kernels, krr
from .config import ConfigError, parse_section
from .objectives import KL_SCALINGS

log = logging.getLogger("ntkvae.compute_kernels")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m ntkvae.compute_kernels", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    k = sub.add_parser("kernel", help="Theta_inf per group, spectrum, lambda0 and KRR solutions")
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


def ridge_rows(noise: np.ndarray, grid) -> tuple[np.ndarray, list[str]]:
    """Ridges of the KRR table: 0 (fresh noise), the noise ridge D (fixed noise), then the grid."""
    return np.concatenate([[0.0, float(np.mean(noise))], np.asarray(grid, np.float64)]), \
        ["ridgeless (fresh noise)", "noise diagonal D (fixed noise)"] + [f"grid {g:g}" for g in grid]


def kernel_command(args) -> None:
    model = parse_section(args.model, "model", "--model", partial=True)
    opts = parse_section(args.kernels, "kernels", "--kernels")
    x, attrs = datasets.load_inputs(args.data)
    n, d = x.shape
    per_group = opts.get("per_group", "probe")
    if per_group not in PER_GROUP:
        raise ConfigError(f"kernels.per_group: must be one of {PER_GROUP}, got {per_group!r}")
    options = dict(block_size=opts.get("block_size", kernels.DEFAULT_BLOCK),
                   quadrature_order=opts.get("quadrature_order", kernels.DEFAULT_ORDER),
                   grid_size=opts.get("grid_size", kernels.DEFAULT_GRID), method=opts.get("method", "auto"))
    t0 = time.perf_counter()
    # On all n: the total (spectrum, KRR) and W4 (the output's NNGP, for the prediction's initial
    # variance); every group only with per_group: full. The groups on the probe points are a
    # separate small call: the same entries as the top-left block (pointwise in the inputs).
    theta = kernels.theta_inf(x, arch=model, groups=None if per_group == "full" else ("W4",), **options)
    t_kernel = time.perf_counter() - t0
    p = min(int(opts.get("probe_size", 32)), n)
    probe = kernels.theta_inf(x[:p], arch=model, **options) if p else {}
    noise = kernels.noise_diagonal(x, model, quadrature_order=opts.get("quadrature_order", kernels.DEFAULT_ORDER))
    spec = dynamics.Spectrum.from_kernel(theta["total"], noise["total"])
    constant = dynamics.diagonal_is_constant(noise["total"])
    ridges, labels = ridge_rows(noise["total"], opts.get("ridges", []))
    fits = krr.solve(spec, x, ridges, dual=False)["fit"]
    if not constant:  # unnormalized inputs: the noise ridge is a diagonal, not a scalar
        fits[1] = krr.solve_diagonal(theta["total"] - np.diag(noise["total"]), x, noise["total"])
    betas = np.asarray(opts.get("betas", [1.0]), np.float64)
    protocols = krr.NOISE_PROTOCOLS
    index = np.full((len(KL_SCALINGS), len(protocols), len(betas)), -1, np.int64)
    for i, c in enumerate(KL_SCALINGS):
        for j, proto in enumerate(protocols):
            for b, beta in enumerate(betas):
                ridge = krr.derived_ridge(c, beta, proto, noise["total"])
                if ridge is not None:
                    index[i, j, b] = 0 if proto == "fresh" else 1
    log.info("Theta_inf for n=%d, d=%d (%s) in %.1f s; lambda0=%.4g, lambda0_mean=%.4g", n, d, model.get("activation"),
             t_kernel, spec.lambda0, spec.lambda0_mean)
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
        f["eigenvalues"] = spec.eigenvalues
        f["eigenvectors"] = spec.eigenvectors
        f["mean_eigenvalues"] = spec.mean_eigenvalues
        if not constant:
            f["mean_eigenvectors"] = spec.mean_eigenvectors
        f["lambda0"] = spec.lambda0
        f["lambda0_mean"] = spec.lambda0_mean
        f["krr/ridges"] = ridges
        f["krr/ridge_labels"] = np.array(labels, dtype=object)
        f["krr/fit"] = fits
        f["krr/beta"] = betas
        f["krr/kl_scaling"] = np.array(KL_SCALINGS, dtype=object)
        f["krr/noise_protocol"] = np.array(protocols, dtype=object)
        f["krr/ridge_index"] = index
    log.info("wrote %s", args.out)


SPECTRUM_LAYOUT = {"eigenvalues": ("n",), "eigenvectors": ("n", "n"), "mean_eigenvalues": ("n",),
                   "mean_eigenvectors": ("n", "n"), "noise_diagonal/total": ("n",), "noise_diagonal/W4": ("n",),
                   "theta_inf/W4": ("n", "n")}


def read_spectrum(path) -> tuple[dynamics.Spectrum, dict]:
    """The spectrum and the W4 kernels of a kernel file: every array present, finite (a NaN
    eigenvalue would make every predicted loss NaN) and of consistent shape."""
    with io.open_input(path, tuple(k for k in SPECTRUM_LAYOUT if k != "mean_eigenvectors")) as f:
        a = {key: io.read(f, key) for key in SPECTRUM_LAYOUT if key in f}
        attrs = dict(f.attrs)
    io.check_shapes(path, a, SPECTRUM_LAYOUT)
    vec = a["eigenvectors"]
    spec = dynamics.Spectrum(a["eigenvalues"], vec, a["noise_diagonal/total"], a["mean_eigenvalues"],
                             a.get("mean_eigenvectors", vec))
    extra = {"w4": a["theta_inf/W4"], "noise_w4": a["noise_diagonal/W4"], "attrs": attrs}
    return spec, extra


def predict_command(args) -> None:
    settings = parse_section(args.training, "training", "--training", extra={"description": {"type": "string"}})
    x, attrs = datasets.load_inputs(args.data)
    n, d = x.shape
    spec, extra = read_spectrum(args.kernel)
    if spec.eigenvalues.shape[0] != n:
        raise io.InputFileError(f"kernel file {args.kernel} has n={spec.eigenvalues.shape[0]}, data has n={n}")
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
                         optimizer=str(settings.get("optimizer", "sgd")))
    with io.atomic_h5(args.out, prov) as f:
        f["step"] = grid
        for key in ("mean_function_mse", "mean_function_mse_exact", "deterministic_part", "init_part",
                    "sgd_noise_part", "noise_floor", "expected_mse"):
            f[f"fresh/{key}"] = fresh[key]
        f["fixed/mse"] = fixed
        for key in ("mean_function_mse", "mean_function_mse_exact", "noise_floor"):
            f[f"fixed/{key}"] = fixed_mean[key]
        f["theorem1_bound"] = dynamics.theorem1_bound(grid, lr, spec.lambda0, n, float(fixed[0]))
        f["theorem1_bound_mean"] = dynamics.theorem1_bound(grid, lr, spec.lambda0_mean, n,
                                                           float(fresh["mean_function_mse_exact"][0]))
        f["lambda0"] = spec.lambda0
        f["lambda0_mean"] = spec.lambda0_mean
        f["learning_rate"] = lr
        f["max_stable_learning_rate"] = dynamics.max_stable_lr(spec, n)
    log.info("wrote %s", args.out)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    args = parse_args(argv)
    try:
        kernel_command(args) if args.command == "kernel" else predict_command(args)
    except (io.WorkflowFileError, ConfigError, NotImplementedError, ValueError) as err:
        log.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
