"""Synthetic inputs for every figure of planning.FIGURES, in the workflow's layout, with recorded
divergences: the figure-legibility tests and scratch/render_figures.py draw each figure module's
real output from them (no training, no kernels computed).

    world = build(tmp_path)
    world.argv("krr", pdf, png)   # the `python -m ntkvae.plot` arguments of F5

Runs: the theorem runs (thm_mse at three widths; a full-objective theorem run at two), practical
mse and vae runs on the theory (NTK probes, curves along the linearized prediction), the beta sweep
(one seed of beta = 10 at m = 16 diverged), Wsigma trained (m = 16 diverged), two activations
(relu diverged), the narrow run. Diverged seeds carry NaN from their divergence step on, as the
training job writes them, and the `diverged` attribute.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import h5py
import numpy as np

from synthetic_runs import add_theory_data, spd_kernel, write_dataset, write_kernel, write_run, write_theorem_run

from ntkvae import paths, planning

DATASET = "toy"
N = 12
THEOREM_WIDTHS = (256, 1024, 4096)
PRACTICAL_WIDTHS = (64, 256, 1024)
BETAS = (1, 3, 10)
SWEEP_WIDTHS = (16, 64)
KL_THEOREM = planning.theorem_kl_run_name("inv_sqrt_width", 1.0)


def diverge(path, steps: dict) -> None:
    """Mark seeds of a training file ({seed index: step}) as diverged from that step on, as train.py
    records it: the `diverged` attribute and NaN in the curves."""
    with h5py.File(path, "a") as f:
        seeds = f["seeds"][()]
        f.attrs["diverged"] = json.dumps({str(int(seeds[i])): int(t) for i, t in steps.items()})
        for group in ("train", "eval"):
            logged = f[f"{group}/step"][()]
            for name, ds in f[group].items():
                if name != "step" and ds.ndim == 2 and ds.shape[0] == len(seeds):
                    values = ds[()].astype(float)
                    for i, t in steps.items():
                        values[i, logged >= t] = np.nan
                    ds[...] = values


@dataclasses.dataclass
class World:
    root: pathlib.Path
    files: dict            # topic -> training files
    kernel: str
    data: str
    settings: dict

    def argv(self, topic: str, pdf, png=None, dpi: int = 60) -> list[str]:
        figure = planning.FIGURES_BY_TOPIC[topic]
        argv = [topic, "--inputs", *self.files[topic], "--dataset", DATASET, "--pdf", str(pdf)]
        if png:
            argv += ["--png", str(png), "--dpi", str(dpi)]
        if figure.kernels != "none":
            argv += ["--kernels", self.kernel]
        argv += ["--data", self.data]
        if figure.settings:
            argv += ["--settings", json.dumps(self.settings)]
        return argv


def build(root) -> World:
    root = pathlib.Path(root)

    def place(kind, **wildcards):
        path = root / kind.format(**wildcards)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    data = write_dataset(place(paths.DATA, dataset=DATASET), dataset=DATASET, n=N, side=4)
    with h5py.File(data) as f:
        y = f["x"][()]
    theta = spd_kernel(N) + 0.4 * np.eye(N)
    kernel = write_kernel(place(paths.KERNEL, dataset=DATASET, activation="erf"), theta, noise=0.4, sigma_noise=0.05)

    def train(run, width):
        return place(paths.TRAIN, dataset=DATASET, run=run, width=width)

    thm = [write_theorem_run(train(planning.THEOREM_RUN, w), kernel, y, width=w, dataset=DATASET, seed_spread=0.1)
           for w in THEOREM_WIDTHS]
    thm_kl = [write_theorem_run(train(KL_THEOREM, w), kernel, y, width=w, dataset=DATASET, run=KL_THEOREM,
                                objective="vae", beta=1.0, krr_ridge=0.5, seed_spread=0.1) for w in (256, 1024)]
    mse = [add_theory_data(write_run(train("mse", w), dataset=DATASET, run="mse", width=w, n=N, floor=0.3), theta, y)
           for w in PRACTICAL_WIDTHS]
    diverge(mse[0], {1: 30})   # m = 64, seed 1
    vae = [write_run(train("vae", w), dataset=DATASET, run="vae", width=w, n=N, objective="vae", floor=0.3)
           for w in PRACTICAL_WIDTHS]
    beta = [write_run(train(planning.beta_run_name(b), w), dataset=DATASET, run=planning.beta_run_name(b), width=w,
                      n=N, objective="vae", beta=b, kl=1.0 / b) for b in BETAS for w in SWEEP_WIDTHS]
    for path in beta:   # latent means that shrink as beta grows (direction_sd varies)
        with h5py.File(path, "a") as f:
            b = json.loads(f.attrs["config"])["training"]["beta"]
            sd = f["generation/latent/direction_sd"][()]
            f["generation/latent/direction_sd"][...] = sd * np.array([1.0, 0.6, 0.3]) / np.sqrt(b)
    diverge(beta[BETAS.index(10) * len(SWEEP_WIDTHS)], {1: 10})   # beta = 10, m = 16, seed 1
    sigma = [write_run(train(planning.SIGMA_TRAINED_RUN, w), dataset=DATASET, run=planning.SIGMA_TRAINED_RUN,
                       width=w, n=N, objective="vae", frozen=()) for w in SWEEP_WIDTHS]
    for path in sigma:
        with h5py.File(path, "a") as f:
            cfg = json.loads(f.attrs["config"])
            cfg["training"]["train_sigma"] = True
            f.attrs["config"] = json.dumps(cfg)
    diverge(sigma[0], {0: 20})
    acts = [write_run(train(planning.activation_run_name(a), 32), dataset=DATASET, run=planning.activation_run_name(a),
                      width=32, n=N, activation=a, rate=r) for a, r in (("erf", 0.02), ("relu", 0.03), ("tanh", 0.025))]
    diverge(acts[1], {0: 2, 1: 3})   # both relu seeds
    narrow = [write_run(train(planning.NARROW_RUN, 4), dataset=DATASET, run=planning.NARROW_RUN, width=4, n=N,
                        objective="vae", rate=0.005)]
    settings = {
        "convergence_runs": ["mse", "vae"], "laziness_runs": ["mse", "vae"], "kernel_runs": ["mse"],
        "generation_runs": ["vae"], "kl_betas": list(BETAS), "kl_widths": list(SWEEP_WIDTHS), "sigma_trained": True,
        "activations": ["erf", "relu", "tanh"], "activation_widths": [32], "narrow_width": 4, "wide_run": "vae",
        "claims": {"slope_tolerance": 0.15, "rank_correlation": 0.8, "gap_tolerance": 0.1},
        "theorem_runs": {"mse": planning.THEOREM_RUN, "kl": [KL_THEOREM]},
    }
    strs = lambda paths_: [str(p) for p in paths_]   # noqa: E731
    files = {
        "convergence": strs(mse + vae + thm),
        "laziness": strs(mse + vae + thm),
        "kernel_constancy": strs(mse + thm),
        "rate": strs(mse + thm),
        "krr": strs(beta + sigma + thm + thm_kl),
        "kl_beta": strs(beta),
        "narrow_wide": strs(narrow + vae[-1:]),
        "generation": strs(vae),
        "min_width": strs(thm),
        "activations": strs(acts),
    }
    assert set(files) == set(planning.FIGURES_BY_TOPIC), "a figure of planning.FIGURES has no synthetic inputs"
    return World(root, files, str(kernel), str(data), settings)
