"""CLI: train a subset of a run's seeds into a part file, and join part files into the run's file.

    python -m ntkvae.seed_parts train --seeds 0,1 <the arguments of python -m ntkvae.train>
    python -m ntkvae.seed_parts merge --inputs part0.h5 part1.h5 --out results/train/<d>/<r>/w<m>.h5

A training job too large for its device is split by seed (ntkvae.plan.train_parts): each part
trains some of the seeds exactly as the whole job would (every seed's keys come from the seed
alone, training.seed_keys), and the merge concatenates the per-seed arrays in seed order. The
merged file holds the same arrays as the unsplit job's (up to float32 rounding: a vmapped step
over fewer seeds may compile to another fusion) and the same attributes, the seed lists in them
rewritten to the whole run's.

This is the smallest version the plan needs, kept apart from ntkvae.train (the engine's); a
dataset or attribute it does not know how to join stops the merge with its name instead of
being guessed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

import numpy as np

from . import io

log = logging.getLogger("ntkvae.seed_parts")

# Datasets of a training file without a leading seed axis (ntkvae.train.write_output); they
# must be equal in every part. Every other dataset is per seed and is concatenated.
SEEDLESS = ("train/step", "eval/step", "reconstructions/index", "generation/values", "ntk/probe_index")
# Root attributes that are JSON dicts keyed by seed: joined. "seeds": the concatenated list.
PER_SEED_ATTRS = ("diverged", "converged")
# Attributes that summarize all seeds (the training job's stability check): how to join them.
# A string value (e.g. "not applicable" for Adam) must be equal in every part instead.
JOINS = {"stability_learning_rate": min, "lr_over_stability": max}
GROUP_JOINS = {"stability": {"lanczos_steps": max, "converged": all, "seconds": sum}}
# Attributes that describe the process, not the result: taken from the first part.
PROCESS_ATTRS = ("command", "git_commit", "versions", "device", "data_file")


def parse_seeds(text: str) -> list[int]:
    return [int(s) for s in text.replace(",", " ").split()]


def train_part(argv) -> int:
    from . import train

    p = argparse.ArgumentParser(prog="python -m ntkvae.seed_parts train", add_help=False)
    p.add_argument("--seeds", required=True, help="the seeds of this part, e.g. 0,1")
    known, rest = p.parse_known_args(argv)
    seeds = parse_seeds(known.seeds)
    args = train.parse_args(rest)
    whole = [int(s) for s in args.training_cfg["seeds"]]
    if not set(seeds) <= set(whole):
        log.error("--seeds %s are not all seeds of the run (%s)", seeds, whole)
        return 1
    args.training_cfg = dict(args.training_cfg, seeds=seeds)
    log.info("part of %s: seeds %s", whole, seeds)
    return train.main_with_args(args) if hasattr(train, "main_with_args") else _run_train(train, args)


def _run_train(train, args) -> int:
    """train.main's body for already-parsed arguments (error handling as there)."""
    from . import accelerator
    from . import config as C

    accelerator.configure_gpu_memory()
    try:
        train.train(args)
    except (train.DivergenceError, io.InputFileError, C.ConfigError) as err:
        log.error("%s", err)
        return 1
    except train.Preempted as stopped:
        log.warning("stopped after checkpoint; rerun the same command to resume")
        return stopped.code
    return 0


def _datasets(f) -> dict:
    import h5py

    out = {}
    f.visititems(lambda name, obj: out.__setitem__(name, obj) if isinstance(obj, h5py.Dataset) else None)
    return out


