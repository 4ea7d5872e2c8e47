"""CLI: train all seeds of one width on one dataset and write the run's HDF5 file.

    python -m ntkvae.train --data results/data/digits.h5 --width 256 \
        --config config.yaml --run mse --out results/train/digits/mse/w256.h5

Snakemake passes the resolved `--model` and `--training` JSON instead of `--config/--run`,
so that a job reruns exactly when its own settings change. With `--checkpoint`, the job
saves its state every `checkpoint_every` steps (0: every 10 minutes of training) and on
SIGTERM (preemption; exit 143) or Ctrl-C (exit 130), and resumes from that file when
started again; the final file has the same numbers as that of an uninterrupted run.

Before training, an SGD run measures the finite-width stability limit 2 / lambda_max of its
objective's Hessian at initialization (`ntkvae.stability`); a learning rate above it is
refused (exit 1, no output) unless `on_divergence: record`. A job that finds another live
job writing its output or checkpoint refuses to run (exit 1). Every error that the user can
fix (config, data file, settings, divergence, a full disk) is one line naming the key or
file, exit 1.
"""

from __future__ import annotations

import argparse
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
from . import datasets, generation, io
from . import model as M
from .training import (DIVERGENCE_FACTOR, DivergenceError, Progress, Settings, Trainer, convergence,
                       first_divergence, log_points, seed_key)

log = logging.getLogger("ntkvae.train")

# With checkpoint_every 0, a checkpoint is written at the first log point after this many
# seconds of training since the last one: short runs never pay for it, long ones lose at
# most this much to a SIGKILL (a SIGTERM always checkpoints).
CHECKPOINT_SECONDS = 600.0

NOT_APPLICABLE = "not applicable"


class Preempted(SystemExit):
    pass


class UsageError(RuntimeError):
    """A bad command line, config file or setting; the message names the file or key."""


class OutputError(RuntimeError):
    """The output file could not be written."""


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


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m ntkvae.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="dataset HDF5 file (results/data/<name>.h5)")
    p.add_argument("--width", type=int, required=True, help="hidden width m")
    p.add_argument("--out", required=True, help="output HDF5 file")
    p.add_argument("--config", help="config YAML (with --run), validated against the schema")
    p.add_argument("--run", help="name of the run in the config's `runs` section")
    p.add_argument("--model", help="resolved `model` section as JSON (instead of --config)")
    p.add_argument("--training", help="resolved training settings as JSON (instead of --config)")
    p.add_argument("--checkpoint", help="scratch file for checkpoints (enables resume)")
    p.add_argument("--probe", help="the `kernels` config section as JSON (empirical-kernel probe settings)")
    args = p.parse_args(argv)
    if not (args.config or (args.model and args.training)):
        p.error("give either --config (and --run) or both --model and --training")
    return args


def resolve_settings(args: argparse.Namespace) -> None:
    """Fill args.model_cfg, args.training_cfg, args.probe_cfg from the config file or JSON
    (UsageError naming the file or key)."""
    args.probe_cfg = _load_json("--probe", args.probe) if args.probe else {}
    if args.config:
        try:
            cfg = C.load_config(args.config)
        except OSError as err:
            raise UsageError(f"config file {args.config}: cannot be read ({err.strerror or err})") from None
        except yaml.YAMLError as err:
            where = getattr(err, "problem_mark", None)
            at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
            problem = getattr(err, "problem", None) or str(err)
            raise UsageError(f"config file {args.config}: not valid YAML{at}: {problem}") from None
        except C.ConfigError as err:
            raise UsageError(f"config file {args.config}: {_one_line(err)}") from None
        run = args.run or next(iter(cfg["runs"]))
        if run not in cfg["runs"]:
            raise UsageError(f"config file {args.config}: run {run!r} is not defined in runs "
                             f"(defined: {', '.join(cfg['runs'])})")
        args.model_cfg, args.training_cfg = C.run_model(cfg, run), C.run_settings(cfg, run)
        args.run = run
        args.probe_cfg = args.probe_cfg or cfg.get("kernels", {})
    else:
        args.model_cfg = _load_json("--model", args.model)
        args.training_cfg = _load_json("--training", args.training)
    try:
        args.arch = M.Architecture.from_config(args.model_cfg)
        args.arch.phi  # noqa: B018 (an unknown activation fails here, not inside training)
        args.settings = Settings.from_config(args.training_cfg)
    except (KeyError, TypeError, ValueError) as err:
        raise UsageError(f"training settings of run {args.run!r}: {_one_line(err)}") from None


