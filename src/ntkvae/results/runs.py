"""Reading training runs (results/train/<dataset>/<run>/w<width>.h5) for figures."""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from .. import io

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
