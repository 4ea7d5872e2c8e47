"""JAX on a shared machine: GPU memory policy and a description of the device a job ran on.

By default JAX grabs 75% of a GPU's memory when its backend starts. On a workstation where
`snakemake --cores all` runs one GPU job (profiles/default limits the `gpu` resource to one
job per card) beside CPU jobs that may also import JAX, that preallocation starves the
others. Every CLI calls `configure_gpu_memory()` before JAX starts its backend: unless the
user chose a policy through XLA's own variables, preallocation is turned off and a process
takes only what it uses.
"""

from __future__ import annotations

import os
from typing import MutableMapping

# XLA's variables for the GPU allocator; if any is set, the user's choice stands.
MEMORY_VARIABLES = ("XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION", "XLA_CLIENT_MEM_FRACTION",
                    "XLA_PYTHON_CLIENT_ALLOCATOR")


def configure_gpu_memory(environ: MutableMapping[str, str] = os.environ) -> str:
    """Turn JAX's GPU memory preallocation off unless the user set a policy; returns which applies.

    Must run before JAX initializes a backend (the first jax.devices() or array operation);
    importing jax is fine."""
    chosen = [name for name in MEMORY_VARIABLES if name in environ]
    if chosen:
        return "set by the user: " + ", ".join(f"{n}={environ[n]}" for n in chosen)
    environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    return "preallocation off (XLA_PYTHON_CLIENT_PREALLOCATE=false)"


def describe_device(device) -> str:
    """'platform:kind' of a JAX device, e.g. 'gpu:NVIDIA H100 80GB HBM3' or 'cpu:cpu'."""
    return f"{device.platform}:{device.device_kind}"
