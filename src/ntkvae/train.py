"""CLI: train every seed of one or more runs at one width on one dataset; one HDF5 file per run.

    python -m ntkvae.train --data results/data/digits.h5 --width 256 \
        --config config.yaml --run mse --out results/train/digits/mse/w256.h5

    python -m ntkvae.train --data D --width W --model MODEL_JSON [--probe PROBE_JSON] \
        --run mse --training MSE_JSON --out results/train/<d>/mse/wW.h5 \
        --run vae --training VAE_JSON --out results/train/<d>/vae/wW.h5 [--checkpoint C.npz]

Snakemake passes the resolved `--model` and `--training` JSON instead of `--config`, so that
a job reruns exactly when its own settings change.

Members. Several `--run/--training/--out` triples (or several `--run/--out` pairs with
`--config`) train in one job: every seed of every run is a lane of one jitted step, and each
run's file is the one it would get alone (to float32 rounding; tested). The runs must share
the model and every training setting except those in `ntkvae.config.PER_MEMBER`
(objective, learning_rate, beta, kl_scaling, train_sigma, seeds, on_divergence,
convergence_tolerance, ...); otherwise the job stops at once naming the setting.

Parts. `--seeds 0,1` trains only those seeds of each run (each must be among the run's) and
writes part files (attribute `part_of_seeds`: the run's seeds). Part files of one run join
into its run file with

    python -m ntkvae.train merge --inputs PART.h5 [PART.h5 ...] --out RUN.h5

which checks that the parts are of one run (same settings, data, width, code), that their
seeds are disjoint and together the run's, and concatenates every per-seed dataset in the
run's seed order; the merged file holds the arrays and attributes of the unsplit job (the
stability limit recomputed over all seeds). Parts of a run with `convergence_tolerance`
merge only if they stopped at the same step (the unsplit job stops when all seeds converged).

Checkpoints. With `--checkpoint`, the job saves its state every `checkpoint_every` steps (0:
every 10 minutes of training) and on SIGTERM (preemption; exit 143) or Ctrl-C (exit 130), and
resumes from that file when started again; the final files have the same numbers as those of
an uninterrupted run.

Before training, an SGD run measures the finite-width stability limit 2 / lambda_max of its
objective's Hessian at initialization (`ntkvae.stability`); a learning rate above it is
refused (exit 1, no output) unless `on_divergence: record`. A job that finds another live
job writing one of its outputs or its checkpoint refuses to run (exit 1). Every error that
the user can fix (config, data file, settings, divergence, a full disk) is one line naming
the key or file, exit 1. `--compilation-cache DIR` (or NTKVAE_COMPILATION_CACHE) keeps
JAX's compiled programs across jobs (`ntkvae.jaxcache`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import pathlib
import signal
import sys
import time

import jax
import numpy as np
import yaml

from . import accelerator
from . import checkpoint as K
from . import config as C
from . import datasets, generation, io, jaxcache
from . import model as M
from .stability import RELATIVE_TOLERANCE
from .training import (DIVERGENCE_FACTOR, DivergenceError, Progress, Settings, Trainer, batchable, convergence,
                       first_divergence, log_points)

log = logging.getLogger("ntkvae.train")

# With checkpoint_every 0, a checkpoint is written at the first log point after this many
# seconds of training since the last one: short runs never pay for it, long ones lose at
# most this much to a SIGKILL (a SIGTERM always checkpoints).
CHECKPOINT_SECONDS = 600.0

NOT_APPLICABLE = "not applicable"

# Datasets of a training file without a leading seed axis (every other one has it).
SEEDLESS = ("examples_index", "train/step", "eval/step", "outputs/step", "reconstructions/index",
            "generation/values", "ntk/probe_index")


class Preempted(SystemExit):
    pass


class Phases:
    """Wall and CPU seconds (all threads) per phase of a job, logged at its end: where a
    job's time goes (compilation shows in the first chunk, evaluation and final outputs;
    benchmarks/bench_job_overhead.py reads the line)."""

    def __init__(self):
        self.seconds: dict[str, list[float]] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            spent = self.seconds.setdefault(name, [0.0, 0.0])
            spent[0] += time.perf_counter() - wall
            spent[1] += time.process_time() - cpu

    def line(self) -> str:
        return ", ".join(f"{name} {wall:.2f}/{cpu:.2f}" for name, (wall, cpu) in self.seconds.items())


PHASES = Phases()


class UsageError(RuntimeError):
    """A bad command line, config file or setting; the message names the file or key."""


class OutputError(RuntimeError):
    """An output file could not be written."""


@dataclasses.dataclass
class Member:
    """One run trained by the job."""

    run: str
    training_cfg: dict
    settings: Settings
    out: pathlib.Path
    run_seeds: tuple[int, ...]      # the run's seeds (settings.seeds: those this job trains)

    @property
    def part(self) -> bool:
        return tuple(self.settings.seeds) != tuple(self.run_seeds)


def _one_line(err: Exception) -> str:
    return " ".join(line.strip() for line in str(err).splitlines() if line.strip())


def _load_json(option: str, text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"{option}: not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise UsageError(f"{option}: expected a JSON object, got {type(value).__name__}")
    return value


def _load_checked(option: str, text: str, check) -> dict:
    """A JSON option, checked against its section of the schema by `check` (config.parse_section
    or parse_run_settings: names the key, rejects NaN); the value is returned as given, without the
    schema's defaults (Settings and Architecture fill their own), as the workflow passes it resolved."""
    value = _load_json(option, text)
    try:
        check(text)
    except C.ConfigError as err:
        raise UsageError(_one_line(err)) from None
    return value


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m ntkvae.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="dataset HDF5 file (results/data/<name>.h5)")
    p.add_argument("--width", type=int, required=True, help="hidden width m")
    p.add_argument("--out", action="append", required=True, help="output HDF5 file, one per --run")
    p.add_argument("--config", help="config YAML (with --run), validated against the schema")
    p.add_argument("--run", action="append", help="name of a run (a key of the config's `runs`); repeatable")
    p.add_argument("--model", help="resolved `model` section as JSON (instead of --config)")
    p.add_argument("--training", action="append", help="resolved training settings as JSON, one per --run")
    p.add_argument("--seeds", help="train only these seeds of each run (a part file), e.g. 0,1")
    p.add_argument("--checkpoint", help="scratch file for checkpoints (enables resume)")
    p.add_argument("--probe", help="the `kernels` config section as JSON (empirical-kernel probe settings)")
    p.add_argument("--compilation-cache", help="directory of JAX's persistent compilation cache")
    args = p.parse_args(argv)
    if not (args.config or (args.model and args.training)):
        p.error("give either --config (and --run) or both --model and --training")
    return args


