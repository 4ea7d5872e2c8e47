"""CLI: train all seeds of one width on one dataset and write the run's HDF5 file.

    python -m ntkvae.train --data results/data/digits.h5 --width 256 \
        --config config.yaml --run mse --out results/train/digits/mse/w256.h5

Snakemake passes the resolved `--model` and `--training` JSON instead of `--config/--run`,
so that a job reruns exactly when its own settings change. With `--checkpoint`, the job
saves its state every `checkpoint_every` steps (0: every 10 minutes of training) and on
SIGTERM (preemption; exit 143) or Ctrl-C (exit 130), and resumes from that file when
started again; the final file has the same numbers as that of an uninterrupted run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import pathlib
import signal
import sys
import time
import zipfile

import jax
import numpy as np

from . import accelerator
from . import config as C
from . import datasets, generation, io
from . import model as M
from .training import DivergenceError, Progress, Settings, Trainer, first_divergence, log_points

log = logging.getLogger("ntkvae.train")

# With checkpoint_every 0, a checkpoint is written at the first log point after this many
# seconds of training since the last one: short runs never pay for it, long ones lose at
# most this much to a SIGKILL (a SIGTERM always checkpoints).
CHECKPOINT_SECONDS = 600.0


class Preempted(SystemExit):
    pass


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
    args.probe_cfg = json.loads(args.probe) if args.probe else {}
    if args.config:
        cfg = C.load_config(args.config)
        run = args.run or next(iter(cfg["runs"]))
        args.model_cfg, args.training_cfg = C.run_model(cfg, run), C.run_settings(cfg, run)
        args.run = run
        args.probe_cfg = args.probe_cfg or cfg.get("kernels", {})
    elif args.model and args.training:
        args.model_cfg, args.training_cfg = json.loads(args.model), json.loads(args.training)
    else:
        p.error("give either --config (and --run) or both --model and --training")
    return args


# ---------------------------------------------------------------------- checkpoints

def _fingerprint(model_cfg, training_cfg, width, x: np.ndarray) -> str:
    """What a checkpoint must match to be resumed: settings, width and the data's content.

    The data enter by content, not by path: a dataset regenerated at the same path (another
    n or seed) must not resume a checkpoint trained on the old one, and a moved working
    directory should still resume."""
    keep = {k: v for k, v in training_cfg.items() if k not in ("progress_seconds", "checkpoint_every", "description")}
    blob = json.dumps([model_cfg, keep, width, list(x.shape), str(x.dtype)], sort_keys=True, default=str)
    digest = hashlib.sha256(blob.encode())
    digest.update(np.ascontiguousarray(x).tobytes())
    return digest.hexdigest()[:16]


def _flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}/"))
        else:
            flat[prefix + key] = np.asarray(value)
    return flat


def _unflatten(flat: dict[str, np.ndarray]) -> dict:
    tree: dict = {}
    for path, value in flat.items():
        *parents, leaf = path.split("/")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def save_checkpoint(path: pathlib.Path, state: dict, history: dict, fingerprint: str) -> None:
    """Write state and history to `path` atomically (a kill while writing leaves the old one).

    Arrays are stored as they are (dtype kept), so a resumed run writes the same numbers as an
    uninterrupted one: the per-step metrics as one array (seeds, steps, 3), and each
    evaluated quantity stacked over the evaluations so far, (seeds, evaluations)."""
    leaves = jax.tree_util.tree_leaves({k: v for k, v in state.items() if k != "step"})
    arrays = {f"leaf{i}": np.asarray(leaf) for i, leaf in enumerate(leaves)}
    arrays["metrics"] = np.concatenate(history["metrics"], axis=1)
    stacked = jax.tree.map(lambda *a: np.stack(a, axis=-1), *history["evals"])
    arrays.update({f"eval/{k}": v for k, v in _flatten(stacked).items()})
    meta = json.dumps({"fingerprint": fingerprint, "step": int(state["step"]), "evaluations": len(history["evals"])})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, meta=np.array(meta), **arrays)
    os.replace(tmp, path)
    log.info("checkpoint written at step %d to %s", state["step"], path)


def load_checkpoint(path: pathlib.Path, state: dict, fingerprint: str) -> dict | None:
    """Restore `state` in place from `path`; returns the history, or None if unusable."""
    if not path.exists():
        return None
    try:
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            if meta["fingerprint"] != fingerprint:
                log.warning("checkpoint %s belongs to other settings or data; starting afresh", path)
                return None
            tree = {k: v for k, v in state.items() if k != "step"}
            leaves, treedef = jax.tree_util.tree_flatten(tree)
            restored = [jax.numpy.asarray(z[f"leaf{i}"]) for i in range(len(leaves))]
            if any(r.shape != np.shape(l) or r.dtype != l.dtype for r, l in zip(restored, leaves)):
                raise ValueError("array shapes or types differ from this run's state")
            metrics = z["metrics"]
            stacked = _unflatten({k[len("eval/"):]: z[k] for k in z.files if k.startswith("eval/")})
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:  # truncated or foreign file
        log.warning("checkpoint %s is unreadable (%s); starting afresh", path, err)
        return None
    state.update(jax.tree_util.tree_unflatten(treedef, restored))
    state["step"] = int(meta["step"])
    evals = [jax.tree.map(lambda a, i=i: a[..., i], stacked) for i in range(int(meta["evaluations"]))]
    log.info("resumed from checkpoint %s at step %d", path, state["step"])
    return {"metrics": [metrics], "evals": evals}


# ---------------------------------------------------------------------- main loop

def train(args) -> None:
    arch = M.Architecture.from_config(args.model_cfg)
    settings = Settings.from_config(args.training_cfg)
    x, data_attrs = datasets.load_inputs(args.data)
    device = jax.devices()[0]
    label = f"[{data_attrs.get('dataset', '?')} w={args.width}]"
    log.info("%s training %d seeds on %d examples (d=%d) on %s (%s)", label, len(settings.seeds), x.shape[0],
             x.shape[1], device.platform, device.device_kind)

    trainer = Trainer(arch, args.width, settings, x)
    state = trainer.init_state()
    fingerprint = _fingerprint(args.model_cfg, args.training_cfg, args.width, x)
    ckpt = pathlib.Path(args.checkpoint) if args.checkpoint else None
    history = (load_checkpoint(ckpt, state, fingerprint) if ckpt else None) or {"metrics": [], "evals": []}
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
        for pos, step, value in first_divergence(np.concatenate(history["metrics"], axis=1), 0):
            diverged[pos] = (step, value)
    for start, end in zip(points[:-1], points[1:]):
        if end <= state["step"]:
            continue
        metrics = trainer.run_chunk(state, end - start)
        history["metrics"].append(metrics)
        for pos, step, value in first_divergence(metrics, start):
            if pos not in diverged:
                diverged[pos] = (step, value)
                msg = (f"training diverged: width {args.width}, seed {settings.seeds[pos]}: objective became "
                       f"{value} at step {step}")
                if settings.on_divergence == "fail":
                    raise DivergenceError(msg + " (lower the learning rate, or set on_divergence: record)")
                log.warning("%s (recorded, on_divergence: record)", msg)
        evals = trainer.evaluate(state)
        history["evals"].append(evals)
        progress.update(state["step"], {"objective": float(np.nanmean(metrics[:, -1, 0])),
                                        "mean_fn_mse": float(np.nanmean(evals["mean_function_mse"]))},
                        force=state["step"] == settings.steps)
        if not ckpt or state["step"] == settings.steps:
            continue  # at the last step the output is written at once: no checkpoint needed
        if settings.checkpoint_every:
            due = state["step"] - last_ckpt >= settings.checkpoint_every
        else:  # 0: only long runs checkpoint, every CHECKPOINT_SECONDS of training
            due = time.monotonic() - last_ckpt_time >= CHECKPOINT_SECONDS
        if stop["signal"] or due:
            save_checkpoint(ckpt, state, history, fingerprint)
            last_ckpt, last_ckpt_time = state["step"], time.monotonic()
            if stop["signal"]:
                raise Preempted(128 + stop["signal"])  # the shell's convention: 143 SIGTERM, 130 SIGINT

    write_output(args, trainer, state, history, data_attrs, diverged, device)
    if ckpt and ckpt.exists():
        ckpt.unlink()


def write_output(args, trainer: Trainer, state, history, data_attrs, diverged, device) -> None:
    settings = trainer.settings
    metrics = np.concatenate(history["metrics"], axis=1)            # (seeds, steps, 3)
    evals = jax.tree.map(lambda *a: np.stack(a, axis=-1), *history["evals"])  # leaves (seeds, points)
    count = min(settings.reconstructions, trainer.n)
    recon = trainer.reconstructions(state, count) if count else None
    # F8 and F6: prior samples, latent traversals and latent statistics (ntkvae.generation).
    gen_keys = jax.vmap(lambda k: jax.random.fold_in(k, 2**31 - 2))(state["eval_key"])
    generated = generation.generate(state["params"], gen_keys, trainer.x, trainer.arch, trainer.width)
    cfg = {"dataset": data_attrs.get("dataset"), "run": args.run, "width": args.width, "model": args.model_cfg,
           "training": args.training_cfg}
    attrs = io.provenance(cfg, dataset=str(data_attrs.get("dataset", "")), run=str(args.run or ""),
                          width=int(args.width), latent_width=int(trainer.latent), seeds=list(settings.seeds),
                          n=int(trainer.n), d=int(trainer.d), objective=settings.objective,
                          device=accelerator.describe_device(device), data_file=str(args.data),
                          data_git_commit=str(data_attrs.get("git_commit", "")),
                          diverged={str(settings.seeds[p]): s for p, (s, _) in diverged.items()})
    with io.atomic_h5(args.out, attrs) as f:
        f["seeds"] = np.asarray(settings.seeds)
        f["train/step"] = np.arange(metrics.shape[1])
        f["train/objective"] = metrics[..., 0]
        f["train/mse"] = metrics[..., 1]
        f["train/kl"] = metrics[..., 2]
        f["eval/step"] = np.asarray(log_points(settings.steps, settings.log_every))
        for key in ("mean_function_mse", "expected_mse", "noise_floor", "kl"):
            f[f"eval/{key}"] = evals[key]
        for group, value in evals["weight_change"].items():
            f[f"weight_change/{group}"] = value
        if recon is not None:
            f["reconstructions/index"] = np.arange(count)
            f["reconstructions/mean"] = recon["mean"]
            f["reconstructions/sample"] = recon["sample"]
        io.write_dict(f.require_group("generation"), generated)
        write_ntk_probes(f, args, trainer, state)
    log.info("wrote %s", args.out)


def write_ntk_probes(f, args, trainer: Trainer, state) -> None:
    """Empirical stochastic NTK per group at init and at the end, on the first p examples (per seed).

    Datasets ntk/probe_index (p,), ntk/init/<group> and ntk/final/<group> (seeds, p, p) float32;
    the same noise draws (a fixed key per seed) at init and at the end, so the difference is
    the kernel's drift, not Monte-Carlo noise. See docs/theory.md, "Data layout".
    """
    from . import empirical_ntk as kernels  # local: only the probes need Theta_m (defined in empirical_ntk.py)

    probe = getattr(args, "probe_cfg", {}) or {}
    size = min(int(probe.get("probe_size", 32)), trainer.n)
    if size <= 0:
        return
    samples, outputs = int(probe.get("probe_noise_samples", 4)), int(probe.get("probe_outputs", 8))
    xs = trainer.x[:size]
    f["ntk/probe_index"] = np.arange(size)
    f["ntk"].attrs.update({"noise_samples": samples, "output_coordinates": json.dumps(
        kernels.output_coordinates(trainer.d, outputs).tolist())})
    t0 = time.perf_counter()
    for stage, key in (("init", "params0"), ("final", "params")):
        per_seed = []
        for pos, seed in enumerate(trainer.settings.seeds):
            params = jax.tree.map(lambda a: a[pos], state[key])
            probe_key = jax.random.fold_in(jax.random.PRNGKey(seed), 3)
            per_seed.append(kernels.theta_m(params, xs, trainer.arch, trainer.width, probe_key, samples, outputs=outputs))
        for group in per_seed[0]:
            f[f"ntk/{stage}/{group}"] = np.stack([k[group] for k in per_seed]).astype(np.float32)
    log.info("empirical NTK probes (p=%d) in %.1f s", size, time.perf_counter() - t0)


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
    except (DivergenceError, io.InputFileError, C.ConfigError) as err:
        log.error("%s", err)
        return 1
    except Preempted as stopped:
        log.warning("stopped after checkpoint; rerun the same command to resume")
        return stopped.code
    log.info("done in %.1f s", time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
