"""Preemption: a training job killed mid-run (SIGTERM or SIGKILL) resumes from its
checkpoint, and the final HDF5 equals that of an uninterrupted run on CPU.

Each run is a real `python -m ntkvae.train` process (or Snakemake running it) in its own
directory with the same relative paths, so even the provenance attributes agree.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from deploy_helpers import assert_same_numbers, copy_workflow, h5_attrs, workflow_env

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Long enough (a few seconds after compilation) to be killed between checkpoints, small
# enough for 2 shared cores: width 128 on 128 digits, 2 seeds, a checkpoint every 100 steps.
MODEL = {"activation": "erf", "weight_std": 1.0, "bias": False, "latent_width": "same"}
TRAINING = {"objective": "vae", "optimizer": "sgd", "learning_rate": 1.0, "steps": 1500, "seeds": [0, 1],
            "beta": 1.0, "kl_scaling": "inv_sqrt_width", "train_sigma": False, "log_every": 50,
            "eval_noise_samples": 4, "reconstructions": 4, "checkpoint_every": 100, "on_divergence": "fail",
            "progress_seconds": 1.0}
WIDTH = 128


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("data") / "digits.h5"
    subprocess.run([sys.executable, "-m", "ntkvae.prepare_data", "--dataset", "digits", "--n", "128", "--seed", "0",
                    "--out", str(path)], check=True, env=_env(), cwd=ROOT)
    return path


def _run_dir(base: pathlib.Path, name: str, dataset: pathlib.Path) -> pathlib.Path:
    run = base / name / "job"  # same depth and names in every run: identical relative paths
    run.mkdir(parents=True)
    shutil.copy(dataset, run / "data.h5")
    return run


def _train_cmd(steps: int = TRAINING["steps"]) -> list[str]:
    training = dict(TRAINING, steps=steps)
    return [sys.executable, "-m", "ntkvae.train", "--data", "data.h5", "--width", str(WIDTH), "--run", "vae",
            "--model", json.dumps(MODEL), "--training", json.dumps(training), "--checkpoint", "ckpt/run.npz",
            "--out", "out.h5"]


def _start(run: pathlib.Path, cmd: list[str]) -> subprocess.Popen:
    log = open(run / "train.log", "ab")
    return subprocess.Popen(cmd, cwd=run, env=_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for_checkpoint(proc: subprocess.Popen, path: pathlib.Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"training ended (exit {proc.returncode}) before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)


def _checkpoint_step(path: pathlib.Path) -> int:
    with np.load(path) as z:
        return json.loads(str(z["meta"]))["step"]


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory) -> pathlib.Path:
    """An uninterrupted run (with checkpoints written along the way, as in the workflow)."""
    run = _run_dir(tmp_path_factory.mktemp("ref"), "run", dataset)
    proc = _start(run, _train_cmd())
    assert proc.wait(timeout=300) == 0, (run / "train.log").read_text()
    assert not (run / "ckpt" / "run.npz").exists(), "a finished run must remove its checkpoint"
    log = (run / "train.log").read_text()
    assert "GPU memory: preallocation off" in log  # JAX would otherwise take 75% of a shared GPU
    assert h5_attrs(run / "out.h5")["device"] == "cpu:cpu"  # the device it ran on, in the provenance
    return run / "out.h5"


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["SIGTERM", "SIGINT", "SIGKILL"])
def test_killed_run_resumes_to_identical_file(sig, dataset, reference, tmp_path):
    run = _run_dir(tmp_path, "run", dataset)
    ckpt = run / "ckpt" / "run.npz"
    proc = _start(run, _train_cmd())
    _wait_for_checkpoint(proc, ckpt)
    os.kill(proc.pid, sig)
    code = proc.wait(timeout=120)
    log = (run / "train.log").read_text()
    if sig in (signal.SIGTERM, signal.SIGINT):
        # The job checkpoints at the next chunk boundary and exits 128 + signal (143, 130).
        assert code == 128 + sig, log
        assert "stopped after checkpoint" in log
    else:
        assert code == -signal.SIGKILL
    assert not (run / "out.h5").exists(), "a killed job must leave no output"
    step = _checkpoint_step(ckpt)
    assert 0 < step < TRAINING["steps"], step

    proc = _start(run, _train_cmd())
    assert proc.wait(timeout=300) == 0, (run / "train.log").read_text()
    log = (run / "train.log").read_text()
    assert f"at step {step}" in log.split("resumed from checkpoint")[-1].splitlines()[0]
    assert not ckpt.exists()
    assert_same_numbers(run / "out.h5", reference)
    # Same relative paths and command, so even the provenance attributes are identical. (The
    # bytes are not: HDF5 stamps the root group with its creation time.)
    assert h5_attrs(run / "out.h5") == h5_attrs(reference)


def test_checkpoint_of_other_settings_is_not_resumed(dataset, reference, tmp_path):
    """A checkpoint from a run with other settings (here a different step count) is ignored."""
    run = _run_dir(tmp_path, "run", dataset)
    ckpt = run / "ckpt" / "run.npz"
    proc = _start(run, _train_cmd(steps=TRAINING["steps"] * 2))
    _wait_for_checkpoint(proc, ckpt)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    proc = _start(run, _train_cmd())
    assert proc.wait(timeout=300) == 0
    log = (run / "train.log").read_text()
    assert "belongs to other settings or data; starting afresh" in log
    assert_same_numbers(run / "out.h5", reference)


def test_corrupt_checkpoint_starts_afresh(dataset, reference, tmp_path):
    run = _run_dir(tmp_path, "run", dataset)
    (run / "ckpt").mkdir()
    (run / "ckpt" / "run.npz").write_bytes(b"PK\x03\x04 truncated by a kill")
    proc = _start(run, _train_cmd())
    assert proc.wait(timeout=300) == 0
    assert "is unreadable" in (run / "train.log").read_text()
    assert_same_numbers(run / "out.h5", reference)


@pytest.mark.slow
@pytest.mark.workflow
def test_snakemake_rerun_incomplete_resumes_killed_training(dataset, reference, tmp_path):
    """The whole Snakemake run is SIGKILLed (a node crash) while training; after
    `snakemake --unlock`, `--rerun-incomplete` reruns the job, which resumes from its
    checkpoint and writes the same numbers as the uninterrupted run."""
    work = copy_workflow(tmp_path)
    config = {"datasets": [{"name": "digits", "n": 128, "seed": 0}], "model": dict(MODEL, widths=[WIDTH]),
              "training": {k: v for k, v in TRAINING.items() if k != "objective"},
              "runs": {"mse": {"objective": "mse"}, "vae": {"objective": "vae"}}, "figures": {"convergence_runs": ["vae"]},
              "compute": {"accelerator": "cpu", "batch_runs": False}}   # vae alone, as the reference trained it
    (work / "kill.yaml").write_text(yaml.safe_dump(config))
    target = f"results/train/digits/vae/w{WIDTH}.h5"
    cmd = [sys.executable, "-m", "snakemake", "--configfile", "kill.yaml", "--cores", "2", target]
    with open(work / "first.log", "wb") as log:
        proc = subprocess.Popen(cmd, cwd=work, env=workflow_env(), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    ckpt = work / f"results/checkpoints/digits/vae/w{WIDTH}.npz"
    _wait_for_checkpoint(proc, ckpt)
    os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and its job, at once
    proc.wait(timeout=60)
    assert not (work / target).exists()
    step = _checkpoint_step(ckpt)

    unlock = subprocess.run([*cmd, "--unlock"], cwd=work, env=workflow_env(), capture_output=True, text=True,
                            timeout=120)
    assert unlock.returncode == 0, unlock.stdout + unlock.stderr
    rerun = subprocess.run([*cmd, "--rerun-incomplete"], cwd=work, env=workflow_env(), capture_output=True,
                           text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    train_log = (work / f"results/logs/train/digits/vae/w{WIDTH}.log").read_text()
    assert f"resumed from checkpoint results/checkpoints/digits/vae/w{WIDTH}.npz at step {step}" in train_log
    assert not ckpt.exists()
    assert_same_numbers(work / target, reference)
