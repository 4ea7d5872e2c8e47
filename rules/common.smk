# Shared helpers: config validation, target lists, resources. Named functions, no lambdas.
import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from ntkvae.config import ConfigError, run_model, run_settings, validate_config  # noqa: E402

try:
    _validated = validate_config(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None
config.clear()
config.update(_validated)

# Every step runs the workflow's own package (python -m ntkvae.<step>), whatever is
# installed in the environment. Snakemake clears PYTHONPATH for conda jobs before the
# shell starts, so it is set inside the shell, in the prefix of every command.
shell.prefix(
    "set -euo pipefail; export PYTHONPATH={}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; ".format(
        shlex.quote(str(Path(workflow.basedir) / "src"))
    )
)
DATASETS = {d["name"]: d for d in config["datasets"]}
OFFLINE_DATASETS = ("digits", "sprites")


wildcard_constraints:
    dataset="|".join(DATASETS),
    run="|".join(config["runs"]),
    width=r"\d+",


def workflow_file(path):
    """A file of the workflow itself (e.g. plotting code as a rule input), wherever we run."""
    return str(Path(workflow.basedir) / path)


def dataset_n(wildcards):
    return DATASETS[wildcards.dataset]["n"]


def dataset_seed(wildcards):
    return DATASETS[wildcards.dataset]["seed"]


def dataset_center_flag(wildcards):
    return "" if DATASETS[wildcards.dataset]["center"] else "--no-center"


def run_widths(run):
    return run_model(config, run)["widths"]


def train_outputs(dataset, run):
    return [f"results/train/{dataset}/{run}/w{width}.h5" for width in run_widths(run)]


def train_model_json(wildcards):
    return shlex.quote(json.dumps(run_model(config, wildcards.run), sort_keys=True))


def train_settings_json(wildcards):
    return shlex.quote(json.dumps(run_settings(config, wildcards.run), sort_keys=True))


def train_mem_mb(wildcards, attempt):
    """Memory of a training job: parameters, optimizer state and activations, per seed."""
    width = int(wildcards.width)
    seeds = len(run_settings(config, wildcards.run)["seeds"])
    params = 5 * width * max(width, 4096)
    return int((2000 + 16 * seeds * params / 1e6) * (1.5 ** (attempt - 1)))


def train_runtime(wildcards, attempt):
    """Minutes for a training job on one GPU, doubled on each retry."""
    width = int(wildcards.width)
    settings = run_settings(config, wildcards.run)
    estimate = 10 + settings["steps"] * len(settings["seeds"]) * (width / 4096) ** 2 * 0.05
    return int(estimate * 2 ** (attempt - 1))


def convergence_inputs(wildcards):
    return [
        path
        for run in config["figures"]["convergence_runs"]
        for path in train_outputs(wildcards.dataset, run)
    ]


def all_figures():
    return expand(
        "results/figures/f1_convergence_{dataset}.{ext}", dataset=DATASETS, ext=("pdf", "png")
    )


# tensorflow-datasets sources (rules/data.smk: fetch_tfds_dataset, convert_tfds_dataset).
TFDS_DATASETS = ("mnist", "dsprites", "cars3d")


def tfds_fetch_options(wildcards):
    """Command-line options of the fetch step, from the config's tfds section."""
    tfds = config["tfds"]
    options = [
        "--data-dir",
        shlex.quote(tfds["data_dir"]),
        "--timeout",
        str(tfds["connect_timeout"]),
        "--retries",
        str(tfds["download_retries"]),
    ]
    if tfds["manual_dir"]:
        options += ["--manual-dir", shlex.quote(tfds["manual_dir"])]
    if not tfds["verify_checksums"]:
        options.append("--no-verify-checksums")
    if not tfds["download"]:
        options.append("--no-download")
    return " ".join(options)


def tfds_fetch_mem_mb(wildcards):
    """The stock dSprites builder loads all 737280 images (3 GB) at once."""
    return 8000 if wildcards.dataset == "dsprites" else 4000


# ---------------------------------------------------------------- kernels (rules/kernels.smk)
KERNEL_ACTIVATIONS = ("erf", "relu", "tanh", "softplus", "gelu")


def kernels_json(wildcards=None):
    """The `kernels` config section as a shell-quoted JSON argument (also the training probes)."""
    return shlex.quote(json.dumps(config["kernels"], sort_keys=True))


def kernel_model_json(wildcards):
    """The `model` section with the wildcard's activation, without the width list."""
    model = {k: v for k, v in config["model"].items() if k != "widths"}
    model["activation"] = wildcards.activation
    return shlex.quote(json.dumps(model, sort_keys=True))


def kernel_mem_mb(wildcards, attempt):
    """Theta_inf per group, total, eigenvectors and work space: about 12 n x n float64 arrays."""
    n = DATASETS[wildcards.dataset]["n"]
    return int((1000 + 12 * 8 * n * n / 1e6) * (1.5 ** (attempt - 1)))


def kernel_runtime(wildcards, attempt):
    """Minutes: the n x n map and the n^3 eigendecomposition (n = 10,000: a few minutes on 2 cores)."""
    n = DATASETS[wildcards.dataset]["n"]
    return int((5 + 10 * (n / 10000) ** 3 + 5 * (n / 10000) ** 2) * 2 ** (attempt - 1))


def run_kernel_file(wildcards):
    """The kernel file a run's prediction needs (the run may override the activation)."""
    activation = run_model(config, wildcards.run)["activation"]
    return f"results/kernels/{wildcards.dataset}/{activation}.h5"


def run_settings_json(wildcards):
    return shlex.quote(json.dumps(run_settings(config, wildcards.run), sort_keys=True))


def kernel_targets():
    """Every kernel file and every run's prediction: for the lead's `rule all`."""
    activations = sorted({run_model(config, run)["activation"] for run in config["runs"]})
    return expand("results/kernels/{dataset}/{activation}.h5", dataset=DATASETS, activation=activations) + expand(
        "results/kernels/{dataset}/{run}/prediction.h5", dataset=DATASETS, run=config["runs"]
    )
