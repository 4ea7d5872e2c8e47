"""ntkvae: over-parameterized stochastic VAEs seen through the neural tangent kernel.

One concept per module: `model` (the network), `objectives`, `training`, `datasets`,
`io` (HDF5 with provenance), `config` (schema validation); the `python -m ntkvae.<step>`
modules (`prepare_data`, `train`, `plot`) are the workflow's command-line steps.
"""

__version__ = "0.1.0"
