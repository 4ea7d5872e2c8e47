"""Time one training step against the matrix multiplications it must do.

    python benchmarks/bench_train.py [--widths 256 512 1024 2048 4096] [--n 256] [--d 64] [--seeds 1]

For each width, the step time is measured inside the jitted, scanned chunk the training
job uses (so dispatch is amortised as in a real run), and compared with a jitted function
doing only the same matrix products with the same shapes and dtype: the forward pass's
five products and the backward pass's products (weight gradients and back-propagated
vectors; the frozen Wsigma's weight gradient is left out, as XLA drops it in training
too). The ratio step / matmuls is the overhead of everything else (activations, noise,
optimizer update, loss).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from ntkvae import model as M
from ntkvae.training import Settings, Trainer


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return min(times)


def matmul_fn(n: int, d: int, m: int, mz: int, train_sigma: bool):
    """The step's matrix products: forward, back-propagated vectors and weight gradients."""
    k = jax.random.split(jax.random.PRNGKey(0), 8)
    x, dout = jax.random.normal(k[0], (n, d)), jax.random.normal(k[1], (n, d))
    h1, h3 = jax.random.normal(k[2], (n, m)), jax.random.normal(k[3], (n, m))
    z = jax.random.normal(k[4], (n, mz))
    W1, W4 = jax.random.normal(k[5], (m, d)), jax.random.normal(k[6], (d, m))
    Wz, W3 = jax.random.normal(k[7], (mz, m)), jax.random.normal(k[7], (m, mz))

    @jax.jit
    def products(x, h1, z, h3, dout, W1, Wz, W3, W4):
        outs = [x @ W1.T, h1 @ Wz.T, h1 @ Wz.T, z @ W3.T, h3 @ W4.T]          # forward
        dh3 = dout @ W4                                                          # backward
        dz = dh3 @ W3
        dh1 = dz @ Wz + dz @ Wz
        grads = [dout.T @ h3, dh3.T @ z, dz.T @ h1, dh1.T @ x] + ([dz.T @ h1] if train_sigma else [])
        return sum(jnp.sum(o) for o in outs + grads + [dh1])

    args = (x, h1, z, h3, dout, W1, Wz, W3, W4)
    return lambda: products(*args)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--widths", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--steps", type=int, default=10, help="steps per timed chunk")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    x = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (args.n, args.d)), np.float32)
    arch = M.Architecture()
    print(f"device: {jax.devices()[0].device_kind}, n={args.n}, d={args.d}, seeds={args.seeds}, float32")
    print(f"{'width':>6} {'step ms':>9} {'matmuls ms':>11} {'ratio':>6} {'GFLOP/s':>8}")
    for m in args.widths:
        settings = Settings(steps=args.steps, seeds=tuple(range(args.seeds)), log_every=args.steps)
        trainer = Trainer(arch, m, settings, x)
        state = trainer.init_state()
        trainer.run_chunk(state, args.steps)                       # compile
        step = best_of(lambda: trainer.run_chunk(state, args.steps), args.repeats) / args.steps
        mm = matmul_fn(args.n, args.d, m, arch.latent_dim(m), settings.train_sigma)
        mm()
        matmuls = best_of(mm, args.repeats) * args.seeds
        mz = arch.latent_dim(m)
        flops = 2 * args.n * (5 * args.d * m + 8 * m * mz) * args.seeds
        print(f"{m:>6} {step * 1e3:>9.2f} {matmuls * 1e3:>11.2f} {step / matmuls:>6.2f} {flops / step / 1e9:>8.1f}")


if __name__ == "__main__":
    main()
