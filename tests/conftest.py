"""Shared fixtures: the repository root, a reference NumPy model, small datasets."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest
from scipy import special

ROOT = pathlib.Path(__file__).resolve().parents[1]

# The tests never use a GPU or the network.
os.environ.setdefault("JAX_PLATFORMS", "cpu")


@pytest.fixture(autouse=True)
def _restore_environment():
    """Tests that run a CLI in-process (train.main sets XLA_PYTHON_CLIENT_PREALLOCATE, as a job
    should) must not hand their environment to the subprocesses of later tests."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def root() -> pathlib.Path:
    return ROOT


NUMPY_ACTIVATIONS = {
    "erf": special.erf,
    "relu": lambda u: np.maximum(u, 0.0),
    "tanh": np.tanh,
    "softplus": lambda u: np.logaddexp(0.0, u),
    "gelu": lambda u: 0.5 * u * (1.0 + special.erf(u / np.sqrt(2.0))),
}


def numpy_forward(params: dict, x: np.ndarray, eps: np.ndarray, activation: str = "erf", weight_std: float = 1.0,
                  bias_std: float | None = None) -> np.ndarray:
    """An independent NumPy implementation of SPEC section 2, written from the formulas."""
    phi = NUMPY_ACTIVATIONS[activation]
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    x = np.asarray(x, np.float64)
    d, m, mz = x.shape[1], p["W1"].shape[0], p["Wmu"].shape[0]

    def b(name):
        return bias_std * p[name] if bias_std is not None else 0.0

    out = []
    for i in range(x.shape[0]):
        h1 = phi(weight_std * p["W1"].dot(x[i]) / np.sqrt(d) + b("b1"))
        mu = weight_std * p["Wmu"].dot(h1) / np.sqrt(m) + b("bmu")
        s = weight_std * p["Wsigma"].dot(h1) / np.sqrt(m) + b("bsigma")
        z = mu + np.exp(s / 2.0) * eps[i]
        h3 = phi(weight_std * p["W3"].dot(z) / np.sqrt(mz) + b("b3"))
        out.append(weight_std * p["W4"].dot(h3) / np.sqrt(m) + b("b4"))
    return np.array(out)


def normalized_inputs(n: int, d: int, seed: int = 0, dtype=np.float32) -> np.ndarray:
    """Random inputs with L2 norm sqrt(d), as the data rule writes them (float32); the kernel
    tests ask for float64, where the norms are equal to rounding."""
    x = np.random.default_rng(seed).normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True) * np.sqrt(d)).astype(dtype)