# ---------------------------------------------------------------------- main loop

def train(args) -> None:
    resolve_settings(args)
    arch, settings = args.arch, args.settings
    x_all, data_attrs = datasets.load_inputs(args.data)
    if settings.examples is not None and settings.examples > x_all.shape[0]:
        raise UsageError(f"examples: {settings.examples} requested, but the data file {args.data} holds "
                         f"{x_all.shape[0]}")
    x = x_all[: settings.examples] if settings.examples is not None else x_all
    out = pathlib.Path(args.out)
    ckpt = pathlib.Path(args.checkpoint) if args.checkpoint else None
    with K.exclusive_writer([out] + ([ckpt] if ckpt else [])):
        K.remove_stale_temporaries(out, ckpt)
        _train_locked(args, arch, settings, x, data_attrs, out, ckpt)
        if ckpt and ckpt.exists():
            ckpt.unlink()


def stability_check(args, trainer: Trainer, state: dict, data_attrs) -> dict:
    """The finite-width stability limit at init (SGD only); refuses a learning rate above it
    unless on_divergence is record. Returns the output's datasets and attributes."""
    settings = trainer.settings
    if settings.optimizer != "sgd":
        return {"attrs": {"stability_learning_rate": NOT_APPLICABLE, "lr_over_stability": NOT_APPLICABLE}}
    t0 = time.perf_counter()
    top = trainer.stability(state)
    seconds = time.perf_counter() - t0
    limit = 2.0 / float(np.max(top.value))
    ratio = settings.learning_rate / limit
    log.info("stability at init: lambda_max of the Hessian %s (bound %s, %d Lanczos steps, %.1f s): "
             "learning rate limit 2/lambda_max = %.4g, learning_rate / limit = %.3g",
             np.array2string(top.value, precision=4), np.array2string(top.bound, precision=2), top.iterations,
             seconds, limit, ratio)
    if not top.converged:
        log.warning("stability: Lanczos did not reach its tolerance in %d steps (bounds %s)", top.iterations,
                    top.bound)
    if ratio > 1.0:
        where = (f"dataset {data_attrs.get('dataset', '?')}, run {args.run}, width {args.width}, "
                 f"seeds {list(settings.seeds)}")
        msg = (f"{where}: learning_rate {settings.learning_rate:g} exceeds the finite-width stability limit "
               f"{limit:.4g} (= 2 / lambda_max of the objective's Hessian at initialization, max over seeds)")
        if settings.on_divergence == "fail":
            raise DivergenceError(f"{msg}; set a learning rate below {limit:.4g}, or on_divergence: record "
                                  f"to train anyway and record the divergence")
        log.warning("%s; training anyway (on_divergence: record)", msg)
    return {"datasets": {"stability/hessian_lambda_max": top.value, "stability/error_bound": top.bound},
            "group_attrs": {"stability": {"lanczos_steps": top.iterations, "converged": top.converged,
                                          "seconds": seconds}},
            "attrs": {"stability_learning_rate": limit, "lr_over_stability": ratio}}