def _load_config(path: str) -> dict:
    try:
        return C.load_config(path)
    except OSError as err:
        raise UsageError(f"config file {path}: cannot be read ({err.strerror or err})") from None
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(err, "problem", None) or str(err)
        raise UsageError(f"config file {path}: not valid YAML{at}: {problem}") from None
    except C.ConfigError as err:
        raise UsageError(f"config file {path}: {_one_line(err)}") from None


def resolve_settings(args: argparse.Namespace) -> None:
    """Fill args.model_cfg, args.arch, args.members and args.probe_cfg from the config file or
    the JSON options (UsageError naming the file, option or key)."""
    args.probe_cfg = _load_checked("--probe", args.probe, lambda t: C.parse_section(t, "kernels", "--probe")) \
        if args.probe else {}
    runs = list(args.run or [])
    if args.config:
        cfg = _load_config(args.config)
        runs = runs or [next(iter(cfg["runs"]))]
        for run in runs:
            if run not in cfg["runs"]:
                raise UsageError(f"config file {args.config}: run {run!r} is not defined in runs "
                                 f"(defined: {', '.join(cfg['runs'])})")
        models = [C.run_model(cfg, run) for run in runs]
        if any(m != models[0] for m in models):
            raise UsageError(f"runs {', '.join(runs)} have different models: they cannot train in one job")
        args.model_cfg = models[0]
        trainings = [C.run_settings(cfg, run) for run in runs]
        args.probe_cfg = args.probe_cfg or cfg.get("kernels", {})
    else:
        args.model_cfg = _load_checked("--model", args.model,
                                       lambda t: C.parse_section(t, "model", "--model", partial=True))
        trainings = [_load_checked("--training", text, lambda t: C.parse_run_settings(t, "--training"))
                     for text in args.training]
        runs = runs or [""]
        if len(runs) != len(trainings):
            raise UsageError(f"{len(runs)} --run but {len(trainings)} --training: give one --training per --run")
    if len(args.out) != len(runs):
        raise UsageError(f"{len(runs)} runs but {len(args.out)} --out: give one --out per run")
    subset = [int(s) for s in args.seeds.replace(",", " ").split()] if args.seeds else None
    try:
        args.arch = M.Architecture.from_config(args.model_cfg)
        args.arch.phi  # noqa: B018 (an unknown activation fails here, not inside training)
    except (KeyError, TypeError, ValueError) as err:
        raise UsageError(f"model settings: {_one_line(err)}") from None
    args.members = []
    for run, training, out in zip(runs, trainings, args.out):
        try:
            settings = Settings.from_config(training)
        except (KeyError, TypeError, ValueError) as err:
            raise UsageError(f"training settings of run {run!r}: {_one_line(err)}") from None
        run_seeds = tuple(settings.seeds)
        if subset is not None:
            missing = [s for s in subset if s not in run_seeds]
            if missing:
                raise UsageError(f"--seeds {args.seeds}: seeds {missing} are not seeds of run {run!r} {list(run_seeds)}")
            settings = dataclasses.replace(settings, seeds=tuple(s for s in run_seeds if s in subset))
        args.members.append(Member(run, training, settings, pathlib.Path(out), run_seeds))
    outs = [m.out.resolve() for m in args.members]
    if len(set(outs)) != len(outs):
        raise UsageError("two runs write the same --out file")
    try:
        batchable([m.settings for m in args.members])
    except ValueError as err:
        raise UsageError(f"runs {', '.join(m.run for m in args.members)}: {err}") from None
    # Backwards-compatible single-run names (a job of one run).
    args.run, args.settings, args.training_cfg = runs[0], args.members[0].settings, trainings[0]


