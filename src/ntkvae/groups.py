"""The parameter groups of the VAE: names and shapes, defined once (no JAX).

`model.py` builds its parameters from these shapes, `kernels` and `empirical_ntk` return one
kernel per group under these names, and the figures and claims (`results/measures.py`) count
weights from them without importing JAX.
"""

from __future__ import annotations

import math

# Weight groups in forward order (x -> h1 -> mu, s -> z -> h3 -> xhat); the public group names.
WEIGHT_GROUPS = ("W1", "Wmu", "Wsigma", "W3", "W4")
BIAS_GROUPS = ("b1", "bmu", "bsigma", "b3", "b4")
# The bias group of each weight group (the same layer).
BIAS_OF = dict(zip(WEIGHT_GROUPS, BIAS_GROUPS))
# The log-variance layer s: frozen by `train_sigma: false`; its gradient is the noise's, so its
# kernel lives on the same-example diagonal only.
SIGMA_GROUPS = ("Wsigma", BIAS_OF["Wsigma"])


def group_names(bias: bool) -> tuple[str, ...]:
    """Every parameter group: the weights, then the biases when the model has them."""
    return WEIGHT_GROUPS + (BIAS_GROUPS if bias else ())


def param_shapes(d: int, width: int, latent_width: int, bias: bool) -> dict[str, tuple[int, ...]]:
    """Shapes of every parameter for input dimension d, hidden width m and latent width m_z;
    weights are (fan_out, fan_in)."""
    m, mz, d = int(width), int(latent_width), int(d)
    shapes = {"W1": (m, d), "Wmu": (mz, m), "Wsigma": (mz, m), "W3": (m, mz), "W4": (d, m)}
    if bias:
        shapes.update({"b1": (m,), "bmu": (mz,), "bsigma": (mz,), "b3": (m,), "b4": (d,)})
    return shapes


def param_count(group: str, width: int, d: int, latent_width: int) -> int:
    """Number of parameters of one group (weight or bias) at hidden width m, input dimension d
    and latent width m_z."""
    return math.prod(param_shapes(d, width, latent_width, bias=True)[group])
