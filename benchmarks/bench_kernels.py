"""Benchmarks of the kernel engine (issue 3, item 6).

    python benchmarks/bench_kernels.py [--sizes 1000 4000 10000] [--d 784] [--repeat 2]

Prints, per n: one float64 X.X^T product (the floor: Theta_inf is a pointwise map of the
Gram matrix), Theta_inf for all groups and total (erf, closed form; tanh, cosine grid) and for
one group, and the KRR solve (eigh once, then a ridge grid); then Theta_m at width 4096 on 256
examples next to the forward + backward passes it needs. Times are the best of --repeat runs
after one warm-up (jit compile excluded).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from ntkvae import dynamics, kernels, krr  # noqa: E402
from ntkvae import model as M  # noqa: E402


CPU_TIMES = {}


def best(fn, repeat, label=None):
    """Best wall time of `repeat` runs after a warm-up; the CPU time (all threads) of that run
    goes to CPU_TIMES[label]: on a shared machine it is the steadier measure."""
    fn()  # warm-up (compilation)
    times = []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - t0, time.process_time() - c0))
    wall, cpu = min(times)
    if label:
        CPU_TIMES[label] = cpu
    return wall


def inputs(n, d, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d))
    return x * np.sqrt(d) / np.linalg.norm(x, axis=1, keepdims=True)


def bench_theta_inf(sizes, d, repeat, krr_max):
    print(f"# Theta_inf, d = {d}, float64, seconds (best of {repeat})")
    print("n      XXt     erf_all  ratio  erf_W4   tanh_all  ratio  eigh     ridges(8)")
    for n in sizes:
        x = inputs(n, d)
        gram = best(lambda: x @ x.T, repeat, "gram")
        erf_all = best(lambda: kernels.theta_inf(x, arch={"activation": "erf"}), repeat, "erf")
        erf_one = best(lambda: kernels.theta_inf(x, arch={"activation": "erf"}, groups=("W4",)), repeat)
        tanh_all = best(lambda: kernels.theta_inf(x, arch={"activation": "tanh"}), repeat)
        eig = ridge = float("nan")
        if n <= krr_max:
            theta = kernels.theta_inf(x, arch={"activation": "erf"})
            noise = kernels.noise_diagonal(x, {"activation": "erf"})
            t0 = time.perf_counter()
            spec = dynamics.Spectrum.from_kernel(theta["total"], noise["total"])
            eig = time.perf_counter() - t0
            del theta
            ridge = best(lambda: krr.solve(spec, x, np.logspace(-4, 1, 8)), 1)
        print(f"{n:<6d} {gram:7.3f} {erf_all:8.3f} {erf_all / gram:6.2f} {erf_one:8.3f} {tanh_all:9.3f} "
              f"{tanh_all / gram:6.2f} {eig:8.2f} {ridge:8.3f}   cpu: XXt {CPU_TIMES['gram']:.3f} erf_all "
              f"{CPU_TIMES['erf']:.3f} ratio {CPU_TIMES['erf'] / CPU_TIMES['gram']:.2f}", flush=True)


def bench_theta_m(width, n, d, samples, outputs, repeat):
    arch = M.Architecture()
    params = M.init_params(jax.random.PRNGKey(0), arch, d, width)
    x = jnp.asarray(inputs(n, d), jnp.float32)
    key = jax.random.PRNGKey(1)
    coords = jnp.asarray(kernels.output_coordinates(d, outputs))
    k = coords.shape[0]

    @jax.jit
    def passes(params, x, key):
        """What Theta_m needs: per draw one forward pass and k backward passes (one per output)."""
        def draw(acc, kk):
            eps = jax.random.normal(kk, (n, width), x.dtype)
            out, vjp = jax.vjp(lambda p: M.forward(p, x, eps, arch)["xhat"], params)
            cot = jnp.zeros((k, n, d), x.dtype).at[jnp.arange(k), :, coords].set(1.0)
            grads = jax.vmap(vjp)(cot)[0]
            return acc + sum(jnp.sum(g) for g in jax.tree.leaves(grads)) + jnp.sum(out), None
        return jax.lax.scan(draw, 0.0, jax.random.split(key, samples))[0]

    t_passes = best(lambda: passes(params, x, key).block_until_ready(), repeat, "passes")
    t_theta = best(lambda: kernels.theta_m(params, x, arch, width, key, samples, outputs=outputs), repeat, "theta_m")
    print(f"# Theta_m, width {width}, n {n}, d {d}, {samples} noise draws x {k} outputs, float32")
    print(f"forward+backward passes (jax.vjp): {t_passes:.3f} s; Theta_m: {t_theta:.3f} s; "
          f"ratio {t_theta / t_passes:.2f} (cpu {CPU_TIMES['passes']:.2f} vs {CPU_TIMES['theta_m']:.2f})", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 10000])
    p.add_argument("--d", type=int, default=784)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--krr-max", type=int, default=10000, help="largest n for the eigendecomposition")
    p.add_argument("--skip-inf", action="store_true")
    p.add_argument("--skip-m", action="store_true")
    p.add_argument("--width", type=int, default=4096)
    p.add_argument("--m-d", type=int, default=784)
    args = p.parse_args()
    print(f"# {os.cpu_count()} CPUs, jax {jax.__version__}, numpy {np.__version__}")
    if not args.skip_inf:
        bench_theta_inf(args.sizes, args.d, args.repeat, args.krr_max)
    if not args.skip_m:
        bench_theta_m(args.width, 256, args.m_d, 4, 8, args.repeat)


if __name__ == "__main__":
    main()
