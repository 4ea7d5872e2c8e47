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
from ntkvae import paths, plan, planning  # noqa: E402
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
    """Per-dataset options of prepare_data and convert_data: the resolution, when the config sets one."""
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


def train_part_files(wildcards):
    """The part files of a training job split by seed (ntkvae.plan), or none."""
    parts = plan.train_split(config, wildcards.dataset, wildcards.run, int(wildcards.width))
    return [paths.TRAIN_PART.format(dataset=wildcards.dataset, run=wildcards.run, width=int(wildcards.width),
                                    seeds=plan.seeds_label(part)) for part in parts]


def train_command(wildcards, input, output):
    """Train all seeds of the width, or join the parts of a job split by seed."""
    parts = list(input.parts)
    if parts:
        return f"python -m ntkvae.train merge --inputs {' '.join(parts)} --out {output.run}"
    # (not named `checkpoint`: a Snakemake keyword)
    scratch = paths.CHECKPOINT.format(dataset=wildcards.dataset, run=wildcards.run, width=int(wildcards.width))
    return (f"python -m ntkvae.train --data {input.data} --width {wildcards.width} --run {wildcards.run} "
            f"--model {train_model_json(wildcards)} --training {train_settings_json(wildcards)} "
            f"--checkpoint {scratch} --probe {probe_json()}{compilation_cache_option()} --out {output.run}")


def compilation_cache_option():
    """` --compilation-cache DIR` of compute.compilation_cache, or nothing when it is off."""
    directory = lookup(dpath="compute/compilation_cache", within=config, default="")
    return f" --compilation-cache {shlex.quote(directory)}" if directory else ""


def batch_command(batch):
    """The command of a batched training job: every member run as a --run/--training/--out triple."""

    def command(wildcards, input, output):
        first = batch.runs[0]
        members = " ".join(f"--run {run} --training {quoted_json(run_settings(config, run))} --out {out}"
                           for run, out in zip(batch.runs, output))
        scratch = batch_pattern(paths.TRAIN_BATCH_CHECKPOINT, batch).format(**wildcards)
        return (f"python -m ntkvae.train --data {input.data} "
                f"--width {wildcards.width} --model {quoted_json(run_model(config, first))} {members} "
                f"--checkpoint {scratch} --probe {probe_json()}{compilation_cache_option()}")

    return command


def batch_pattern(path, batch):
    """A result-path pattern of a batched job, its {batch} being the rule's name."""
    return path.pattern.replace("{batch}", batch.rule)


def part_seeds(wildcards):
    return wildcards.seeds.replace("-", ",")


# ---------------------------------------------------------------- kernels (rules/kernels.smk)
def kernels_json(wildcards=None):
    """The `kernels` config section as a shell-quoted JSON argument."""
    return quoted_json(lookup(dpath="kernels", within=config))


def kernel_model_json(wildcards):
    return quoted_json(planning.kernel_model(config, wildcards.activation))


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


# ---------------------------------------------------------------- resources (ntkvae.plan)
# The heavy jobs' mem_mb, runtime and gpu come from the plan of this config, the numbers that
# `python -m ntkvae.plan` prints (docs/deployment.md, section 5). Planning here, before any job
# starts, also refuses a config with a training job whose single seed does not fit its device.
try:
    plan.plan_for_workflow(config)
except plan.PlanError as err:
    raise WorkflowError(str(err)) from None


def planned(rule_name, key, **fixed):
    """Resource function: `key` of the planned job of rule `rule_name` (grown with Snakemake's
    attempt); `fixed`: wildcards the rule does not have (a batched job's first run)."""

    def resource(wildcards, attempt):
        return plan.job_resources(config, rule_name, attempt, **dict(wildcards.items()), **fixed)[key]

    resource.__name__ = f"{rule_name}_{key}"
    return resource


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
    # A failure, a recorded divergence or a file that could not be checked: a warning (in colour).
    loud = failed or found.divergences or found.unreadable
    (logger.warning if loud else logger.info)(text)


# ---------------------------------------------------------------- report
# Snakemake's embeddedfigure directive (report/workflow.rst shows each figure with it) does not
# embed in Snakemake 9; src/ntkvae/report_embed.py registers a working one.
from ntkvae import report_embed  # noqa: E402

report_embed.register()
