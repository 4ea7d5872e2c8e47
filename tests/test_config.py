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
        (lambda c: c["datasets"].append(dict(c["datasets"][1])), "dataset 'sprites' is listed twice"),
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


# ------------------------------------------------------------------ issue 13: names, NaN, settings that crash later

@pytest.mark.parametrize("name", ["..", ".", ".hidden", "--help", "-x", "a/b", "a\\b", "", "a b"])
def test_run_names_cannot_escape_their_directory_or_read_as_options(default, name):
    """Finding 2: a run named `..` wrote results/train/<dataset>/../w16.h5 (one file for every
    dataset); `--help` broke the training CLI."""
    cfg = copy.deepcopy(default)
    cfg["runs"] = {name: {"objective": "mse"}}
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert f"runs: {name!r} does not match" in str(err.value)
    assert "letter, digit or underscore" in str(err.value)   # the message says the rule


def test_run_names_must_be_strings(default):
    cfg = copy.deepcopy(default)
    cfg["runs"] = {1: {"objective": "mse"}}        # YAML `1:` is an integer key
    with pytest.raises(ConfigError, match="runs: 1 is not of type 'string'"):
        validate_config(cfg)


@pytest.mark.parametrize("name", ["m.e", "run_1", "A-b.c", "_x", "mse"])
def test_ordinary_run_names_pass(default, name):
    cfg = copy.deepcopy(default)
    cfg["runs"][name] = {"objective": "mse"}
    assert name in validate_config(cfg)["runs"]


@pytest.mark.parametrize(
    "mutate,key",
    [
        (lambda c: c["training"].update(learning_rate=float("nan")), "training.learning_rate"),
        (lambda c: c["training"].update(learning_rate=float("inf")), "training.learning_rate"),
        (lambda c: c["training"].update(beta=float("nan")), "training.beta"),
        (lambda c: c["model"].update(weight_std=float("inf")), "model.weight_std"),
        (lambda c: c["runs"].update(r={"learning_rate": float("nan")}), "runs.r.learning_rate"),
        (lambda c: c.setdefault("theorems", {}).update(kl={"betas": [0.1, float("nan")]}), "theorems.kl.betas[1]"),
        (lambda c: c.setdefault("theorems", {}).update(learning_rate=float("inf")), "theorems.learning_rate"),
        (lambda c: c.setdefault("theorems", {}).update(convergence_tolerance=float("nan")),
         "theorems.convergence_tolerance"),
        (lambda c: c.setdefault("figures", {}).update(kl_betas=[float("nan")]), "figures.kl_betas[0]"),
        (lambda c: c.setdefault("figures", {}).update(claims={"slope_tolerance": float("nan")}),
         "figures.claims.slope_tolerance"),
        (lambda c: c.setdefault("figures", {}).update(claims={"rank_correlation": float("nan")}),
         "figures.claims.rank_correlation"),
        (lambda c: c.setdefault("figures", {}).update(claims={"gap_tolerance": float("inf")}),
         "figures.claims.gap_tolerance"),
        (lambda c: c.setdefault("tfds", {}).update(connect_timeout=float("nan")), "tfds.connect_timeout"),
        (lambda c: c["training"].update(progress_seconds=float("-inf")), "training.progress_seconds"),
    ],
)
def test_nan_and_inf_are_rejected_naming_the_key(default, mutate, key):
    """Finding 3: a JSON Schema minimum is false for NaN, so NaN passed every numeric check."""
    cfg = copy.deepcopy(default)
    mutate(cfg)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert f"{key}: " in str(err.value) and "is not a finite number" in str(err.value)


def test_nan_from_yaml_is_rejected(tmp_path):
    text = (ROOT / "tests/configs/tiny.yaml").read_text().replace("learning_rate: 0.5", "learning_rate: .nan")
    path = tmp_path / "nan.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"training.learning_rate: nan is not a finite number"):
        load_config(path)


def test_yaml_exponent_without_dot_gets_a_hint(default):
    cfg = copy.deepcopy(default)
    cfg["training"]["learning_rate"] = "1e-3"     # what PyYAML (YAML 1.1) reads from `learning_rate: 1e-3`
    with pytest.raises(ConfigError, match=r"training.learning_rate: '1e-3' is not of type 'number'.*1\.0e-3"):
        validate_config(cfg)


@pytest.mark.parametrize(
    "mutate,expected",
    [
        (lambda c: c["training"].update(reconstructions=0), "training.reconstructions: 0 is less than the minimum of 1"),
        (lambda c: c.setdefault("figures", {}).update(laziness_runs=[]), "figures.laziness_runs: [] should be non-empty"),
        (lambda c: c.setdefault("figures", {}).update(kernel_runs=[]), "figures.kernel_runs: [] should be non-empty"),
        (lambda c: c.setdefault("figures", {}).update(convergence_runs=[]),
         "figures.convergence_runs: [] should be non-empty"),
        (lambda c: c.setdefault("figures", {}).update(generation_runs=[]),
         "figures.generation_runs: [] should be non-empty"),
        (lambda c: c.setdefault("figures", {}).update(kl_betas=[1, 1.0]), "figures.kl_betas: [1, 1.0] has non-unique"),
        (lambda c: c["theorems"]["kl"].update(widths=[256, 512]), "theorems.kl.widths: [512] not among theorems.widths"),
    ],
)
def test_settings_that_crashed_figure_jobs_are_rejected_saying_why(default, mutate, expected):
    """Finding 4: reconstructions: 0 crashed F7/F8 (KeyError), an empty run list of a figure was
    a usage error of its job after training, and an empty laziness_runs dropped claims rows."""
    cfg = copy.deepcopy(default)
    mutate(cfg)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert expected in str(err.value)
    assert "(" in str(err.value).split(expected, 1)[1]   # followed by the reason, from the schema


def test_snakemake_stops_on_nan_and_bad_run_name_before_any_job(tmp_path):
    bad = yaml.safe_load(open(ROOT / "tests/configs/tiny.yaml"))
    bad["training"]["learning_rate"] = float("nan")
    bad["runs"][".."] = {"objective": "mse"}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", str(path),
                           "--directory", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "training.learning_rate: nan is not a finite number" in out
    assert "runs: '..' does not match" in out
    assert not (tmp_path / "results").exists()


def test_a_run_name_with_a_dot_matches_only_itself(tmp_path):
    """Finding 2: run names entered wildcard_constraints unescaped, so `m.e` also matched `mxe`
    (on main: an InputFunctionException, KeyError 'mxe', instead of "no rule to produce")."""
    cfg = yaml.safe_load(open(ROOT / "tests/configs/tiny.yaml"))
    cfg["runs"]["m.e"] = {"objective": "mse"}
    path = tmp_path / "dots.yaml"
    path.write_text(yaml.safe_dump(cfg))
    base = [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", str(path), "--directory",
            str(tmp_path)]
    wrong = subprocess.run([*base, "results/train/digits/mxe/w16.h5"], cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
    assert wrong.returncode != 0
    assert "MissingRuleException" in wrong.stdout + wrong.stderr, wrong.stdout + wrong.stderr
    right = subprocess.run([*base, "results/train/digits/m.e/w16.h5"], cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
    assert right.returncode == 0, right.stdout + right.stderr


def test_the_run_name_rule_has_one_owner():
    """paths.WILDCARDS["run"] (formatting and parsing result paths) is the schema's rule."""
    from ntkvae import paths
    from ntkvae.config import schema

    assert schema()["properties"]["runs"]["propertyNames"]["pattern"] == f"^{paths.WILDCARDS['run']}$"
