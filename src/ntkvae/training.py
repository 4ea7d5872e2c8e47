"""Full-batch training of every lane (member run x seed) of one width: one jitted chunk.

The loop is split into chunks of `log_every` steps. Each chunk is one jitted call: for each
lane a `lax.scan` over its steps (lanes looped inside the call on a CPU, vmapped on a GPU:
`lanes_batched`). Between chunks the Python side evaluates (jitted and vmapped), reports
progress, checks for divergence and convergence and, when asked, writes a checkpoint.
Noise for step t of a seed is drawn from `fold_in(noise_key, t)`, so a run resumed from a
checkpoint draws exactly the same noise as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import time
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from . import model as M
from . import config as C
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

# Settings in which the members of one job may differ: each lane (member, seed) carries its
# own learning rate and KL weight beta * c(m_z) (0 for the mse objective), a mask for the
# variance groups, and the host-side choices (divergence policy, convergence tolerance).
# Everything else shapes the compiled step and must agree.
PER_MEMBER = C.PER_MEMBER   # the settings in which members may differ


def batchable(members) -> None:
    """Raise ValueError naming the first setting in which the members of one job differ but must not."""
    first = members[0]
    for field in dataclasses.fields(Settings):
        if field.name in PER_MEMBER:
            continue
        values = {repr(getattr(m, field.name)) for m in members}
        if len(values) > 1:
            raise ValueError(f"runs trained in one job must agree on {field.name} (got {', '.join(sorted(values))})")
    del first


def seed_key(seed: int, stream: str) -> jax.Array:
    """The key of one named stream (KEY_STREAMS) of a seed."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), KEY_STREAMS[stream])


