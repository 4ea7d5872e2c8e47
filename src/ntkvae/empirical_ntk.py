"""The empirical stochastic NTK Theta_m of the finite network of `model.py` (docs/theory.md, section 2).

`theta_m(params, x, arch, width, key, samples)` averages over noise draws, per parameter group,
the layer-wise structured form Theta_l = (A_l A_l^T / fan_in) o (B_l B_l^T) (forward
activations A_l, backpropagated vectors B_l), never materializing a Jacobian. Its infinite-width
limit is `kernels.theta_inf`; the noise convention is the same (two examples carry independent
noise, the diagonal is one example with one noise draw).
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np

from . import model as M


def output_coordinates(d: int, outputs: int | None) -> np.ndarray:
    """The output coordinates whose kernels Theta_m averages: all d, or `outputs` evenly spaced."""
    if outputs is None or outputs >= d:
        return np.arange(d)
    return np.unique(np.linspace(0, d - 1, int(outputs)).round().astype(int))


def _structured_sample(params, x, eps, arch: M.Architecture, coords, cache):
    """Per-group kernels of one noise draw, averaged over the output coordinates `coords`.

    For a layer y = sw W a / sqrt(fan_in), d(xhat_j)/dW = (sw / sqrt(fan_in)) B_j a^T with
    B_j = d(xhat_j)/dy, so <d xhat_j(x)/dW, d xhat_j(x')/dW> = (sw^2 a.a'/fan_in) (B_j(x).B_j(x')).
    Summing over j is one matrix product of the (n, k*fan_out) stacked backward vectors.
    """
    sw, sb, phi = arch.weight_std, (arch.bias_std if arch.bias else 0.0), arch.phi
    dphi = jax.vmap(jax.vmap(jax.grad(phi)))
    h1, dh1, mu, s, x_gram, h1_gram = cache
    n = x.shape[0]
    m, mz = params["W1"].shape[0], params["Wmu"].shape[0]
    k = coords.shape[0]
    sd = jnp.exp(0.5 * s)
    z = mu + sd * eps
    g3 = sw * z @ params["W3"].T / jnp.sqrt(mz) + (sb * params["b3"] if arch.bias else 0.0)
    h3, dh3 = phi(g3), dphi(g3)
    # Backward vectors for every chosen output coordinate j, stacked as (k, n, .).
    b3 = (sw / jnp.sqrt(m)) * params["W4"][coords][:, None, :] * dh3[None]            # d xhat_j / d g3
    bz = (sw / jnp.sqrt(mz)) * b3 @ params["W3"]                                         # d xhat_j / d mu
    bs = bz * (0.5 * sd * eps)[None]                                                     # d xhat_j / d s
    b1 = (sw / jnp.sqrt(m)) * (bz @ params["Wmu"] + bs @ params["Wsigma"]) * dh1[None]  # d xhat_j / d g1

    def gram_of(b):  # (1/k) sum_j B_j B_j^T
        flat = jnp.moveaxis(b, 0, 1).reshape(n, -1)
        return flat @ flat.T / k

    gb3, gbz, gbs, gb1 = gram_of(b3), gram_of(bz), gram_of(bs), gram_of(b1)
    out = {
        "W4": sw * sw * h3 @ h3.T / m,
        "W3": (sw * sw * z @ z.T / mz) * gb3,
        "Wmu": h1_gram * gbz,
        "Wsigma": h1_gram * gbs,
        "W1": x_gram * gb1,
    }
    if arch.bias:
        sb2 = sb * sb
        out.update({"b4": sb2 * jnp.ones((n, n), x.dtype), "b3": sb2 * gb3, "bmu": sb2 * gbz, "bsigma": sb2 * gbs,
                    "b1": sb2 * gb1})
    return out


def theta_m_groups(params, x, arch, key, samples: int, coords):
    """Per-group kernels averaged over `samples` noise draws, as a traceable function (`theta_m`
    jits it; the training job folds it into its final program)."""
    sw = arch.weight_std
    dphi = jax.vmap(jax.vmap(jax.grad(arch.phi)))
    d = x.shape[1]
    m, mz = params["W1"].shape[0], params["Wmu"].shape[0]
    g1 = sw * x @ params["W1"].T / jnp.sqrt(d) + (arch.bias_std * params["b1"] if arch.bias else 0.0)
    h1, dh1 = arch.phi(g1), dphi(g1)
    _, mu, s = M.encode(params, x, arch)
    cache = (h1, dh1, mu, s, sw * sw * x @ x.T / d, sw * sw * h1 @ h1.T / m)

    def body(acc, k):
        eps = jax.random.normal(k, (x.shape[0], mz), x.dtype)
        res = _structured_sample(params, x, eps, arch, coords, cache)
        return jax.tree.map(jnp.add, acc, res), None

    zero = {g: jnp.zeros((x.shape[0], x.shape[0]), x.dtype) for g in arch.groups()}
    acc, _ = jax.lax.scan(body, zero, jax.random.split(key, samples))
    return jax.tree.map(lambda v: v / samples, acc)


_theta_m_jit = jax.jit(theta_m_groups, static_argnames=("arch", "samples"))


def theta_m(params, x, arch, width: int, key, samples: int, *, outputs: int | None = None) -> dict[str, np.ndarray]:
    """Empirical stochastic NTK of a finite network, per group and total, averaged over `samples` noise draws.

    Each draw gives every example its own eps (independent between examples; the diagonal
    is the same example with the same eps), exactly the convention of `kernels.theta_inf(x)`. The
    kernel is per output coordinate: the mean over the output coordinates chosen by
    `outputs` (None: all d, the exact trace / d) of <d xhat_j(x)/d theta, d xhat_j(x')/d theta>.
    Computed in the dtype of x (float32 for the training network).
    """
    arch = arch if isinstance(arch, M.Architecture) else M.Architecture.from_config(arch)
    del width  # the width is carried by the parameter shapes
    x = jnp.asarray(x, params["W1"].dtype)
    coords = jnp.asarray(output_coordinates(x.shape[1], outputs))
    res = _theta_m_jit(params, x, arch, key, int(samples), coords)
    out = {g: np.asarray(v) for g, v in res.items()}
    out["total"] = sum(out.values())
    return out
