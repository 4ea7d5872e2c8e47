"""Measured rates of this CPU for the plan (ntkvae.plan): what one unit of each kind of work costs.

    python benchmarks/calibrate_plan.py            # measure and write benchmarks/calibration/cpu.json
    python -m ntkvae.plan --calibrate ...          # measure now and plan with it (not stored)

What is measured, and how (about a minute on 2 cores):
Each rate is measured on two clocks: wall seconds (what a job takes on this machine at this
load) and CPU seconds of the process, all threads (what it costs; nearly independent of other
tenants on a shared machine). The plan predicts both.
* train: the training job's own jitted, scanned step and its evaluation (training.Trainer) at
  several (n, d, width); their times are fitted (non-negative least squares, relative error)
  to the plan's own counts of the same calls (plan.Training.work): seconds per float32
  matrix-product FLOP, per activation element, per parameter element, per scanned step, per
  dispatched call. The plan then extrapolates with the counts of the job at hand.
* gemm_f64, eigh: numpy float64 products and symmetric eigendecomposition (per n^3) that the
  kernel and prediction jobs run.
* theta_inf_entry_s: seconds per kernel entry of kernels.theta_inf per activation (Gram
  product subtracted), and write_bytes_per_s of HDF5.
* jobs: each CLI run once, tiny, in a fresh process (data, train, kernel, predict, figure,
  provenance): its wall time is the job's start-up (interpreter, imports, JAX and XLA
  compilation, file writes) and its peak resident memory the job's base memory.
The result records the date, the machine and the load average, since the machine is shared.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]

# (n, d, width) of the fitted training calls: widths from overhead-bound to product-bound,
# two n and two d so that the per-row and per-parameter terms separate.
TRAIN_SHAPES = ((256, 64, 16), (256, 64, 128), (256, 64, 512), (256, 64, 1024), (64, 64, 1024), (128, 1024, 256),
                (64, 64, 256))
QUICK_SHAPES = ((256, 64, 16), (256, 64, 256), (256, 64, 768), (64, 64, 768), (128, 1024, 256))
STEPS_PER_CALL = 10
SEEDS = 2


CLOCKS = ("wall", "cpu")


def best_of(fn, repeats: int = 3) -> dict[str, float]:
    """Shortest wall time and shortest CPU time (this process, all threads) of `repeats` calls."""
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"wall": min(wall), "cpu": min(cpu)}


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "node": platform.node(), "python": platform.python_version()}


def _normalized(n: int, d: int, seed: int = 1) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True) * np.sqrt(d)).astype(np.float32)


def measure_training(shapes=TRAIN_SHAPES) -> dict:
    """Time the training step and evaluation at `shapes`; fit the plan's per-unit costs."""
    import jax
    from scipy.optimize import nnls

    from . import model as M
    from .plan import Training
    from .training import Settings, Trainer

    rows, times, samples = [], {c: [] for c in CLOCKS}, []
    K = 8
    for n, d, m in shapes:
        x = _normalized(n, d)
        settings = Settings(steps=STEPS_PER_CALL, seeds=tuple(range(SEEDS)), log_every=STEPS_PER_CALL,
                            eval_noise_samples=K)
        trainer = Trainer(M.Architecture(), m, settings, x)
        state = trainer.init_state()
        trainer.run_chunk(state, STEPS_PER_CALL)  # compile
        step = best_of(lambda: trainer.run_chunk(state, STEPS_PER_CALL))
        trainer.evaluate(state)
        evaluate = best_of(lambda: jax.block_until_ready(trainer.evaluate(state)))
        job = Training(n=n, d=d, width=m, latent=m, seeds=SEEDS, steps=STEPS_PER_CALL, log_every=STEPS_PER_CALL,
                       eval_samples=K, train_sigma=False, optimizer="sgd", bias=False, probe_size=0,
                       probe_samples=0, probe_outputs=0, reconstructions=0, checkpoint_every=0)
        phases = job.work().phases
        per_eval = {k: v / job.evaluations for k, v in phases["evaluation"].items()}
        for row, t in ((phases["steps"], step), (per_eval, evaluate)):
            rows.append([row.get("flops32", 0.0), row.get("activations", 0.0), row.get("parameters", 0.0),
                         row.get("steps", 0.0), row.get("calls", 0.0)])
            for c in CLOCKS:
                times[c].append(t[c])
        samples.append({"n": n, "d": d, "width": m, "steps": STEPS_PER_CALL, "chunk_s": step, "evaluate_s": evaluate})
    a = np.asarray(rows)
    out = {}
    for c in CLOCKS:
        b = np.asarray(times[c])
        # Relative least squares: each call counts by its own relative error, so the small,
        # overhead-bound calls constrain the per-call terms and the large ones the rates.
        coef, _ = nnls(a / b[:, None], np.ones_like(b))
        fitted = a @ coef
        for sample, (ts, te) in zip(samples, fitted.reshape(-1, 2)):
            sample.setdefault("chunk_fit_s", {})[c] = float(ts)
            sample.setdefault("evaluate_fit_s", {})[c] = float(te)
        out[c] = {"matmul_flops_per_s": float(1.0 / max(coef[0], 1e-15)), "activation_element_s": float(coef[1]),
                  "parameter_element_s": float(coef[2]), "step_s": float(coef[3]), "call_s": float(coef[4]),
                  "max_fit_error": float(np.max(np.abs(fitted / b - 1)))}
    return out, samples