def _train_locked(args, arch, settings: Settings, x, data_attrs, out: pathlib.Path, ckpt) -> None:
    device = jax.devices()[0]
    label = f"[{data_attrs.get('dataset', '?')} {args.run} w={args.width}]"
    log.info("%s training %d seeds on %d examples (d=%d) on %s (%s)", label, len(settings.seeds), x.shape[0],
             x.shape[1], device.platform, device.device_kind)

    trainer = Trainer(arch, args.width, settings, x)
    state = trainer.init_state()
    stability = stability_check(args, trainer, state, data_attrs)
    digest = K.fingerprint(args.model_cfg, args.training_cfg, args.width, x)
    history = (K.load_checkpoint(ckpt, state, digest) if ckpt else None) or {"metrics": [], "evals": []}
    if not history["evals"]:
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
    progress = Progress(settings.steps, settings.progress_seconds, label, start_step=state["step"])
    last_ckpt, last_ckpt_time = state["step"], time.monotonic()
    diverged: dict[int, tuple[int, float]] = {}
    if history["metrics"]:  # divergences recorded before the checkpoint are kept
        done = np.concatenate(history["metrics"], axis=1)
        for pos, step, value in first_divergence(done, 0, done[:, 0, 0]):
            diverged[pos] = (step, value)
    stopped_at = None
    for start, end in zip(points[:-1], points[1:]):
        if end <= state["step"]:
            continue
        metrics = trainer.run_chunk(state, end - start)
        history["metrics"].append(metrics)
        initial = history["metrics"][0][:, 0, 0]
        for pos, step, value in first_divergence(metrics, start, initial):
            if pos not in diverged:
                diverged[pos] = (step, value)
                msg = (f"training diverged: width {args.width}, seed {settings.seeds[pos]}: objective became "
                       f"{value:.4g} at step {step} (diverged: non-finite or above {DIVERGENCE_FACTOR:g} x its "
                       f"initial {initial[pos]:.4g})")
                if settings.on_divergence == "fail":
                    raise DivergenceError(msg + "; lower the learning rate, or set on_divergence: record")
                log.warning("%s (recorded, on_divergence: record)", msg)
        evals = trainer.evaluate(state)
        history["evals"].append(evals)
        if settings.convergence_tolerance is not None:
            objective = np.stack([e["objective"] for e in history["evals"]], axis=1)
            _, stopped_at = convergence(objective, points[: objective.shape[1]], settings.convergence_tolerance)
        progress.update(state["step"], {"objective": float(np.nanmean(metrics[:, -1, 0])),
                                        "mean_fn_mse": float(np.nanmean(evals["mean_function_mse"]))},
                        force=state["step"] == settings.steps or stopped_at is not None)
        if stopped_at is not None:
            log.info("%s converged at step %d (convergence_tolerance %g)", label, stopped_at,
                     settings.convergence_tolerance)
            break
        if not ckpt or state["step"] == settings.steps:
            continue  # at the last step the output is written at once: no checkpoint needed
        if settings.checkpoint_every:
            due = state["step"] - last_ckpt >= settings.checkpoint_every
        else:  # 0: only long runs checkpoint, every CHECKPOINT_SECONDS of training
            due = time.monotonic() - last_ckpt_time >= CHECKPOINT_SECONDS
        if stop["signal"] or due:
            K.save_checkpoint(ckpt, state, history, digest)
            last_ckpt, last_ckpt_time = state["step"], time.monotonic()
            if stop["signal"]:
                raise Preempted(128 + stop["signal"])  # the shell's convention: 143 SIGTERM, 130 SIGINT

    # Everything is computed before the output is opened, so that the write itself (the
    # window in which a kill leaves a temporary) is short.
    attrs, arrays, group_attrs = collect_output(args, trainer, state, history, data_attrs, diverged, device,
                                                stability, points)
    write_output(out, attrs, arrays, group_attrs)


