"""Where the time of one training job goes: start-up, stability check, compilation, steps,
final outputs, writing; wall and CPU seconds, and JAX's compilations (count and seconds).

    python benchmarks/bench_job_overhead.py                       # this checkout, small + default job
    python benchmarks/bench_job_overhead.py --src before=/path/to/old/src --src after=src
    python benchmarks/bench_job_overhead.py --jobs small --repeat 2 --cache

Two jobs, both batched as the workflow runs them (`planning.training_batches`, every run of
the batch a --run/--training/--out triple of one `python -m ntkvae.train`):
  small    tests/configs/tiny.yaml's sweep batch (6 runs x 2 seeds = 12 lanes) at width 128 on
           32 digits (d = 64), 150 steps: a job whose arithmetic is a few seconds;
  default  config.yaml's first batch (7 runs, 16 lanes) at width 64 on 128 MNIST digits
           (mnist5k, d = 784), 200 steps.
Each code version (--src LABEL=DIR, a `src` directory holding the ntkvae package) runs each
job in turn, interleaved with the other versions, in a fresh directory, so that the ratios
are fair under a varying load. Phases are read from the times of the log lines every version
writes (start-up and data: until "training N lanes"; init + stability: until the stability
line; first chunk: until the first progress line, which includes the step-0 evaluation and
the compilation of chunk and evaluation; steps: until the last progress line; final outputs:
until the first "wrote"; write: until "done"; exit: until the process ends). A version that
logs its own "phases (wall/CPU s)" line (this one) has it printed too, with CPU seconds.
Compilations are JAX's own log (JAX_LOG_COMPILES=1): "Finished XLA compilation of F in S sec",
which includes a persistent-cache read when it hits.

--cache runs the last version's small job twice more with one fresh --compilation-cache
directory: the second run's compile seconds and cache hits show whether the cache works
across jobs with equal shapes.

The machine's load (`uptime`) is printed before and after: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pathlib
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ntkvae import config as C  # noqa: E402
from ntkvae import planning  # noqa: E402

JOBS = {
    "small": {"config": "tests/configs/tiny.yaml", "batch": 3, "width": 128, "dataset": "digits"},
    "default": {"config": "config.yaml", "batch": 0, "width": 64, "dataset": "mnist5k"},
}
PHASES = ("start-up + data", "init + stability", "first chunk (compile)", "steps + evals", "final outputs", "write",
          "exit")
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def job_command(job: dict, data: pathlib.Path, out: pathlib.Path, cache: str | None) -> list[str]:
    cfg = planning.add_figure_runs(C.load_config(ROOT / job["config"]))
    batch = planning.training_batches(cfg)[job["batch"]]
    cmd = [sys.executable, "-m", "ntkvae.train", "--data", str(data), "--width", str(job["width"]),
           "--model", json.dumps(C.run_model(cfg, batch.runs[0])), "--probe", json.dumps(cfg["kernels"])]
    for run in batch.runs:
        cmd += ["--run", run, "--training", json.dumps(C.run_settings(cfg, run)), "--out", str(out / f"{run}.h5")]
    if cache:
        cmd += ["--compilation-cache", cache]
    return cmd


def prepare_data(job: dict, workdir: pathlib.Path) -> pathlib.Path:
    cfg = C.load_config(ROOT / job["config"])
    entry = next(d for d in cfg["datasets"] if d["name"] == job["dataset"])
    path = workdir / f"{job['dataset']}.h5"
    cmd = [sys.executable, "-m", "ntkvae.prepare_data", "--dataset", entry["name"], "--n", str(entry["n"]),
           "--seed", str(entry.get("seed", 0)), "--out", str(path)]
    if entry.get("resolution"):
        cmd += ["--resolution", str(entry["resolution"])]
    subprocess.run(cmd, check=True, env=dict(os.environ, PYTHONPATH=str(ROOT / "src")), capture_output=True)
    return path


def run_job(cmd: list[str], src: pathlib.Path, cwd: pathlib.Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), JAX_LOG_COMPILES="1")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start_clock, t0 = time.time(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"job failed ({proc.returncode}) with {src}:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return dict(parse_log(proc.stderr, start_clock, start_clock + wall), wall=wall, cpu=cpu)


def parse_log(text: str, start: float, end: float) -> dict:
    """Phase boundaries from the log lines' times, compilations from JAX's log."""
    marks: dict[str, float] = {}
    steps = []
    for line in text.splitlines():
        m = STAMP.match(line)
        if not m:
            continue
        t = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if " lanes (runs x seeds) on " in line or re.search(r"\] training \d+ (lanes|seeds)", line):
            marks.setdefault("training", t)
        elif "stability at init" in line:
            marks["stability"] = t
        elif re.search(r"\] step \d+/\d+ ", line):
            steps.append(t)
        elif " INFO wrote " in line:
            marks.setdefault("wrote", t)
        elif " INFO done in " in line:
            marks["done"] = t
    marks.setdefault("stability", marks.get("training", start))
    bounds = [start, marks.get("training", start), marks["stability"], steps[0] if steps else marks["stability"],
              steps[-1] if steps else marks["stability"], marks.get("wrote", end), marks.get("done", end), end]
    phases = {name: max(0.0, b - a) for name, a, b in zip(PHASES, bounds[:-1], bounds[1:])}
    compiles = [float(s) for s in re.findall(r"Finished XLA compilation of \S+ in ([\d.]+) sec", text)]
    hits = len(re.findall(r"Persistent compilation cache hit", text))
    own = re.search(r"phases \(wall/CPU s\): (.*)", text)
    return {"phases": phases, "compiles": len(compiles), "compile_seconds": sum(compiles), "cache_hits": hits,
            "own_phases": own.group(1).strip() if own else None}


def table(results: dict[str, list[dict]]) -> str:
    labels = list(results)
    head = f"{'phase (wall s)':26s}" + "".join(f"{label:>14s}" for label in labels)
    rows = [head, "-" * len(head)]

    def mean(label, get):
        values = [get(r) for r in results[label]]
        return sum(values) / len(values)

    for name in PHASES:
        rows.append(f"{name:26s}" + "".join(f"{mean(l, lambda r: r['phases'][name]):14.2f}" for l in labels))
    rows.append(f"{'total wall':26s}" + "".join(f"{mean(l, lambda r: r['wall']):14.2f}" for l in labels))
    rows.append(f"{'total CPU':26s}" + "".join(f"{mean(l, lambda r: r['cpu']):14.2f}" for l in labels))
    rows.append(f"{'XLA compilations':26s}" + "".join(f"{mean(l, lambda r: r['compiles']):14.0f}" for l in labels))
    rows.append(f"{'  their seconds (wall)':26s}" + "".join(f"{mean(l, lambda r: r['compile_seconds']):14.2f}"
                                                            for l in labels))
    if len(labels) > 1:
        first = labels[0]
        rows.append(f"{'wall / ' + first:26s}" + "".join(
            f"{mean(l, lambda r: r['wall']) / mean(first, lambda r: r['wall']):14.2f}" for l in labels))
    for label in labels:
        for r in results[label]:
            if r["own_phases"]:
                rows.append(f"  {label}: job's own phases (wall/CPU s): {r['own_phases']}")
                break
    return "\n".join(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--src", action="append", help="LABEL=DIR of a src directory (default: this checkout's)")
    p.add_argument("--jobs", default="small,default", help="comma-separated: small, default")
    p.add_argument("--repeat", type=int, default=1, help="runs of each (job, version), interleaved")
    p.add_argument("--cache", action="store_true", help="also check the compilation cache across two jobs")
    args = p.parse_args(argv)
    versions = {}
    for item in args.src or [f"this={ROOT / 'src'}"]:
        label, _, path = item.partition("=")
        versions[label] = pathlib.Path(path).resolve()
    print("load before:", load())
    with tempfile.TemporaryDirectory(prefix="bench_job_") as tmp:
        workdir = pathlib.Path(tmp)
        for name in args.jobs.split(","):
            job = JOBS[name]
            data = prepare_data(job, workdir)
            results: dict[str, list[dict]] = {label: [] for label in versions}
            for _ in range(args.repeat):
                for label, src in versions.items():
                    out = pathlib.Path(tempfile.mkdtemp(dir=workdir))
                    results[label].append(run_job(job_command(job, data, out, None), src, out))
            print(f"\n== {name} job: {job['config']} batch {job['batch']}, width {job['width']}, {job['dataset']} "
                  f"({args.repeat} run(s) each; {load()})")
            print(table(results))
            print("command:", shlex.join(job_command(job, data, workdir / "out", None))[:300], "...")
        if args.cache:
            job, src = JOBS["small"], list(versions.values())[-1]
            data = prepare_data(job, workdir)
            cache = workdir / "jax-cache"
            runs = []
            for _ in range(2):
                out = pathlib.Path(tempfile.mkdtemp(dir=workdir))
                runs.append(run_job(job_command(job, data, out, str(cache)), src, out))
            print(f"\n== compilation cache across two small jobs ({load()})")
            for i, r in enumerate(runs, 1):
                print(f"job {i}: wall {r['wall']:.2f} s, CPU {r['cpu']:.2f} s, {r['compiles']} compilations in "
                      f"{r['compile_seconds']:.2f} s, {r['cache_hits']} persistent-cache hits")
    print("\nload after:", load())
    return 0


if __name__ == "__main__":
    sys.exit(main())
