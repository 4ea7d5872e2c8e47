"""HDF5 input and output with provenance, written atomically.

Every file the workflow writes carries, as root attributes: the config that produced it
(JSON), the package versions, the git commit of the workflow and the command line. A
file is written to a temporary name beside its target and renamed only when complete,
so a failed or killed job never leaves a partial output behind (the temporary a killed job
leaves is removed by the next writer of that path).

Every reader goes through `open_input` and `read` (or `read_dict`), which turn a missing,
corrupt or malformed file into one line naming the file and the dataset or attribute: a
missing attribute, group or dataset, a wrong number of dimensions, inconsistent shapes
(`check_shapes`), and any NaN or infinity in a floating-point dataset. Where NaN is
meaningful (the seeds of a recorded divergence) the reader says which rows may hold it
(`allow_rows`) and excludes those rows itself. A write that fails (a full disk, a read-only
directory) raises OutputFileError naming the file, with nothing left behind.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import importlib.metadata
import json
import os
import pathlib
import subprocess
import shutil
import sys
from typing import Any, Iterable, Iterator, Mapping

import h5py
import numpy as np

PROVENANCE_PACKAGES = ("ntkvae", "jax", "jaxlib", "optax", "numpy", "scipy", "h5py", "matplotlib", "scikit-learn", "snakemake")


class WorkflowFileError(RuntimeError):
    """A file a step reads or writes is unusable; the message names it (one line)."""


class InputFileError(WorkflowFileError):
    """A missing, corrupt or malformed input file; the message names the file."""


class OutputFileError(WorkflowFileError, OSError):
    """An output that could not be written (full disk, no permission); the message names the file.
    Also an OSError, so that code catching the OSError of a failed write still catches it."""


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


def temporary_for(path: pathlib.Path) -> pathlib.Path:
    """The temporary that `atomic_h5` and `write_text` write before renaming it to `path`."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def remove_dead_temporaries(path: pathlib.Path) -> list[pathlib.Path]:
    """Remove the temporaries of `path` whose writer is no longer alive on this machine (a job
    killed while writing, SIGKILL or out of memory, cannot clean up after itself); those of live
    processes stay. Returns what was removed. The training job does the same under its lock
    (ntkvae.checkpoint.remove_stale_temporaries), also for writers on other machines."""
    removed = []
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[1].split(".")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with contextlib.suppress(OSError):   # gone already, or not ours to remove: the write goes on
                tmp.unlink()
                removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # alive, another user's
        return True
    return True


