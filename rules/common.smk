# Shared by every rule: config validation, the planning module, thin wrappers that turn its
# functions into Snakemake input, params and resource functions. The planning itself (generated
# sweep runs, run names, target lists, the FIGURES table) is src/ntkvae/planning.py, result
# paths are src/ntkvae/paths.py; both are tested without Snakemake.
import json
import re
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from ntkvae import paths, planning  # noqa: E402
from ntkvae.config import ConfigError, run_model, run_settings, validate_config  # noqa: E402

try:
    _validated = planning.add_figure_runs(validate_config(config))
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
DATASETS = planning.dataset_names(config)

# A tensorflow-datasets source without the data extra stops here, before any job (with --sdm
# conda its steps get envs/data.yaml instead).
from snakemake.settings.types import DeploymentMethod  # noqa: E402
from ntkvae import tfdata  # noqa: E402

_extra = tfdata.data_extra_problem(DATASETS, DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method)
if _extra:
    raise WorkflowError(_extra)


wildcard_constraints:
    dataset="|".join(DATASETS),
    run="|".join(map(re.escape, config["runs"])),  # a name is literal: "m.e" must not match "mxe"
    width=r"\d+",


def workflow_file(path):
    """A file of the workflow itself (e.g. code as a rule input), wherever we run."""
    return str(Path(workflow.basedir) / path)


def code(*modules):
    """The package modules that `python -m <module>` imports, transitively (a static scan,
    planning.module_files): rule inputs, so that editing the code reruns the jobs that run it."""
    src = Path(workflow.basedir) / "src"
    return [str(src / path) for path in planning.module_files(*modules, root=src)]


def theory_available():
    """Whether the workflow has the kernel rules (rules/kernels.smk) the theory figures need."""
    return (Path(workflow.basedir) / "rules" / "kernels.smk").exists()


def quoted_json(value):
    return shlex.quote(json.dumps(value, sort_keys=True))


# ---------------------------------------------------------------- data (rules/data.smk)
def dataset_n(wildcards):
    return planning.dataset_entry(config, wildcards.dataset)["n"]


def dataset_seed(wildcards):
    return planning.dataset_entry(config, wildcards.dataset)["seed"]


def dataset_center_flag(wildcards):
    return "" if planning.dataset_entry(config, wildcards.dataset)["center"] else "--no-center"


def dataset_options(wildcards):
    """Per-dataset options of prepare_data: the sprites' resolution, when the config sets one."""
    resolution = planning.dataset_entry(config, wildcards.dataset).get("resolution")
    return f"--resolution {resolution}" if resolution else ""


def tfds_fetch_options(wildcards):
    return planning.tfds_fetch_options(config)


def tfds_fetch_mem_mb(wildcards):
    return planning.tfds_fetch_mem_mb(wildcards.dataset)


# ---------------------------------------------------------------- training (rules/train.smk)
def train_model_json(wildcards):
    return quoted_json(run_model(config, wildcards.run))


def train_settings_json(wildcards):
    return quoted_json(run_settings(config, wildcards.run))


def probe_json(wildcards=None):
    return quoted_json(planning.probe_settings(config))


def train_mem_mb(wildcards, attempt):
    return planning.train_mem_mb(config, wildcards.run, int(wildcards.width), attempt)


def train_runtime(wildcards, attempt):
    return planning.train_runtime(config, wildcards.run, int(wildcards.width), attempt)


# ---------------------------------------------------------------- kernels (rules/kernels.smk)
def kernels_json(wildcards=None):
    """The `kernels` config section as a shell-quoted JSON argument."""
    return quoted_json(lookup(dpath="kernels", within=config))


def kernel_model_json(wildcards):
    return quoted_json(planning.kernel_model(config, wildcards.activation))


def kernel_mem_mb(wildcards, attempt):
    return planning.kernel_mem_mb(config, wildcards.dataset, attempt)


def kernel_runtime(wildcards, attempt):
    return planning.kernel_runtime(config, wildcards.dataset, attempt)


def run_kernel_file(wildcards):
    """The kernel file a run's prediction needs (the run may override the activation)."""
    activation = planning.run_activation(config, wildcards.run)
    return paths.KERNEL.format(dataset=wildcards.dataset, activation=activation)


def run_settings_json(wildcards):
    return quoted_json(run_settings(config, wildcards.run))


# ---------------------------------------------------------------- figures (rules/figures.smk)
def figure_inputs(figure):
    """Input function of one figure's rule: its runs, kernels and data (planning.FIGURES)."""

    def inputs(wildcards):
        return figure.inputs(config, wildcards.dataset, theory_available())

    return inputs


def figure_options(figure):
    """Params function of one figure's rule: --kernels, --data, --settings as it needs them."""

    def options(wildcards, input):
        return figure.plot_options(input, config)

    return options


# ---------------------------------------------------------------- report (rules/report.smk)
def claims_inputs(wildcards):
    return planning.claims_inputs(config, theory_available())


def training_files(wildcards):
    """Every training file of the run (the provenance lists the devices they ran on)."""
    return planning.claims_inputs(config, theory_available())["runs"]


def claims_settings_json(wildcards):
    return quoted_json(planning.claims_settings(config))


def resolved_config_json(wildcards):
    return quoted_json(config)


def all_targets():
    """Every figure (PDF and PNG), the claims table and the provenance: `rule all` and the report."""
    return planning.all_targets(config, theory_available())


# ---------------------------------------------------------------- compute (CPU or GPU)
# Training and kernel jobs run JAX. compute.accelerator picks their conda env and whether
# they ask for a GPU; `gpu` is a standard resource: locally the global limit in
# profiles/default lets one such job at a time use a card, on SLURM it becomes --gpus=1.
ACCELERATOR = planning.resolve_accelerator(lookup(dpath="compute/accelerator", within=config))
# conda: paths are relative to the .smk file of the rule; every rules/*.smk sits beside this one.
JAX_ENV = "../envs/jax-gpu.yaml" if ACCELERATOR == "gpu" else "../envs/jax-cpu.yaml"


def jax_gpus(wildcards):
    """GPUs one training or kernel job asks for: 1 on the GPU path, 0 (none) on CPU."""
    return 1 if ACCELERATOR == "gpu" else 0


# ---------------------------------------------------------------- end of run (Snakefile onsuccess/onerror)
# Claims held/failed/inconclusive, every recorded divergence (run, width, seeds), where the figures,
# claims and report are (src/ntkvae/summary.py; `python -m ntkvae.summary` prints the same).
def print_summary(failed, log):
    from snakemake.logging import logger
    from ntkvae import summary

    try:
        found = summary.collect(".")
        text = "\n".join(summary.lines(found, failed=failed, log=log))
    except Exception as err:  # the summary must never hide the run's own outcome
        logger.warning(f"ntkvae: no summary of this run ({type(err).__name__}: {err})")
        return
    loud = failed or found.divergences or found.unreadable or (found.claims and found.claims.open)
    (logger.warning if loud else logger.info)(text)


# ---------------------------------------------------------------- report
# Snakemake's embeddedfigure directive (report/workflow.rst shows each figure with it) does not
# embed in Snakemake 9; src/ntkvae/report_embed.py registers a working one.
from ntkvae import report_embed  # noqa: E402

report_embed.register()
