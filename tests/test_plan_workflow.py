"""The plan against a real run: predicted time and peak memory of each job within 2x of what
Snakemake's benchmark files measured (`s`, `max_rss`), on this machine, now; and its CPU
seconds within 2x of each job's own accounting (ntkvae.calibration.accounting_env).

The rates come from a calibration measured in the same test just before the run (quick
mode, ntkvae.calibration), not from the stored file: the machine is shared, and a rate measured
at another time and load says nothing about this run. The workflow is tests/configs/plan.yaml,
a few jobs that cover the regimes of the default run (config.yaml) rather than the default
itself (55 jobs, 17 minutes): a job whose time is start-up and compilation (the data, the kernel
at n = 768, the figure; the default's sweep jobs, figures and kernels are all of this kind), a
training job whose time is mostly its matrix products (digits w512, n = 768; the default's
widest jobs), one whose memory is mostly its weights (sprites w4096, 2.7 GB of parameters,
copies and gradients against a 0.4 GB process; the default's sprites w1024 is the same
regime at 0.6 GB), and a prediction whose n^3 products and einsums are half its time.

Wall time on a machine with more runnable threads than cores measures the neighbours as much
as the job (the load here reached 13 on 2 cores while this test was written): the wall-time
comparison is made only when the load average stayed at most 1.5x the cores during both the
calibration and the run, and is skipped, saying so, otherwise. CPU seconds barely depend on
the load, so that comparison is always made.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT
from ntkvae import calibration, paths
from ntkvae import plan as P

pytestmark = [pytest.mark.workflow, pytest.mark.slow]
CONFIG = ROOT / "tests/configs/plan.yaml"
# The 2x of the issue: what a researcher needs to size a job, with the requests' margins
# (plan.MEM_MARGIN, TIME_MARGIN) and the retries above it.
FACTOR = 2.0
QUIET = 1.5   # load average per core below which wall times are compared
JOBS = [
    P.JobSpec("train", "results/train/digits/mse/w512.h5", dataset="digits", run="mse", width=512),
    P.JobSpec("train", "results/train/sprites/wide/w4096.h5", dataset="sprites", run="wide", width=4096),
    P.JobSpec("kernel", "results/kernels/digits/erf.h5", dataset="digits", activation="erf"),
    P.JobSpec("predict", "results/kernels/digits/mse/prediction.h5", dataset="digits", run="mse"),
    P.JobSpec("figure_f1_convergence", "results/figures/f1_convergence_digits.pdf", dataset="digits"),
]


def read_benchmark(path) -> dict:
    with open(path) as fh:
        row = next(csv.DictReader(fh, delimiter="\t"))
    return {"s": float(row["s"]), "max_rss": float(row["max_rss"]) * 2**20 / 1e6}   # MiB -> MB


def benchmark_file(workdir, spec: P.JobSpec):
    """The job's benchmark file (rules' `benchmark:` directive)."""
    if spec.rule == "train":
        path = paths.TRAIN_BENCHMARK.format(dataset=spec.dataset, run=spec.run, width=spec.width)
    elif spec.rule == "kernel":
        path = paths.KERNEL_BENCHMARK.format(dataset=spec.dataset, activation=spec.activation)
    elif spec.rule == "predict":
        path = paths.PREDICTION_BENCHMARK.format(dataset=spec.dataset, run=spec.run)
    else:
        w = paths.FIGURE.parse(spec.output)
        path = paths.FIGURE_BENCHMARK.format(number=w["number"], topic=w["topic"], dataset=w["dataset"])
    return workdir / path


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("plan")
    cores = os.cpu_count() or 1
    load = [os.getloadavg()[0]]
    cal = P.Calibration(calibration.measure(quick=True))
    load.append(os.getloadavg()[0])
    env, log = calibration.accounting_env(workdir / ".accounting", dict(os.environ, JAX_PLATFORMS="cpu"))
    # One job at a time: the plan predicts each job alone. (A job's threads are a claim on
    # --cores, not a limit: XLA uses every core either way, so --cores 1 runs the same processes.)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", str(CONFIG),
                           "--directory", str(workdir), *(s.output for s in JOBS)], cwd=ROOT, capture_output=True,
                          text=True, timeout=1800, env=env)
    assert proc.returncode == 0, proc.stderr[-5000:]
    load.append(os.getloadavg()[0])
    plan = P.plan_config(yaml.safe_load(CONFIG.read_text()), calibration=cal, accelerator="cpu", specs=JOBS)
    accounts = calibration.read_accounting(log, workdir)
    rows = []
    for job in plan.jobs:
        account = accounts[job.spec.output]
        m = read_benchmark(benchmark_file(workdir, job.spec))
        m.update(cpu=account["cpu"], vmhwm=account["peak_bytes"] / 1e6)
        rows.append((job, m))
    quiet = max(load) <= QUIET * cores
    print(f"\nload average (1 min) before, after calibration, after the run: {load} on {cores} cores")
    print(f"{'job':<30} {'s':>7} {'plan':>7} {'ratio':>5} {'CPU s':>7} {'plan':>7} {'ratio':>5} "
          f"{'MB':>6} {'plan':>6} {'ratio':>5} {'VmHWM':>6}")
    for job, m in rows:
        print(f"{job.spec.rule[:6] + ' ' + P.job_label(job):<30} {m['s']:>7.1f} "
              f"{job.cpu_total:>7.1f} {job.cpu_total / m['s']:>5.2f} {m['cpu']:>7.1f} {job.cpu_time_total:>7.1f} "
              f"{job.cpu_time_total / m['cpu']:>5.2f} {m['max_rss']:>6.0f} {job.peak_mb:>6.0f} "
              f"{job.peak_mb / m['max_rss']:>5.2f} {m['vmhwm']:>6.0f}")
    return rows, quiet, load


def test_time_within_2x(measured):
    rows, quiet, load = measured
    if not quiet:
        pytest.skip(f"load average {max(load):.1f} on {os.cpu_count()} cores: wall time measures the neighbours")
    for job, m in rows:
        assert 1 / FACTOR <= job.cpu_total / m["s"] <= FACTOR, (P.job_label(job), job.cpu_total, m["s"])


def test_cpu_time_within_2x(measured):
    for job, m in measured[0]:
        assert 1 / FACTOR <= job.cpu_time_total / m["cpu"] <= FACTOR, (P.job_label(job), job.cpu_time_total, m["cpu"])


def test_peak_memory_within_2x(measured):
    for job, m in measured[0]:
        assert 1 / FACTOR <= job.peak_mb / m["max_rss"] <= FACTOR, (P.job_label(job), job.peak_mb, m["max_rss"])
        assert 1 / FACTOR <= job.peak_mb / m["vmhwm"] <= FACTOR, (P.job_label(job), job.peak_mb, m["vmhwm"])


def test_requests_cover_the_measurement(measured):
    """What the job asks for (mem_mb) is at least what it used."""
    for job, m in measured[0]:
        assert job.resources["mem_mb"] >= max(m["max_rss"], m["vmhwm"]), P.job_label(job)
