"""Reading the infinite-width kernel files and the empirical-NTK probes (numpy only).

Kernel files (rules/kernels.smk): results/kernels/<dataset>/<activation>.h5 with
theta_inf/<group> (n, n) for W1, Wmu, Wsigma, W3, W4 and total, eigenvalues (n,),
eigenvectors (n, n), lambda0 and krr/...; training files carry ntk/probe_index (p,),
ntk/init/<group> and ntk/final/<group> (seeds, p, p).
"""

from __future__ import annotations

import pathlib


def kernel_file_for(kernel_paths, dataset: str, activation: str | None = None):
    """The kernel file of `dataset` (and `activation`, if given) among `kernel_paths`, or None."""
    for path in kernel_paths or ():
        p = pathlib.Path(path)
        if p.parent.name == dataset and (activation is None or p.stem == activation):
            return str(p)
    return None


def has_probes(run) -> bool:
    return "ntk" in run.data and "init" in run.data["ntk"] and "final" in run.data["ntk"]