# ---------------------------------------------------------------------- main loop

def train(args) -> None:
    resolve_settings(args)
    jaxcache.enable(args.compilation_cache)
    shared = args.members[0].settings
    with PHASES("data"):
        x_all, data_attrs = datasets.load_inputs(args.data)
    if shared.examples is not None and shared.examples > x_all.shape[0]:
        raise UsageError(f"examples: {shared.examples} requested, but the data file {args.data} holds "
                         f"{x_all.shape[0]}")
    x = x_all[: shared.examples] if shared.examples is not None else x_all
    ckpt = pathlib.Path(args.checkpoint) if args.checkpoint else None
    outs = [m.out for m in args.members]
    with K.exclusive_writer(outs + ([ckpt] if ckpt else [])):
        K.remove_stale_temporaries(outs, ckpt)
        _train_locked(args, x, data_attrs, ckpt)
        if ckpt and ckpt.exists():
            ckpt.unlink()


def _where(data_attrs, args, member: Member) -> str:
    return (f"dataset {data_attrs.get('dataset', '?')}, run {member.run}, width {args.width}, "
            f"seeds {list(member.settings.seeds)}")


def stability_check(args, trainer: Trainer, state: dict, data_attrs) -> list[dict]:
    """The finite-width stability limit at init (SGD only), per member; refuses a learning
    rate above it unless on_divergence is record. Returns each member's datasets and attributes."""
    if trainer.settings.optimizer != "sgd":
        return [{"attrs": {"stability_learning_rate": NOT_APPLICABLE, "lr_over_stability": NOT_APPLICABLE}}
                for _ in args.members]
    t0 = time.perf_counter()
    top = trainer.stability(state)
    seconds = time.perf_counter() - t0
    results, refused = [], []
    for i, member in enumerate(args.members):
        lanes = trainer.member_lanes(i)
        value, bound = top.value[lanes], top.bound[lanes]
        limit = 2.0 / float(np.max(value))
        ratio = member.settings.learning_rate / limit
        log.info("stability at init, run %s: lambda_max of the Hessian %s (bound %s, %d Lanczos steps, %.1f s): "
                 "learning rate limit 2/lambda_max = %.4g, learning_rate / limit = %.3g", member.run,
                 np.array2string(value, precision=4), np.array2string(bound, precision=2), top.iterations, seconds,
                 limit, ratio)
        if ratio > 1.0:
            msg = (f"{_where(data_attrs, args, member)}: learning_rate {member.settings.learning_rate:g} exceeds the "
                   f"finite-width stability limit {limit:.4g} (= 2 / lambda_max of the objective's Hessian at "
                   f"initialization, max over seeds)")
            if member.settings.on_divergence == "fail":
                refused.append(f"{msg}; set a learning rate below {limit:.4g}, or on_divergence: record to train "
                               f"anyway and record the divergence")
            else:
                log.warning("%s; training anyway (on_divergence: record)", msg)
        results.append({"datasets": {"stability/hessian_lambda_max": value, "stability/error_bound": bound},
                        "group_attrs": {"stability": {"lanczos_steps": top.iterations, "seconds": seconds,
                                                      "converged": bool(np.all(bound <= RELATIVE_TOLERANCE *
                                                                               np.abs(value)))}},
                        "attrs": {"stability_learning_rate": limit, "lr_over_stability": ratio}})
    if not top.converged:
        log.warning("stability: Lanczos did not reach its tolerance in %d steps (bounds %s)", top.iterations, top.bound)
    if refused:
        raise DivergenceError(" | ".join(refused))
    return results


