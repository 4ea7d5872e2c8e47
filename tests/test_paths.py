"""Result paths (src/ntkvae/paths.py): every kind formats and parses back, look-alikes are rejected,
and every file a dry run of the workflow plans is one of the named kinds."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

from conftest import ROOT
from ntkvae import paths

# One value per wildcard, of the shapes the workflow uses (a run name with a dot and a dash is
# legal in the config schema).
EXAMPLE = {"dataset": "dsprites", "activation": "softplus", "run": "kl_beta0p1", "width": 4096,
           "number": 10, "topic": "kernel_constancy", "ext": "png", "seeds": "0-1-2", "batch": "train_batch2"}


def example(kind: paths.ResultPath) -> tuple[str, dict]:
    wildcards = {name: EXAMPLE[name] for name in kind.wildcards}
    return kind.format(**wildcards), wildcards


@pytest.mark.parametrize("name", sorted(paths.ALL))
def test_format_then_parse_returns_the_wildcards(name):
    kind = paths.ALL[name]
    path, wildcards = example(kind)
    assert path.startswith("results/")
    assert kind.parse(path) == wildcards
    # Leading directories (an absolute path, a workflow run in a temporary directory) are fine.
    assert kind.parse(f"/tmp/wf/{path}") == wildcards
    assert kind.parse(pathlib.Path("/tmp/wf") / path) == wildcards
    # Each path is of exactly one kind.
    assert paths.kind_of(path) == (name, wildcards)


def test_known_paths():
    assert paths.TRAIN.format(dataset="digits", run="mse", width=64) == "results/train/digits/mse/w64.h5"
    assert paths.parse_figure("results/figures/f10_activations_digits.pdf") == {
        "number": 10, "topic": "activations", "dataset": "digits", "ext": "pdf"}
    assert paths.parse_figure("results/figures/f3_kernel_constancy_sprites.png")["topic"] == "kernel_constancy"
    assert paths.parse_prediction("results/kernels/mnist/act_relu/prediction.h5") == {"dataset": "mnist",
                                                                                        "run": "act_relu"}
    assert paths.parse_kernel("results/kernels/mnist/relu.h5") == {"dataset": "mnist", "activation": "relu"}
    assert paths.parse_train("results/train/digits/my.run-2/w8.h5")["run"] == "my.run-2"


@pytest.mark.parametrize("parse,path", [
    (paths.parse_train, "results/train/digits/mse/64.h5"),            # no w before the width
    (paths.parse_train, "results/train/digits/mse/wide.h5"),          # width not a number
    (paths.parse_train, "results/train/digits/mse/w64.npz"),          # a checkpoint's extension
    (paths.parse_train, "results/checkpoints/digits/mse/w64.npz"),    # a checkpoint
    (paths.parse_train, "results/train/digits/w64.h5"),               # no run
    (paths.parse_train, "results/train/digits/mse/x/w64.h5"),         # one level too deep
    (paths.parse_train, "results/trains/digits/mse/w64.h5"),          # another directory
    (paths.parse_train, "myresults/train/digits/mse/w64.h5"),         # not below a results/ directory
    (paths.parse_train, "results/logs/train/digits/mse/w64.log"),     # its log
    (paths.parse_kernel, "results/kernels/digits/mse/prediction.h5"),  # a prediction
    (paths.parse_kernel, "results/kernels/digits/erf.npz"),
    (paths.parse_kernel, "results/kernels/digits.h5"),
    (paths.parse_kernel, "results/kernels/di_gits/erf.h5"),           # a dataset name has no underscore
    (paths.parse_kernel, "toy/erf.h5"),                               # a kernel-like file outside results/
    (paths.parse_prediction, "results/kernels/digits/erf.h5"),        # a kernel
    (paths.parse_prediction, "results/kernels/digits/mse/predictions.h5"),
    (paths.parse_prediction, "results/kernels/mse/prediction.h5"),
    (paths.parse_figure, "results/figures/f1_convergence.pdf"),        # no dataset
    (paths.parse_figure, "results/figures/convergence_digits.pdf"),    # no number
    (paths.parse_figure, "results/figures/fx_convergence_digits.pdf"),
    (paths.parse_figure, "results/figures/f1_convergence_digits.svg"),  # not an output format
    (paths.parse_figure, "results/logs/figures/f1_convergence_digits.log"),
    (paths.parse_data, "results/data/tfds/mnist.json"),
    (paths.parse_data, "results/data/tfds/mnist.h5"),
])
def test_parse_rejects_look_alikes(parse, path):
    assert parse(path) is None


def test_format_checks_the_wildcards():
    with pytest.raises(ValueError, match="width"):
        paths.TRAIN.format(dataset="digits", run="mse", width="wide")
    with pytest.raises(ValueError, match="dataset"):
        paths.KERNEL.format(dataset="di_gits", activation="erf")
    with pytest.raises(ValueError, match="needs"):
        paths.TRAIN.format(dataset="digits", run="mse")


def test_partial_leaves_the_other_wildcards_for_snakemake():
    assert paths.FIGURE.partial(number=1, topic="convergence", ext="pdf") == \
        "results/figures/f1_convergence_{dataset}.pdf"
    assert paths.TRAIN.partial() == paths.TRAIN.pattern
    with pytest.raises(ValueError, match="no wildcard"):
        paths.DATA.partial(run="mse")


@pytest.mark.workflow
def test_every_planned_file_is_a_named_kind(tmp_path):
    """The outputs, logs and benchmarks of every job the tiny configs plan parse as one kind of
    paths.ALL: no result path is written out in a rule instead of named here."""
    for config in ("tests/configs/tiny.yaml", "tests/configs/tiny_figures.yaml"):
        proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", config,
                               "--directory", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        files = [f for line in proc.stdout.splitlines()
                 if (m := re.match(r"\s+(output|log|benchmark): (.*)", line)) for f in m.group(2).split(", ")]
        assert len(files) > 50, files
        unnamed = [f for f in files if paths.kind_of(f) is None]
        assert not unnamed, unnamed


def test_rules_write_no_result_path_themselves():
    """The rules take their paths from ntkvae.paths (a quoted "results/..." in a rule is a second owner)."""
    for path in [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            assert not re.search(r"""["']results/""", code), f"{path.name}:{number}: {line.strip()}"
