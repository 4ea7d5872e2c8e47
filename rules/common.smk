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


# ---------------------------------------------------------------- compute (CPU or GPU)
# Training and kernel jobs run JAX. compute.accelerator picks their conda env and whether
# they ask for a GPU; `gpu` is a standard resource: locally the global limit in
# profiles/default lets one such job at a time use a card, on SLURM it becomes --gpus=1.


def visible_gpu_count():
    """Number of NVIDIA GPUs that nvidia-smi lists on the machine running Snakemake (0 if none)."""
    import shutil
    import subprocess

    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return 0
    if listing.returncode != 0:
        return 0
    return sum(1 for line in listing.stdout.splitlines() if line.startswith("GPU "))


def resolve_accelerator(setting):
    """'cpu' or 'gpu' from the config value (auto: gpu when this machine has one)."""
    if setting == "auto":
        return "gpu" if visible_gpu_count() > 0 else "cpu"
    return setting


ACCELERATOR = resolve_accelerator(config["compute"]["accelerator"])
# conda: paths are relative to the .smk file of the rule; every rules/*.smk sits beside this one.
JAX_ENV = "../envs/jax-gpu.yaml" if ACCELERATOR == "gpu" else "../envs/jax-cpu.yaml"


def jax_gpus(wildcards):
    """GPUs one training or kernel job asks for: 1 on the GPU path, 0 (none) on CPU."""
    return 1 if ACCELERATOR == "gpu" else 0