def collect_output(args, trainer: Trainer, state, history, data_attrs, diverged, device, stability, points):
    """The output file's root attributes, datasets {path: array} and group attributes."""
    settings = trainer.settings
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
    count = min(settings.reconstructions, trainer.n)
    if count:
        recon = trainer.reconstructions(state, count)
        arrays["reconstructions/index"] = np.arange(count)
        arrays["reconstructions/mean"] = recon["mean"]
        arrays["reconstructions/sample"] = recon["sample"]
    # F8 and F6: prior samples, latent traversals and latent statistics (ntkvae.generation).
    gen_keys = jax.vmap(lambda k: jax.random.fold_in(k, 2**31 - 2))(state["eval_key"])
    generated = generation.generate(state["params"], gen_keys, trainer.x, trainer.arch, trainer.width)
    arrays.update({f"generation/{k}": np.asarray(v) for k, v in K.flatten(generated).items()})
    arrays.update(stability.get("datasets", {}))
    group_attrs = dict(stability.get("group_attrs", {}))
    probes, probe_attrs = ntk_probes(args, trainer, state)
    arrays.update(probes)
    if probe_attrs:
        group_attrs["ntk"] = probe_attrs

    cfg = {"dataset": data_attrs.get("dataset"), "run": args.run, "width": args.width, "model": args.model_cfg,
           "training": args.training_cfg}
    extra = dict(stopped_at=int(state["step"]))
    if settings.convergence_tolerance is not None:
        objective = evals["objective"]
        first, _ = convergence(objective, list(eval_steps), settings.convergence_tolerance)
        extra["converged"] = {str(seed): first.get(pos) for pos, seed in enumerate(settings.seeds)}
    attrs = io.provenance(cfg, dataset=str(data_attrs.get("dataset", "")), run=str(args.run or ""),
                          width=int(args.width), latent_width=int(trainer.latent), seeds=list(settings.seeds),
                          n=int(trainer.n), d=int(trainer.d), objective=settings.objective,
                          device=accelerator.describe_device(device), data_file=str(args.data),
                          data_git_commit=str(data_attrs.get("git_commit", "")),
                          diverged={str(settings.seeds[p]): s for p, (s, _) in diverged.items()},
                          **stability.get("attrs", {}), **extra)
    return attrs, arrays, group_attrs


def write_output(out: pathlib.Path, attrs: dict, arrays: dict, group_attrs: dict) -> None:
    """Write the computed output in one short atomic write."""
    try:
        with io.atomic_h5(out, attrs) as f:
            for key, value in arrays.items():
                f[key] = value
            for group, values in group_attrs.items():
                f[group].attrs.update(values)
    except OSError as err:
        raise OutputError(f"could not write {out}: {err}") from err
    log.info("wrote %s", out)


def ntk_probes(args, trainer: Trainer, state) -> tuple[dict, dict]:
    """Empirical stochastic NTK per group at init and at the end, on the first p examples (per seed).

    Datasets ntk/probe_index (p,), ntk/init/<group> and ntk/final/<group> (seeds, p, p) float32;
    the same noise draws (a fixed key per seed) at init and at the end, so the difference is
    the kernel's drift, not Monte-Carlo noise. See docs/theory.md, "Data layout".
    """
    from . import empirical_ntk as kernels  # local: only the probes need Theta_m (defined in empirical_ntk.py)

    probe = getattr(args, "probe_cfg", {}) or {}
    size = min(int(probe.get("probe_size", 32)), trainer.n)
    if size <= 0:
        return {}, {}
    samples, outputs = int(probe.get("probe_noise_samples", 4)), int(probe.get("probe_outputs", 8))
    xs = trainer.x[:size]
    arrays = {"ntk/probe_index": np.arange(size)}
    attrs = {"noise_samples": samples,
             "output_coordinates": json.dumps(kernels.output_coordinates(trainer.d, outputs).tolist())}
    t0 = time.perf_counter()
    for stage, key in (("init", "params0"), ("final", "params")):
        per_seed = []
        for pos, seed in enumerate(trainer.settings.seeds):
            params = jax.tree.map(lambda a: a[pos], state[key])
            per_seed.append(kernels.theta_m(params, xs, trainer.arch, trainer.width, seed_key(seed, "probe"), samples,
                                            outputs=outputs))
        for group in per_seed[0]:
            arrays[f"ntk/{stage}/{group}"] = np.stack([k[group] for k in per_seed]).astype(np.float32)
    log.info("empirical NTK probes (p=%d) in %.1f s", size, time.perf_counter() - t0)
    return arrays, attrs


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # the TPU probe is noise here
    memory = accelerator.configure_gpu_memory()  # before JAX starts its backend
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