def _train_locked(args, x, data_attrs, ckpt) -> None:
    device = jax.devices()[0]
    members = args.members
    settings = members[0].settings
    label = f"[{data_attrs.get('dataset', '?')} {'+'.join(m.run for m in members)} w={args.width}]"
    log.info("%s training %d lanes (runs x seeds) on %d examples (d=%d) on %s (%s)", label,
             sum(len(m.settings.seeds) for m in members), x.shape[0], x.shape[1], device.platform,
             device.device_kind)

    with PHASES("init"):
        trainer = Trainer(args.arch, args.width, [m.settings for m in members], x)
        state = trainer.init_state()
    with PHASES("stability"):
        stability = stability_check(args, trainer, state, data_attrs)
    digest = K.fingerprint(args.model_cfg, [dict(m.training_cfg, seeds=list(m.settings.seeds)) for m in members],
                           args.width, x)
    history = (K.load_checkpoint(ckpt, state, digest) if ckpt else None) or {"metrics": [], "evals": []}
    if not history["evals"]:
        with PHASES("evaluations"):
            history["evals"].append(trainer.evaluate(state))

    stop = {"signal": None}

    def on_term(signum, _frame):
        stop["signal"] = signum
        log.warning("received signal %d: will checkpoint and stop at the next chunk boundary", signum)
        if signum == signal.SIGINT:  # a second Ctrl-C stops at once
            signal.signal(signal.SIGINT, signal.default_int_handler)

    if ckpt:
        # SIGTERM: preemption or time-out (SLURM sends it before SIGKILL); SIGINT: Ctrl-C.
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)

    points = log_points(settings.steps, settings.log_every)
    progress = Progress(settings.steps, min(m.settings.progress_seconds for m in members), label,
                        start_step=state["step"])
    last_ckpt, last_ckpt_time = state["step"], time.monotonic()
    lane_of = trainer.lanes
    diverged: dict[int, tuple[int, float]] = {}            # lane -> (step, value)
    if history["metrics"]:  # divergences recorded before the checkpoint are kept
        done = np.concatenate(history["metrics"], axis=1)
        for pos, step, value in first_divergence(done, 0, done[:, 0, 0]):
            diverged[pos] = (step, value)
    stopped = _stopped(trainer, members, history, points)
    for start, end in zip(points[:-1], points[1:]):
        if end <= state["step"]:
            continue
        if len(stopped) == len(members):
            break
        with PHASES("first chunk" if "first chunk" not in PHASES.seconds else "steps"):
            metrics = trainer.run_chunk(state, end - start)
        history["metrics"].append(metrics)
        initial = history["metrics"][0][:, 0, 0]
        for pos, step, value in first_divergence(metrics, start, initial):
            member = members[lane_of[pos][0]]
            if pos not in diverged and lane_of[pos][0] not in stopped:
                diverged[pos] = (step, value)
                msg = (f"training diverged: run {member.run}, width {args.width}, seed {lane_of[pos][1]}: objective "
                       f"became {value:.4g} at step {step} (diverged: non-finite or above {DIVERGENCE_FACTOR:g} x "
                       f"its initial {initial[pos]:.4g})")
                if member.settings.on_divergence == "fail":
                    raise DivergenceError(msg + "; lower the learning rate, or set on_divergence: record")
                log.warning("%s (recorded, on_divergence: record)", msg)
        with PHASES("evaluations"):
            evals = trainer.evaluate(state)
        history["evals"].append(evals)
        newly = {i: s for i, s in _stopped(trainer, members, history, points).items() if i not in stopped}
        for i, step in newly.items():
            log.info("%s run %s converged at step %d (convergence_tolerance %g)", label, members[i].run, step,
                     members[i].settings.convergence_tolerance)
            state["active"] = np.array(state["active"])
            state["active"][trainer.member_lanes(i)] = False
        stopped.update(newly)
        progress.update(state["step"], {"objective": float(np.nanmean(metrics[:, -1, 0])),
                                        "mean_fn_mse": float(np.nanmean(evals["mean_function_mse"]))},
                        force=state["step"] == settings.steps or len(stopped) == len(members))
        if not ckpt or state["step"] == settings.steps or len(stopped) == len(members):
            continue  # at the end the outputs are written at once: no checkpoint needed
        if settings.checkpoint_every:
            due = state["step"] - last_ckpt >= settings.checkpoint_every
        else:  # 0: only long runs checkpoint, every CHECKPOINT_SECONDS of training
            due = time.monotonic() - last_ckpt_time >= CHECKPOINT_SECONDS
        if stop["signal"] or due:
            K.save_checkpoint(ckpt, state, history, digest)
            last_ckpt, last_ckpt_time = state["step"], time.monotonic()
            if stop["signal"]:
                raise Preempted(128 + stop["signal"])  # the shell's convention: 143 SIGTERM, 130 SIGINT

    # Everything is computed before any output is opened, so that each write (the window in
    # which a kill leaves a temporary) is short.
    # The final outputs of every lane come from one compiled program (per job, not per member).
    with PHASES("final outputs"):
        probe, probe_attrs = probe_settings(args, trainer)
        t0 = time.perf_counter()
        finals = trainer.final_outputs(state, min(settings.reconstructions, trainer.n), probe)
        log.info("reconstructions, generation%s in %.1f s", f" and empirical NTK probes (p={probe[0]})" if probe else "",
                 time.perf_counter() - t0)
    with PHASES("collect"):
        host = {k: jax.tree.map(np.asarray, v) for k, v in state.items() if k != "step"}
        all_metrics = np.concatenate(history["metrics"], axis=1)
        outputs = []
        for i, member in enumerate(members):
            lanes = trainer.member_lanes(i)
            end = stopped.get(i, state["step"])
            sliced = {k: jax.tree.map(lambda a: a[lanes], v) for k, v in host.items()}
            member_history = {"metrics": [all_metrics[lanes, :end]],
                              "evals": [jax.tree.map(lambda a: a[lanes], e) for e in history["evals"]
                                        [: points.index(end) + 1]]}
            member_diverged = {int(np.flatnonzero(lanes == pos)[0]): d for pos, d in diverged.items() if pos in lanes}
            member_finals = jax.tree.map(lambda a: a[lanes], finals)
            outputs.append((member.out, collect_output(args, member, trainer, member.settings, dict(sliced, step=end),
                                                       member_history, data_attrs, member_diverged, device,
                                                       stability[i], points, member_finals, probe_attrs)))
    with PHASES("write"):
        for out, (attrs, arrays, group_attrs) in outputs:
            write_output(out, attrs, arrays, group_attrs)