def measure_linear_algebra() -> dict[str, dict]:
    """float64 GEMM and eigh rates, and HDF5 writing, per clock."""
    import h5py

    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 1024))
    gemm = best_of(lambda: a @ a)
    n = 1000
    sym = rng.standard_normal((n, n))
    sym = sym @ sym.T / n
    eigh = best_of(lambda: np.linalg.eigh(sym), 2)
    with tempfile.TemporaryDirectory() as tmp:
        block = rng.standard_normal((2000, 2000))  # 32 MB

        def write():
            with h5py.File(pathlib.Path(tmp) / "w.h5", "w") as f:
                f["a"] = block
                f["b"] = block
        written = best_of(write, 2)
    return {clock: {"gemm_f64_flops_per_s": 2 * 1024**3 / gemm[clock], "eigh_s_per_n3": eigh[clock] / n**3,
                    "write_bytes_per_s": 2 * block.nbytes / written[clock]}
            for clock in CLOCKS}


def measure_theta_inf(gemm_f64: dict, activations=("erf", "relu", "tanh")) -> dict[str, dict]:
    """Seconds per kernel entry of kernels.theta_inf (Gram product subtracted), per activation and clock."""
    from . import kernels

    n, d = 1024, 64
    x = _normalized(n, d).astype(np.float64)
    out = {clock: {} for clock in CLOCKS}
    for act in activations:
        arch = {"activation": act}
        kernels.theta_inf(x[:64], arch=arch, groups=("W4",))  # compile and build tables
        t = best_of(lambda: kernels.theta_inf(x, arch=arch, groups=("W4",)), 2)
        for clock in CLOCKS:
            gram = 2.0 * n * n * d / gemm_f64[clock]
            out[clock][act] = max(t[clock] - gram, 0.0) / (n * n * 2)   # two kernels: W4 and total
    # gelu and softplus go through the same cosine grid as tanh (kernels.theta_inf, method auto)
    for rates in out.values():
        for other in ("tanh", "gelu", "softplus", "relu"):
            rates.setdefault(other, rates.get("tanh", rates["erf"]))
    return out


# A forked child's ru_maxrss starts at its parent's resident size (Linux keeps the high-water
# mark across exec), so each job is started by this small launcher, whose own child then
# reports its true peak.
_LAUNCHER = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
             "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
             "print(u.ru_maxrss, u.ru_utime + u.ru_stime, file=sys.stderr); sys.exit(rc)")