def seed_keys(seed: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(init, training noise, evaluation noise) keys of one seed."""
    return seed_key(seed, "init"), seed_key(seed, "noise"), seed_key(seed, "eval")


def kl_weight(settings: Settings, latent_dim: int) -> float:
    """The KL term's weight in the objective: beta * c(m_z) for vae, 0 for mse."""
    if settings.objective == "mse":
        return 0.0
    if settings.objective == "vae":
        return settings.beta * objectives.kl_scale(settings.kl_scaling, latent_dim)
    raise ValueError(f"objective must be 'mse' or 'vae', got {settings.objective!r}")


def lanes_batched() -> bool:
    """Whether the lanes of a step are vmapped (one batched kernel per product) or looped.

    On a CPU the batched products make XLA materialize a transposed copy of every m x m
    weight in each step (a batched dot wants its contraction in a fixed position), while an
    unbatched product takes the transpose for free; the lanes then run one after another,
    each product with every core (benchmarks/bench_train.py). On a GPU one batched kernel
    for all lanes keeps the device busy. NTKVAE_LANES=batched|loop overrides."""
    choice = os.environ.get("NTKVAE_LANES", "auto")
    if choice in ("batched", "loop"):
        return choice == "batched"
    return jax.default_backend() != "cpu"


@dataclasses.dataclass(frozen=True)
class ProgramSpec:
    """Everything that shapes a Trainer's compiled programs besides the shapes of its arrays.

    The programs are built once per spec (`programs`) and take the data, the per-lane numbers
    and the keys as arguments: the Trainers of one process with equal specs share them (a
    second Trainer, or a second stability check, compiles nothing), and so, through JAX's
    persistent compilation cache, do the jobs of a workflow with equal shapes."""

    arch: M.Architecture
    width: int
    noise: str
    optimizer: str
    eval_noise_samples: int
    record_outputs: bool
    trained_groups: tuple[str, ...]
    masked_groups: tuple[str, ...]
    batched: bool


@functools.lru_cache(maxsize=16)
def programs(spec: ProgramSpec) -> "Programs":
    """The (lazily compiled) programs of a spec, one set per process."""
    return Programs(spec)


def _adam():
    import optax  # only Adam runs need it (its import is a few tenths of a second of every job)

    return optax.scale_by_adam()      # optax.adam = this, then a step of -learning_rate


# A step number that no evaluation uses: the key of the final reconstructions (and, with
# 2**31 - 2, of the generation figure's prior samples).
RECONSTRUCTION_STEP = 2**31 - 1
GENERATION_STEP = 2**31 - 2
PAIRED_STEP = 2**31 - 3


class Programs:
    """The pure functions of one ProgramSpec and their jitted forms: init, training chunk,
    evaluation, stability loss and the final outputs (reconstructions, generation, NTK probes).
    Nothing here closes over data: x is an argument of every program."""

    def __init__(self, spec: ProgramSpec):
        self.spec = spec
        self.arch, self.width = spec.arch, spec.width
        self.adam = _adam() if spec.optimizer == "adam" else None
        self._chunks: dict[int, Callable] = {}
        self._finals: dict[tuple, Callable] = {}
        self.init = jax.jit(self._init_one, static_argnums=1)
        self.stack = jax.jit(self._stack)
        self.evaluate = jax.jit(jax.vmap(self.evaluate_one, in_axes=(0, 0, 0, 0, 0, None, None)))
        self.stream_keys = jax.jit(lambda seeds, stream: jax.vmap(lambda s: seed_key(s, stream))(seeds),
                                   static_argnums=1)
        self.stability_masks = jax.jit(self._stability_masks)

    # ------------------------------------------------------------------ state

    def _init_one(self, seed, d):
        """Parameters and keys of one seed (one program for every seed and lane count)."""
        k_init, k_noise, k_eval = seed_keys(seed)
        return M.init_params(k_init, self.arch, d, self.width), k_noise, k_eval

    def _stack(self, lanes):
        """The lanes' parameters and keys stacked, with the optimizer state of the trained groups."""
        params, noise_key, eval_key = jax.tree.map(lambda *a: jnp.stack(a), *lanes)
        trained = {g: params[g] for g in self.spec.trained_groups}
        opt_state = jax.vmap(self.adam.init)(trained) if self.adam else ()
        return params, noise_key, eval_key, opt_state

    def init_lanes(self, seeds, d):
        """Stacked (over lanes) parameters, keys and optimizer state of the lanes' seeds."""
        return self.stack([self.init(np.int32(seed), d) for seed in seeds])

    # ------------------------------------------------------------------ training

    def loss(self, params, x, eps, weight):
        """The objective (mse + weight * KL) and its parts, from one lane's parameters."""
        out = M.forward(params, x, eps, self.arch)
        mse = objectives.reconstruction_loss(out["xhat"], x)
        kl = jnp.mean(objectives.kl_divergence(out["mu"], out["logvar"]))
        return mse + weight * kl, (mse, kl, out)

    def training_noise(self, noise_key, step, n):
        """The training noise of a step (see Trainer.training_noise)."""
        noise_step = step if self.spec.noise == "fresh" else 0
        return M.sample_noise(jax.random.fold_in(noise_key, noise_step), n, self.arch, self.width)

    def lane_step(self, trained, frozen, opt_state, lane, x, step):
        """One step of one lane. Only the trained groups are differentiated; the update is
        one fused pass per group (p - lr * g, or Adam's direction)."""
        eps = self.training_noise(lane["noise_key"], step, x.shape[0])

        def loss(tr):
            total, (mse, kl, _) = self.loss({**tr, **frozen}, x, eps, lane["kl_weight"])
            return total, (mse, kl)

        (total, (mse, kl)), grads = jax.value_and_grad(loss, has_aux=True)(trained)
        if self.adam:
            direction, opt_state = self.adam.update(grads, opt_state)
        else:
            direction = grads
        # A lane whose run converged (active false) steps by 0: p - 0 * g is p, bit for bit (a
        # scalar choice, not a select over the parameters, so the update stays one pass).
        lr = jnp.where(lane["active"], lane["learning_rate"], 0.0)
        new = {}
        for g, p in trained.items():
            moved = p - lr * direction[g]
            # A lane that freezes a masked group keeps it exactly (also where g is not finite).
            new[g] = jnp.where(lane["sigma"], moved, p) if g in self.spec.masked_groups else moved
        return new, opt_state, jnp.stack([total, mse, kl])

    def chunk(self, length: int) -> Callable:
        """The jitted chunk of `length` steps for every lane (one program per length)."""
        if length not in self._chunks:
            def lane_chunk(trained, frozen, opt_state, lane, x, start):
                def body(carry, step):
                    tr, os_ = carry
                    tr, os_, metrics = self.lane_step(tr, frozen, os_, lane, x, step)
                    return (tr, os_), metrics

                (trained, opt_state), metrics = jax.lax.scan(body, (trained, opt_state), start + jnp.arange(length))
                return trained, opt_state, metrics                       # metrics (length, 3)

            def chunk(trained, frozen, opt_state, lanes, x, start):
                if self.spec.batched:
                    return jax.vmap(lane_chunk, in_axes=(0, 0, 0, 0, None, None))(trained, frozen, opt_state, lanes,
                                                                                  x, start)
                return jax.lax.map(lambda a: lane_chunk(*a, x, start), (trained, frozen, opt_state, lanes))

            self._chunks[length] = jax.jit(chunk, donate_argnums=(0, 2))
        return self._chunks[length]

    # ------------------------------------------------------------------ stability

    def stability_loss(self, trained_one, context):
        """The objective of one lane at theta_0 with its step-0 training noise, in its trained
        groups (the loss whose Hessian `ntkvae.stability` measures)."""
        frozen_one, noise_key, weight, x = context
        eps = self.training_noise(noise_key, 0, x.shape[0])
        return self.loss({**trained_one, **frozen_one}, x, eps, weight)[0]

    def _stability_masks(self, trained, sigma):
        """1 where a lane trains a coordinate; a masked group only in the lanes that train it.
        None when no group is masked (every lane trains every coordinate of `trained`)."""
        if not self.spec.masked_groups:
            return None
        return {g: jnp.broadcast_to(jnp.where(sigma, 1.0, 0.0).reshape((-1,) + (1,) * (v.ndim - 1)), v.shape)
                if g in self.spec.masked_groups else jnp.ones_like(v) for g, v in trained.items()}

    # ------------------------------------------------------------------ evaluation

    def evaluate_one(self, params, params0, noise_key, eval_key, weight, step, x):
        """Metrics of one lane at one logged step: noise-averaged over k evaluation draws, and
        the training objective with the training noise of that step."""
        n = x.shape[0]
        _, mu, s = M.encode(params, x, self.arch)
        sd = jnp.exp(0.5 * s)
        key = jax.random.fold_in(eval_key, step)
        record = self.spec.record_outputs

        def draw(carry, k):
            total, mse_sum, shifted, shifted_sq = carry
            eps = M.sample_noise(k, n, self.arch, self.width)
            xhat = M.decode(params, mu + sd * eps, self.arch)
            if record:  # sums of xhat - xhat_0 (shifted by the first draw against cancellation)
                shifted, shifted_sq = shifted + (xhat - first), shifted_sq + (xhat - first) ** 2
            return (total + xhat, mse_sum + objectives.reconstruction_loss(xhat, x), shifted, shifted_sq), None

        k = self.spec.eval_noise_samples
        keys = jax.random.split(key, k)
        first = M.decode(params, mu + sd * M.sample_noise(keys[0], n, self.arch, self.width), self.arch)
        zero = (jnp.zeros_like(x), jnp.zeros((), x.dtype), jnp.zeros_like(x), jnp.zeros_like(x))
        (total, mse_sum, shifted, shifted_sq), _ = jax.lax.scan(draw, zero, keys)
        # expected MSE = mean-function residual + noise floor (the variance of xhat over noise).
        # The residual of the k-draw average overestimates the first term by floor / k; both
        # parts are corrected to be unbiased (sample variance with k - 1), and still sum to
        # the unbiased expected MSE.
        expected = mse_sum / k
        residual_k = objectives.reconstruction_loss(total / k, x)
        floor = (expected - residual_k) * k / (k - 1)
        kl = jnp.mean(objectives.kl_divergence(mu, s))
        change = {g: jnp.linalg.norm(params[g] - params0[g]) for g in params}
        relative = {g: change[g] / jnp.linalg.norm(params0[g]) for g in params}
        # The training objective at this step's parameters with this step's training noise
        # (noise fixed: the deterministic objective that the convergence test reads).
        objective, (_, _, out) = self.loss(params, x, self.training_noise(noise_key, step, n), weight)
        result = {"mean_function_mse": expected - floor, "expected_mse": expected, "noise_floor": floor,
                  "kl": kl, "objective": objective, "weight_change": relative, "weight_change_absolute": change}
        if record:
            # Per entry, the sample variance over the k draws, divided by k: the variance of the
            # k-draw mean. Its sum debiases squared distances: E||mean - g||^2 = ||f_bar - g||^2 + it.
            variance = (shifted_sq - shifted**2 / k) / (k - 1)
            result["outputs"] = {"sampled": out["xhat"], "mean": total / k, "mean_mc_variance": jnp.sum(variance) / k}
        return result

    # ------------------------------------------------------------------ final outputs

    def finals(self, count: int, probe: tuple[int, int, int] | None) -> Callable:
        """One jitted program for everything a job computes once at the end, for every lane:
        `count` reconstructions, the generation figure's samples and latent statistics, for runs
        that record outputs the paired (common-noise) mean at init and its change by the end,
        and (probe = (size, noise samples, output coordinates)) the empirical NTK at init and at
        the end. Its arguments: params, params0, eval_key, probe_key (stacked over lanes), x."""
        if (count, probe) not in self._finals:
            from . import empirical_ntk, generation  # local: only the end of a job needs them

            def reconstructions(params, eval_key, x):
                xs = x[:count]
                key = jax.random.fold_in(eval_key, RECONSTRUCTION_STEP)
                mean = M.mean_output(params, xs, key, self.arch, self.width, self.spec.eval_noise_samples)
                eps = M.sample_noise(jax.random.fold_in(key, 1), count, self.arch, self.width)
                return {"mean": mean, "sample": M.forward(params, xs, eps, self.arch)["xhat"]}

            def paired(params, params0, eval_key, x):
                """The noise-averaged output at init and its change by the end, both over the same
                k draws (common random numbers): the change's draw-to-draw spread is that of
                J(x, eps) - J_bar(x) acting on theta_T - theta_0, O(m^-1/2), so its k-draw mean is
                far more precise than the difference of two independent means. Sums shifted by
                the first draw against cancellation, as in evaluate_one."""
                n, k = x.shape[0], self.spec.eval_noise_samples
                _, mu0, s0 = M.encode(params0, x, self.arch)
                _, mu1, s1 = M.encode(params, x, self.arch)
                keys = jax.random.split(jax.random.fold_in(eval_key, PAIRED_STEP), k)

                def outputs(key):
                    eps = M.sample_noise(key, n, self.arch, self.width)
                    f0 = M.decode(params0, mu0 + jnp.exp(0.5 * s0) * eps, self.arch)
                    return f0, M.decode(params, mu1 + jnp.exp(0.5 * s1) * eps, self.arch) - f0

                first0, first_change = outputs(keys[0])

                firsts = (first0, first_change, first0 + first_change)

                def draw(carry, key):
                    f0, change = outputs(key)
                    shifted = [v - f for v, f in zip((f0, change, f0 + change), firsts)]
                    return tuple((total + v, squares + v**2) for (total, squares), v in zip(carry, shifted)), None

                zero = jnp.zeros_like(x)
                sums, _ = jax.lax.scan(draw, ((zero, zero),) * 3, keys)
                out = {}
                for name, first, (total, squares) in zip(("initial", "change", "final"), firsts, sums):
                    out[f"{name}_mean"] = first + total / k
                    # per entry, the sample variance (k - 1) divided by k: the variance of the k-draw mean, summed
                    out[f"{name}_mc_variance"] = jnp.sum((squares - total**2 / k) / (k - 1)) / k
                del out["final_mean"]     # initial + change
                return out

            def over_lanes(fn, *stacked):
                # Vmapped on a GPU; on a CPU one lane after another (unbatched products, as
                # in the training chunk), so that a lane's outputs do not depend on its job.
                if self.spec.batched:
                    return jax.vmap(fn)(*stacked)
                return jax.lax.map(lambda a: fn(*a), stacked)

            def final(params, params0, eval_key, probe_key, x):
                out = {}
                if count:
                    out["reconstructions"] = over_lanes(lambda p, k: reconstructions(p, k, x), params, eval_key)
                if self.spec.record_outputs:
                    out["paired"] = over_lanes(lambda p, p0, k: paired(p, p0, k, x), params, params0, eval_key)
                gen_keys = jax.vmap(lambda k: jax.random.fold_in(k, GENERATION_STEP))(eval_key)
                out["generation"] = over_lanes(lambda p, k: generation.generate_one(p, k, x, self.arch, self.width),
                                               params, gen_keys)
                if probe:
                    size, samples, outputs = probe
                    xs = x[:size]
                    coords = jnp.asarray(empirical_ntk.output_coordinates(x.shape[1], outputs))
                    # Init and end as one batch of 2 x lanes: one copy of the kernel's code.
                    both = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), params0, params)
                    kernels = over_lanes(lambda p, k: empirical_ntk.theta_m_groups(p, xs, self.arch, k, samples, coords),
                                         both, jnp.concatenate([probe_key, probe_key]))
                    lanes = probe_key.shape[0]
                    out["ntk"] = {"init": jax.tree.map(lambda a: a[:lanes], kernels),
                                  "final": jax.tree.map(lambda a: a[lanes:], kernels)}
                return out

            self._finals[(count, probe)] = jax.jit(final)
        return self._finals[(count, probe)]


