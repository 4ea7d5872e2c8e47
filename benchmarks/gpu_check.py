"""The first run on a GPU as a check: step times, peak memory and CPU-equality, beside the plan.

    python benchmarks/gpu_check.py                  # on a GPU machine: at most --budget-s (480 s)
    python benchmarks/gpu_check.py --cpu            # here: the same plumbing at tiny sizes, on the CPU

Two parts, one table (printed and written to --out, default benchmarks/results/gpu_check-<device>.md):

1. Timing: a reduced paper configuration (configs/paper.yaml's n = 1000 and seeds, its widths up
   to 16384, a few hundred steps; the tfds datasets replaced by offline data of the same shape:
   the procedural sprites for dSprites, d = 4096; mnist5k for MNIST, d = 784, when the package
   has it, else random normalized inputs of that shape; Cars3D's d = 12288 as random normalized
   inputs). Each case runs in a fresh process (so its peak memory is its own): the
   training job's jitted, scanned step (training.Trainer) in chunks of 50 steps, the first
   chunk being compilation. Recorded: start-up to the first step, seconds per step, peak device
   memory (`memory_stats()["peak_bytes_in_use"]`), and the plan's predictions for the same
   shapes (ntkvae.plan: GPU_EFFICIENCY's stated efficiency and the card's datasheet peak), with
   the efficiency they imply. A case the plan expects to overrun the budget is skipped, saying so.
2. Equality: the training CLI (python -m ntkvae.train) on a small dataset, on the CPU and on the
   GPU, with full float32 matrix products (JAX_DEFAULT_MATMUL_PRECISION=highest) and with JAX's
   default (TF32 tensor cores on Ampere and later): every array of the two output files compared.
   Full float32 must agree to FLOAT32_RTOL; the TF32 difference is reported, not judged.

With --cpu everything runs on the CPU at tiny sizes (plumbing test: tests/test_gpu_check.py); the
"GPU" side of the equality is then a second CPU run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# Different summation orders of float32 products (cuBLAS against Eigen) differ by a few ulp
# per product; over the small run's 20 steps of gradient descent (a contraction at this learning
# rate) and the NTK probes' products of products, 1e-4 relative (about 1000 ulp) bounds that,
# while any real difference (a wrong device path, TF32 at 1e-3) exceeds it.
FLOAT32_RTOL = 1e-4
ATOL = 1e-6        # for entries near zero (differences of nearly equal numbers)

FULL_CASES = [   # (label, dataset shape source, d, n, width, seeds, steps)
    ("mnist", "mnist", 784, 1000, 1024, 5, 200),
    ("mnist", "mnist", 784, 1000, 4096, 5, 200),
    ("mnist", "mnist", 784, 1000, 16384, 5, 200),
    ("dsprites", "sprites", 4096, 1000, 4096, 5, 200),
    ("dsprites", "sprites", 4096, 1000, 16384, 5, 200),
    ("cars3d", "random", 12288, 1000, 16384, 3, 100),
]
CPU_CASES = [
    ("digits", "digits", 64, 64, 16, 2, 20),
    ("sprites", "sprites", 4096, 32, 64, 2, 20),
]
CHUNK = {"gpu": 50, "cpu": 10}


# ---------------------------------------------------------------------------- one timing case (worker)


def inputs(source: str, d: int, n: int):
    import numpy as np

    from ntkvae import datasets

    raw = None
    try:
        if source == "sprites":
            raw = datasets.sprites_subset(n, 0)
        elif source == "digits":
            raw = datasets.digits_subset(n, 0)
        elif source == "mnist" and hasattr(datasets, "mnist5k_subset"):
            raw = datasets.mnist5k_subset(n, 0)
    except (ImportError, ValueError):   # mnist5k without its package: the shape is what is timed
        raw = None
    if raw is None:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, d))
        return (x / np.linalg.norm(x, axis=1, keepdims=True) * np.sqrt(d)).astype(np.float32), "random"
    flat = raw.images.reshape(n, -1)
    x, _, _ = datasets.normalize(flat, center=True)
    assert x.shape[1] == d, (source, x.shape)
    return x.astype(np.float32), source


def worker(case: dict) -> dict:
    """Time one case in this process; returns JSON-able results."""
    t_start = time.perf_counter()
    import jax
    import numpy as np

    from ntkvae import accelerator
    from ntkvae import model as M
    from ntkvae.training import Settings, Trainer

    accelerator.configure_gpu_memory()
    device = jax.devices()[0]
    x, source = inputs(case["source"], case["d"], case["n"])
    chunk = case["chunk"]
    settings = Settings(steps=case["steps"], seeds=tuple(range(case["seeds"])), log_every=chunk,
                        eval_noise_samples=8)
    trainer = Trainer(M.Architecture(), case["width"], settings, x)
    state = trainer.init_state()
    trainer.run_chunk(state, chunk)          # compilation and the first chunk
    t_first = time.perf_counter() - t_start
    times = []
    while state["step"] < case["steps"]:
        t0 = time.perf_counter()
        metrics = trainer.run_chunk(state, chunk)   # returns host numbers: the chunk has finished
        times.append((time.perf_counter() - t0) / chunk)
    stats = device.memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    if peak is None:   # the CPU backend keeps no statistics: resident memory instead
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"device": accelerator.describe_device(device), "source": source, "start_s": t_first,
            "step_s": float(np.median(times)) if times else float("nan"), "peak_bytes": int(peak),
            "finite": bool(np.all(np.isfinite(metrics)))}


# ---------------------------------------------------------------------------- the check (driver)


def run_worker(case: dict, cpu: bool, timeout: float) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    if cpu:
        env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(case)], capture_output=True, text=True,
                          env=env, timeout=timeout)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def planned(case: dict, gpu, cal):
    """The plan's step seconds and device bytes for the case's shapes (all steps, no evaluation)."""
    from ntkvae import plan as P

    job = P.Training(n=case["n"], d=case["d"], width=case["width"], latent=case["width"], seeds=case["seeds"],
                     steps=case["steps"], log_every=case["chunk"], eval_samples=8, train_sigma=False,
                     optimizer="sgd", bias=False, probe_size=0, probe_samples=0, probe_outputs=0, reconstructions=0,
                     checkpoint_every=0)
    work = job.work()
    steps_only = P.Work({"steps": work.phases["steps"]})
    if gpu is not None:
        seconds = P.gpu_seconds(steps_only, gpu)["steps"]
        memory = sum(job.memory().values())
    else:
        seconds = P.cpu_seconds(steps_only, cal, "train")["steps"]
        memory = sum(job.memory().values()) + cal.job("train")["rss_mb"] * P.MB
    flops = work.phases["steps"]["flops32"] / case["steps"]
    return {"step_s": seconds / case["steps"], "bytes": memory, "flops_per_step": flops}


def train_cli(data: pathlib.Path, out: pathlib.Path, cpu: bool, precision: str | None, width: int) -> str | None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    env.pop("JAX_DEFAULT_MATMUL_PRECISION", None)
    if cpu:
        env["JAX_PLATFORMS"] = "cpu"
    if precision:
        env["JAX_DEFAULT_MATMUL_PRECISION"] = precision
    model = {"activation": "erf", "weight_std": 1.0, "bias": False, "latent_width": "same"}
    training = {"objective": "vae", "optimizer": "sgd", "learning_rate": 0.5, "steps": 20, "seeds": [0, 1],
                "beta": 1.0, "kl_scaling": "inv_sqrt_width", "train_sigma": False, "log_every": 5,
                "eval_noise_samples": 8, "reconstructions": 4, "noise": "fresh", "on_divergence": "fail",
                "checkpoint_every": 0}
    probe = {"probe_size": 16, "probe_noise_samples": 2, "probe_outputs": 4}
    proc = subprocess.run([sys.executable, "-m", "ntkvae.train", "--data", str(data), "--width", str(width),
                           "--run", "check", "--model", json.dumps(model), "--training", json.dumps(training),
                           "--probe", json.dumps(probe), "--out", str(out)], capture_output=True, text=True,
                          env=env, timeout=600)
    return None if proc.returncode == 0 else proc.stderr[-2000:]


def compare(a: pathlib.Path, b: pathlib.Path) -> tuple[float, str]:
    """Largest relative difference (beyond ATOL) over every numeric array of two HDF5 files, and where."""
    import h5py
    import numpy as np

    worst, where = 0.0, ""
    with h5py.File(a) as fa, h5py.File(b) as fb:
        names = []
        fa.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        for name in names:
            x, y = fa[name][()], fb[name][()]
            if not (isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)):
                continue
            rel = np.max(np.abs(x - y) / (np.abs(x) + ATOL / FLOAT32_RTOL)) if x.size else 0.0
            if rel > worst:
                worst, where = float(rel), name
    return worst, where


def equality(cpu_mode: bool, tmp: pathlib.Path) -> list[dict]:
    from ntkvae import datasets

    data = tmp / "digits.h5"
    datasets.write_dataset(data, "digits", datasets.digits_subset(64, 0), n=64, seed=0, center=True)
    width = 64 if cpu_mode else 1024
    ref = tmp / "cpu.h5"
    rows = []
    err = train_cli(data, ref, True, "highest", width)
    if err:
        return [{"case": "CPU run", "error": err}]
    for label, precision in (("float32 (highest)", "highest"), ("JAX default (TF32 on Ampere+)", None)):
        out = tmp / f"other-{precision or 'default'}.h5"
        err = train_cli(data, out, cpu_mode, precision, width)
        if err:
            rows.append({"case": label, "error": err})
            continue
        worst, where = compare(ref, out)
        judged = precision == "highest"
        rows.append({"case": label, "width": width, "max_rel": worst, "where": where,
                     "verdict": ("same" if worst <= FLOAT32_RTOL else "DIFFERENT") if judged else "reported"})
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu", "--dry", dest="cpu", action="store_true", help="tiny sizes on the CPU (plumbing)")
    p.add_argument("--budget-s", type=float, default=480.0, help="stop starting cases after this (default 480)")
    p.add_argument("--out", help="table file (default benchmarks/results/gpu_check-<device>.md)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    t0 = time.perf_counter()
    from ntkvae import plan as P

    probe = run_worker({"source": "digits", "d": 64, "n": 16, "width": 8, "seeds": 1, "steps": 2, "chunk": 1},
                       args.cpu, 300)
    if "error" in probe:
        print(f"JAX does not start: {probe['error']}", file=sys.stderr)
        return 1
    device = probe["device"]
    if not args.cpu and not device.startswith("gpu"):
        print(f"JAX sees no GPU here ({device}); use --cpu for the plumbing check", file=sys.stderr)
        return 1
    gpu = None if args.cpu else P.gpu_from_name(device.split(":", 1)[1], 0.0)
    cal = P.Calibration.load() if args.cpu else None
    cases = CPU_CASES if args.cpu else FULL_CASES
    chunk = CHUNK["cpu" if args.cpu else "gpu"]
    rows = []
    for label, source, d, n, width, seeds, steps in cases:
        case = {"source": source, "d": d, "n": n, "width": width, "seeds": seeds, "steps": steps, "chunk": chunk}
        plan = planned(case, gpu, cal)
        left = args.budget_s - (time.perf_counter() - t0)
        expected = 2 * (plan["step_s"] * steps) + (60 if not args.cpu else 30)
        row = {"dataset": label, "n": n, "d": d, "width": width, "seeds": seeds, "steps": steps, "plan": plan}
        if expected > left - 90:   # keep time for the equality check
            row["skipped"] = f"plan expects {expected:.0f} s, {left:.0f} s left"
        else:
            row["measured"] = run_worker(case, args.cpu, max(60.0, left - 60))
        rows.append(row)
    with tempfile.TemporaryDirectory() as tmp:
        checks = equality(args.cpu, pathlib.Path(tmp))
    table = format_table(device, rows, checks, time.perf_counter() - t0, args.cpu)
    print(table)
    out = pathlib.Path(args.out) if args.out else ROOT / "benchmarks/results" / (
        "gpu_check-" + device.replace(":", "-").replace(" ", "_") + ".md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n")
    print(f"wrote {out}")
    bad = [c for c in checks if c.get("verdict") == "DIFFERENT" or "error" in c]
    return 1 if bad else 0


def format_table(device, rows, checks, seconds, cpu_mode) -> str:
    from ntkvae import plan as P

    lines = [f"# GPU check on {device}, {datetime.date.today().isoformat()}"
             + (" (CPU plumbing mode, tiny sizes)" if cpu_mode else ""),
             "",
             ("plan: the stored CPU calibration (benchmarks/calibration/cpu.json)" if cpu_mode else
              f"matmul precision of the timings: {P.matmul_precision()} (JAX's default unless "
              f"JAX_DEFAULT_MATMUL_PRECISION is set); plan: {P.GPU_EFFICIENCY['matmul']:.0%} of the card's peak "
              f"(stated; datasheet peaks in ntkvae.plan.GPUS)") + f"; total {seconds:.0f} s",
             "",
             "| dataset | n | d | width | seeds | steps | start-up s | step ms | plan step ms | TFLOP/s | "
             "peak MB | plan MB | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        plan = r["plan"]
        head = f"| {r['dataset']} | {r['n']} | {r['d']} | {r['width']} | {r['seeds']} | {r['steps']} |"
        if "skipped" in r:
            lines.append(head + f" | | {plan['step_s'] * 1e3:.1f} | | | {plan['bytes'] / 1e6:,.0f} | "
                                f"skipped: {r['skipped']} |")
            continue
        m = r["measured"]
        if "error" in m:
            lines.append(head + f" | | {plan['step_s'] * 1e3:.1f} | | | {plan['bytes'] / 1e6:,.0f} | "
                                f"error: {m['error']} |")
            continue
        tflops = plan["flops_per_step"] / m["step_s"] / 1e12
        note = f"inputs: {m['source']}" + ("" if m["finite"] else "; NOT FINITE")
        lines.append(head + f" {m['start_s']:.1f} | {m['step_s'] * 1e3:.1f} | {plan['step_s'] * 1e3:.1f} | "
                            f"{tflops:.2f} | {m['peak_bytes'] / 1e6:,.0f} | {plan['bytes'] / 1e6:,.0f} | {note} |")
    lines += ["", "| equality with the CPU | width | max relative difference | where | verdict |",
              "|---|---|---|---|---|"]
    for c in checks:
        if "error" in c:
            lines.append(f"| {c['case']} | | | | error: {c['error'].splitlines()[-1] if c['error'] else ''} |")
        else:
            judged = f" (tolerance {FLOAT32_RTOL:g})" if c["verdict"] != "reported" else " (not judged)"
            lines.append(f"| {c['case']} | {c['width']} | {c['max_rel']:.2e} | {c['where'] or '-'} | "
                         f"{c['verdict']}{judged} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
