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
            # ||W(0)||_F = sqrt(#weights): the absolute change is the relative one times that.
            f[f"weight_change_absolute/{g}"] = value * counts[g] ** 0.5 * grow[None, :] * jitter
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


def write_kernel(path, theta, noise=0.0, sigma_noise=0.0):
    """A kernel file in the layout of `compute_kernels kernel`, for the matrix `theta` (with its diagonal).

    noise: the constant noise diagonal D of every group together; sigma_noise: the part of it that
    belongs to Wsigma (left out of the trained kernel when Wsigma is frozen)."""
    n = theta.shape[0]
    bar = theta - noise * np.eye(n)
    mlam, mvec = np.linalg.eigh(bar)
    with h5py.File(path, "w") as f:
        for g in ("W1", "Wmu", "Wsigma", "W3", "W4"):
            f[f"theta_inf/{g}"] = theta / 5
        f["theta_inf/total"] = theta
        f["probe/index"] = np.arange(n)
        for g in ("W1", "Wmu", "W3", "W4"):
            f[f"probe/theta_inf/{g}"] = (theta - sigma_noise * np.eye(n)) / 4
        f["probe/theta_inf/Wsigma"] = sigma_noise * np.eye(n)
        f["probe/theta_inf/total"] = theta
        for g in ("W1", "Wmu", "W3", "W4"):
            f[f"noise_diagonal/{g}"] = np.full(n, (noise - sigma_noise) / 4)
        f["noise_diagonal/Wsigma"] = np.full(n, sigma_noise)
        f["noise_diagonal/total"] = np.full(n, noise)
        f["mean_eigenvalues"] = mlam
        f["mean_eigenvectors"] = mvec
        f["lambda_bar"] = mlam[0]
        for name, d in (("sigma_frozen", noise - sigma_noise), ("sigma_trained", noise)):
            f[f"trained/{name}/eigenvalues"] = mlam + d
            f[f"trained/{name}/noise_diagonal"] = np.full(n, d)
            f[f"trained/{name}/lambda0"] = mlam[0] + d
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
    kernel.mean_eigenvalues, kernel.mean_eigenvectors = np.linalg.eigh(theta)
    predicted = kernel.linearized_loss(steps, y, lr)
    rng = np.random.default_rng(seed + width)
    probe = np.asarray(probe)
    block = theta[np.ix_(probe, probe)]
    size = width ** exponent
    with h5py.File(path, "a") as f:
        f["ntk/probe_index"] = probe
        # Four trained groups share the kernel and its error (each a quarter); Wsigma (frozen,
        # diagonal-only in the limit) is zero; the stored total is the sum, as the training job writes it.
        sym = rng.normal(size=(seeds, len(probe), len(probe)))
        sym = sym + np.swapaxes(sym, 1, 2)
        # Exactly `size` relative to the block per seed (a random direction, a known size).
        noise = sym / np.linalg.norm(sym, axis=(1, 2))[:, None, None] * size * np.linalg.norm(block)
        for stage, value in (("init", block + noise), ("final", block + 1.5 * noise)):
            for g in ("W1", "Wmu", "W3", "W4"):
                f[f"ntk/{stage}/{g}"] = value / 4
            f[f"ntk/{stage}/Wsigma"] = np.zeros_like(value)
            f[f"ntk/{stage}/total"] = value
        curve = predicted if follow_theory else predicted ** 0.5 * predicted[0] ** 0.5
        del f["eval/mean_function_mse"]
        f["eval/mean_function_mse"] = np.tile(curve * (1 + 0.01 * width ** -0.5), (seeds, 1))
        target = kernel_predictor(kernel, y, lr, total_steps)[f["reconstructions/index"][()]]
        deviation = rng.normal(size=(seeds,) + target.shape) * np.linalg.norm(target) / np.sqrt(target.size)
        del f["reconstructions/mean"]
        f["reconstructions/mean"] = target + (width ** -0.5 if follow_theory else 0.3) * deviation
    return str(path)


