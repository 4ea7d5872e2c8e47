"""Reading training runs (results/train/<dataset>/<run>/w<width>.h5) for figures."""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from .. import io, regime

REQUIRED = ("seeds", "train/objective", "eval/step", "eval/mean_function_mse", "eval/noise_floor")
ATTRIBUTES = ("config", "dataset", "run", "width", "n", "d", "latent_width")

# Datasets of a training file that describe the run, not one seed; the datasets of LAYOUT
# (and the weight-change and probe groups) have one row per seed (their first axis), in the
# order of `seeds`; any other dataset counts as per seed when its first axis has that length.
PER_RUN = ("seeds", "train/step", "eval/step", "reconstructions/index", "generation/values", "ntk/probe_index",
           "outputs/step", "examples_index")
# Named dimensions (io.check_shapes) of the datasets whose shape the readers rely on.
LAYOUT = {"seeds": ("seeds",), "train/step": ("steps",), "eval/step": ("points",),
          **{f"train/{k}": ("seeds", "steps") for k in ("objective", "mse", "kl")},
          **{f"eval/{k}": ("seeds", "points") for k in ("mean_function_mse", "expected_mse", "noise_floor", "kl")},
          "reconstructions/index": ("k",), "reconstructions/mean": ("seeds", "k", "d"),
          "reconstructions/sample": ("seeds", "k", "d"), "generation/prior": ("seeds", "samples", "d"),
          "generation/traversal": ("seeds", "directions", "values", "d"), "generation/values": ("values",),
          "ntk/probe_index": ("p",),
          **{f"outputs/paired_{k}_mean": ("seeds", "n", "d") for k in ("initial", "change")},
          **{f"outputs/paired_{k}_mc_variance": ("seeds",) for k in ("initial", "change", "final")}}


def _layout(name: str) -> tuple | None:
    group = name.rpartition("/")[0]
    if group in ("weight_change", "weight_change_absolute"):
        return ("seeds", "points")
    if group in ("ntk/init", "ntk/final"):
        return ("seeds", "p", "p")
    return LAYOUT.get(name)


@dataclasses.dataclass
class Run:
    """One training file, every seed. A seed recorded as diverged (on_divergence: record) may
    hold NaN or a blown-up value from its divergence on: the reader makes those NaN (figures draw
    it up to its divergence) and measures.finite_seeds leaves it out of every fit; any other
    non-finite value is an input error, raised when the file is read."""

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
        """{seed: step} of the seeds whose training diverged (recorded divergence)."""
        value = self.attrs.get("diverged", "{}")
        return json.loads(value) if isinstance(value, str) else {}

    @property
    def usable(self) -> bool:
        """Whether at least one seed did not diverge."""
        return self.first_kept_row is not None

    @property
    def first_kept_row(self) -> int | None:
        """Row (position in `seeds`) of the first seed that did not diverge, or None: the seed a
        figure shows when it shows one."""
        return next((i for i, s in enumerate(np.atleast_1d(self.data["seeds"])) if str(int(s)) not in self.diverged),
                    None)

    @property
    def label(self) -> str:
        """The run's description from the config, or its name."""
        return self.settings.get("description") or self.run


def load_run(path) -> Run:
    """Read a training file: its attributes and datasets present, of consistent shapes, and
    finite except in the rows of the seeds it records as diverged; errors name the file."""
    with io.open_input(path, REQUIRED, attrs=ATTRIBUTES) as f:
        config = io.read_json_attr(f, "config")
        diverged = io.read_json_attr(f, "diverged") if "diverged" in f.attrs else {}
        data = io.read_dict(f, finite=False)
        attrs = dict(f.attrs)
    if not isinstance(config, dict) or not {"model", "training"} <= set(config):
        raise io.InputFileError(f"input file {path}: attribute config lacks the model or training settings")
    seeds = [int(s) for s in np.atleast_1d(data["seeds"])]
    unknown = sorted(set(map(str, diverged)) - set(map(str, seeds))) if isinstance(diverged, dict) else ["?"]
    if unknown:
        raise io.InputFileError(f"input file {path}: attribute diverged names seeds {', '.join(unknown)} "
                                f"that are not among its seeds {seeds}")
    rows = [i for i, seed in enumerate(seeds) if str(seed) in diverged]
    flat = _flatten(data)
    layout = {name: _layout(name) for name in flat}
    io.check_shapes(path, flat, {k: v for k, v in layout.items() if v}, known={"seeds": len(seeds), "d": int(attrs["d"])})
    for name, value in flat.items():
        per_seed = layout[name][0] == "seeds" if layout[name] else \
            name not in PER_RUN and np.shape(value)[:1] == (len(seeds),)
        io.check_finite(value, path, name, rows if per_seed else ())
        if per_seed and rows:
            _set(data, name, _blank_from_divergence(name, value, data, seeds, diverged))
    return Run(path=str(path), dataset=str(attrs["dataset"]), run=str(attrs["run"]), width=int(attrs["width"]),
               n=int(attrs["n"]), attrs=attrs, data=data)