def _run(cmd: list[str], cwd: pathlib.Path) -> dict:
    """Wall seconds and peak resident memory (MB) of one command in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _LAUNCHER, *cmd], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"calibration job failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    peak_kb, cpu = proc.stderr.strip().splitlines()[-1].split()
    return {"seconds": wall, "cpu_seconds": float(cpu), "rss_mb": int(peak_kb) * 1024 / 1e6}


JOB_KINDS = ("data", "train", "kernel", "predict", "figure", "provenance")


def measure_jobs(kinds=JOB_KINDS, per_example: bool = True) -> tuple[dict, dict]:
    """Start-up time and base memory of each kind of job (a figure and a prediction need the
    kernel and training files, which are then made too), and seconds per example of the
    procedural sprites (per_example)."""
    py = sys.executable
    jobs, per_example = {}, {clock: {} for clock in CLOCKS}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        data = tmp / "digits.h5"
        jobs["data"] = _run([py, "-m", "ntkvae.prepare_data", "--dataset", "digits", "--n", "32", "--seed", "0",
                             "--out", str(data)], tmp)
        if per_example:
            small = _run([py, "-m", "ntkvae.prepare_data", "--dataset", "sprites", "--n", "32", "--seed", "0",
                          "--out", str(tmp / "s32.h5")], tmp)
            large = _run([py, "-m", "ntkvae.prepare_data", "--dataset", "sprites", "--n", "544", "--seed", "0",
                          "--out", str(tmp / "s544.h5")], tmp)
            per_example = {clock: {"sprites": max(large[key] - small[key], 0.0) / 512}
                           for clock, key in (("wall", "seconds"), ("cpu", "cpu_seconds"))}
        model = {"activation": "erf", "weight_std": 1.0, "bias": False, "latent_width": "same"}
        training = {"objective": "mse", "optimizer": "sgd", "learning_rate": 0.5, "steps": 4, "seeds": [0, 1],
                    "beta": 1.0, "kl_scaling": "inv_sqrt_width", "train_sigma": False, "log_every": 2,
                    "eval_noise_samples": 4, "reconstructions": 4, "noise": "fresh", "on_divergence": "fail",
                    "checkpoint_every": 0}
        probe = {"probe_size": 8, "probe_noise_samples": 2, "probe_outputs": 4}
        out = tmp / "w8.h5"
        jobs["train"] = _run([py, "-m", "ntkvae.train", "--data", str(data), "--width", "8", "--run", "mse",
                              "--model", json.dumps(model), "--training", json.dumps(training),
                              "--probe", json.dumps(probe), "--checkpoint", str(tmp / "ck.npz"), "--out", str(out)],
                             tmp)
        kernel = tmp / "erf.h5"
        jobs["kernel"] = _run([py, "-m", "ntkvae.compute_kernels", "kernel", "--data", str(data), "--model",
                               json.dumps(model), "--kernels", json.dumps(probe),
                               "--out", str(kernel)], tmp)
        prediction = tmp / "prediction.h5"
        jobs["predict"] = _run([py, "-m", "ntkvae.predict", "--data", str(data), "--kernel",
                                str(kernel), "--training", json.dumps(training), "--run", "mse",
                                "--out", str(prediction)], tmp)
        # With the figure settings the workflow passes (the default config's): they make the
        # figure look up its theorem runs and draw its claims' fits, a second of a 3 s job that
        # a figure without them does not spend (measured 3.0 s with, 1.7-2.0 s without).
        from . import planning
        from .config import load_config

        settings = planning.figure_settings(load_config(ROOT / "config.yaml"))
        jobs["figure"] = _run([py, "-m", "ntkvae.plot", "convergence", "--inputs", str(out), "--kernels",
                               str(kernel), str(prediction), "--data", str(data), "--dataset", "digits",
                               "--settings", json.dumps(settings, sort_keys=True),
                               "--pdf", str(tmp / "f.pdf"), "--png", str(tmp / "f.png"), "--dpi", "150"], tmp)
        if "provenance" in kinds:
            jobs["provenance"] = _run([py, "-m", "ntkvae.provenance", "--config", "{}", "--out", str(tmp / "p.yaml")],
                                      tmp)
    return {k: v for k, v in jobs.items() if k in kinds}, per_example


def measure(quick: bool = False, kinds=JOB_KINDS) -> dict:
    """Every rate of the calibration, as the dict stored in benchmarks/calibration/cpu.json
    (quick: fewer training shapes, no sprites rendering rate; kinds: the jobs whose start-up
    is measured)."""
    import jax

    start = time.perf_counter()
    load_before = os.getloadavg()
    spent = {}

    def timed(name, fn, *args, **kwargs):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        spent[name] = round(time.perf_counter() - t0, 1)
        return out

    linear = timed("linear algebra", measure_linear_algebra)
    train, samples = timed("train", measure_training, QUICK_SHAPES if quick else TRAIN_SHAPES)
    theta = timed("theta_inf", measure_theta_inf, {c: linear[c]["gemm_f64_flops_per_s"] for c in CLOCKS},
                  ("erf",) if quick else ("erf", "relu", "tanh"))
    jobs, per_example = timed("jobs", measure_jobs, kinds, per_example=not quick)
    rates = {clock: {**train[clock], **linear[clock], "theta_inf_entry_s": theta[clock],
                     "data_example_s": per_example[clock]} for clock in CLOCKS}
    result = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(),
        "jax": jax.__version__,
        "quick": quick,
        "rates": rates,
        "jobs": jobs,
        "train_samples": samples,
    }
    result["load"] = [round(x, 2) for x in load_before] + [round(x, 2) for x in os.getloadavg()][:1]
    result["seconds"] = time.perf_counter() - start
    result["seconds_by_part"] = spent
    return result


# ---------------------------------------------------------------------------- per-job accounting
#
# Snakemake's benchmark files sample a job every 0.5 s for 15 s, then every 30 s: the end of a
# long job (and its CPU time there) is missed. For exact numbers, a `sitecustomize` module on
# the jobs' PYTHONPATH makes every Python process append, at exit, its command line, wall
# seconds, CPU seconds (user + system, all threads) and peak resident memory (VmHWM).
ACCOUNTING_HOOK = """
import atexit, json, os, sys, time
_start = time.time()

