"""Time the workflow as a new user runs it: a fresh clone of HEAD, the default config, one command.

    python benchmarks/bench_workflow.py                         # config.yaml, --cores all (minutes)
    python benchmarks/bench_workflow.py --config tests/configs/tiny.yaml --targets results/data/digits.h5

Prints the wall time of `snakemake`, the CPU time of all its jobs, and per rule: jobs, wall and
CPU seconds, peak memory, the plan's arithmetic seconds (ntkvae.plan: the counted work at this
CPU's calibrated rates, start-up excluded) and the share of the jobs' time spent outside
arithmetic (start-up, imports, compilation, I/O: 1 - arithmetic / wall). Then the plan's
prediction against each measured job (the 2x check of tests/test_plan_workflow.py, over the
whole run).

CPU time and peak memory come from the processes themselves, not from Snakemake's benchmark
files (which sample every 30 s after a job's first 15 s, so they miss the end of long jobs):
ntkvae.calibration.accounting_env puts a `sitecustomize` module on the jobs' PYTHONPATH that
makes every Python process of the run record its command, wall time, user + system CPU seconds
and peak resident memory (VmHWM) at exit. The total CPU of the run is Snakemake's children's rusage (every descendant it waited for).
Run it on a quiet machine: the load average before and after is printed with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]

def fresh_clone(dest: pathlib.Path) -> str:
    """A clone of this repository's HEAD (committed files only, as a new user gets them)."""
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(ROOT), str(dest)], check=True)
    subprocess.run(["git", "-C", str(dest), "checkout", "--quiet", head], check=True)
    return head


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="config file, relative to the repository (default: the clone's config.yaml)")
    p.add_argument("--cores", default="all")
    p.add_argument("--targets", nargs="*", default=[], help="targets instead of `rule all`")
    p.add_argument("--keep", help="run in this directory (kept) instead of a temporary one")
    p.add_argument("--json", help="also write the measurements to this file")
    p.add_argument("--calibrate", action="store_true",
                   help="measure this CPU's rates first (about a minute) instead of the stored calibration")
    args = p.parse_args()

    tmp = pathlib.Path(args.keep) if args.keep else pathlib.Path(tempfile.mkdtemp(prefix="ntkvae-bench-"))
    clone = tmp / "ntkvae"
    if clone.exists():
        shutil.rmtree(clone)
    head = fresh_clone(clone)
    sys.path.insert(0, str(clone / "src"))
    from ntkvae import calibration as measuring

    env, log = measuring.accounting_env(tmp, dict(os.environ, JAX_PLATFORMS="cpu"))
    # targets first: --configfile takes every argument after it
    cmd = [sys.executable, "-m", "snakemake", *args.targets, "--cores", args.cores]
    if args.config:
        shutil.copy(ROOT / args.config, clone / "bench_config.yaml")
        cmd += ["--configfile", "bench_config.yaml"]
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    load_after = os.getloadavg()
    if os.waitstatus_to_exitcode(status) != 0:
        print(output[-5000:])
        print(f"snakemake failed (exit {os.waitstatus_to_exitcode(status)}); directory: {tmp}", file=sys.stderr)
        return 1

    import yaml

    from ntkvae import plan as P

    calibration = None
    if args.calibrate:   # right after the run, in this process: the machine state of the jobs
        calibration = P.Calibration(measuring.measure())

    config_path = clone / ("bench_config.yaml" if args.config else "config.yaml")
    plan = P.plan_config(yaml.safe_load(config_path.read_text()), accelerator="cpu", calibration=calibration)
    by_output = {j.spec.output: j for j in plan.jobs}
    jobs = []
    for output, r in measuring.read_accounting(log, clone).items():
        job = by_output.get(output)
        argv = r["argv"]
        jobs.append({"record": r, "job": job, "rule": job.spec.rule if job else argv[argv.index("-m") + 1]})
    cpu_children = usage.ru_utime + usage.ru_stime
    print(f"commit {head[:12]}, config {args.config or 'config.yaml'}, --cores {args.cores}, "
          f"{len(jobs)} jobs, directory {tmp}")
    print(f"load average before {tuple(round(x, 2) for x in load_before)}, after "
          f"{tuple(round(x, 2) for x in load_after)} on {os.cpu_count()} cores")
    print(f"wall time of snakemake: {wall:.1f} s; CPU time of all jobs and snakemake: {cpu_children:.1f} s")
    print()
    header = (f"{'rule':<24} {'jobs':>5} {'wall s':>9} {'CPU s':>9} {'max MB':>8} {'arith s':>9} "
              f"{'outside':>8}")
    print(header)
    print("-" * len(header))
    rules: dict[str, list] = {}
    for j in jobs:
        rules.setdefault(j["rule"], []).append(j)
    total = {"wall": 0.0, "cpu": 0.0, "arith": 0.0}
    for rule, group in rules.items():
        w = sum(j["record"]["wall"] for j in group)
        c = sum(j["record"]["cpu"] for j in group)
        a = sum(j["job"].arithmetic_cpu_s for j in group if j["job"])
        mb = max(j["record"]["peak_bytes"] for j in group) / 1e6
        total["wall"] += w
        total["cpu"] += c
        total["arith"] += a
        print(f"{rule:<24} {len(group):>5} {w:>9.1f} {c:>9.1f} {mb:>8.0f} {a:>9.1f} {1 - min(a / w, 1):>8.0%}")
    print("-" * len(header))
    print(f"{'all jobs':<24} {len(jobs):>5} {total['wall']:>9.1f} {total['cpu']:>9.1f} {'':>8} "
          f"{total['arith']:>9.1f} {1 - min(total['arith'] / max(total['wall'], 1e-9), 1):>8.0%}")
    print()
    print(f"{'job (plan / measured)':<44} {'wall s':>8} {'plan s':>8} {'ratio':>6} {'CPU s':>8} {'plan':>8} "
          f"{'ratio':>6} {'MB':>7} {'plan MB':>8} {'ratio':>6}")
    worst = 1.0
    for j in jobs:
        job, r = j["job"], j["record"]
        if job is None:
            continue
        ts, tc = job.cpu_total / r["wall"], job.cpu_time_total / r["cpu"]
        tm = job.peak_mb / (r["peak_bytes"] / 1e6)
        worst = max(worst, ts, 1 / ts, tc, 1 / tc, tm, 1 / tm)
        print(f"{job.spec.rule + ' ' + P.job_label(job):<44} {r['wall']:>8.1f} {job.cpu_total:>8.1f} {ts:>6.2f} "
              f"{r['cpu']:>8.1f} {job.cpu_time_total:>8.1f} {tc:>6.2f} "
              f"{r['peak_bytes'] / 1e6:>7.0f} {job.peak_mb:>8.0f} {tm:>6.2f}")
    print(f"largest factor between plan and measurement: {worst:.2f}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({
            "commit": head, "wall_s": wall, "cpu_s": cpu_children, "load_before": load_before,
            "load_after": load_after, "jobs": [dict(j["record"], rule=j["rule"],
                                                    plan_s=j["job"].cpu_total if j["job"] else None,
                                                    plan_cpu_s=j["job"].cpu_time_total if j["job"] else None,
                                                    plan_arithmetic_s=j["job"].arithmetic_cpu_s if j["job"] else None,
                                                    plan_mb=j["job"].peak_mb if j["job"] else None) for j in jobs]},
            indent=1))
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
