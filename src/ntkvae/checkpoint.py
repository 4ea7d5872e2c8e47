"""The files a training job owns: its checkpoint, its lock, and no leftovers.

- A checkpoint holds the state and history of a run (`save_checkpoint`, `load_checkpoint`)
  and is resumed only by a job with the same settings and data (`fingerprint`).
- One live writer per file: `exclusive_writer` takes an fcntl.flock on a lock file beside
  each file the job writes (its output and its checkpoint). The kernel releases the lock
  when the holder dies, however it dies, so a lock file left by a killed job never blocks;
  a second live job on the same files (an orphan of a killed Snakemake, a rerun beside it)
  is refused with the holder's pid.
- No temporary outlives its job: a checkpoint that cannot be written completely (a full
  disk) removes its temporary, and a job that holds the lock removes the temporaries that
  dead writers of its files left (a SIGKILL during a write cannot clean up after itself).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import pathlib
import zipfile
from typing import Iterable, Iterator

import jax
import numpy as np

log = logging.getLogger("ntkvae.checkpoint")


class WriterBusy(RuntimeError):
    """Another live process writes the same output or checkpoint."""


class CheckpointError(RuntimeError):
    """A checkpoint could not be written (the message names the file and the cause)."""


# ---------------------------------------------------------------------- one writer per file

def lock_path(path: pathlib.Path) -> pathlib.Path:
    """The lock file of `path`: hidden, beside it."""
    return path.with_name(f".{path.name}.lock")


def _acquire(path: pathlib.Path) -> int:
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise WriterBusy(f"{path} is being written by another live job (pid {holder}, lock {lock}); "
                             f"wait for it or stop it, then rerun") from None
        # The previous holder unlinks the lock file before releasing it: if we locked an
        # unlinked inode, try again on the file now at that path.
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            return fd
        os.close(fd)


@contextlib.contextmanager
def exclusive_writer(paths: Iterable[pathlib.Path]) -> Iterator[None]:
    """Hold the lock of every path for the duration (WriterBusy if another live job holds one)."""
    held: list[tuple[pathlib.Path, int]] = []
    try:
        for path in paths:
            held.append((path, _acquire(pathlib.Path(path))))
        yield
    finally:
        for path, fd in reversed(held):
            with contextlib.suppress(FileNotFoundError):
                lock_path(path).unlink()  # while still locked (see _acquire)
            os.close(fd)


def output_temporaries(path: pathlib.Path) -> list[pathlib.Path]:
    """Temporaries of `ntkvae.io.atomic_h5` for `path` (`.<name>.tmp-<pid>`)."""
    return sorted(path.parent.glob(f".{path.name}.tmp-*"))


def checkpoint_temporaries(path: pathlib.Path) -> list[pathlib.Path]:
    """Temporaries of `save_checkpoint` for `path` (and of older versions, `<name>.tmp.npz`)."""
    return sorted(path.parent.glob(f".{path.name}.tmp-*")) + sorted(path.parent.glob(f"{path.name}.tmp*"))


def remove_stale_temporaries(outputs, checkpoint: pathlib.Path | None) -> None:
    """Remove what dead writers of `outputs` (one path or several) and `checkpoint` left; call
    only while holding `exclusive_writer` on all of them (then no live process writes them,
    so every temporary is stale)."""
    outputs = [outputs] if isinstance(outputs, (str, pathlib.Path)) else list(outputs)
    stale = [t for out in outputs for t in output_temporaries(pathlib.Path(out))]
    stale += checkpoint_temporaries(checkpoint) if checkpoint else []
    for tmp in stale:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            log.warning("removed %s, left by a killed job", tmp)


# ---------------------------------------------------------------------- checkpoint format

def fingerprint(model_cfg, training_cfg, width, x: np.ndarray) -> str:
    """What a checkpoint must match to be resumed: settings (of each member run), width and the data's content.

    The data enter by content, not by path: a dataset regenerated at the same path (another
    n or seed) must not resume a checkpoint trained on the old one, and a moved working
    directory should still resume."""
    host_only = ("progress_seconds", "checkpoint_every", "description")
    members = [training_cfg] if isinstance(training_cfg, dict) else list(training_cfg)  # one per member run
    keep = [{k: v for k, v in cfg.items() if k not in host_only} for cfg in members]
    blob = json.dumps([model_cfg, keep, width, list(x.shape), str(x.dtype)], sort_keys=True, default=str)
    digest = hashlib.sha256(blob.encode())
    digest.update(np.ascontiguousarray(x).tobytes())
    return digest.hexdigest()[:16]


def flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """{"a": {"b": x}} -> {"a/b": x}."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}/"))
        else:
            flat[prefix + key] = np.asarray(value)
    return flat


def unflatten(flat: dict[str, np.ndarray]) -> dict:
    tree: dict = {}
    for path, value in flat.items():
        *parents, leaf = path.split("/")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def save_checkpoint(path: pathlib.Path, state: dict, history: dict, digest: str) -> None:
    """Write state and history to `path` atomically (a kill while writing leaves the old one,
    a failed write, e.g. a full disk, leaves the old one and no temporary).

    Arrays are stored as they are (dtype kept), so a resumed run writes the same numbers as an
    uninterrupted one: the per-step metrics as one array (seeds, steps, 3), and each
    evaluated quantity stacked over the evaluations so far, (seeds, ..., evaluations)."""
    leaves = jax.tree_util.tree_leaves({k: v for k, v in state.items() if k != "step"})
    arrays = {f"leaf{i}": np.asarray(leaf) for i, leaf in enumerate(leaves)}
    arrays["metrics"] = np.concatenate(history["metrics"], axis=1)
    stacked = jax.tree.map(lambda *a: np.stack(a, axis=-1), *history["evals"])
    arrays.update({f"eval/{k}": v for k, v in flatten(stacked).items()})
    meta = json.dumps({"fingerprint": digest, "step": int(state["step"]), "evaluations": len(history["evals"])})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npz")
    try:
        np.savez(tmp, meta=np.array(meta), **arrays)
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise CheckpointError(f"could not write checkpoint {path}: {err.strerror or err}") from err
    log.info("checkpoint written at step %d to %s", state["step"], path)


def load_checkpoint(path: pathlib.Path, state: dict, digest: str) -> dict | None:
    """Restore `state` in place from `path`; returns the history, or None if unusable."""
    if not path.exists():
        return None
    try:
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            if meta["fingerprint"] != digest:
                log.warning("checkpoint %s belongs to other settings or data; starting afresh", path)
                return None
            tree = {k: v for k, v in state.items() if k != "step"}
            leaves, treedef = jax.tree_util.tree_flatten(tree)
            restored = [jax.numpy.asarray(z[f"leaf{i}"]) for i in range(len(leaves))]
            if any(r.shape != np.shape(l) or r.dtype != l.dtype for r, l in zip(restored, leaves)):
                raise ValueError("array shapes or types differ from this run's state")
            metrics = z["metrics"]
            stacked = unflatten({k[len("eval/"):]: z[k] for k in z.files if k.startswith("eval/")})
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:  # truncated or foreign file
        log.warning("checkpoint %s is unreadable (%s); starting afresh", path, err)
        return None
    state.update(jax.tree_util.tree_unflatten(treedef, restored))
    state["step"] = int(meta["step"])
    evals = [jax.tree.map(lambda a, i=i: a[..., i], stacked) for i in range(int(meta["evaluations"]))]
    log.info("resumed from checkpoint %s at step %d", path, state["step"])
    return {"metrics": [metrics], "evals": evals}
