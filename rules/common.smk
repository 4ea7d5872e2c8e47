# Shared helpers: config validation, target lists, resources. Named functions, no lambdas.
import json
import re
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


def add_figure_runs(config):
    """Add the runs the figures' sweeps need to config["runs"] (called once, after validation).

    The compact keys of the `figures` section become ordinary named runs, so that every
    sweep point is one training job like any other (docs/figures.md lists them):
      kl_beta<b>        full objective, Wsigma frozen, beta = b, at figures.kl_widths   (F5, F6)
      kl_sigma_trained  full objective, Wsigma trained, training.beta, at kl_widths     (F5)
      act_<name>        reconstruction loss with activation <name> at activation_widths (F10)
      narrow            the settings of figures.wide_run at width narrow_width          (F7)
    Sweep runs take their steps and seeds from figures.sweep; the narrow run keeps those of
    wide_run so that its curves compare step for step. Runs the figures name must exist.
    """
    figures, runs = config["figures"], config["runs"]
    sweep = {"steps": figures["sweep"]["steps"], "seeds": list(figures["sweep"]["seeds"])}
    generated = {}
    for beta in figures["kl_betas"]:
        generated[beta_run_name(beta)] = dict(
            sweep, objective="vae", beta=beta, train_sigma=False, widths=figures["kl_widths"],
            description=f"full objective, beta = {beta:g}, Wsigma frozen (beta sweep)",
        )
    if figures["sigma_trained"]:
        # Training the variance weights lets exp(s) grow; at the shared learning rate this
        # diverges on the 64x64 sprites at small widths: recorded (F5, claims), not fatal.
        generated["kl_sigma_trained"] = dict(
            sweep, objective="vae", train_sigma=True, widths=figures["kl_widths"], on_divergence="record",
            description="full objective, Wsigma trained",
        )
    for activation in figures["activations"]:
        # Whether gradient descent is stable at the shared learning rate depends on the
        # activation (eta < 2n / lambda_max of its kernel): a divergence is recorded and shown
        # in F10 and the claims table instead of stopping the workflow.
        generated[f"act_{activation}"] = dict(
            sweep, objective="mse", activation=activation, widths=figures["activation_widths"],
            on_divergence="record", description=f"reconstruction loss, activation {activation}",
        )
    named = {
        "figures.convergence_runs": figures["convergence_runs"],
        "figures.laziness_runs": figures["laziness_runs"],
        "figures.generation_runs": figures["generation_runs"],
        "figures.kernel_runs": figures["kernel_runs"],
        "figures.wide_run": [figures["wide_run"]],
    }
    for key, names in named.items():
        for name in names:
            if name not in runs:
                raise WorkflowError(
                    f"invalid config:\n  {key}: run {name!r} is not defined in runs "
                    f"(defined: {', '.join(runs)})"
                )
    generated["narrow"] = dict(
        runs[figures["wide_run"]],
        widths=[figures["narrow_width"]],
        description=f"narrow (standard) VAE, width {figures['narrow_width']}",
    )
    clash = sorted(set(generated) & set(runs))
    if clash:
        raise WorkflowError(
            f"invalid config:\n  runs: {clash[0]!r} is a name the figures generate; rename the run"
        )
    runs.update(generated)
    try:
        validate_config(config)
    except ConfigError as err:  # a generated run the schema rejects is our bug, not the user's
        raise WorkflowError(f"internal error: a run generated for the figures is invalid:\n{err}") from None


def beta_run_name(beta):
    """Run name of one beta-sweep point: kl_beta0p1 for beta = 0.1 (no dot in paths)."""
    number = f"{beta:g}".replace(".", "p").replace("+", "")
    return f"kl_beta{number}"


add_figure_runs(config)

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
    run="|".join(map(re.escape, config["runs"])),  # a name is literal: "m.e" must not match "mxe"
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


def plot_code(module):
    """Path of a figure's plotting module (an input of its rule: editing it reruns that figure)."""
    return workflow_file(f"src/ntkvae/figures/{module}.py")


def claims_code():
    return [
        workflow_file(f"src/ntkvae/{module}.py")
        for module in ("claims/__init__", "claims/__main__", "claims/table", "claims/training", "claims/theory")
    ]


def runs_outputs(dataset, runs):
    return [path for run in runs for path in train_outputs(dataset, run)]


def laziness_inputs(wildcards):
    return runs_outputs(wildcards.dataset, config["figures"]["laziness_runs"])


def kl_beta_inputs(wildcards):
    runs = [beta_run_name(beta) for beta in config["figures"]["kl_betas"]]
    return runs_outputs(wildcards.dataset, runs)


def narrow_wide_inputs(wildcards):
    wide = config["figures"]["wide_run"]
    widest = f"results/train/{wildcards.dataset}/{wide}/w{max(run_widths(wide))}.h5"
    return [*train_outputs(wildcards.dataset, "narrow"), widest]


def generation_inputs(wildcards):
    return runs_outputs(wildcards.dataset, config["figures"]["generation_runs"])


def activation_inputs(wildcards):
    runs = [f"act_{activation}" for activation in config["figures"]["activations"]]
    return runs_outputs(wildcards.dataset, runs)