def write_theorem_run(path, kernel_path, y, *, width, run="thm_mse", dataset="toy", seeds=(0, 1, 2), n=None,
                      steps=60, log_every=5, lr=1.0, gap=None, krr_gap=None, seed_spread=0.0, kernel_change=None,
                      converged=True, probe=None, frozen_sigma=True, bound_violation=0.0, rng_seed=0,
                      objective="mse", beta=1.0, krr_ridge=0.0, kl_scaling="inv_sqrt_width", ridge_in_time=None):
    """A theorem-setting run (noise fixed, Wsigma frozen, outputs recorded) with known answers.

    Each seed's residual is its own linearized trajectory (the trained kernel of `kernel_path` on the
    first n examples) plus a deviation sin(pi t / T) * gap * |r(0)| along a unit direction: its
    trajectory gap is exactly `gap` (default width^-1/2), times (1 + seed_spread * (k - mean)) for
    seed k. The noise-averaged output at the last point is the seed's KRR limit plus a deviation of
    relative size `krr_gap` (default width^-1/2); krr_ridge > 0 moves it to the KRR solution with
    that ridge added to D (a full-objective run whose KL acts as a ridge). NTK probes on the first p examples: Theta_inf of
    the trained groups plus an error of relative size width^-1/2 at init, and `kernel_change` (default
    width^-1/2 / 2) more at the end. bound_violation > 1/2 lifts the loss above Theorem 1's bound.
    """
    from ntkvae import dynamics, krr
    from ntkvae.results.kernels import Kernel

    kernel = Kernel(kernel_path)
    n = n or kernel.n
    y = np.asarray(y, float)[:n]
    d = y.shape[1]
    spec = kernel.spectrum_on(np.arange(n), not frozen_sigma)
    rng = np.random.default_rng(rng_seed + width)
    S = len(seeds)
    grid = np.array(list(range(0, steps, log_every)) + [steps], float)
    # A list gives each seed its own gap (seeds that disagree).
    gap = np.broadcast_to(np.asarray(width ** -0.5 if gap is None else gap, float), (len(seeds),))
    krr_gap = width ** -0.5 if krr_gap is None else krr_gap
    spread = 1 + seed_spread * (np.arange(S) - (S - 1) / 2)
    sampled, mean = np.empty((S, grid.size, n, d)), np.empty((S, grid.size, n, d))
    for s in range(S):
        r0 = rng.normal(size=(n, d))
        lin = dynamics.linearized_residuals(spec, r0, lr, grid)
        u = rng.normal(size=(n, d))
        u /= np.linalg.norm(u)
        dev = np.sin(np.pi * grid / grid[-1])[:, None, None] * gap[s] * spread[s] * np.linalg.norm(r0) * u[None]
        # bound_violation b slows the decay: L(t) ~ exp(-2 (1 - b) eta lambda0 t / n), above the bound for b > 1/2.
        lift = np.exp(bound_violation * lr * spec.lambda0 * grid / n)[:, None, None]
        sampled[s] = y[None] + (lin + dev) * lift
        f0 = sampled[s, 0]
        f0_bar = f0 - 0.3 * rng.normal(size=(n, d))
        target = krr.seed_limit(spec, y, f0, f0_bar, extra_ridge=krr_ridge)
        w = rng.normal(size=(n, d))
        w *= krr_gap * spread[s] * np.linalg.norm(target) / np.linalg.norm(w)
        mean[s] = f0_bar[None] + (grid / grid[-1])[:, None, None] * (target + w - f0_bar)[None]
        if ridge_in_time is not None:   # the noise-averaged output is, at each logged time, KRR with this added ridge
            for p_, t_ in list(enumerate(grid))[1:]:   # at t = 0 the output is f_bar_0 itself
                mean[s, p_] = krr.seed_limit(spec, y, f0, f0_bar, extra_ridge=ridge_in_time(t_))
    base = write_run(path, dataset=dataset, run=run, width=width, n=n, d=d, seeds=seeds, steps=steps,
                     log_every=log_every, objective=objective, beta=beta)
    change = 0.5 * width ** -0.5 if kernel_change is None else kernel_change
    p = min(n, kernel.probe["total"].shape[0]) if probe is None else probe
    index = np.arange(p)
    block = kernel.trained_block(index, not frozen_sigma)
    sigma_part = np.diag(kernel.noise["Wsigma"][:p])
    with h5py.File(base, "a") as f:
        cfg = json.loads(f.attrs["config"])
        cfg["training"].update(noise="fixed", train_sigma=not frozen_sigma, learning_rate=lr, record_outputs=True,
                               convergence_tolerance=1e-4, kl_scaling=kl_scaling)
        f.attrs["config"] = json.dumps(cfg)
        f.attrs["converged"] = json.dumps({str(s): (steps if converged else None) for s in seeds})
        del f["eval/step"]
        f["eval/step"] = grid.astype(int)
        for key in ("mean_function_mse", "noise_floor", "expected_mse", "kl"):
            del f[f"eval/{key}"]
        loss = 0.5 * np.sum((sampled - y[None, None]) ** 2, axis=(2, 3)) / n
        f["eval/mean_function_mse"] = loss
        f["eval/noise_floor"] = np.full_like(loss, 0.1)
        f["eval/expected_mse"] = loss + 0.1
        f["eval/kl"] = np.ones_like(loss)
        f["outputs/step"] = grid.astype(int)
        f["outputs/sampled"] = sampled
        f["outputs/mean"] = mean
        f["outputs/mean_mc_variance"] = np.zeros((S, grid.size))
        counts = weight_counts(width, d, width)
        for g in GROUPS:
            del f[f"weight_change/{g}"], f[f"weight_change_absolute/{g}"]
            value = 0.0 if (g == "Wsigma" and frozen_sigma) else counts[g] ** -0.5
            grow = np.minimum(grid / grid[-1] * 4, 1.0)
            f[f"weight_change/{g}"] = value * grow[None, :] * np.ones((S, 1))
            f[f"weight_change_absolute/{g}"] = (value > 0) * grow[None, :] * np.ones((S, 1))
        f["ntk/probe_index"] = index
        for stage, size in (("init", width ** -0.5), ("final", width ** -0.5 + change)):
            sym = rng.normal(size=(S, p, p))
            err = (sym + np.swapaxes(sym, 1, 2)) / 2
            err *= (size * np.linalg.norm(block) / np.linalg.norm(err, axis=(1, 2)))[:, None, None]
            if stage == "final":
                err = f["ntk/init/W4"][()] * 4 - block[None] + (err / np.linalg.norm(err, axis=(1, 2))[:, None, None]
                                                                * change * np.linalg.norm(block))
            total = block[None] + err
            for g in ("W1", "Wmu", "W3", "W4"):
                f[f"ntk/{stage}/{g}"] = total / 4
            f[f"ntk/{stage}/Wsigma"] = np.broadcast_to(sigma_part, (S, p, p)).copy()
            f[f"ntk/{stage}/total"] = total + sigma_part[None]
    return base
