"""Every result path the workflow writes, named once: format it, parse it, or hand its pattern to
Snakemake.

    TRAIN.format(dataset="digits", run="mse", width=64)   -> "results/train/digits/mse/w64.h5"
    TRAIN.parse("/tmp/wf/results/train/digits/mse/w64.h5") -> {"dataset": "digits", "run": "mse", "width": 64}
    TRAIN.pattern                                          -> "results/train/{dataset}/{run}/w{width}.h5"
    FIGURE.partial(number=1, topic="convergence", ext="pdf") -> "results/figures/f1_convergence_{dataset}.pdf"

A pattern's wildcards obey the shapes in WILDCARDS (a dataset or activation name has no
underscore, so "f1_convergence_digits" splits one way only). `parse` accepts the path relative to
the working directory or with any leading directories before `results/` (absolute paths, a
workflow copied to a temporary directory) and returns None for anything else, including paths that
only look alike (another extension, another depth, another kind). No Snakemake, no numpy.
"""

from __future__ import annotations

import dataclasses
import os
import re
import string

RESULTS = "results"

# The shape of each wildcard (a regular expression). Run names follow the config schema's
# runs.propertyNames; widths and figure numbers are plain integers.
WILDCARDS = {
    "dataset": r"[a-z][a-z0-9]*",
    "activation": r"[a-z][a-z0-9]*",
    "run": r"[A-Za-z0-9_][A-Za-z0-9_.-]*",
    "width": r"\d+",
    "seeds": r"\d+(?:-\d+)*",
    "batch": r"train_batch\d+",    # a batched training job's rule (planning.training_batches)
    "number": r"\d+",
    "topic": r"[a-z][a-z0-9_]*",
    "ext": r"pdf|png",
}
INTEGER_WILDCARDS = ("width", "number")


@dataclasses.dataclass(frozen=True)
class ResultPath:
    """One kind of result file: a pattern with {wildcards} below results/."""

    pattern: str

    @property
    def wildcards(self) -> tuple[str, ...]:
        return tuple(name for _, name, _, _ in string.Formatter().parse(self.pattern) if name)

    def format(self, **wildcards) -> str:
        """The path for these wildcard values (each checked against its shape)."""
        if set(wildcards) != set(self.wildcards):
            raise ValueError(f"{self.pattern}: needs {sorted(self.wildcards)}, got {sorted(wildcards)}")
        for name, value in wildcards.items():
            if not re.fullmatch(WILDCARDS[name], str(value)):
                raise ValueError(f"{self.pattern}: {name}={value!r} does not match {WILDCARDS[name]}")
        return self.pattern.format(**wildcards)

    def partial(self, **wildcards) -> str:
        """The pattern with some wildcards filled and the others left as {name} (for Snakemake)."""
        unknown = set(wildcards) - set(self.wildcards)
        if unknown:
            raise ValueError(f"{self.pattern}: no wildcard {sorted(unknown)}")
        keep = {name: "{" + name + "}" for name in self.wildcards if name not in wildcards}
        for name, value in wildcards.items():
            if not re.fullmatch(WILDCARDS[name], str(value)):
                raise ValueError(f"{self.pattern}: {name}={value!r} does not match {WILDCARDS[name]}")
        return self.pattern.format(**wildcards, **keep)

    @property
    def regex(self) -> re.Pattern:
        parts = []
        for literal, name, _, _ in string.Formatter().parse(self.pattern):
            parts.append(re.escape(literal))
            if name:
                parts.append(f"(?P<{name}>{WILDCARDS[name]})")
        return re.compile(r"(?:.*/)?" + "".join(parts))

    def parse(self, path) -> dict | None:
        """The wildcards of `path` if it is a file of this kind, else None."""
        text = os.fspath(path).replace(os.sep, "/")
        match = self.regex.fullmatch(text)
        if match is None:
            return None
        values = match.groupdict()
        return {k: int(v) if k in INTEGER_WILDCARDS else v for k, v in values.items()}


