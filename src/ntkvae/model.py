"""The over-parameterized stochastic VAE of SPEC section 2, in NTK parameterization.

Parameters are a plain dict pytree of arrays, all initialized N(0, 1); the scale
sigma_w / sqrt(fan_in) is applied in the forward pass (NTK parameterization), so the
same weights define the finite network and, as width grows, the kernel of
`ntkvae.kernels`. Inputs are rows: x has shape (n, d).

    h1 = phi(sigma_w W1 x / sqrt(d))
    mu = sigma_w Wmu h1 / sqrt(m),   s = sigma_w Wsigma h1 / sqrt(m)
    z  = mu + exp(s / 2) * eps,      eps ~ N(0, I), fresh per example
    h3 = phi(sigma_w W3 z / sqrt(m_z))
    xhat = sigma_w W4 h3 / sqrt(m)

With `bias: true` each pre-activation gets `+ bias_std * b`, b ~ N(0, 1).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Mapping

import jax
import jax.extend.random
import jax.numpy as jnp
import numpy as np

from . import groups as G
from . import threefry
from .groups import BIAS_GROUPS, WEIGHT_GROUPS  # noqa: F401  (the group names, defined in groups.py)

threefry.use_unrolled_on_cpu()   # compile time: see threefry.py (same bits)

ACTIVATIONS: dict[str, Callable] = {
    "erf": jax.scipy.special.erf,
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "softplus": jax.nn.softplus,
    "gelu": lambda u: jax.nn.gelu(u, approximate=False),
}


@dataclasses.dataclass(frozen=True)
class Architecture:
    """The `model` section of the config, less the width list."""

    activation: str = "erf"
    weight_std: float = 1.0
    bias: bool = False
    bias_std: float = 0.1
    latent_width: str | int = "same"

    @classmethod
    def from_config(cls, model: Mapping) -> "Architecture":
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in model.items() if k in fields})

    def latent_dim(self, width: int) -> int:
        """m_z: equal to the hidden width ("same") or a fixed integer."""
        return int(width) if self.latent_width == "same" else int(self.latent_width)

    @property
    def phi(self) -> Callable:
        return ACTIVATIONS[self.activation]

    def groups(self) -> tuple[str, ...]:
        return G.group_names(self.bias)


def param_shapes(arch: Architecture, d: int, width: int) -> dict[str, tuple[int, ...]]:
    """Shapes of every parameter; weights are (fan_out, fan_in)."""
    return G.param_shapes(d, width, arch.latent_dim(width), arch.bias)


def init_params(key: jax.Array, arch: Architecture, d: int, width: int, dtype=jnp.float32) -> dict:
    """All parameters N(0, 1), one independent key per group (stable under adding groups):
    group i (in name order) is jax.random.normal(fold_in(key, i), shape), bit for bit."""
    shapes = dict(sorted(param_shapes(arch, d, width).items()))
    keys = [jax.random.fold_in(key, i) for i in range(len(shapes))]
    if jnp.dtype(dtype) == jnp.float32:
        fused = _normal_per_key(keys, list(shapes.values()))
        if fused is not None:
            return dict(zip(shapes, fused))
    return {name: jax.random.normal(k, shape, dtype) for k, (name, shape) in zip(keys, shapes.items())}


def _normal_per_key(keys, shapes) -> list[jax.Array] | None:
    """jax.random.normal(keys[i], shapes[i]) for every i, float32, as one threefry hash and one
    normal map over all the draws' elements (compile time: one fused loop instead of one per
    group, which XLA compiled in seconds each at tiny shapes). JAX's partitionable threefry
    hashes element j of a draw as threefry(key, (hi, lo) words of j) and keeps the xor of the
    two output words; the uniform-to-normal map is jax.random.normal's (as in standard_normal).
    None where that scheme is not JAX's (jax_threefry_partitionable off, or a JAX without the
    primitive): then the caller draws group by group. tests/test_model.py checks the bits."""
    if not jax.config.jax_threefry_partitionable:
        return None
    try:
        from jax._src.random.threefry2x32 import threefry2x32_p
    except ImportError:
        return None
    sizes = [math.prod(shape) for shape in shapes]
    if sum(sizes) >= 2**32:
        return None
    raw = [jax.random.key_data(k) if jnp.issubdtype(k.dtype, jax.dtypes.prng_key) else k for k in keys]
    k1 = jnp.concatenate([jnp.full((size,), k[0], jnp.uint32) for k, size in zip(raw, sizes)])
    k2 = jnp.concatenate([jnp.full((size,), k[1], jnp.uint32) for k, size in zip(raw, sizes)])
    lo = jnp.concatenate([jax.lax.iota(jnp.uint32, size) for size in sizes])
    bits1, bits2 = threefry2x32_p.bind(k1, k2, jnp.zeros_like(lo), lo)
    bits = bits1 ^ bits2
    unit = jax.lax.bitcast_convert_type((bits >> 9) | _ONE_BITS, jnp.float32) - 1.0    # [0, 1)
    uniform = jnp.maximum(_LOW, unit * (1.0 - _LOW) + _LOW)                            # [-1, 1) without -1
    normal = np.float32(np.sqrt(2.0)) * jax.lax.erf_inv(uniform)
    offsets = np.cumsum([0] + sizes)
    return [normal[a:b].reshape(shape) for a, b, shape in zip(offsets[:-1], offsets[1:], shapes)]


def _dense(params: Mapping, w: str, b: str, inputs: jax.Array, arch: Architecture) -> jax.Array:
    # One scalar multiply of the product (not of the input and the output).
    out = (inputs @ params[w].T) * (arch.weight_std / math.sqrt(inputs.shape[-1]))
    if arch.bias:
        out = out + arch.bias_std * params[b]
    return out


def encode(params: Mapping, x: jax.Array, arch: Architecture) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Encoder: returns (h1, mu, s) with s the log-variance of q(z|x)."""
    h1 = arch.phi(_dense(params, "W1", "b1", x, arch))
    mu = _dense(params, "Wmu", "bmu", h1, arch)
    s = _dense(params, "Wsigma", "bsigma", h1, arch)
    return h1, mu, s


