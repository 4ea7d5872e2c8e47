"""CLI: the infinite-width kernel of one (dataset, activation) and its spectra (one per set of trained groups).

    python -m ntkvae.compute_kernels kernel --data results/data/digits.h5 --model '{...}' \
        --kernels '{...}' --out results/kernels/digits/erf.h5

The linearized prediction of a run from this file is `python -m ntkvae.predict` (numpy only).

The file layouts are documented in docs/theory.md, "Data layout".
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

import numpy as np

from . import datasets, io, kernels, spectrum
from .config import ConfigError, parse_section

log = logging.getLogger("ntkvae.compute_kernels")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m ntkvae.compute_kernels", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    k = sub.add_parser("kernel", help="Theta_inf per group, noise diagonals, spectra and lambda0 per trained set")
    k.add_argument("--data", required=True)
    k.add_argument("--model", required=True, help="the `model` config section as JSON (activation resolved)")
    k.add_argument("--kernels", default="{}", help="the `kernels` config section as JSON")
    k.add_argument("--out", required=True)
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


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    args = parse_args(argv)
    try:
        kernel_command(args)
    except (io.WorkflowFileError, ConfigError, NotImplementedError, ValueError) as err:
        log.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
