"""The claims table, computed from the workflow's HDF5 files (never written by hand).

Each row is one theoretical claim on one dataset: the quantity measured, the value the
theory predicts, the tolerance, the verdict and the figure that shows it. A claim whose
inputs are absent (a sweep switched off, kernels not computed) is listed as "not evaluated"
with the reason, so the table never silently drops a claim. The numbers come from
ntkvae.results, the same code the figures use. `python -m ntkvae.claims` is the CLI.
"""

from __future__ import annotations

from ..results.runs import load_runs, recorded_divergences
from . import theory, training
from .table import FAILS, HOLDS, INCONCLUSIVE, NOT_EVALUATED, Claim, verdict, write_html, write_md, write_tsv

__all__ = ["Claim", "FAILS", "HOLDS", "INCONCLUSIVE", "NOT_EVALUATED", "compute", "divergences", "verdict",
           "write_html", "write_md", "write_tsv"]


def compute(train_paths, settings, datasets, kernel_paths=(), data_paths=()) -> list[Claim]:
    runs = load_runs(train_paths)
    claims = []
    for dataset in datasets:
        for fn in training.TRAINING_CLAIMS:
            claims.extend(fn(runs, dataset, settings))
        claims.extend(theory.claims(runs, kernel_paths, dataset, settings, data_paths))
    return claims


def divergences(train_paths) -> list[tuple[str, str, int, int, int]]:
    """Every recorded divergence among the training files (dataset, run, width, seed, step)."""
    return recorded_divergences(load_runs(train_paths))
