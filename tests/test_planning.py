"""The workflow's planning (src/ntkvae/planning.py), without Snakemake: generated sweep runs, target
lists, the FIGURES table and what it derives, and the static scan of the package's imports."""

from __future__ import annotations

import copy
import pathlib
import textwrap

import pytest

from conftest import ROOT
from ntkvae import paths, planning, plot
from ntkvae.config import ConfigError, load_config

PAPER_ORDER = ["f1_convergence", "f2_laziness", "f3_kernel_constancy", "f4_rate", "f5_krr", "f6_kl_beta",
               "f7_narrow_wide", "f8_generation", "f9_min_width", "f10_activations"]


def planned(path="tests/configs/tiny_figures.yaml") -> dict:
    return planning.add_figure_runs(load_config(ROOT / path))


@pytest.fixture
def config():
    return planned()


@pytest.mark.parametrize("beta,name", [(0.1, "kl_beta0p1"), (1.0, "kl_beta1"), (10, "kl_beta10"),
                                       (0.25, "kl_beta0p25"), (1e20, "kl_beta1e20")])
def test_beta_run_name_has_no_dot(beta, name):
    assert planning.beta_run_name(beta) == name


def test_figure_runs_are_generated(config):
    runs = config["runs"]
    assert {"kl_beta1", "kl_beta3", "kl_beta10", "kl_sigma_trained", "act_erf", "act_relu", "narrow"} <= set(runs)
    assert runs["kl_beta3"]["beta"] == 3.0 and runs["kl_beta3"]["train_sigma"] is False
    assert runs["kl_beta3"]["widths"] == [16] and runs["kl_beta3"]["steps"] == 20
    assert runs["act_relu"]["activation"] == "relu" and runs["act_relu"]["on_divergence"] == "record"
    # The narrow run is the wide run at the narrow width, with the wide run's steps and seeds.
    assert runs["narrow"]["objective"] == runs[config["figures"]["wide_run"]]["objective"]
    assert planning.run_widths(config, "narrow") == [4]
    assert "steps" not in runs["narrow"]
    assert planning.krr_runs(config) == ["kl_beta1", "kl_beta3", "kl_beta10", "kl_sigma_trained"]


def test_a_run_named_like_a_generated_one_is_refused():
    cfg = load_config(ROOT / "tests/configs/tiny_figures.yaml")
    cfg["runs"]["narrow"] = {"objective": "mse"}
    with pytest.raises(ConfigError, match="'narrow' is a name the figures generate"):
        planning.add_figure_runs(cfg)


def test_a_figure_run_that_is_not_defined_is_refused():
    cfg = load_config(ROOT / "tests/configs/tiny_figures.yaml")
    cfg["figures"]["laziness_runs"] = ["nope"]
    with pytest.raises(ConfigError, match="figures.laziness_runs: run 'nope' is not defined"):
        planning.add_figure_runs(cfg)


def test_target_lists(config):
    assert planning.train_files(config, "digits", "mse") == ["results/train/digits/mse/w16.h5",
                                                              "results/train/digits/mse/w32.h5"]
    assert planning.kernel_files(config, "digits", ["mse", "act_relu"]) == [
        "results/kernels/digits/erf.h5", "results/kernels/digits/relu.h5",
        "results/kernels/digits/mse/prediction.h5", "results/kernels/digits/act_relu/prediction.h5"]
    assert planning.kernel_files(config, "digits", ["mse"], theory=False) == []
    assert len(planning.training_targets(config)) == sum(len(planning.run_widths(config, r)) for r in config["runs"])
    kernels = planning.kernel_targets(config)
    assert {paths.kind_of(p)[0] for p in kernels} == {"KERNEL", "PREDICTION"}
    assert len(planning.prediction_targets(config)) == len(config["runs"])


def test_claims_read_every_run_a_figure_reads(config):
    claims = planning.claims_inputs(config, theory=True)
    for figure in planning.FIGURES:
        inputs = figure.inputs(config, "digits", True)
        assert set(inputs["runs"]) <= set(claims["runs"]), figure.name
    assert claims["data"] == ["results/data/digits.h5"]
    assert planning.claims_inputs(config, theory=False)["kernels"] == []
    settings = planning.claims_settings(config)
    assert settings["kl_runs"] == ["kl_beta1", "kl_beta3", "kl_beta10"] and settings["datasets"] == ["digits"]


def test_figures_table_is_in_paper_order_and_complete():
    assert [f.name for f in planning.FIGURES] == PAPER_ORDER
    assert [f.number for f in planning.FIGURES] == list(range(1, 11))
    for figure in planning.FIGURES:
        assert figure.rule == f"figure_{figure.name}"
        assert (ROOT / figure.caption).is_file(), figure.caption
        assert (ROOT / "src" / (figure.module.replace(".", "/") + ".py")).is_file(), figure.module
        assert paths.parse_figure(figure.path("digits", "pdf"))["number"] == figure.number


def test_report_sorts_the_figures_in_paper_order():
    # Snakemake's report orders entries by their first label's text: F10 must come after F9.
    labels = [f.report_labels("png")["figure"] for f in planning.FIGURES]
    assert sorted(labels) == labels and labels[-1].startswith("F10")
    assert list(planning.FIGURES[0].report_labels("pdf")) == ["figure", "dataset", "format"]
    # The report starts a figure's format toggle at its first value in sorted order: the image.
    formats = sorted(planning.FIGURES[0].report_labels(ext)["format"] for ext in ("pdf", "png"))
    assert formats[0] == planning.FIGURES[0].report_labels("png")["format"]