def decode(params: Mapping, z: jax.Array, arch: Architecture) -> jax.Array:
    """Decoder: latent z (n, m_z) to reconstruction (n, d), linear output."""
    h3 = arch.phi(_dense(params, "W3", "b3", z, arch))
    return _dense(params, "W4", "b4", h3, arch)


def forward(params: Mapping, x: jax.Array, eps: jax.Array, arch: Architecture) -> dict[str, jax.Array]:
    """Full stochastic forward pass with given noise eps (n, m_z) (reparameterization)."""
    _, mu, s = encode(params, x, arch)
    z = mu + jnp.exp(0.5 * s) * eps
    return {"xhat": decode(params, z, arch), "mu": mu, "logvar": s, "z": z}


def sample_noise(key: jax.Array, n: int, arch: Architecture, width: int, dtype=jnp.float32) -> jax.Array:
    """Fresh standard normal noise, one independent row per example."""
    shape = (n, arch.latent_dim(width))
    return standard_normal(key, shape) if jnp.dtype(dtype) == jnp.float32 else jax.random.normal(key, shape, dtype)


_ONE_BITS = np.uint32(0x3F800000)                              # 1.0f: exponent bits of [1, 2)
_LOW = np.nextafter(np.float32(-1.0), np.float32(0.0))         # open interval for erf_inv, as jax.random.normal


def standard_normal(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """float32 N(0, 1) draws from a raw key: threefry-2x32 on a counter, both words of each hash used.

    jax.random.normal (threefry in JAX's default "partitionable" mode) hashes once per
    32-bit output and keeps one word of the two; this is JAX's original counter scheme, one
    hash per two outputs: at (256, 1024) 2.8 ms instead of 5.0 ms on the development
    machine, as much as one of the training step's eight large matrix products. The
    uniform-to-normal map is jax.random.normal's (sqrt(2) erf_inv on (-1, 1)). The draw
    depends on the key and the shape only (not on vmap or the device), like jax.random's."""
    size = math.prod(shape)
    key = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    bits = jax.extend.random.threefry_2x32((key[0], key[1]), jax.lax.iota(jnp.uint32, size))
    unit = jax.lax.bitcast_convert_type((bits >> 9) | _ONE_BITS, jnp.float32) - 1.0   # [0, 1)
    uniform = jnp.maximum(_LOW, unit * (1.0 - _LOW) + _LOW)                           # [-1, 1) without -1
    return (np.float32(np.sqrt(2.0)) * jax.lax.erf_inv(uniform)).reshape(shape)


def mean_output(params: Mapping, x: jax.Array, key: jax.Array, arch: Architecture, width: int, samples: int) -> jax.Array:
    """Monte-Carlo estimate of the noise-averaged output E_eps[xhat(x; eps)]."""
    _, mu, s = encode(params, x, arch)
    sd = jnp.exp(0.5 * s)

    def one(k):
        eps = sample_noise(k, x.shape[0], arch, width, x.dtype)
        return decode(params, mu + sd * eps, arch)

    return jnp.mean(jax.lax.map(one, jax.random.split(key, samples)), axis=0)