def claims_inputs(wildcards):
    """Every training file a claim reads (the same runs as the figures)."""
    figures = config["figures"]
    runs = set(figures["convergence_runs"]) | set(figures["laziness_runs"]) | set(figures["kernel_runs"])
    runs |= {beta_run_name(beta) for beta in figures["kl_betas"]}
    runs |= {f"act_{activation}" for activation in figures["activations"]}
    runs |= {"narrow", figures["wide_run"]} | set(krr_runs())
    return [path for dataset in DATASETS for path in runs_outputs(dataset, sorted(runs))]


def claims_settings_json(wildcards):
    """The figures section, plus the beta-sweep run names and the datasets, for ntkvae.claims."""
    settings = dict(config["figures"])
    settings["kl_runs"] = [beta_run_name(beta) for beta in config["figures"]["kl_betas"]]
    settings["datasets"] = list(DATASETS)
    return shlex.quote(json.dumps(settings, sort_keys=True))


def theory_available():
    """Whether the workflow has the kernel rules (rules/kernels.smk) the theory figures need."""
    return (Path(workflow.basedir) / "rules" / "kernels.smk").exists()


def kernel_files(dataset, runs):
    """Kernel files (one per activation) and linearized predictions (one per run) of the given
    runs on one dataset (rules/kernels.smk); none when the workflow has no kernel rules."""
    if not theory_available():
        return []
    activations = sorted({run_model(config, run)["activation"] for run in runs})
    kernels = [f"results/kernels/{dataset}/{activation}.h5" for activation in activations]
    return [*kernels, *(f"results/kernels/{dataset}/{run}/prediction.h5" for run in runs)]


def kernel_inputs(wildcards):
    return kernel_files(wildcards.dataset, config["figures"]["kernel_runs"])


def convergence_kernel_inputs(wildcards):
    return kernel_files(wildcards.dataset, config["figures"]["convergence_runs"])


def kernel_run_inputs(wildcards):
    return runs_outputs(wildcards.dataset, config["figures"]["kernel_runs"])


def krr_runs():
    runs = [beta_run_name(beta) for beta in config["figures"]["kl_betas"]]
    return runs + (["kl_sigma_trained"] if config["figures"]["sigma_trained"] else [])


def krr_inputs(wildcards):
    return runs_outputs(wildcards.dataset, krr_runs())


def krr_kernel_inputs(wildcards):
    return kernel_files(wildcards.dataset, krr_runs())


def convergence_kernel_args(wildcards, input):
    """F1 overlays the linearized trajectory when the kernel files are inputs."""
    return f"--kernels {input.kernels} --data {input.data}" if input.kernels else ""


def claims_kernel_inputs(wildcards):
    runs = sorted(set(config["figures"]["kernel_runs"]) | set(krr_runs()))
    return [path for dataset in DATASETS for path in kernel_files(dataset, runs)]


def claims_data_inputs(wildcards):
    return [f"results/data/{dataset}.h5" for dataset in DATASETS]


def provenance_code():
    return workflow_file("src/ntkvae/provenance.py")


def resolved_config_json(wildcards):
    return shlex.quote(json.dumps(config, sort_keys=True))


def figure_settings_json(wildcards):
    return shlex.quote(json.dumps(config["figures"], sort_keys=True))


def figure_names():
    """Topics of the figures this config builds, in paper order (f<k>_<topic>_<dataset>)."""
    theory = theory_available()
    names = ["f1_convergence", "f2_laziness"]
    if theory:
        names += ["f3_kernel_constancy", "f4_rate"]
        if krr_runs():
            names.append("f5_krr")
    if config["figures"]["kl_betas"]:
        names.append("f6_kl_beta")
    names += ["f7_narrow_wide", "f8_generation"]
    if theory:
        names.append("f9_min_width")
    if config["figures"]["activations"]:
        names.append("f10_activations")
    return names


def all_figures():
    """Every figure (PDF and PNG) and the claims table: the targets of `rule all` and the report."""
    figures = expand(
        "results/figures/{name}_{dataset}.{ext}",
        name=figure_names(),
        dataset=DATASETS,
        ext=("pdf", "png"),
    )
    return [*figures, "results/claims.md", "results/claims.tsv", "results/provenance.yaml"]



# ---------------------------------------------------------------- kernels (rules/kernels.smk)
KERNEL_ACTIVATIONS = ("erf", "relu", "tanh", "softplus", "gelu")


def kernels_json(wildcards=None):
    """The `kernels` config section as a shell-quoted JSON argument."""
    return shlex.quote(json.dumps(config["kernels"], sort_keys=True))


def probe_json(wildcards=None):
    """The probe keys of `kernels` only, for training jobs: a kernel-only setting (method,
    ridges, per_group, ...) then does not rerun training through Snakemake's params trigger."""
    return shlex.quote(json.dumps({k: v for k, v in config["kernels"].items() if k.startswith("probe_")},
                                  sort_keys=True))


def kernel_model_json(wildcards):
    """The `model` section with the wildcard's activation, without the width list."""
    model = {k: v for k, v in config["model"].items() if k != "widths"}
    model["activation"] = wildcards.activation
    return shlex.quote(json.dumps(model, sort_keys=True))


def kernel_mem_mb(wildcards, attempt):
    """Theta_inf (total and W4, or every group with per_group: full), eigenvectors and eigh's
    work space: about 7 (or 11) n x n float64 arrays."""
    n = DATASETS[wildcards.dataset]["n"]
    arrays = 11 if config["kernels"]["per_group"] == "full" else 7
    return int((1000 + arrays * 8 * n * n / 1e6) * (1.5 ** (attempt - 1)))


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
