"""Jobs that do not fit never start to fail: with a small configured memory limit the workflow
splits the too-large training jobs by seed (a dry run shows the part jobs), the merged file
equals the unsplit job's, and a limit below one seed stops the workflow before any job starts.

"Equals" is to float32 rounding: a step vmapped over fewer seeds may compile to another fusion.
That holds in a run that contracts (digits here); in one that does not, rounding grows (the tiny
config's sprites act_erf w128 at learning rate 0.5: 5 % apart after 150 steps), as it would
between any two machines."""

from __future__ import annotations

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import yaml

from conftest import ROOT
from ntkvae import plan as P

CONFIG = ROOT / "tests/configs/split.yaml"
TARGET = "results/train/digits/mse/w64.h5"   # the config's largest training job (with vae/w64)


def snakemake(workdir, *args, timeout=900):
    cmd = [sys.executable, "-m", "snakemake", *args, "--cores", "2", "--directory", str(workdir),
           "--configfile", str(CONFIG)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, JAX_PLATFORMS="cpu"))


def limit_mb() -> float:
    """Between one and two seeds of the target job, as the workflow's plan counts them."""
    cfg = P.with_figure_runs(yaml.safe_load(CONFIG.read_text()))
    digits = cfg["datasets"][0]
    device = P.Device.from_config(cfg, "cpu")
    cal = P.Calibration.load()
    need = [P.training_device_mb(P.Training.from_config(cfg, digits, "mse", 64, seeds=s), device, cal)
            for s in (1, 2)]
    return sum(need) / 2


def limit_option(mb: float) -> list[str]:
    # two decimals: one and two seeds of these tiny jobs differ by well under 1 MB
    return ["--config", f"compute={{accelerator: cpu, memory_limit_mb: {mb:.2f}}}"]


def test_dry_run_shows_the_split(tmp_path):
    proc = snakemake(tmp_path, "-n", "-p", *limit_option(limit_mb()))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "results/train/digits/mse/w64/seeds0.h5" in out and "results/train/digits/vae/w64/seeds1.h5" in out
    assert "ntkvae.train merge --inputs results/train/digits/mse/w64/seeds0.h5" in out
    assert "results/train/digits/mse/w16/" not in out                 # small jobs run whole
    assert "train_part" in out


def test_a_seed_that_cannot_fit_stops_the_workflow_first(tmp_path):
    proc = snakemake(tmp_path, "-n", *limit_option(50))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "one seed needs" in out and "compute.memory_limit_mb" in out
    assert not (tmp_path / "results").exists()


@pytest.mark.workflow
@pytest.mark.slow
def test_merged_file_equals_the_unsplit_one(tmp_path):
    split, whole = tmp_path / "split", tmp_path / "whole"
    proc = snakemake(split, TARGET, *limit_option(limit_mb()))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (split / "results/train/digits/mse/w64/seeds0.h5").exists()
    proc = snakemake(whole, TARGET)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with h5py.File(split / TARGET) as fs, h5py.File(whole / TARGET) as fw:
        names = []
        fw.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        for name in names:
            a, b = fs[name][()], fw[name][()]
            if np.issubdtype(np.asarray(b).dtype, np.floating):
                # float32 rounding of a vmapped step over 1 seed against 2 (tests/test_seed_parts.py)
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(np.max(np.abs(b))), err_msg=name)
            else:
                np.testing.assert_array_equal(a, b, err_msg=name)
        assert fs.attrs["config"] == fw.attrs["config"]
