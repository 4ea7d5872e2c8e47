"""benchmarks/gpu_check.py's plumbing, on the CPU at tiny sizes (--cpu): every case runs in its
own process, the plan's predictions stand beside the measurements, the CLI-equality check
compares two output files array by array, and the table is printed and written."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import ROOT

SCRIPT = ROOT / "benchmarks/gpu_check.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_finds_the_largest_difference(tmp_path):
    check = load_script()
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    with h5py.File(a, "w") as fa, h5py.File(b, "w") as fb:
        fa["train/objective"] = np.array([1.0, 2.0, 3.0])
        fb["train/objective"] = np.array([1.0, 2.0, 3.0 * (1 + 3e-4)])
        fa["eval/kl"] = np.array([0.5])
        fb["eval/kl"] = np.array([0.5 * (1 + 1e-6)])
        fa["seeds"] = np.array([0, 1])
        fb["seeds"] = np.array([0, 1])
    worst, where = check.compare(a, b)
    # 1 %: the denominator carries ATOL / FLOAT32_RTOL = 0.01 beside |x| = 3
    assert where == "train/objective" and worst == pytest.approx(3e-4, rel=0.01)
    assert worst > check.FLOAT32_RTOL        # a 3e-4 change is a difference, not rounding


@pytest.mark.slow
def test_cpu_mode_runs_and_writes_its_table(tmp_path):
    out = tmp_path / "check.md"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--cpu", "--out", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=1200, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = out.read_text()
    assert "GPU check on cpu:cpu" in table and "CPU plumbing mode" in table
    rows = [line for line in table.splitlines() if line.startswith("| digits") or line.startswith("| sprites")]
    assert len(rows) == 2 and not any("error" in r or "skipped" in r for r in rows)
    assert "| float32 (highest) | 64 |" in table and "same" in table
    assert table.strip() in proc.stdout
