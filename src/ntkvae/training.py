"""Full-batch training of all seeds of one width: one jitted, vmapped step, scanned.

The loop is split into chunks of `log_every` steps. Each chunk is one jitted call: a
`lax.scan` over its steps of a step function vmapped over seeds. Between chunks the
Python side evaluates (also jitted and vmapped), reports progress, checks for divergence
and, when asked, writes a checkpoint. Noise for step t of a seed is drawn from
`fold_in(noise_key, t)`, so a run resumed from a checkpoint draws exactly the same noise
as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import model as M
from . import objectives, stability

log = logging.getLogger("ntkvae.training")


class DivergenceError(RuntimeError):
    """The training objective diverged (see `first_divergence`), or the learning rate is
    above the stability limit measured at initialization."""


# Named PRNG streams of a seed: jax.random.fold_in(PRNGKey(seed), KEY_STREAMS[name]).
KEY_STREAMS = {"init": 0, "noise": 1, "eval": 2, "probe": 3, "stability": 4}

# Finite divergence: a seed whose objective exceeds this multiple of its step-0 value has
# diverged (docs/design.md). Gradient descent that trains never climbs that far above where
# it started; a blow-up passes it within a few steps (tiny config, learning rate 6: 51 to
# 1.2e15 in 20 steps), long before it overflows to inf or NaN.
DIVERGENCE_FACTOR = 100.0


@dataclasses.dataclass(frozen=True)
class Settings:
    """Training settings of one run (the resolved `training` section plus run overrides)."""

    objective: str = "mse"
    optimizer: str = "sgd"
    learning_rate: float = 1.0
    steps: int = 300
    seeds: tuple[int, ...] = (0, 1, 2)
    beta: float = 1.0
    kl_scaling: str = "inv_sqrt_width"
    train_sigma: bool = False
    log_every: int = 10
    eval_noise_samples: int = 32
    reconstructions: int = 8
    checkpoint_every: int = 0
    on_divergence: str = "fail"
    progress_seconds: float = 10.0
    noise: str = "fresh"
    examples: int | None = None           # train on the first k examples (None: all)
    record_outputs: bool = False          # store f_t(X) at every log point (outputs/...)
    convergence_tolerance: float | None = None  # stop at convergence (noise fixed only)

    def __post_init__(self):
        if self.convergence_tolerance is not None and self.noise != "fixed":
            raise ValueError("convergence_tolerance needs noise: fixed (the objective must be deterministic "
                             f"to converge), got noise: {self.noise}")
        if self.examples is not None and int(self.examples) < 1:
            raise ValueError(f"examples must be at least 1 or null, got {self.examples}")

    @classmethod
    def from_config(cls, training: Mapping) -> "Settings":
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in training.items() if k in fields}
        if "seeds" in values:
            values["seeds"] = tuple(int(s) for s in values["seeds"])
        return cls(**values)

    def trained(self, group: str) -> bool:
        """Whether a parameter group is trained (the variance groups only with train_sigma)."""
        return self.train_sigma or group not in FROZEN_UNLESS_TRAIN_SIGMA


# Groups frozen unless `train_sigma` (the paper's KRR setting freezes the variance weights).
FROZEN_UNLESS_TRAIN_SIGMA = ("Wsigma", "bsigma")


def make_optimizer(settings: Settings, params: Mapping) -> optax.GradientTransformation:
    """optax SGD or Adam; with train_sigma false, the variance weights get zero updates."""
    if settings.optimizer == "sgd":
        base = optax.sgd(settings.learning_rate)
    elif settings.optimizer == "adam":
        base = optax.adam(settings.learning_rate)
    else:
        raise ValueError(f"unknown optimizer {settings.optimizer!r}")
    if settings.train_sigma:
        return base
    labels = {k: ("trained" if settings.trained(k) else "frozen") for k in params}
    return optax.multi_transform({"trained": base, "frozen": optax.set_to_zero()}, labels)


def seed_key(seed: int, stream: str) -> jax.Array:
    """The key of one named stream (KEY_STREAMS) of a seed."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), KEY_STREAMS[stream])