def _record():
    try:
        status = open("/proc/self/status").read()
        hwm = int(next(l for l in status.splitlines() if l.startswith("VmHWM")).split()[1]) * 1024
        t = os.times()
        line = json.dumps({"argv": list(getattr(sys, "orig_argv", sys.argv)), "pid": os.getpid(),
                           "start": _start, "wall": time.time() - _start, "cpu": t.user + t.system,
                           "peak_bytes": hwm})
        with open(os.environ["NTKVAE_ACCOUNTING"], "a") as fh:
            fh.write(line + "\\n")
    except Exception:
        pass

atexit.register(_record)
"""


def accounting_env(directory: pathlib.Path, env: dict | None = None) -> tuple[dict, pathlib.Path]:
    """An environment whose Python processes record themselves in directory/accounting.jsonl."""
    directory = pathlib.Path(directory)
    hook = directory / "accounting-hook"
    hook.mkdir(parents=True, exist_ok=True)
    (hook / "sitecustomize.py").write_text(ACCOUNTING_HOOK)
    log = directory / "accounting.jsonl"
    log.write_text("")
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = str(hook) + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["NTKVAE_ACCOUNTING"] = str(log)
    return env, log


def read_accounting(log: pathlib.Path, workdir: pathlib.Path) -> dict[str, dict]:
    """Records of the workflow's jobs (python -m ntkvae.<step>), by their main output relative to workdir."""
    out = {}
    for line in pathlib.Path(log).read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        argv = record["argv"]
        if "-m" not in argv or not argv[argv.index("-m") + 1].startswith("ntkvae."):
            continue
        for flag in ("--out", "--pdf", "--md", "--stamp"):
            if flag in argv:
                path = pathlib.Path(argv[argv.index(flag) + 1])
                path = path if path.is_absolute() else (pathlib.Path(workdir) / path)
                try:
                    key = str(path.resolve().relative_to(pathlib.Path(workdir).resolve()))
                except ValueError:
                    key = str(path)
                out[key] = record
                break
    return out