class Trainer:
    """Compiled step, chunk and evaluation functions for one (architecture, width, data) and
    one or more members: runs that share every setting but those in PER_MEMBER.

    The leading axis of every state array is the lane: (member, seed) in member order, each
    member's seeds in its order. A lane's numbers depend only on its own settings and seed,
    not on which other lanes share its job (tested)."""

    def __init__(self, arch: M.Architecture, width: int, settings, x: np.ndarray):
        self.members = [settings] if isinstance(settings, Settings) else list(settings)
        batchable(self.members)
        self.settings = self.members[0]           # the settings all members share
        self.arch, self.width = arch, int(width)
        self.x = jnp.asarray(x, jnp.float32)
        self.n, self.d = self.x.shape
        self.latent = arch.latent_dim(width)
        self.lanes = [(i, seed) for i, member in enumerate(self.members) for seed in member.seeds]
        lane_settings = [self.members[i] for i, _ in self.lanes]
        self.seeds = np.asarray([seed for _, seed in self.lanes], np.int32)
        self.learning_rate = np.asarray([s.learning_rate for s in lane_settings], np.float32)
        self.kl_weight = np.asarray([kl_weight(s, self.latent) for s in lane_settings], np.float32)
        groups = M.param_shapes(arch, self.d, 1)
        # Differentiated groups: those some lane trains. A variance group trained by some
        # lanes only is masked (its update applied where the lane trains it).
        self.trained_groups = tuple(g for g in groups if any(s.trained(g) for s in lane_settings))
        self.masked_groups = tuple(g for g in self.trained_groups if not all(s.trained(g) for s in lane_settings))
        self.sigma_mask = np.asarray([s.train_sigma for s in lane_settings])
        if self.settings.optimizer not in ("sgd", "adam"):
            raise ValueError(f"unknown optimizer {self.settings.optimizer!r}")
        self.batched = lanes_batched()
        self.programs = programs(ProgramSpec(
            arch=arch, width=self.width, noise=self.settings.noise, optimizer=self.settings.optimizer,
            eval_noise_samples=int(self.settings.eval_noise_samples), record_outputs=bool(self.settings.record_outputs),
            trained_groups=self.trained_groups, masked_groups=self.masked_groups, batched=self.batched))
        self.adam = self.programs.adam

    def member_lanes(self, member: int) -> np.ndarray:
        """Positions of a member's lanes on the leading axis."""
        return np.asarray([pos for pos, (i, _) in enumerate(self.lanes) if i == member])

    # ------------------------------------------------------------------ state

    def init_state(self) -> dict:
        """Stacked (over lanes) parameters, optimizer state and keys at step 0 (one program)."""
        params, noise_key, eval_key, opt_state = self.programs.init_lanes(self.seeds, self.d)
        # params0 is a copy: the chunk function donates (reuses) the buffers of params.
        params0 = jax.tree.map(jnp.copy, params)
        return {"params": params, "params0": params0, "opt_state": opt_state, "noise_key": noise_key,
                "eval_key": eval_key, "active": np.ones(len(self.lanes), bool), "step": 0}

    # ------------------------------------------------------------------ training

    def _loss(self, params, eps, weight):
        """The objective (mse + weight * KL) and its parts, from one lane's parameters."""
        return self.programs.loss(params, self.x, eps, weight)

    def training_noise(self, noise_key, step):
        """The training noise of a step: fresh, a new draw per example at every step (a
        stochastic objective); fixed, one draw per example for the whole run (the network is
        then a deterministic function of (x_i, eps_i), the setting of Theorem 1's zero-loss
        limit and of the KRR ridge)."""
        return self.programs.training_noise(noise_key, step, self.n)

    def _lane_step(self, trained, frozen, opt_state, lane, step):
        """One step of one lane (Programs.lane_step on this trainer's data)."""
        return self.programs.lane_step(trained, frozen, opt_state, lane, self.x, step)

    def _lane_arrays(self, state: dict) -> dict:
        return {"noise_key": state["noise_key"], "learning_rate": self.learning_rate, "kl_weight": self.kl_weight,
                "sigma": self.sigma_mask, "active": state["active"]}

    def run_chunk(self, state: dict, length: int) -> np.ndarray:
        """Advance `state` by `length` steps in place; returns per-step metrics (lanes, length, 3)."""
        fn = self.programs.chunk(length)
        trained = {g: state["params"][g] for g in self.trained_groups}
        frozen = {g: v for g, v in state["params"].items() if g not in self.trained_groups}
        trained, state["opt_state"], metrics = fn(trained, frozen, state["opt_state"], self._lane_arrays(state),
                                                  self.x, np.int32(state["step"]))
        state["params"] = {g: trained.get(g, state["params"][g]) for g in state["params"]}
        state["step"] += length
        return np.asarray(metrics)

    def stability(self, state: dict, **lanczos) -> "stability.TopEigenvalue":
        """lambda_max of the Hessian of the objective at theta_0 with the step-0 training noise,
        in the trained groups only, per lane (`ntkvae.stability`). A masked group (trained by
        some lanes only) enters the Hessian of the lanes that train it only."""
        params = state["params0"]
        trained = {g: params[g] for g in self.trained_groups}
        frozen = {g: v for g, v in params.items() if g not in self.trained_groups}
        keys = self.programs.stream_keys(self.seeds, "stability")
        context = (frozen, state["noise_key"], self.kl_weight, self.x)
        # The context's last entry, x, is shared by the lanes (not stacked). The masks are not
        # kept here: once flattened they would be held twice.
        return stability.hessian_lambda_max(self.programs.stability_loss, trained, context, keys,
                                            masks=self.programs.stability_masks(trained, self.sigma_mask),
                                            context_axes=(0, 0, 0, None), **lanczos)

    # ------------------------------------------------------------------ evaluation

    def _evaluate_one(self, params, params0, noise_key, eval_key, weight, step):
        return self.programs.evaluate_one(params, params0, noise_key, eval_key, weight, step, self.x)

    def evaluate(self, state: dict) -> dict:
        out = self.programs.evaluate(state["params"], state["params0"], state["noise_key"], state["eval_key"],
                                     self.kl_weight, np.int32(state["step"]), self.x)
        return jax.tree.map(np.asarray, out)

    def final_outputs(self, state: dict, reconstructions: int, probe: tuple[int, int, int] | None) -> dict:
        """Reconstructions of the first `reconstructions` examples, the generation figure's
        arrays (`ntkvae.generation`) and, with probe = (size, noise samples, outputs), the
        empirical NTK per group at init and at the end ("ntk": {"init"|"final": {group: ...}}),
        for every lane, from one compiled program; numpy arrays with a leading lane axis."""
        fn = self.programs.finals(int(reconstructions), tuple(int(v) for v in probe) if probe else None)
        probe_key = self.programs.stream_keys(self.seeds, "probe")
        out = fn(state["params"], state["params0"], state["eval_key"], probe_key, self.x)
        return jax.tree.map(np.asarray, out)

    def reconstructions(self, state: dict, count: int) -> dict:
        """Noise-averaged and single-draw reconstructions of the first `count` examples, per lane."""
        return self.final_outputs(state, count, None)["reconstructions"]


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