@contextlib.contextmanager
def atomic_h5(path: str | os.PathLike, attrs: Mapping[str, str] | None = None) -> Iterator[h5py.File]:
    """Open `path` for writing through a temporary file renamed into place on success (the
    temporaries dead writers of `path` left are removed first)."""
    path = pathlib.Path(path)
    tmp = temporary_for(path)
    try:
        if path.parent.is_dir():
            remove_dead_temporaries(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            f = h5py.File(tmp, "w", track_order=True)
        except OSError as err:
            raise OutputFileError(write_failure(path, err)) from err
        try:
            for key, value in (attrs or {}).items():
                f.attrs[key] = value
            yield f
        except OSError as err:
            _close_quietly(f)
            raise OutputFileError(write_failure(path, err)) from err
        except BaseException:
            _close_quietly(f)
            raise
        try:
            f.close()
            os.replace(tmp, path)
        except (OSError, RuntimeError) as err:
            # h5py writes its metadata when the file is closed: a disk that fills up there
            # shows as a RuntimeError ("Can't decrement id ref count (file write failed ...)").
            raise OutputFileError(write_failure(path, err)) from err
    finally:
        _remove(tmp)


def _close_quietly(f: h5py.File) -> None:
    """Close a file being abandoned; its flush may fail too (the disk is full), which must not
    hide the first error."""
    with contextlib.suppress(OSError, RuntimeError):
        f.close()


def write_failure(path: str | os.PathLike, err: Exception) -> str:
    """One line on why `path` could not be written (the OS sets errno; h5py sets it on its
    OSError and writes it into the text of the RuntimeError it raises on close)."""
    path = pathlib.Path(path)
    code = getattr(err, "errno", None)
    if code is None:
        found = re.search(r"errno = (\d+)", str(err))
        code = int(found.group(1)) if found else None
    reason = os.strerror(code) if code else str(err).splitlines()[0]
    if code in (errno.ENOSPC, errno.EDQUOT):
        folder = next((p for p in (path.parent, *path.parents) if p.exists()), None)
        free = f"; {shutil.disk_usage(folder).free / 1e6:.0f} MB free in {folder}" if folder else ""
        reason += f"{free}: free space (or point the workflow at a larger disk) and rerun"
    return f"cannot write {path}: {reason}"


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text output atomically (temporary file, then rename); OutputFileError on failure."""
    path = pathlib.Path(path)
    tmp = temporary_for(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_dead_temporaries(path)
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as err:
        raise OutputFileError(write_failure(path, err)) from err
    finally:
        _remove(tmp)


def _remove(tmp: pathlib.Path) -> None:
    """Delete a temporary file if it is there (a failed write must not end in a second error)."""
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)


def write_dict(group: h5py.Group, data: Mapping[str, Any]) -> None:
    """Write a nested mapping of arrays (sub-mappings become groups)."""
    for key, value in data.items():
        if isinstance(value, Mapping):
            write_dict(group.require_group(key), value)
        else:
            group.create_dataset(key, data=np.asarray(value))


def read_dict(group: h5py.Group, *, finite: bool = True, allow_rows: Mapping[str, Iterable[int]] | Iterable[int] = (),
              ) -> dict[str, Any]:
    """Read a group back into a nested dict of numpy arrays, each checked by `read`.

    `allow_rows`: rows (first axis) that may hold NaN or infinities, for every dataset, or as
    a mapping from dataset path (relative to `group`) to rows for some of them."""
    out: dict[str, Any] = {}
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            sub = {k[len(key) + 1:]: v for k, v in allow_rows.items() if k.startswith(key + "/")} \
                if isinstance(allow_rows, Mapping) else allow_rows
            out[key] = read_dict(item, finite=finite, allow_rows=sub)
        else:
            rows = allow_rows.get(key, ()) if isinstance(allow_rows, Mapping) else allow_rows
            out[key] = read(group, key, finite=finite, allow_rows=rows)
    return out


def read(group: h5py.Group, key: str, *, ndim: int | None = None, finite: bool = True,
         allow_rows: Iterable[int] = ()) -> Any:
    """The dataset `key` of `group` as an array (or scalar): present, a dataset, with `ndim`
    dimensions if given, and finite (except in the rows `allow_rows` of its first axis) if it
    holds floating-point numbers and `finite` is true. Errors name the file and the dataset."""
    path = group.file.filename
    name = f"{group.name.rstrip('/')}/{key}".lstrip("/")
    item = group.get(key)
    if item is None:
        raise InputFileError(f"input file {path} lacks the dataset {name}")
    if not isinstance(item, h5py.Dataset):
        raise InputFileError(f"input file {path}: {name} is a group, not a dataset")
    try:
        value = item[()]
    except (OSError, ValueError) as err:   # a damaged chunk, an unreadable type
        raise InputFileError(f"input file {path}: dataset {name} is unreadable ({err})") from err
    if ndim is not None and np.ndim(value) != ndim:
        raise InputFileError(f"input file {path}: dataset {name} has shape {np.shape(value)}, expected {ndim} "
                             f"dimension{'s' if ndim != 1 else ''}")
    if finite:
        check_finite(value, path, name, allow_rows)
    return value


def check_finite(value, path, name: str, allow_rows: Iterable[int] = ()) -> None:
    """InputFileError unless every floating-point entry of `value` outside the rows `allow_rows`
    of its first axis is finite: a NaN in a file is never averaged into a result."""
    a = np.asarray(value)
    if a.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(a)
    rows = sorted(set(int(r) for r in allow_rows))
    if rows and a.ndim:
        bad[rows] = False
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputFileError(f"input file {path}: dataset {name} holds {int(bad.sum())} non-finite value(s) "
                             f"({a[first] if first else a[()]} at index {list(first)}); the step that wrote it "
                             "produced NaN or infinity: delete the file and rerun that step")


def check_shapes(path, arrays: Mapping[str, Any], layout: Mapping[str, tuple],
                 known: Mapping[str, int] | None = None) -> dict[str, int]:
    """Check that arrays agree with a layout of named dimensions, e.g. {"x": ("n", "d"),
    "scale": ("n",)}: every name stands for one size across the datasets (an int, a fixed size;
    `known` gives sizes known beforehand, e.g. from attributes). Returns the sizes; the error
    names the file, the dataset and the dimension that disagrees."""
    sizes: dict[str, int] = dict(known or {})
    origin: dict[str, str] = {name: "its attributes" for name in sizes}
    for key, dims in layout.items():
        if key not in arrays:
            continue
        shape = np.shape(arrays[key])
        if len(shape) != len(dims):
            raise InputFileError(f"input file {path}: dataset {key} has shape {shape}, expected "
                                 f"({', '.join(map(str, dims))})")
        for axis, (dim, size) in enumerate(zip(dims, shape)):
            expected = dim if isinstance(dim, int) else sizes.setdefault(dim, size)
            origin.setdefault(str(dim), key)
            if size != expected:
                raise InputFileError(f"input file {path}: dataset {key} has shape {shape}, but axis {axis} ({dim}) "
                                     f"should be {expected}" + ("" if isinstance(dim, int) else
                                                                f" as in {origin[str(dim)]}"))
    return sizes


@contextlib.contextmanager
def open_input(path: str | os.PathLike, required: tuple[str, ...] = (), attrs: tuple[str, ...] = ()
               ) -> Iterator[h5py.File]:
    """Open an input HDF5 file, turning missing, corrupt or incomplete files into a clear error:
    every dataset (or group) in `required` and every root attribute in `attrs` must be there."""
    if path is None:
        raise InputFileError("an input file is required but none was given")
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
        missing = [key for key in attrs if key not in f.attrs]
        if missing:
            raise InputFileError(f"input file {path} lacks the attribute(s) {', '.join(missing)}")
        yield f


def read_json_attr(f: h5py.File | h5py.Group, key: str) -> Any:
    """A JSON-encoded attribute, or InputFileError naming the file and the attribute."""
    if key not in f.attrs:
        raise InputFileError(f"input file {f.file.filename} lacks the attribute {key}")
    try:
        return json.loads(f.attrs[key])
    except (TypeError, ValueError) as err:
        raise InputFileError(f"input file {f.file.filename}: attribute {key} is not valid JSON ({err})") from err
