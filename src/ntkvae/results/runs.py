"""Reading training runs (results/train/<dataset>/<run>/w<width>.h5) for figures."""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from .. import io, regime

REQUIRED = ("train/objective", "eval/step", "eval/mean_function_mse", "eval/noise_floor")


@dataclasses.dataclass
class Run:
    path: str
    dataset: str
    run: str
    width: int
    n: int
    attrs: dict
    data: dict

    @property
    def settings(self) -> dict:
        return json.loads(self.attrs["config"])["training"]

    @property
    def model(self) -> dict:
        return json.loads(self.attrs["config"])["model"]

    @property
    def d(self) -> int:
        return int(self.attrs["d"])

    @property
    def latent_width(self) -> int:
        return int(self.attrs["latent_width"])

    @property
    def seeds(self) -> np.ndarray:
        return np.asarray(self.data["seeds"])

    def json_attr(self, key: str, default=None):
        """A JSON-encoded attribute (the training job's `converged`, `diverged`, ...), or `default`."""
        value = self.attrs.get(key)
        return json.loads(value) if isinstance(value, str) else default

    @property
    def diverged(self) -> dict:
        """{seed: step} of the seeds whose objective became NaN or infinite (recorded divergence)."""
        value = self.attrs.get("diverged", "{}")
        return json.loads(value) if isinstance(value, str) else {}

    @property
    def label(self) -> str:
        """The run's description from the config, or its name."""
        return self.settings.get("description") or self.run


def load_run(path) -> Run:
    with io.open_input(path, REQUIRED) as f:
        data = io.read_dict(f)
        attrs = dict(f.attrs)
    return Run(path=str(path), dataset=str(attrs["dataset"]), run=str(attrs["run"]), width=int(attrs["width"]),
               n=int(attrs["n"]), attrs=attrs, data=data)


def load_runs(paths) -> list[Run]:
    return sorted((load_run(p) for p in paths), key=lambda r: (r.run, r.width))


def by_run(runs: list[Run]) -> dict[str, list[Run]]:
    grouped: dict[str, list[Run]] = {}
    for r in runs:
        grouped.setdefault(r.run, []).append(r)
    return grouped


def describe(run: Run) -> str:
    s = run.settings
    text = f"{s['objective']}, {s['optimizer']} lr={s['learning_rate']:g}"
    if s["objective"] == "vae":
        text += f", beta={s['beta']:g} ({s['kl_scaling']})"
    return text + (", Wsigma trained" if s["train_sigma"] else "")


def finite_or_nan(a) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    return np.where(np.isfinite(a), a, np.nan)


def steps_trained(run: Run) -> int:
    """The last logged step: the run's `steps`, or where its convergence criterion stopped it."""
    return int(np.asarray(run.data["eval"]["step"])[-1])


def regime_numbers(run: Run) -> dict[str, float]:
    """m/n, m/d, eta T/m, beta c eta T (full objective) and lr/limit of one run (ntkvae.regime)."""
    s = run.settings
    limit = run.attrs.get("lr_over_stability")
    return regime.numbers(width=run.width, n=run.n, d=run.d, learning_rate=s["learning_rate"],
                          steps=steps_trained(run), objective=s["objective"], beta=s.get("beta", 0.0),
                          kl_scaling=s.get("kl_scaling", "inv_sqrt_width"), latent_dim=run.latent_width,
                          lr_over_limit=float(limit) if isinstance(limit, (int, float, np.floating)) else None)


def regime_text(runs) -> str:
    """The regime numbers of several runs as ranges ('m/n 8–128, ...')."""
    numbers = [regime_numbers(r) for r in runs]
    if not numbers:
        return ""
    keys = list(dict.fromkeys(k for n in numbers for k in n))
    ranges = {}
    for k in keys:
        vals = np.asarray([n[k] for n in numbers if k in n], float)
        fin = vals[np.isfinite(vals)]
        ranges[k] = (float(fin.min()), float(fin.max())) if fin.size else (float("nan"), float("nan"))
    return regime.describe(ranges)


def recorded_divergences(runs) -> list[tuple[str, str, int, int, int]]:
    """(dataset, run, width, seed, step) of every seed a training job recorded as diverged."""
    return sorted((r.dataset, r.run, r.width, int(seed), int(step)) for r in runs for seed, step in r.diverged.items())