def _blank_from_divergence(name: str, value, data: dict, seeds: list[int], diverged: dict) -> np.ndarray:
    """`value` with NaN where a seed had diverged: from its divergence step on along the step axis
    of train/*, eval/*, weight_change*/* and outputs/*, the whole row for what is recorded at the
    end of training (NTK at the end, reconstructions, samples); the NTK at initialization is kept.
    A diverged seed's later values, NaN or finite but blown up, are then never drawn or averaged."""
    value = np.asarray(value)
    if not np.issubdtype(value.dtype, np.floating) or name.startswith("ntk/init/"):
        return value
    group = name.split("/")[0]
    axis = {"train": "train", "eval": "eval", "weight_change": "eval", "weight_change_absolute": "eval",
            "outputs": "outputs"}.get(group)
    steps = np.asarray(data[axis]["step"]) if axis and "step" in data.get(axis, {}) else None
    value = value.copy()
    for seed, step in diverged.items():
        row = seeds.index(int(seed))
        if steps is not None and value.ndim >= 2 and value.shape[1] == steps.shape[0]:
            value[row, steps >= int(step)] = np.nan
        else:
            value[row] = np.nan
    return value


def _set(tree: dict, name: str, value) -> None:
    *parents, leaf = name.split("/")
    for key in parents:
        tree = tree[key]
    tree[leaf] = value


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def load_runs(paths) -> list[Run]:
    return sorted((load_run(p) for p in paths), key=lambda r: (r.run, r.width))


def usable(runs: list[Run]) -> list[Run]:
    """The runs with at least one seed that did not diverge."""
    return [r for r in runs if r.usable]


def divergence_note(runs: list[Run]) -> str:
    """Which seeds of `runs` diverged (and are left out of every fit), or "" if none did.

    e.g. "run mse diverged: m = 256 all seeds (first at step 12), m = 64 seed 1 (step 20); excluded"."""
    parts: dict[str, list[str]] = {}
    for r in sorted(runs, key=lambda r: (r.run, -r.width)):
        if not r.diverged:
            continue
        seeds = sorted(r.diverged, key=int)
        which = "all seeds" if not r.usable else f"seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)}"
        parts.setdefault(r.run, []).append(f"m = {r.width} {which} (first at step {min(r.diverged.values())})")
    return "; ".join(f"run {name} diverged: {', '.join(items)}; excluded" for name, items in parts.items())


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


def lr_over_stability(run: Run) -> float | None:
    """The run's learning rate over its finite-width stability limit at initialization, None
    where the job did not measure it (the attribute reads "not applicable")."""
    ratio = run.attrs.get("lr_over_stability")
    return float(ratio) if isinstance(ratio, (int, float, np.floating)) else None


def regime_numbers(run: Run) -> dict[str, float]:
    """m/n, m/d, eta T/m, beta c eta T (full objective) and lr/limit of one run (ntkvae.regime)."""
    s = run.settings
    return regime.numbers(width=run.width, n=run.n, d=run.d, learning_rate=s["learning_rate"],
                          steps=steps_trained(run), objective=s["objective"], beta=s.get("beta", 0.0),
                          kl_scaling=s.get("kl_scaling", "inv_sqrt_width"), latent_dim=run.latent_width,
                          lr_over_limit=lr_over_stability(run))


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
