"""Join the part files of one run (each trained on some of its seeds) into the run's file.

    python -m ntkvae.train merge --inputs PART.h5 [PART.h5 ...] --out RUN.h5

A part is written by `python -m ntkvae.train --seeds ...` (attribute `part_of_seeds`: the
run's seeds). Every seed's numbers depend on that seed alone, so the run's file is the
parts' per-seed datasets concatenated in the run's seed order (`ntkvae.train.SEEDLESS` names
those without a seed axis, which must agree), with the attributes of the unsplit job: the
seed lists, `diverged` and `converged` joined, and the stability limit recomputed over all
seeds. Anything that differs between the parts and cannot be joined stops the merge with its
name: the parts are then not of one run (other settings, data, width or code).
"""

from __future__ import annotations

import argparse
import json
import logging
import pathlib

import h5py
import numpy as np

from . import io

log = logging.getLogger("ntkvae.parts")

# Root attributes joined per seed (JSON dicts keyed by seed).
PER_SEED_ATTRS = ("diverged", "converged")
# Root attributes that describe the process, not the result: taken from the first part.
PROCESS_ATTRS = ("command", "git_commit", "versions", "device", "data_file")
# Group attributes that describe the process (the stability computation's cost and steps).
PROCESS_GROUP_ATTRS = {"stability": ("lanczos_steps", "seconds", "converged")}


class MergeError(io.InputFileError):
    """Part files that are not parts of one run; the message names the files and the difference."""


def _datasets(f: h5py.File) -> list[str]:
    out: list[str] = []
    f.visititems(lambda name, obj: out.append(name) if isinstance(obj, h5py.Dataset) else None)
    return sorted(out)


def _groups(f: h5py.File) -> list[str]:
    out: list[str] = []
    f.visititems(lambda name, obj: out.append(name) if isinstance(obj, h5py.Group) else None)
    return out


def _same(a, b) -> bool:
    try:
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    except (TypeError, ValueError):
        return a == b


def merge(inputs: list[str], out: str) -> None:
    """Join part files of one run into `out` (atomically)."""
    from .train import NOT_APPLICABLE, SEEDLESS

    files = []
    try:
        for path in inputs:
            try:
                files.append(h5py.File(path, "r"))
            except OSError as err:
                raise MergeError(f"merge: {path} is not a readable HDF5 file ({err})") from err
        for path, f in zip(inputs, files):
            if "part_of_seeds" not in f.attrs or "seeds" not in f:
                raise MergeError(f"merge: {path} is not a part file (no part_of_seeds attribute)")
        run_seeds = json.loads(files[0].attrs["part_of_seeds"])
        seeds = [[int(s) for s in f["seeds"][()]] for f in files]
        flat = [s for part in seeds for s in part]
        if sorted(flat) != sorted(run_seeds) or len(set(flat)) != len(flat):
            raise MergeError(f"merge: the parts' seeds {seeds} are not the run's seeds {run_seeds} once each")
        # Per seed, its part and its position in that part, in the run's seed order.
        where = {s: (i, part.index(s)) for i, part in enumerate(seeds) for s in part}
        order = [where[s] for s in run_seeds]

        names = _datasets(files[0])
        for path, f in zip(inputs, files):
            if _datasets(f) != names:
                raise MergeError(f"merge: {path} holds other datasets than {inputs[0]}")
        arrays = {}
        for name in names:
            values = [f[name][()] for f in files]
            if name in SEEDLESS:
                for path, v in zip(inputs, values):
                    if not _same(v, values[0]):
                        raise MergeError(f"merge: {name} differs between {inputs[0]} and {path}")
                arrays[name] = values[0]
            else:
                for path, v, part in zip(inputs, values, seeds):
                    if np.ndim(v) == 0 or v.shape[0] != len(part) or v.shape[1:] != values[0].shape[1:]:
                        raise MergeError(f"merge: {name} of {path} has shape {np.shape(v)}, not (seeds, ...)")
                arrays[name] = np.stack([values[i][j] for i, j in order]).astype(values[0].dtype)
        arrays["seeds"] = np.asarray(run_seeds, dtype=files[0]["seeds"].dtype)

        attrs = _root_attrs(inputs, [dict(f.attrs) for f in files], run_seeds, arrays, NOT_APPLICABLE)
        group_attrs = {}
        for group in _groups(files[0]):
            merged = {}
            for key, value in files[0][group].attrs.items():
                if key in PROCESS_GROUP_ATTRS.get(group, ()):
                    merged[key] = value
                    continue
                for path, f in zip(inputs, files):
                    if not _same(f[group].attrs.get(key), value):
                        raise MergeError(f"merge: attribute {key} of {group} differs between {inputs[0]} and {path}")
                merged[key] = value
            if merged:
                group_attrs[group] = merged
        if "stability" in group_attrs:
            group_attrs["stability"]["converged"] = all(bool(f["stability"].attrs["converged"]) for f in files)
    finally:
        for f in files:
            f.close()
    with io.atomic_h5(out, attrs) as target:
        for name, value in arrays.items():
            target[name] = value
        for group, values in group_attrs.items():
            target[group].attrs.update(values)


def _root_attrs(inputs, parts: list[dict], run_seeds: list[int], arrays: dict, not_applicable: str) -> dict:
    first = parts[0]
    out = {}
    for key, value in first.items():
        values = [p.get(key) for p in parts]
        if key == "part_of_seeds":
            continue
        if key == "seeds":
            out[key] = json.dumps(run_seeds)
        elif key in PER_SEED_ATTRS:
            joined = {}
            for v in values:
                joined.update(json.loads(v))
            out[key] = json.dumps({str(s): joined[str(s)] for s in run_seeds if str(s) in joined})
        elif key == "config":
            configs = [json.loads(v) for v in values]
            if any(c != configs[0] for c in configs):
                raise MergeError(f"merge: the parts {inputs} were trained with different settings")
            out[key] = value
        elif key in PROCESS_ATTRS:
            out[key] = value
        elif key in ("stability_learning_rate", "lr_over_stability") and value != not_applicable:
            continue  # recomputed below from every seed's lambda_max
        else:
            for path, v in zip(inputs, values):
                if not _same(v, value):
                    raise MergeError(f"merge: attribute {key} differs between {inputs[0]} ({value}) and {path} ({v}); "
                                     f"parts of one run agree on it")
            out[key] = value
    if "stability/hessian_lambda_max" in arrays:
        limit = 2.0 / float(np.max(arrays["stability/hessian_lambda_max"]))
        learning_rate = json.loads(first["config"])["training"]["learning_rate"]
        out["stability_learning_rate"], out["lr_over_stability"] = limit, learning_rate / limit
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ntkvae.train merge", description=__doc__.split("\n\n")[0])
    p.add_argument("--inputs", nargs="+", required=True, help="the part files of one run")
    p.add_argument("--out", required=True, help="the run's file")
    args = p.parse_args(argv)
    try:
        merge(args.inputs, args.out)
    except (io.InputFileError, OSError, KeyError) as err:
        log.error("%s", " ".join(str(err).split()))
        return 1
    except ValueError as err:   # an attribute that is not valid JSON (json.JSONDecodeError)
        log.error("merge of %s: an attribute is not valid JSON (%s)", " ".join(args.inputs), err)
        return 1
    log.info("wrote %s from %d parts", args.out, len(args.inputs))
    return 0
