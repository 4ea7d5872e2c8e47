"""HDF5 input and output with provenance, written atomically.

Every file the workflow writes carries, as root attributes: the config that produced it
(JSON), the package versions, the git commit of the workflow and the command line. A
file is written to a temporary name beside its target and renamed only when complete,
so a failed or killed job never leaves a partial output behind.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import json
import os
import pathlib
import subprocess
import sys
from typing import Any, Iterator, Mapping

import h5py
import numpy as np

PROVENANCE_PACKAGES = ("ntkvae", "jax", "jaxlib", "optax", "numpy", "scipy", "h5py", "matplotlib", "scikit-learn", "snakemake")


class InputFileError(RuntimeError):
    """A missing, corrupt or malformed input file; the message names the file."""


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The workflow's git commit (with '-dirty' when it has uncommitted changes), or 'unknown'."""
    root = pathlib.Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in PROVENANCE_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance(config: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """Provenance attributes: config, versions, commit, command, plus any extra (JSON-encoded)."""
    attrs = {
        "config": json.dumps(config or {}, sort_keys=True, default=str),
        "versions": json.dumps(package_versions(), sort_keys=True),
        "git_commit": git_commit(),
        "command": " ".join(sys.argv),
    }
    for key, value in extra.items():
        # Scalars stay native (h5py attributes); structures are stored as JSON text.
        scalar = isinstance(value, (str, bool, int, float, np.generic))
        attrs[key] = value if scalar else json.dumps(value, default=_jsonable)
    return attrs


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


@contextlib.contextmanager
def atomic_h5(path: str | os.PathLike, attrs: Mapping[str, str] | None = None) -> Iterator[h5py.File]:
    """Open `path` for writing through a temporary file renamed into place on success."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w", track_order=True) as f:
            for key, value in (attrs or {}).items():
                f.attrs[key] = value
            yield f
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_dict(group: h5py.Group, data: Mapping[str, Any]) -> None:
    """Write a nested mapping of arrays (sub-mappings become groups)."""
    for key, value in data.items():
        if isinstance(value, Mapping):
            write_dict(group.require_group(key), value)
        else:
            group.create_dataset(key, data=np.asarray(value))


def read_dict(group: h5py.Group) -> dict[str, Any]:
    """Read a group back into a nested dict of numpy arrays."""
    return {key: read_dict(item) if isinstance(item, h5py.Group) else item[()] for key, item in group.items()}


@contextlib.contextmanager
def open_input(path: str | os.PathLike, required: tuple[str, ...] = ()) -> Iterator[h5py.File]:
    """Open an input HDF5 file, turning missing, corrupt or incomplete files into a clear error."""
    path = pathlib.Path(path)
    if not path.exists():
        raise InputFileError(f"input file {path} does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise InputFileError(f"input file {path} is not a readable HDF5 file ({err})") from err
    with f:
        missing = [key for key in required if key not in f]
        if missing:
            raise InputFileError(f"input file {path} lacks the dataset(s) {', '.join(missing)}")
        yield f


def read_json_attr(f: h5py.File | h5py.Group, key: str) -> Any:
    return json.loads(f.attrs[key])
