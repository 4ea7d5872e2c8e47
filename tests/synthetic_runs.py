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