# Data (rules/data.smk)
DATA = ResultPath(f"{RESULTS}/data/{{dataset}}.h5")
TFDS_RECORD = ResultPath(f"{RESULTS}/data/tfds/{{dataset}}.json")
# Training (rules/train.smk): one file per (dataset, run, width), every seed inside.
TRAIN = ResultPath(f"{RESULTS}/train/{{dataset}}/{{run}}/w{{width}}.h5")
CHECKPOINT = ResultPath(f"{RESULTS}/checkpoints/{{dataset}}/{{run}}/w{{width}}.npz")
# A training job too large for its device, split by seed (ntkvae.plan): one part file per
# A batched training job (rule train_batch<k>: several runs of one width in one job) keeps
# one log, benchmark and checkpoint under the rule's name.
TRAIN_BATCH_CHECKPOINT = ResultPath(f"{RESULTS}/checkpoints/batches/{{dataset}}/{{batch}}/w{{width}}.npz")
TRAIN_BATCH_LOG = ResultPath(f"{RESULTS}/logs/train_batches/{{dataset}}/{{batch}}/w{{width}}.log")
TRAIN_BATCH_BENCHMARK = ResultPath(f"{RESULTS}/benchmarks/train_batches/{{dataset}}/{{batch}}/w{{width}}.tsv")
# group of seeds (seeds "0-1-2"), joined into TRAIN by the train rule.
TRAIN_PART = ResultPath(f"{RESULTS}/train/{{dataset}}/{{run}}/w{{width}}/seeds{{seeds}}.h5")
TRAIN_PART_CHECKPOINT = ResultPath(f"{RESULTS}/checkpoints/{{dataset}}/{{run}}/w{{width}}/seeds{{seeds}}.npz")
# Infinite-width kernels (rules/kernels.smk): one per (dataset, activation); predictions per run.
KERNEL = ResultPath(f"{RESULTS}/kernels/{{dataset}}/{{activation}}.h5")
PREDICTION = ResultPath(f"{RESULTS}/kernels/{{dataset}}/{{run}}/prediction.h5")
# Figures (rules/figures.smk): f<number>_<topic>_<dataset>.<ext>
FIGURE = ResultPath(f"{RESULTS}/figures/f{{number}}_{{topic}}_{{dataset}}.{{ext}}")
# The report's other entries (rules/report.smk) and the report itself (snakemake --report).
CLAIMS_MD = ResultPath(f"{RESULTS}/claims.md")
CLAIMS_TSV = ResultPath(f"{RESULTS}/claims.tsv")
CLAIMS_HTML = ResultPath(f"{RESULTS}/claims.html")
PROVENANCE = ResultPath(f"{RESULTS}/provenance.yaml")
PROVENANCE_HTML = ResultPath(f"{RESULTS}/provenance.html")
REPORT = ResultPath(f"{RESULTS}/report.html")
# Logs and benchmarks, one per job.
DATA_LOG = ResultPath(f"{RESULTS}/logs/data/{{dataset}}.log")
FETCH_LOG = ResultPath(f"{RESULTS}/logs/data/fetch_{{dataset}}.log")
TRAIN_LOG = ResultPath(f"{RESULTS}/logs/train/{{dataset}}/{{run}}/w{{width}}.log")
TRAIN_PART_LOG = ResultPath(f"{RESULTS}/logs/train/{{dataset}}/{{run}}/w{{width}}/seeds{{seeds}}.log")
KERNEL_LOG = ResultPath(f"{RESULTS}/logs/kernels/{{dataset}}/{{activation}}.log")
PREDICTION_LOG = ResultPath(f"{RESULTS}/logs/kernels/{{dataset}}/{{run}}/prediction.log")
FIGURE_LOG = ResultPath(f"{RESULTS}/logs/figures/f{{number}}_{{topic}}_{{dataset}}.log")
CLAIMS_LOG = ResultPath(f"{RESULTS}/logs/claims.log")
PROVENANCE_LOG = ResultPath(f"{RESULTS}/logs/provenance.log")
TRAIN_BENCHMARK = ResultPath(f"{RESULTS}/benchmarks/train/{{dataset}}/{{run}}/w{{width}}.tsv")
TRAIN_PART_BENCHMARK = ResultPath(f"{RESULTS}/benchmarks/train/{{dataset}}/{{run}}/w{{width}}/seeds{{seeds}}.tsv")
KERNEL_BENCHMARK = ResultPath(f"{RESULTS}/benchmarks/kernels/{{dataset}}/{{activation}}.tsv")
PREDICTION_BENCHMARK = ResultPath(f"{RESULTS}/benchmarks/kernels/{{dataset}}/{{run}}/prediction.tsv")
FIGURE_BENCHMARK = ResultPath(f"{RESULTS}/benchmarks/figures/f{{number}}_{{topic}}_{{dataset}}.tsv")

ALL = {name: value for name, value in globals().items() if isinstance(value, ResultPath)}


def kind_of(path) -> tuple[str, dict] | None:
    """(name in ALL, wildcards) of the one kind `path` is, or None."""
    found = [(name, w) for name, kind in ALL.items() if (w := kind.parse(path)) is not None]
    if len(found) > 1:   # the shapes in WILDCARDS are chosen so that this cannot happen (tested)
        raise ValueError(f"{path}: matches {[name for name, _ in found]}")
    return found[0] if found else None


# One function per kind, for readers: parse_kernel(path) -> {"dataset", "activation"} or None.
def parse_data(path):
    return DATA.parse(path)


def parse_train(path):
    return TRAIN.parse(path)


def parse_kernel(path):
    return KERNEL.parse(path)


def parse_prediction(path):
    return PREDICTION.parse(path)


def parse_figure(path):
    return FIGURE.parse(path)