def test_figure_names_follow_the_config(config):
    assert planning.figure_names(config, theory=True) == PAPER_ORDER
    assert planning.figure_names(config, theory=False) == [n for n in PAPER_ORDER if n not in
                                                           ("f3_kernel_constancy", "f4_rate", "f5_krr", "f9_min_width")]
    cfg = copy.deepcopy(load_config(ROOT / "tests/configs/tiny_figures.yaml"))
    cfg["figures"].update(kl_betas=[], sigma_trained=False, activations=[])
    names = planning.figure_names(planning.add_figure_runs(copy.deepcopy(cfg)), theory=True)
    # F5 stays while the theorem runs exist (Theorem 2 in its setting); F9 needs them.
    assert "f5_krr" in names and "f6_kl_beta" not in names and "f10_activations" not in names
    cfg["theorems"]["enabled"] = False
    names = planning.figure_names(planning.add_figure_runs(cfg), theory=True)
    assert "f5_krr" not in names and "f9_min_width" not in names
    targets = planning.all_targets(config, theory=True)
    assert len(targets) == 2 * len(PAPER_ORDER) + 5 and targets[-2:] == ["results/provenance.yaml", "results/provenance.html"]


def test_plot_dispatch_is_the_figures_table():
    assert plot.FIGURES == {f.topic: f"ntkvae.figures.{f.topic}" for f in planning.FIGURES}


def test_plot_options(config):
    f1, f2, f3 = planning.FIGURES[:3]
    settings = " --settings " + planning.figure_settings_json(config)
    with_kernels = f1.inputs(config, "digits", True)
    assert f1.plot_options(with_kernels, config) == (" --kernels " + " ".join(with_kernels["kernels"])
                                                     + " --data results/data/digits.h5" + settings)
    assert f1.plot_options(f1.inputs(config, "digits", False), config) == " --data results/data/digits.h5" + settings
    assert f2.plot_options(f2.inputs(config, "digits", True), config) == settings
    assert f3.plot_options(f3.inputs(config, "digits", True), config).endswith(
        " --settings " + planning.figure_settings_json(config))


def test_accelerator_choice():
    # (the heavy jobs' resources are ntkvae.plan's: tests/test_plan.py)
    assert planning.resolve_accelerator("auto", gpu_count=lambda: 0) == "cpu"
    assert planning.resolve_accelerator("auto", gpu_count=lambda: 2) == "gpu"
    assert planning.resolve_accelerator("cpu", gpu_count=lambda: 2) == "cpu"


# ---------------------------------------------------------------- the static import scan
def write_package(root: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_module_files_follows_every_kind_of_import(tmp_path):
    root = write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/cli.py": "import numpy\nfrom . import a\nfrom .sub import c\n",
        "pkg/a.py": "import pkg.b\n",
        "pkg/b.py": "def late():\n    from .lazy import x  # inside a function\n",
        "pkg/lazy.py": "x = 1\n",
        "pkg/sub/__init__.py": "CONSTANT = 1\n",
        "pkg/sub/c.py": "from .. import a  # a cycle back\nfrom . import CONSTANT  # a name, not a module\n",
        "pkg/sub/d.py": "from ..unused import y\n",
        "pkg/unused.py": "y = 2\n",
        "pkg/tool/__init__.py": "",
        "pkg/tool/__main__.py": "from .. import lazy  # python -m pkg.tool runs this\n",
    })
    assert planning.module_files("pkg.cli", root=root) == [
        "pkg/__init__.py", "pkg/a.py", "pkg/b.py", "pkg/cli.py", "pkg/lazy.py", "pkg/sub/__init__.py", "pkg/sub/c.py"]
    assert planning.module_files("pkg.sub.d", root=root) == ["pkg/__init__.py", "pkg/sub/__init__.py", "pkg/sub/d.py",
                                                             "pkg/unused.py"]
    assert planning.module_files("pkg.tool", root=root) == ["pkg/__init__.py", "pkg/lazy.py", "pkg/tool/__init__.py",
                                                            "pkg/tool/__main__.py"]
    with pytest.raises(ValueError, match="no module pkg.missing"):
        planning.module_files("pkg.missing", root=root)


def test_module_files_of_the_workflow_steps():
    train = planning.module_files("ntkvae.train")
    for module in ("model", "training", "objectives", "train", "io", "__init__"):
        assert f"ntkvae/{module}.py" in train, module
    assert not any(p.startswith("ntkvae/figures/") for p in train)
    kernels = planning.module_files("ntkvae.compute_kernels")
    assert "ntkvae/kernels/layers.py" in kernels and "ntkvae/training.py" not in kernels
    data = planning.module_files("ntkvae.prepare_data")
    assert "ntkvae/model.py" not in data and "ntkvae/datasets.py" in data
    laziness = planning.module_files("ntkvae.plot", "ntkvae.figures.laziness")
    assert "ntkvae/figures/laziness.py" in laziness and "ntkvae/figures/style.py" in laziness
    assert "ntkvae/figures/kl_beta.py" not in laziness and "ntkvae/model.py" not in laziness
    claims = planning.module_files("ntkvae.claims")   # a package run with python -m: its __main__.py
    assert "ntkvae/claims/__main__.py" in claims and "ntkvae/results/measures.py" in claims
