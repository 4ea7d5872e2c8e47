"""Reading training runs (results/train/<dataset>/<run>/w<width>.h5) for figures."""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from .. import io

REQUIRED = ("seeds", "train/objective", "eval/step", "eval/mean_function_mse", "eval/noise_floor")
ATTRIBUTES = ("config", "dataset", "run", "width", "n", "d", "latent_width")

# Datasets of a training file that describe the run, not one seed; every other dataset has
# one row per seed (its first axis), in the order of `seeds`.
PER_RUN = ("seeds", "train/step", "eval/step", "reconstructions/index", "generation/values", "ntk/probe_index")
# Named dimensions (io.check_shapes) of the datasets whose shape the readers rely on.
LAYOUT = {"seeds": ("seeds",), "train/step": ("steps",), "eval/step": ("points",),
          **{f"train/{k}": ("seeds", "steps") for k in ("objective", "mse", "kl")},
          **{f"eval/{k}": ("seeds", "points") for k in ("mean_function_mse", "expected_mse", "noise_floor", "kl")},
          "reconstructions/index": ("k",), "reconstructions/mean": ("seeds", "k", "d"),
          "reconstructions/sample": ("seeds", "k", "d"), "generation/prior": ("seeds", "samples", "d"),
          "generation/traversal": ("seeds", "directions", "values", "d"), "generation/values": ("values",),
          "ntk/probe_index": ("p",)}


def _layout(name: str) -> tuple | None:
    group = name.rpartition("/")[0]
    if group == "weight_change":
        return ("seeds", "points")
    if group in ("ntk/init", "ntk/final"):
        return ("seeds", "p", "p")
    return LAYOUT.get(name, None if name in PER_RUN else ("seeds", ...))


@dataclasses.dataclass
class Run:
    """One training file. `data` holds the seeds that did not diverge (the rows every fit and
    mean uses); `raw` holds every seed, diverged ones included, for a figure that shows the
    divergence itself. A seed recorded as diverged (on_divergence: record) may hold NaN or a
    blown-up value from its divergence on; any other non-finite value is an input error."""

    path: str
    dataset: str
    run: str
    width: int
    n: int
    attrs: dict
    data: dict
    raw: dict = dataclasses.field(default_factory=dict)

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
        """{seed: step} of the seeds whose training diverged (recorded divergence)."""
        value = self.attrs.get("diverged", "{}")
        return json.loads(value) if isinstance(value, str) else {}

    @property
    def usable(self) -> bool:
        """Whether at least one seed did not diverge (`data` has rows)."""
        return len(self.data["seeds"]) > 0

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
        raw = io.read_dict(f, finite=False)
        attrs = dict(f.attrs)
    if not isinstance(config, dict) or not {"model", "training"} <= set(config):
        raise io.InputFileError(f"input file {path}: attribute config lacks the model or training settings")
    seeds = [int(s) for s in np.atleast_1d(raw["seeds"])]
    unknown = sorted(set(map(str, diverged)) - set(map(str, seeds))) if isinstance(diverged, dict) else ["?"]
    if unknown:
        raise io.InputFileError(f"input file {path}: attribute diverged names seeds {', '.join(unknown)} "
                                f"that are not among its seeds {seeds}")
    rows = [i for i, seed in enumerate(seeds) if str(seed) in diverged]
    flat = _flatten(raw)
    layout = {name: _layout(name) for name in flat}
    io.check_shapes(path, flat, {k: v for k, v in layout.items() if v and v[-1] is not ...},
                    known={"seeds": len(seeds), "d": int(attrs["d"])})
    for name, value in flat.items():
        if layout[name] and layout[name][-1] is ... and np.shape(value)[:1] != (len(seeds),):
            raise io.InputFileError(f"input file {path}: dataset {name} has shape {np.shape(value)}, expected one "
                                    f"row per seed ({len(seeds)})")
        io.check_finite(value, path, name, rows if layout[name] and layout[name][0] == "seeds" else ())
    keep = [i for i in range(len(seeds)) if i not in rows]
    data = _select_seeds(raw, keep)
    return Run(path=str(path), dataset=str(attrs["dataset"]), run=str(attrs["run"]), width=int(attrs["width"]),
               n=int(attrs["n"]), attrs=attrs, data=data, raw=raw)


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _select_seeds(tree: dict, keep: list[int], prefix: str = "") -> dict:
    """The same tree with only the rows `keep` of every per-seed dataset."""
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out[key] = _select_seeds(value, keep, name + "/")
        elif name == "seeds":
            out[key] = np.atleast_1d(value)[keep]
        elif name in PER_RUN:
            out[key] = value
        else:
            out[key] = np.asarray(value)[keep]
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