def merge(inputs: list[str], out: str) -> None:
    """Join part files (in the order given: seeds ascending) into one training file."""
    import h5py

    files = [h5py.File(path, "r") for path in inputs]
    try:
        seeds = [list(np.asarray(f["seeds"][()]).tolist()) for f in files]
        flat = [s for part in seeds for s in part]
        if len(set(flat)) != len(flat):
            raise io.InputFileError(f"merge: the parts share seeds: {seeds}")
        order = np.argsort([part[0] for part in seeds])
        files = [files[i] for i in order]
        seeds = [seeds[i] for i in order]
        flat = [s for part in seeds for s in part]
        attrs = _merged_attrs([dict(f.attrs) for f in files], flat, inputs)
        names = [set(_datasets(f)) for f in files]
        if any(n != names[0] for n in names):
            raise io.InputFileError(f"merge: the parts hold different datasets: {sorted(names[0] ^ names[-1])}")
        with io.atomic_h5(out, attrs) as target:
            for name in sorted(names[0]):
                arrays = [f[name][()] for f in files]
                if name == "seeds":
                    value = np.concatenate(arrays)
                elif name in SEEDLESS:
                    if any(not np.array_equal(a, arrays[0]) for a in arrays):
                        raise io.InputFileError(f"merge: {name} differs between the parts")
                    value = arrays[0]
                else:
                    if any(np.ndim(a) == 0 or a.shape[0] != len(s) for a, s in zip(arrays, seeds)):
                        raise io.InputFileError(f"merge: {name} has no leading seed axis; the merge does not know it")
                    value = np.concatenate(arrays, axis=0)
                target[name] = value
                for key, attr in files[0][name].attrs.items():
                    target[name].attrs[key] = attr
            for group in _groups(files[0]):
                for key, attr in files[0][group].attrs.items():
                    values = [f[group].attrs.get(key) for f in files]
                    join = GROUP_JOINS.get(group, {}).get(key)
                    if join is not None:
                        attr = join(values)
                    elif any(not _equal(v, attr) for v in values[1:]):
                        raise io.InputFileError(f"merge: attribute {key} of {group} differs between the parts")
                    target.require_group(group).attrs[key] = attr
    finally:
        for f in files:
            f.close()


def _groups(f) -> list[str]:
    import h5py

    out = []
    f.visititems(lambda name, obj: out.append(name) if isinstance(obj, h5py.Group) else None)
    return out


def _equal(a, b) -> bool:
    try:
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    except Exception:
        return a == b


def _merged_attrs(parts: list[dict], seeds: list[int], inputs) -> dict:
    """Root attributes of the merged file: the parts' (which must agree), seed lists joined."""
    first = parts[0]
    out = {}
    for key in first:
        values = [p.get(key) for p in parts]
        if key == "seeds":
            out[key] = json.dumps(seeds) if isinstance(first[key], str) else np.asarray(seeds)
        elif key in PER_SEED_ATTRS:
            joined = {}
            for v in values:
                joined.update(json.loads(v) if isinstance(v, str) else dict(v or {}))
            out[key] = json.dumps(joined, sort_keys=True) if isinstance(first[key], str) else joined
        elif key == "config":
            configs = [json.loads(v) for v in values]
            for c in configs:
                c.get("training", {}).pop("seeds", None)
            if any(c != configs[0] for c in configs):
                raise io.InputFileError("merge: the parts were trained with different settings")
            whole = json.loads(first[key])
            whole["training"]["seeds"] = seeds
            out[key] = json.dumps(whole, sort_keys=True)
        elif key in PROCESS_ATTRS:
            out[key] = first[key]
        elif key in JOINS and not isinstance(first[key], str):
            out[key] = JOINS[key](values)
        else:
            if any(not _equal(v, first[key]) for v in values[1:]):
                raise io.InputFileError(f"merge: attribute {key!r} differs between the parts ({inputs}); "
                                        f"the merge does not know how to join it")
            out[key] = first[key]
    return out


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("train", "merge"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "train":
        return train_part(argv[1:])
    p = argparse.ArgumentParser(prog="python -m ntkvae.seed_parts merge")
    p.add_argument("--inputs", nargs="+", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv[1:])
    try:
        merge(args.inputs, args.out)
    except (io.InputFileError, OSError, KeyError) as err:
        log.error("%s", err)
        return 1
    log.info("wrote %s from %d parts", args.out, len(args.inputs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