def seed_keys(seed: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(init, training noise, evaluation noise) keys of one seed."""
    return seed_key(seed, "init"), seed_key(seed, "noise"), seed_key(seed, "eval")


class Trainer:
    """Compiled step, chunk and evaluation functions for one (architecture, width, settings, data)."""

    def __init__(self, arch: M.Architecture, width: int, settings: Settings, x: np.ndarray):
        self.arch, self.width, self.settings = arch, int(width), settings
        self.x = jnp.asarray(x, jnp.float32)
        self.n, self.d = self.x.shape
        self.latent = arch.latent_dim(width)
        template = M.init_params(jax.random.PRNGKey(0), arch, self.d, 1)
        self.optimizer = make_optimizer(settings, template)
        self._chunks: dict[int, Callable] = {}
        self._evaluate = jax.jit(jax.vmap(self._evaluate_one, in_axes=(0, 0, 0, 0, None)))

    # ------------------------------------------------------------------ state

    def init_state(self) -> dict:
        """Stacked (over seeds) parameters, optimizer state and keys at step 0."""
        per_seed = []
        for seed in self.settings.seeds:
            k_init, k_noise, k_eval = seed_keys(seed)
            params = M.init_params(k_init, self.arch, self.d, self.width)
            per_seed.append({"params": params, "noise_key": k_noise, "eval_key": k_eval})
        stacked = jax.tree.map(lambda *a: jnp.stack(a), *per_seed)
        opt_state = jax.vmap(self.optimizer.init)(stacked["params"])
        # params0 is a copy: the chunk function donates (reuses) the buffers of params.
        params0 = jax.tree.map(jnp.copy, stacked["params"])
        return {"params": stacked["params"], "params0": params0, "opt_state": opt_state,
                "noise_key": stacked["noise_key"], "eval_key": stacked["eval_key"], "step": 0}

    # ------------------------------------------------------------------ training

    def _loss(self, params, eps):
        out = M.forward(params, self.x, eps, self.arch)
        return objectives.objective(out, self.x, kind=self.settings.objective, beta=self.settings.beta,
                                    kl_scaling=self.settings.kl_scaling)

    def training_noise(self, noise_key, step):
        """The training noise of a step: fresh, a new draw per example at every step (a
        stochastic objective); fixed, one draw per example for the whole run (the network is
        then a deterministic function of (x_i, eps_i), the setting of Theorem 1's zero-loss
        limit and of the KRR ridge)."""
        noise_step = step if self.settings.noise == "fresh" else 0
        return M.sample_noise(jax.random.fold_in(noise_key, noise_step), self.n, self.arch, self.width)

    def _step_one(self, params, opt_state, noise_key, step):
        eps = self.training_noise(noise_key, step)
        (loss, parts), grads = jax.value_and_grad(self._loss, has_aux=True)(params, eps)
        updates, opt_state = self.optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, jnp.stack([loss, parts["mse"], parts["kl"]])

    def _chunk_fn(self, length: int) -> Callable:
        if length not in self._chunks:
            step_all = jax.vmap(self._step_one, in_axes=(0, 0, 0, None))

            def chunk(params, opt_state, noise_key, start):
                def body(carry, step):
                    p, o = carry
                    p, o, metrics = step_all(p, o, noise_key, step)
                    return (p, o), metrics

                (params, opt_state), metrics = jax.lax.scan(body, (params, opt_state), start + jnp.arange(length))
                return params, opt_state, jnp.moveaxis(metrics, 0, 1)  # (seeds, length, 3)

            self._chunks[length] = jax.jit(chunk, donate_argnums=(0, 1))
        return self._chunks[length]

    def run_chunk(self, state: dict, length: int) -> np.ndarray:
        """Advance `state` by `length` steps in place; returns per-step metrics (seeds, length, 3)."""
        fn = self._chunk_fn(length)
        state["params"], state["opt_state"], metrics = fn(state["params"], state["opt_state"], state["noise_key"],
                                                          jnp.int32(state["step"]))
        state["step"] += length
        return np.asarray(metrics)

    def stability(self, state: dict, **lanczos) -> "stability.TopEigenvalue":
        """lambda_max of the Hessian of the objective at theta_0 with the step-0 training noise,
        in the trained groups only, per seed (`ntkvae.stability`)."""
        params = state["params0"]
        trained = {g: v for g, v in params.items() if self.settings.trained(g)}
        frozen = {g: v for g, v in params.items() if not self.settings.trained(g)}
        eps = jax.vmap(lambda k: self.training_noise(k, 0))(state["noise_key"])
        keys = jnp.stack([seed_key(seed, "stability") for seed in self.settings.seeds])

        def loss(trained_one, context):
            frozen_one, eps_one = context
            return self._loss({**trained_one, **frozen_one}, eps_one)[0]

        return stability.hessian_lambda_max(loss, trained, (frozen, eps), keys, **lanczos)

    # ------------------------------------------------------------------ evaluation

    def _evaluate_one(self, params, params0, noise_key, eval_key, step):
        """Metrics of one seed at one logged step: noise-averaged over k evaluation draws, and
        the training objective with the training noise of that step."""
        _, mu, s = M.encode(params, self.x, self.arch)
        sd = jnp.exp(0.5 * s)
        key = jax.random.fold_in(eval_key, step)
        record = self.settings.record_outputs

        def draw(carry, k):
            total, mse_sum, shifted, shifted_sq = carry
            eps = M.sample_noise(k, self.n, self.arch, self.width)
            xhat = M.decode(params, mu + sd * eps, self.arch)
            if record:  # sums of xhat - xhat_0 (shifted by the first draw against cancellation)
                shifted, shifted_sq = shifted + (xhat - first), shifted_sq + (xhat - first) ** 2
            return (total + xhat, mse_sum + objectives.reconstruction_loss(xhat, self.x), shifted, shifted_sq), None

        k = self.settings.eval_noise_samples
        keys = jax.random.split(key, k)
        first = M.decode(params, mu + sd * M.sample_noise(keys[0], self.n, self.arch, self.width), self.arch)
        zero = (jnp.zeros_like(self.x), jnp.zeros((), self.x.dtype), jnp.zeros_like(self.x), jnp.zeros_like(self.x))
        (total, mse_sum, shifted, shifted_sq), _ = jax.lax.scan(draw, zero, keys)
        # expected MSE = mean-function residual + noise floor (the variance of xhat over noise).
        # The residual of the k-draw average overestimates the first term by floor / k; both
        # parts are corrected to be unbiased (sample variance with k - 1), and still sum to
        # the unbiased expected MSE.
        expected = mse_sum / k
        residual_k = objectives.reconstruction_loss(total / k, self.x)
        floor = (expected - residual_k) * k / (k - 1)
        kl = jnp.mean(objectives.kl_divergence(mu, s))
        change = {g: jnp.linalg.norm(params[g] - params0[g]) for g in params}
        relative = {g: change[g] / jnp.linalg.norm(params0[g]) for g in params}
        # The training objective at this step's parameters with this step's training noise
        # (noise fixed: the deterministic objective that the convergence test reads).
        out = M.forward(params, self.x, self.training_noise(noise_key, step), self.arch)
        objective, _ = objectives.objective(out, self.x, kind=self.settings.objective, beta=self.settings.beta,
                                            kl_scaling=self.settings.kl_scaling)
        result = {"mean_function_mse": expected - floor, "expected_mse": expected, "noise_floor": floor,
                  "kl": kl, "objective": objective, "weight_change": relative, "weight_change_absolute": change}
        if record:
            # Per entry, the sample variance over the k draws, divided by k: the variance of the
            # k-draw mean. Its sum debiases squared distances: E||mean - g||^2 = ||f_bar - g||^2 + it.
            variance = (shifted_sq - shifted**2 / k) / (k - 1)
            result["outputs"] = {"sampled": out["xhat"], "mean": total / k, "mean_mc_variance": jnp.sum(variance) / k}
        return result

    def evaluate(self, state: dict) -> dict:
        out = self._evaluate(state["params"], state["params0"], state["noise_key"], state["eval_key"],
                             jnp.int32(state["step"]))
        return jax.tree.map(np.asarray, out)

    def reconstructions(self, state: dict, count: int) -> dict:
        """Noise-averaged and single-draw reconstructions of the first `count` examples, per seed."""
        xs = self.x[:count]

        def one(params, eval_key):
            key = jax.random.fold_in(eval_key, 2**31 - 1)  # a step number no evaluation uses
            mean = M.mean_output(params, xs, key, self.arch, self.width, self.settings.eval_noise_samples)
            eps = M.sample_noise(jax.random.fold_in(key, 1), count, self.arch, self.width)
            return {"mean": mean, "sample": M.forward(params, xs, eps, self.arch)["xhat"]}

        out = jax.jit(jax.vmap(one))(state["params"], state["eval_key"])
        return jax.tree.map(np.asarray, out)


def first_divergence(metrics: np.ndarray, start: int, initial: np.ndarray) -> list[tuple[int, int, float]]:
    """(seed position, step, value) of the first diverged objective of each diverged seed.

    A seed diverges at the first step whose objective is NaN, infinite, or above
    DIVERGENCE_FACTOR times `initial` (its objective at step 0, one value per seed)."""
    found = []
    limit = DIVERGENCE_FACTOR * np.abs(np.asarray(initial, np.float64))
    for pos in range(metrics.shape[0]):
        values = metrics[pos, :, 0]
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero(~np.isfinite(values) | (values > limit[pos]))
        if bad.size:
            found.append((pos, start + int(bad[0]), float(values[bad[0]])))
    return found


def convergence(objective: np.ndarray, steps: list[int], tolerance: float) -> tuple[dict[int, int], int | None]:
    """Convergence of the logged (deterministic) objective, (seeds, points) at the log `steps`.

    A seed meets the criterion at log point j >= 1 when L_j <= tol * L_0 or
    |L_j - L_{j-1}| <= tol * L_{j-1}. Returns ({seed position: first log step at which it met
    the criterion}, the first log step at which every seed meets it at once, or None)."""
    objective = np.asarray(objective, np.float64)
    first: dict[int, int] = {}
    stop = None
    for j in range(1, objective.shape[1]):
        now, before, start = objective[:, j], objective[:, j - 1], objective[:, 0]
        met = (now <= tolerance * start) | (np.abs(now - before) <= tolerance * before)
        for pos in np.flatnonzero(met):
            first.setdefault(int(pos), int(steps[j]))
        if met.all():
            stop = int(steps[j])
            break
    return first, stop


def log_points(steps: int, log_every: int) -> list[int]:
    """Steps at which the run is evaluated: 0, log_every, 2 log_every, ..., and the last step."""
    points = list(range(0, steps, log_every))
    return points + [steps]


def format_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class Progress:
    """Progress lines to the log at a steady rhythm (every `interval` seconds, and the last step)."""

    def __init__(self, total_steps: int, interval: float, label: str, start_step: int = 0):
        self.total, self.interval, self.label = total_steps, interval, label
        self.t0 = time.perf_counter()
        self.start_step = start_step
        self.last = -math.inf

    def update(self, step: int, metrics: Mapping[str, float], force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        done = step - self.start_step
        rate = done / (now - self.t0) if now > self.t0 and done > 0 else float("nan")
        left = (self.total - step) / rate if rate and rate == rate and rate > 0 else float("nan")
        parts = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        log.info("%s step %d/%d %s | %.1f steps/s, %s left", self.label, step, self.total, parts, rate,
                 format_seconds(left))
