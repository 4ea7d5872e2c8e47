"""benchmarks/bench_workflow.py on a tiny config and three jobs: the fresh clone, the per-process
accounting (CPU seconds and peak memory of every job), the per-rule table and the plan beside it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = [pytest.mark.workflow, pytest.mark.slow]


def test_bench_workflow_on_three_jobs(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/bench_workflow.py"), "--config", "tests/configs/tiny.yaml",
         "--cores", "2", "--keep", str(tmp_path / "run"), "--json", str(out), "--targets",
         "results/data/digits.h5", "results/data/sprites.h5", "results/train/digits/mse/w16.h5"],
        cwd=ROOT, capture_output=True, text=True, timeout=1200, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = proc.stdout
    assert "wall time of snakemake" in text and "outside" in text
    record = json.loads(out.read_text())
    rules = sorted(j["rule"] for j in record["jobs"])
    assert rules == ["prepare_offline_data", "prepare_offline_data", "train"]
    for job in record["jobs"]:
        assert 0 < job["cpu"] and 0 < job["wall"] < record["wall_s"] and job["peak_bytes"] > 20e6
        assert job["plan_s"] > 0 and job["plan_mb"] > 0
    train = next(j for j in record["jobs"] if j["rule"] == "train")
    assert train["plan_arithmetic_s"] < train["wall"]      # a w16 job is all start-up
    # the clone is the committed HEAD, not this working tree
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert record["commit"] == head
