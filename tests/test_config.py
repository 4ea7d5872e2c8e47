"""The config schema: defaults filled, bad configs rejected with a message naming the key."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT
from ntkvae.config import ConfigError, load_config, run_model, run_settings, validate_config


@pytest.fixture(scope="module")
def default():
    with open(ROOT / "config.yaml") as fh:
        return yaml.safe_load(fh)


def test_default_config_is_valid_and_filled(default):
    cfg = validate_config(default)
    assert cfg["training"]["eval_noise_samples"] >= 1
    assert cfg["datasets"][0]["center"] is True          # default filled inside list items
    assert cfg["figures"]["dpi"] == 150


def test_tiny_config_gets_every_default():
    cfg = load_config(ROOT / "tests/configs/tiny.yaml")
    assert cfg["training"]["optimizer"] == "sgd" and cfg["model"]["weight_std"] == 1.0


@pytest.mark.parametrize(
    "mutate,expected",
    [
        (lambda c: c["model"].update(activation="sigmoid"), "model.activation: 'sigmoid' is not one of"),
        (lambda c: c["training"].update(lerning_rate=0.1), "training: Additional properties are not allowed ('lerning_rate'"),
        (lambda c: c.update(widths=[1]), "<top level>: Additional properties are not allowed ('widths'"),
        (lambda c: c["datasets"][1].update(n="many"), "datasets[1].n: 'many' is not of type 'integer'"),
        (lambda c: c["datasets"][0].update(name="cifar"), "datasets[0].name: 'cifar' is not one of"),
        (lambda c: c["training"].update(learning_rate=-1), "training.learning_rate: -1 is less than or equal to"),
        (lambda c: c["model"].update(widths=[]), "model.widths: [] should be non-empty"),
        (lambda c: c["model"].update(latent_width="half"), "model.latent_width: 'half' is not allowed"),
        (lambda c: c["training"].update(kl_scaling="sqrt"), "training.kl_scaling: 'sqrt' is not one of"),
        (lambda c: c["runs"].update(bad={"objective": "elbo"}), "runs.bad.objective: 'elbo' is not one of"),
        (lambda c: c["runs"].update(bad={"step": 3}), "runs.bad: Additional properties are not allowed ('step'"),
        (lambda c: c.pop("model"), "'model' is a required property"),
        (lambda c: c["figures"].update(convergence_runs=["nope"]), "figures.convergence_runs: run 'nope' is not defined"),
        (lambda c: c["datasets"].append({"name": "digits"}), "dataset 'digits' is listed twice"),
    ],
)
def test_bad_config_names_the_key(default, mutate, expected):
    cfg = copy.deepcopy(default)
    mutate(cfg)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert expected in str(err.value)


def test_runs_override_training(default):
    cfg = validate_config(default)
    cfg["runs"]["relu_run"] = {"objective": "vae", "activation": "relu", "widths": [8]}
    assert run_settings(cfg, "relu_run")["objective"] == "vae"
    assert "activation" not in run_settings(cfg, "relu_run")
    assert run_model(cfg, "relu_run")["activation"] == "relu" and run_model(cfg, "relu_run")["widths"] == [8]
    assert run_model(cfg, "mse")["activation"] == cfg["model"]["activation"]


def test_snakemake_stops_before_any_job_with_the_key(tmp_path):
    bad = yaml.safe_load(open(ROOT / "tests/configs/tiny.yaml"))
    bad["training"]["optimiser"] = "adam"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", str(path),
                           "--directory", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "training: Additional properties are not allowed ('optimiser' was unexpected)" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()
