"""Time one training step against the matrix products it must do, in the same run.

    python benchmarks/bench_train.py [--widths 256 512 1024 2048] [--n 256] [--d 64] [--seeds 1]
                                     [--lanes loop|batched] [--repeats 7]

For each width, the step time is measured inside the jitted, scanned chunk the training job
uses (so dispatch is amortised as in a real run), and compared with a jitted function doing
only the step's matrix products with the same shapes and dtype (float32): the forward pass's
five products and the backward pass's eight (weight gradients of the trained groups and
back-propagated vectors; the frozen Wsigma has no weight gradient, since the step does not
differentiate it). The other columns time, alone, what the step does besides the products:
its noise draw (n x m_z normals) and its update (one pass over the trained parameters).
ratio = step / products is the overhead of everything else (activations, noise, update, loss).

Each quantity is timed `repeats` times, interleaved (step, products, noise, update, step,
...), and the best of each is kept, so that a load that comes and goes hits all of them
alike; the load average before and after is printed with the table. CPU seconds (process
time, all threads) are given beside the wall time: on a shared machine their ratio is the
more stable one.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from ntkvae import model as M
from ntkvae.training import Settings, Trainer


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one call, completed."""
    w0, c0 = time.perf_counter(), time.process_time()
    jax.block_until_ready(fn())
    return time.perf_counter() - w0, time.process_time() - c0


def matmul_fn(n: int, d: int, m: int, mz: int, train_sigma: bool):
    """The step's matrix products: forward, back-propagated vectors and weight gradients.

    Every product has its own operands (Wmu and Wsigma, and the cotangents of mu and s, are
    different arrays): XLA merges identical expressions, so a baseline that reused one
    matrix for both heads did 6 of the step's 8 m x m_z products (until 2026-12-02; the step
    over products ratios measured before then are about 8/6 too high at m >= 1024)."""
    k = jax.random.split(jax.random.PRNGKey(0), 12)
    x, dout = jax.random.normal(k[0], (n, d)), jax.random.normal(k[1], (n, d))
    h1, h3 = jax.random.normal(k[2], (n, m)), jax.random.normal(k[3], (n, m))
    z, ds = jax.random.normal(k[4], (n, mz)), jax.random.normal(k[8], (n, mz))
    W1, W4 = jax.random.normal(k[5], (m, d)), jax.random.normal(k[6], (d, m))
    Wmu, Wsigma = jax.random.normal(k[7], (mz, m)), jax.random.normal(k[9], (mz, m))
    W3 = jax.random.normal(k[10], (m, mz))

    @jax.jit
    def products(x, h1, z, h3, dout, ds, W1, Wmu, Wsigma, W3, W4):
        outs = [x @ W1.T, h1 @ Wmu.T, h1 @ Wsigma.T, z @ W3.T, h3 @ W4.T]     # forward
        dh3 = dout @ W4                                                          # backward
        dmu = dh3 @ W3                                                           # (the cotangent of z)
        dh1 = dmu @ Wmu + ds @ Wsigma
        grads = [dout.T @ h3, dh3.T @ z, dmu.T @ h1, dh1.T @ x] + ([ds.T @ h1] if train_sigma else [])
        return sum(jnp.sum(o) for o in outs + grads + [dh1])

    args = (x, h1, z, h3, dout, ds, W1, Wmu, Wsigma, W3, W4)
    return lambda: products(*args)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--widths", type=int, nargs="+", default=[256, 512, 1024, 2048])
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--steps", type=int, default=10, help="steps per timed chunk")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--lanes", choices=["loop", "batched"], help="override ntkvae.training.lanes_batched")
    p.add_argument("--objective", default="mse", choices=["mse", "vae"])
    args = p.parse_args()
    if args.lanes:
        os.environ["NTKVAE_LANES"] = args.lanes

    x = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (args.n, args.d)), np.float32)
    arch = M.Architecture()
    load0 = os.getloadavg()
    print(f"device: {jax.devices()[0].device_kind}, n={args.n}, d={args.d}, seeds={args.seeds}, float32, "
          f"objective {args.objective}, lanes {os.environ.get('NTKVAE_LANES', 'auto')}, "
          f"load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    print(f"{'width':>6} {'step ms':>9} {'products ms':>12} {'ratio':>6} {'cpu ratio':>9} {'noise ms':>9} "
          f"{'update ms':>10} {'GFLOP/s':>8}")
    for m in args.widths:
        settings = Settings(steps=args.steps, seeds=tuple(range(args.seeds)), log_every=args.steps,
                            objective=args.objective)
        trainer = Trainer(arch, m, settings, x)
        state = trainer.init_state()
        mz = arch.latent_dim(m)
        products = matmul_fn(args.n, args.d, m, mz, settings.train_sigma)
        key = jax.random.PRNGKey(3)
        noise = jax.jit(lambda k: M.standard_normal(k, (args.n, mz)))
        trained = {g: state["params"][g][0] for g in trainer.trained_groups}
        update = jax.jit(lambda p, g: jax.tree.map(lambda a, b: a - 0.5 * b, p, g))
        cases = {
            "step": (lambda: trainer.run_chunk(state, args.steps), args.steps),
            "products": (lambda: [products() for _ in range(args.steps)][-1], args.steps / args.seeds),
            "noise": (lambda: noise(key), 1.0),
            "update": (lambda: update(trained, trained), 1.0),
        }
        for fn, _ in cases.values():
            fn()                                                             # compile
        best = {k: (np.inf, np.inf) for k in cases}
        for _ in range(args.repeats):
            for name, (fn, per) in cases.items():
                wall, cpu = timed(fn)
                best[name] = (min(best[name][0], wall / per), min(best[name][1], cpu / per))
        step, prod = best["step"], best["products"]
        flops = 2 * args.n * (5 * args.d * m + (8 + settings.train_sigma) * m * mz) * args.seeds
        print(f"{m:>6} {step[0] * 1e3:>9.2f} {prod[0] * 1e3:>12.2f} {step[0] / prod[0]:>6.2f} "
              f"{step[1] / prod[1]:>9.2f} {best['noise'][0] * 1e3 * args.seeds:>9.2f} "
              f"{best['update'][0] * 1e3 * args.seeds:>10.2f} {flops / step[0] / 1e9:>8.1f}")
    load1 = os.getloadavg()
    print(f"load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")


if __name__ == "__main__":
    main()