def _stopped(trainer: Trainer, members, history, points) -> dict[int, int]:
    """Members whose convergence criterion was met: {member: the step at which they stop}."""
    out = {}
    for i, member in enumerate(members):
        tol = member.settings.convergence_tolerance
        if tol is None:
            continue
        lanes = trainer.member_lanes(i)
        objective = np.stack([e["objective"][lanes] for e in history["evals"]], axis=1)
        _, stop = convergence(objective, points[: objective.shape[1]], tol)
        if stop is not None:
            out[i] = stop
    return out


def collect_output(args, member: Member, trainer: Trainer, settings: Settings, state, history, data_attrs, diverged,
                   device, stability, points, finals, probe_attrs):
    """One run's output: root attributes, datasets {path: array} and group attributes, from
    the member's slices of the state, history and final outputs (Trainer.final_outputs)."""
    metrics = np.concatenate(history["metrics"], axis=1)            # (seeds, steps, 3)
    evals = jax.tree.map(lambda *a: np.stack(a, axis=-1), *history["evals"])  # leaves (seeds, ..., points)
    eval_steps = np.asarray(points[: len(history["evals"])])
    arrays: dict[str, np.ndarray] = {
        "seeds": np.asarray(settings.seeds),
        "examples_index": np.arange(trainer.n),
        "train/step": np.arange(metrics.shape[1]),
        "train/objective": metrics[..., 0],
        "train/mse": metrics[..., 1],
        "train/kl": metrics[..., 2],
        "eval/step": eval_steps,
    }
    for key in ("mean_function_mse", "expected_mse", "noise_floor", "kl", "objective"):
        arrays[f"eval/{key}"] = evals[key]
    for group, value in evals["weight_change"].items():
        arrays[f"weight_change/{group}"] = value
    for group, value in evals["weight_change_absolute"].items():
        arrays[f"weight_change_absolute/{group}"] = value
    if settings.record_outputs:
        arrays["outputs/step"] = eval_steps
        arrays["outputs/sampled"] = np.moveaxis(evals["outputs"]["sampled"], -1, 1).astype(np.float32)
        arrays["outputs/mean"] = np.moveaxis(evals["outputs"]["mean"], -1, 1).astype(np.float32)
        arrays["outputs/mean_mc_variance"] = evals["outputs"]["mean_mc_variance"]
    if "paired" in finals:    # Theorem 2's distance: init and change over common noise (Programs.finals)
        for key, value in finals["paired"].items():
            arrays[f"outputs/paired_{key}"] = np.asarray(value, np.float64 if "variance" in key else np.float32)
    if "reconstructions" in finals:
        recon = finals["reconstructions"]
        arrays["reconstructions/index"] = np.arange(recon["mean"].shape[1])
        arrays["reconstructions/mean"] = recon["mean"]
        arrays["reconstructions/sample"] = recon["sample"]
    # F8 and F6: prior samples, latent traversals and latent statistics (ntkvae.generation).
    generated = dict(finals["generation"], values=np.asarray(generation.TRAVERSAL_VALUES))
    arrays.update({f"generation/{k}": np.asarray(v) for k, v in K.flatten(generated).items()})
    arrays.update(stability.get("datasets", {}))
    group_attrs = dict(stability.get("group_attrs", {}))
    if "ntk" in finals:
        arrays.update(ntk_arrays(finals["ntk"]))
        group_attrs["ntk"] = probe_attrs

    cfg = {"dataset": data_attrs.get("dataset"), "run": member.run, "width": args.width, "model": args.model_cfg,
           "training": member.training_cfg}
    extra = dict(stopped_at=int(state["step"]))
    if settings.convergence_tolerance is not None:
        first, _ = convergence(evals["objective"], list(eval_steps), settings.convergence_tolerance)
        extra["converged"] = {str(seed): first.get(pos) for pos, seed in enumerate(settings.seeds)}
    if member.part:
        extra["part_of_seeds"] = list(member.run_seeds)
    attrs = io.provenance(cfg, dataset=str(data_attrs.get("dataset", "")), run=str(member.run or ""),
                          width=int(args.width), latent_width=int(trainer.latent), seeds=list(settings.seeds),
                          n=int(trainer.n), d=int(trainer.d), objective=settings.objective,
                          device=accelerator.describe_device(device), data_file=str(args.data),
                          data_git_commit=str(data_attrs.get("git_commit", "")),
                          diverged={str(settings.seeds[p]): s for p, (s, _) in diverged.items()},
                          **stability.get("attrs", {}), **extra)
    return attrs, arrays, group_attrs


