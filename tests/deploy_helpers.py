"""Helpers shared by the deployment tests (SLURM, preemption)."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import h5py
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def copy_workflow(dest: pathlib.Path) -> pathlib.Path:
    """The working tree's files (tracked and not ignored) in a fresh directory, as a user has them."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def workflow_env(base: dict | None = None) -> dict:
    """Environment for running Snakemake: its jobs' `python` is the one running the tests."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = str(pathlib.Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def h5_datasets(path: pathlib.Path) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def h5_attrs(path: pathlib.Path) -> dict[str, str]:
    with h5py.File(path, "r") as f:
        return {k: str(v) for k, v in f.attrs.items()}


def assert_same_numbers(a: pathlib.Path, b: pathlib.Path) -> None:
    """Every dataset equal in dtype, shape and value. Bitwise, not approximately: both runs
    execute the same XLA programs on the same CPU, so any difference is a bug."""
    da, db = h5_datasets(a), h5_datasets(b)
    assert sorted(da) == sorted(db), (a, b)
    for name in da:
        assert da[name].dtype == db[name].dtype, f"{a}: {name}"
        np.testing.assert_array_equal(da[name], db[name], err_msg=f"{a}: {name}")
