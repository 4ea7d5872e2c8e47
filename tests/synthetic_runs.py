"""Synthetic training and dataset HDF5 files with known answers, for the figure and claims tests.

The layout is that of ntkvae.train.write_output and ntkvae.datasets; the values are
formulas chosen so that each claim's verdict is known in advance.
"""

from __future__ import annotations

import json

import h5py
import numpy as np

GROUPS = ("W1", "Wmu", "Wsigma", "W3", "W4")


def weight_counts(width, d, latent):
    return {"W1": width * d, "Wmu": latent * width, "Wsigma": latent * width, "W3": width * latent, "W4": d * width}


def write_run(path, *, dataset="toy", run="mse", width=64, n=16, d=16, seeds=(0, 1), steps=40, log_every=10,
              activation="erf", objective="mse", beta=1.0, rate=0.02, floor=0.5, kl=1.0,
              weight_change_exponent=-0.5, frozen=("Wsigma",), description="", image_side=4):
    """One run file; mean-function residual decays like exp(-rate t), weight change like #weights^exponent."""
    seeds = np.asarray(seeds)
    train_steps = np.arange(steps)
    eval_steps = np.array(list(range(0, steps, log_every)) + [steps])
    jitter = 1 + 0.01 * np.arange(len(seeds))[:, None]          # seeds differ a little
    residual = 10.0 * np.exp(-rate * eval_steps)[None, :] * jitter
    training = {"objective": objective, "optimizer": "sgd", "learning_rate": 1.0, "steps": steps,
                "seeds": seeds.tolist(), "beta": beta, "kl_scaling": "inv_sqrt_width", "train_sigma": False,
                "log_every": log_every, "description": description}
    model = {"activation": activation, "weight_std": 1.0, "bias": False, "latent_width": "same", "widths": [width]}
    cfg = {"dataset": dataset, "run": run, "width": width, "model": model, "training": training}
    counts = weight_counts(width, d, width)
    with h5py.File(path, "w") as f:
        f.attrs.update({"config": json.dumps(cfg), "dataset": dataset, "run": run, "width": width,
                        "latent_width": width, "n": n, "d": d, "objective": objective})
        f["seeds"] = seeds
        f["train/step"] = train_steps
        f["train/objective"] = 10.0 * np.exp(-rate * train_steps)[None, :] * jitter + floor
        f["train/mse"] = f["train/objective"][()]
        f["train/kl"] = np.full((len(seeds), steps), kl)
        f["eval/step"] = eval_steps
        f["eval/mean_function_mse"] = residual
        f["eval/noise_floor"] = np.full_like(residual, floor)
        f["eval/expected_mse"] = residual + floor
        f["eval/kl"] = np.full_like(residual, kl)
        for g in GROUPS:
            grow = 1 - np.exp(-eval_steps / 10.0)
            value = 0.0 if g in frozen else counts[g] ** weight_change_exponent
            f[f"weight_change/{g}"] = value * grow[None, :] * jitter
        k = min(4, n)
        rng = np.random.default_rng(width)
        f["reconstructions/index"] = np.arange(k)
        f["reconstructions/mean"] = rng.normal(size=(len(seeds), k, d))
        f["reconstructions/sample"] = rng.normal(size=(len(seeds), k, d))
        f["generation/prior"] = rng.normal(size=(len(seeds), 8, d))
        f["generation/traversal"] = rng.normal(size=(len(seeds), 3, 7, d))
        f["generation/values"] = np.linspace(-2.5, 2.5, 7)
        f["generation/latent/mu_sq"] = np.full(len(seeds), kl)
        f["generation/latent/posterior_variance"] = np.ones(len(seeds))
        f["generation/latent/active_fraction"] = np.ones(len(seeds))
        f["generation/latent/direction_sd"] = np.ones((len(seeds), 3))
    return str(path)


def write_dataset(path, *, dataset="toy", n=16, side=4):
    d = side * side
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(n, side, side, 1)).astype(np.float32)
    flat = images.reshape(n, d)
    mean = flat.mean(axis=0)
    centred = flat - mean
    scale = np.linalg.norm(centred, axis=1) / np.sqrt(d)
    with h5py.File(path, "w") as f:
        f.attrs.update({"dataset": dataset, "n": n, "d": d, "image_shape": json.dumps([side, side, 1])})
        f["x"] = centred / scale[:, None]
        f["images"] = images
        f["index"] = np.arange(n)
        f["mean"] = mean
        f["scale"] = scale
    return str(path)


def spd_kernel(n, seed=0):
    """A symmetric positive-definite stand-in for Theta_inf (n, n), eigenvalues between about 1 and 6."""
    rng = np.random.default_rng(seed)
    g = rng.normal(size=(n, 2 * n))
    return 2.0 * (g @ g.T / (2 * n) + 0.5 * np.eye(n))   # eta lambda / n well below 2: stable


def write_kernel(path, theta):
    lam, vec = np.linalg.eigh(theta)
    with h5py.File(path, "w") as f:
        for g in ("W1", "Wmu", "Wsigma", "W3", "W4"):
            f[f"theta_inf/{g}"] = theta / 5
        f["theta_inf/total"] = theta
        f["eigenvalues"] = lam
        f["eigenvectors"] = vec
        f["lambda0"] = lam[0]
    return str(path)


def add_theory_data(path, theta, y, *, probe=(0, 3, 5, 7, 9, 11), exponent=-0.5, follow_theory=True, seed=0):
    """NTK probes whose error falls like m^exponent, and curves/reconstructions on (or off) the theory.

    follow_theory: the mean-function residual is the linearized prediction (and outputs the
    kernel predictor) up to a relative error of m^-1/2; otherwise it decays twice as slowly.
    """
    from ntkvae.results.kernels import Kernel, kernel_predictor

    with h5py.File(path, "a") as f:
        width = int(f.attrs["width"])
        seeds = len(f["seeds"])
        steps = f["eval/step"][()]
        lr = json.loads(f.attrs["config"])["training"]["learning_rate"]
        total_steps = json.loads(f.attrs["config"])["training"]["steps"]
    kernel = Kernel.__new__(Kernel)
    kernel.eigenvalues, kernel.eigenvectors = np.linalg.eigh(theta)
    predicted = kernel.linearized_loss(steps, y, lr)
    rng = np.random.default_rng(seed + width)
    probe = np.asarray(probe)
    block = theta[np.ix_(probe, probe)]
    size = width ** exponent
    with h5py.File(path, "a") as f:
        f["ntk/probe_index"] = probe
        for g in ("total", "W1", "W4"):
            scale = 1.0 if g == "total" else 0.2
            sym = rng.normal(size=(seeds, len(probe), len(probe)))
            noise = (sym + np.swapaxes(sym, 1, 2)) * 0.5 * size * np.linalg.norm(block) / len(probe)
            f[f"ntk/init/{g}"] = scale * (block + noise)
            f[f"ntk/final/{g}"] = scale * (block + noise + 0.5 * noise)
        curve = predicted if follow_theory else predicted ** 0.5 * predicted[0] ** 0.5
        del f["eval/mean_function_mse"]
        f["eval/mean_function_mse"] = np.tile(curve * (1 + 0.01 * width ** -0.5), (seeds, 1))
        target = kernel_predictor(kernel, y, lr, total_steps)[f["reconstructions/index"][()]]
        deviation = rng.normal(size=(seeds,) + target.shape) * np.linalg.norm(target) / np.sqrt(target.size)
        del f["reconstructions/mean"]
        f["reconstructions/mean"] = target + (width ** -0.5 if follow_theory else 0.3) * deviation
    return str(path)
