"""Threefry on the CPU: JAX's unrolled lowering instead of its rolled loop (compile time).

JAX lowers the threefry-2x32 hash (every jax.random draw, and `model.standard_normal`) on a
CPU as a `fori_loop` of five rounds (jax/_src/random/threefry2x32.py: the "rolled" CPU rule),
elsewhere as the twenty rounds written out. A loop cannot fuse with what surrounds it, so
each draw becomes a while loop of its own in the compiled program: the init program of a
training job held 13 of them and took 4.8 CPU-seconds to compile, 2.2 with the unrolled
rule (benchmarks/bench_job_overhead.py). The hash is integer arithmetic, so both rules give
the same bits (tests/test_training.py checks draws against jax.random with the rolled rule);
the unrolled one also runs no slower (the rounds fuse with the draw's use).

`use_unrolled_on_cpu()` registers JAX's own unrolled rule for the CPU platform. It relies on
two private names of JAX 0.10; if they move, it leaves JAX as it is (a slower compile, the
same numbers) and says so in the log.
"""

from __future__ import annotations

import logging

log = logging.getLogger("ntkvae.threefry")

_DONE = []


def use_unrolled_on_cpu() -> bool:
    """Lower threefry-2x32 unrolled on the CPU too (idempotent). Returns whether it is in effect."""
    if _DONE:
        return _DONE[0]
    try:
        from jax._src.interpreters import mlir
        from jax._src.random import threefry2x32 as T

        mlir.register_lowering(T.threefry2x32_p, T._threefry2x32_lowering_rule, platform="cpu")
        _DONE.append(True)
    except (ImportError, AttributeError) as err:  # a JAX without these names: keep its rolled rule
        log.info("threefry: JAX's rolled CPU lowering kept (%s)", err)
        _DONE.append(False)
    return _DONE[0]


def use_rolled_on_cpu() -> None:
    """JAX's default CPU rule again (for the test that both give the same bits)."""
    from jax._src.interpreters import mlir
    from jax._src.random import threefry2x32 as T

    mlir.register_lowering(T.threefry2x32_p, T._threefry2x32_cpu_lowering_rule, platform="cpu")
    _DONE[:] = [False]