def write_output(out: pathlib.Path, attrs: dict, arrays: dict, group_attrs: dict) -> None:
    """Write one computed output in one short atomic write."""
    try:
        with io.atomic_h5(out, attrs) as f:
            for key, value in arrays.items():
                f[key] = value
            for group, values in group_attrs.items():
                f[group].attrs.update(values)
    except OSError as err:
        raise OutputError(f"could not write {out}: {err}") from err
    log.info("wrote %s", out)


def probe_settings(args, trainer: Trainer) -> tuple[tuple[int, int, int] | None, dict]:
    """The empirical NTK probes' (size, noise samples, output coordinates), None when off, and
    the attributes of the files' ntk group."""
    from . import empirical_ntk  # output_coordinates: the coordinates Theta_m averages over

    probe = getattr(args, "probe_cfg", {}) or {}
    size = min(int(probe.get("probe_size", 32)), trainer.n)
    if size <= 0:
        return None, {}
    samples, outputs = int(probe.get("probe_noise_samples", 4)), int(probe.get("probe_outputs", 8))
    attrs = {"noise_samples": samples,
             "output_coordinates": json.dumps(empirical_ntk.output_coordinates(trainer.d, outputs).tolist())}
    return (size, samples, outputs), attrs


def ntk_arrays(ntk: dict) -> dict:
    """Empirical stochastic NTK per group at init and at the end, on the first p examples (per seed).

    Datasets ntk/probe_index (p,), ntk/init/<group> and ntk/final/<group> (seeds, p, p) float32
    (and ntk/<stage>/total, their sum); the same noise draws (a fixed key per seed) at init and
    at the end, so the difference is the kernel's drift, not Monte-Carlo noise. See
    docs/theory.md, "Data layout"."""
    arrays = {}
    for stage in ("init", "final"):
        groups = {g: np.asarray(v) for g, v in ntk[stage].items()}
        size = next(iter(groups.values())).shape[-1]
        arrays["ntk/probe_index"] = np.arange(size)
        total = sum(groups.values())            # per lane, the sum empirical_ntk.theta_m takes
        for group, value in {**groups, "total": total}.items():
            arrays[f"ntk/{stage}/{group}"] = value.astype(np.float32)
    return arrays


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # the TPU probe is noise here
    memory = accelerator.configure_gpu_memory()  # before JAX starts its backend
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["merge"]:
        from . import parts

        return parts.main(argv[1:])
    args = parse_args(argv)
    log.info("JAX devices: %s; GPU memory: %s", ", ".join(accelerator.describe_device(d) for d in jax.devices()),
             memory)
    t0 = time.perf_counter()
    try:
        train(args)
    except (DivergenceError, io.InputFileError, C.ConfigError, UsageError, K.WriterBusy, K.CheckpointError,
            OutputError) as err:
        log.error("%s", _one_line(err))
        return 1
    except Preempted as stopped:
        log.warning("stopped after checkpoint; rerun the same command to resume")
        return stopped.code
    log.info("done in %.1f s", time.perf_counter() - t0)
    log.info("phases (wall/CPU s): %s", PHASES.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
