"""The finite-width stability limit of gradient descent, measured at initialization.

Plain gradient descent on a quadratic with Hessian H is stable only for a learning rate
below 2 / lambda_max(H). For a run, H is the Hessian of its own training objective at theta_0
with the noise of step 0, taken over the parameters it trains (frozen groups are constants),
one per seed. `lambda_max` is the largest (algebraic) eigenvalue, found by the Lanczos
iteration on Hessian-vector products (forward-over-reverse: jax.jvp of jax.grad), so H is
never formed. Lanczos gives both ends of the spectrum at once: a dominant negative
eigenvalue, which would capture a power iteration (and need a shift), does not disturb the
top Ritz value. Without reorthogonalization only three vectors per seed are held; the loss
of orthogonality in floating point makes converged Ritz values reappear as copies, which
leaves the largest one correct.

The iteration stops when every seed's top Ritz value theta has the residual bound
beta_k |s_k| (the distance from theta to an eigenvalue of H) below `RELATIVE_TOLERANCE` * |theta|.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

log = logging.getLogger("ntkvae.stability")

# The residual bound that stops the iteration, relative to the top Ritz value ("converged to
# about 1 %"). The Ritz value approaches lambda_max from below and its error is smaller than
# the bound (about half of it in the runs measured: docs/design.md).
RELATIVE_TOLERANCE = 0.01
MAX_ITERATIONS = 160
# Lanczos steps per jitted call (the convergence test runs between calls, on the host).
CHUNK = 8


@dataclasses.dataclass
class TopEigenvalue:
    """Per seed: the largest eigenvalue, its residual bound, and the Lanczos steps taken."""

    value: np.ndarray
    bound: np.ndarray
    iterations: int

    @property
    def converged(self) -> bool:
        return bool(np.all(self.bound <= RELATIVE_TOLERANCE * np.abs(self.value)))


def _ritz_top(alphas: np.ndarray, betas: np.ndarray) -> tuple[float, float]:
    """Largest eigenvalue of the Lanczos tridiagonal and its residual bound beta_k |s_k|.

    The tridiagonal is at most MAX_ITERATIONS wide: numpy's dense eigh (LAPACK syevd) costs
    microseconds and spares every job the import of scipy.linalg."""
    k = len(alphas)
    if k == 1:
        return float(alphas[0]), float(abs(betas[0]))
    off = betas[: k - 1]
    values, vectors = np.linalg.eigh(np.diag(alphas) + np.diag(off, 1) + np.diag(off, -1))
    return float(values[-1]), float(abs(betas[k - 1] * vectors[-1, -1]))


@functools.lru_cache(maxsize=32)
def _chunk_program(linear_operator: Callable, chunk: int, in_axes) -> Callable:
    """The jitted chunk of `chunk` Lanczos steps for every row, one per operator: a second
    call with the same operator (a second job member, a second check) reuses it."""

    def chunk_one(operands_row, v, v_prev, beta):
        matvec = linear_operator(operands_row)

        def body(carry, _):
            v, v_prev, beta = carry
            w = matvec(v) - beta * v_prev
            alpha = jnp.vdot(w, v)
            w = w - alpha * v
            beta_next = jnp.linalg.norm(w)
            # An exact invariant subspace (beta = 0) ends the recurrence; its bound is then 0.
            return (w / jnp.where(beta_next > 0, beta_next, 1.0), v, beta_next), (alpha, beta_next)

        (v, v_prev, beta), (alphas, betas) = jax.lax.scan(body, (v, v_prev, beta), None, length=chunk)
        return v, v_prev, beta, alphas, betas

    # v and v_prev are donated: the chunk's outputs take their buffers (two vectors per row
    # fewer at the peak; at width 4096 on sprites, 0.5 GB each).
    return jax.jit(jax.vmap(chunk_one, in_axes=(in_axes, 0, 0, 0)), donate_argnums=(1, 2))


@functools.partial(jax.jit, donate_argnums=0)
def _start(v0):
    """The normalized start vectors, zero previous vectors and zero betas of every row."""
    v = v0 / jnp.linalg.norm(v0, axis=1, keepdims=True)
    return v, jnp.zeros_like(v), jnp.zeros(v.shape[0], v.dtype)


def lanczos_top(linear_operator: Callable, operands, v0: jax.Array, *, tolerance: float = RELATIVE_TOLERANCE,
                max_iterations: int = MAX_ITERATIONS, chunk: int = CHUNK, in_axes=0) -> TopEigenvalue:
    """Largest eigenvalue of symmetric operators, one per row of v0 (seeds, P).

    linear_operator(operands_row) returns the matrix-vector product of that row's operator
    (a function P -> P); it is built once per chunk of `chunk` Lanczos steps inside one jit
    (for a Hessian: the gradient linearized once, so the primal pass is shared by the
    chunk's products). The operands are arguments, not closed over: a jitted closure would
    make them constants, which XLA then folds at compile time (minutes at width 1024).
    `in_axes` (vmap's) says which operands are stacked over rows (0) and which are shared
    (None). The compiled chunk is kept per (linear_operator, chunk, in_axes): pass the same
    function object to reuse it. v0 is consumed (its buffer is donated to the first vectors)."""
    run_chunk = _chunk_program(linear_operator, int(chunk), in_axes)
    v, v_prev, beta = _start(v0)
    rows = v.shape[0]
    alphas, betas = np.zeros((rows, 0)), np.zeros((rows, 0))
    value, bound = np.zeros(rows), np.full(rows, np.inf)
    while alphas.shape[1] < max_iterations:
        v, v_prev, beta, a, b = run_chunk(operands, v, v_prev, beta)
        alphas = np.concatenate([alphas, np.asarray(a, np.float64)], axis=1)
        betas = np.concatenate([betas, np.asarray(b, np.float64)], axis=1)
        for row in range(rows):
            k = _first_breakdown(betas[row])
            value[row], bound[row] = _ritz_top(alphas[row, :k], betas[row, :k])
        if np.all(bound <= tolerance * np.abs(value)):
            break
    return TopEigenvalue(value=value, bound=bound, iterations=alphas.shape[1])


def _first_breakdown(betas: np.ndarray) -> int:
    """Lanczos steps up to and including the first beta = 0 (an invariant subspace found)."""
    zero = np.flatnonzero(betas == 0)
    return int(zero[0]) + 1 if zero.size else len(betas)


@functools.lru_cache(maxsize=32)
def _hessian_operator(loss: Callable) -> Callable:
    """The masked Hessian-vector product of `loss` at a row's point, as a linear_operator of
    lanczos_top; one function object per loss, so that its compiled chunk is reused."""

    def linear_operator(operands_row):
        trained_row, context_row, mask_row = operands_row
        point, unravel = ravel_pytree(trained_row)
        grad_flat = jax.grad(lambda q: loss(unravel(q), context_row))
        hvp = jax.linearize(grad_flat, point)[1]
        if mask_row is None:     # every lane trains every coordinate: no mask vector is held
            return hvp
        return lambda v: mask_row * hvp(mask_row * v)

    return linear_operator


@jax.jit
def _flat_start(trained, masks, keys):
    """Per lane: the flattened mask (None: no mask) and the masked Gaussian start vector."""
    flat = jax.vmap(lambda t: ravel_pytree(t)[0])
    points = flat(trained)
    v0 = jax.vmap(lambda k: jax.random.normal(k, points.shape[1:], points.dtype))(keys)
    if masks is None:
        return None, v0
    mask = flat(masks)
    return mask, v0 * mask


def hessian_lambda_max(loss: Callable, trained: dict, context, keys: jax.Array, masks: dict | None = None,
                       context_axes=0, **kwargs) -> TopEigenvalue:
    """lambda_max of the Hessian of loss(trained, context) in `trained`, per lane.

    `trained` (the parameters differentiated), `context` (anything else the loss needs: the
    frozen groups, the noise), `keys` (for the start vectors) and `masks` (1 where a lane
    trains a coordinate, 0 where it keeps it fixed; None: all 1) are stacked over lanes on
    their leading axis, except the parts of `context` that `context_axes` (vmap's in_axes)
    marks None (shared by the lanes); `loss` takes one lane's slices. A mask restricts the
    Hessian to the coordinates the lane trains (the operator is M H M). Hessian-vector
    products are forward-over-reverse: the jvp of jax.grad, linearized at theta_0. The
    compiled Lanczos chunk is kept per `loss` (pass the same function to reuse it)."""
    mask, v0 = _flat_start(trained, masks, keys)
    del masks                                  # the flat mask is what the operator holds
    return lanczos_top(_hessian_operator(loss), (trained, context, mask), v0,
                       in_axes=(0, context_axes, None if mask is None else 0), **kwargs)
