"""JAX's persistent compilation cache, shared by the jobs of a workflow.

A training job at a small width spends most of its time compiling (each of its jitted
functions is compiled anew in every process). With a cache directory, a program compiled
once (same code, shapes, flags, JAX version and device kind: all part of the cache key) is
loaded from disk by every later job. Sharing one directory between concurrent jobs is safe
for the results: JAX (0.10, `jax._src.lru_cache`) writes an entry in place, and a job that
reads an entry being written, or one left truncated by a killed writer, gets a decoding
error that JAX turns into a warning and a fresh compilation (`jax._src.compiler._cache_read`),
never a wrong program. A truncated entry stays, though (JAX does not overwrite an existing
key), so that program is recompiled by every job until the directory is deleted; it is only
a cache, and deleting it is always safe.
"""

from __future__ import annotations

import logging
import os
import pathlib

log = logging.getLogger("ntkvae.jaxcache")

ENVIRONMENT = "NTKVAE_COMPILATION_CACHE"
# Cache programs that took this long to compile: every program of a training job is worth
# keeping (JAX's default, 1 s, would skip the many sub-second ones that add up).
MIN_COMPILE_SECONDS = 0.0


def enable(directory: str | os.PathLike | None = None) -> str | None:
    """Use `directory` (or $NTKVAE_COMPILATION_CACHE) as the persistent cache; None/"" leaves it off.

    Call before the first compilation. Returns the directory in use, or None."""
    import jax

    directory = directory or os.environ.get(ENVIRONMENT) or None
    if not directory:
        return None
    path = pathlib.Path(directory).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    log.info("JAX compilation cache: %s", path)
    return str(path)
