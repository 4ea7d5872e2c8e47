"""Benchmarks of the kernel engine (issue 3, item 6).

    python benchmarks/bench_kernels.py [--sizes 1000 4000 10000] [--d 784] [--repeat 3]

Prints, per n: one float64 X.X^T product (the floor: Theta_inf is a pointwise map of the
Gram matrix) and Theta_inf (erf) for: the total alone; the total and W4 (what the `kernel`
rule computes on all n); every group and the total; every group with the direct closed forms
instead of the cosine grid; the total for float32 inputs (the datasets' storage, where the
grid's first-order variance term is on); and tanh (quadrature activation) with every group.
Then the KRR solve (eigh once, then a ridge grid), and Theta_m at width 4096 on 256 examples
next to the forward + backward passes it needs. Times are the best of --repeat runs after one
warm-up (jit compile excluded), with the user and system CPU time of that run: on this VM the
first touch of fresh n x n output pages is system time that varies between runs.
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

from ntkvae import kernels, krr, spectrum  # noqa: E402
from ntkvae import model as M  # noqa: E402


CPU_TIMES = {}


def best(fn, repeat, label=None):
    """Best wall time of `repeat` runs after a warm-up; (user, system) CPU seconds of that run go
    to CPU_TIMES[label]."""
    fn()  # warm-up (compilation)
    runs = []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), os.times()
        fn()
        c1 = os.times()
        runs.append((time.perf_counter() - t0, c1.user - c0.user, c1.system - c0.system))
    wall, user, system = min(runs)
    if label:
        CPU_TIMES[label] = (user, system)
    return wall


def inputs(n, d, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d))
    return x * np.sqrt(d) / np.linalg.norm(x, axis=1, keepdims=True)


def bench_theta_inf(sizes, d, repeat, krr_max):
    print(f"# Theta_inf, d = {d}, float64 out, seconds (best of {repeat}); ratio = time / X.X^T; "
          "(user+sys CPU s)")
    erf, tanh = {"activation": "erf"}, {"activation": "tanh"}
    cases = [
        ("total", lambda x: kernels.theta_inf(x, arch=erf, groups=())),
        ("total+W4", lambda x: kernels.theta_inf(x, arch=erf, groups=("W4",))),
        ("all", lambda x: kernels.theta_inf(x, arch=erf)),
        ("all_direct", lambda x: kernels.theta_inf(x, arch=erf, method="direct")),
        ("total_f32in", lambda x: kernels.theta_inf(x.astype(np.float32), arch=erf, groups=())),
        ("tanh_all", lambda x: kernels.theta_inf(x, arch=tanh)),
    ]
    for n in sizes:
        x = inputs(n, d)
        gram = best(lambda: x @ x.T, repeat, "gram")
        row = [f"n={n}: XXt {gram:.3f} ({sum(CPU_TIMES['gram']):.2f})"]
        for label, fn in cases:
            t = best(lambda: fn(x), repeat, label)
            user, system = CPU_TIMES[label]
            row.append(f"{label} {t:.3f} = {t / gram:.2f}x ({user:.2f}+{system:.2f})")
        print("; ".join(row), flush=True)
        if n <= krr_max:
            theta = kernels.theta_inf(x, arch=erf, groups=())
            noise = kernels.noise_diagonal(x, erf)
            t0 = time.perf_counter()
            spec = spectrum.Spectrum.from_kernel(theta["total"], noise["total"])
            eig = time.perf_counter() - t0
            del theta
            ridge = best(lambda: krr.solve(spec, x, np.logspace(-4, 1, 8), dual=False), 1)
            print(f"n={n}: eigh {eig:.2f} s; KRR fits for 8 ridges from it {ridge:.3f} s", flush=True)


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
    cpu = {k: sum(CPU_TIMES[k]) for k in ("passes", "theta_m")}
    print(f"# Theta_m, width {width}, n {n}, d {d}, {samples} noise draws x {k} outputs, float32")
    print(f"forward+backward passes (jax.vjp): {t_passes:.3f} s; Theta_m: {t_theta:.3f} s; "
          f"ratio {t_theta / t_passes:.2f} (cpu {cpu['passes']:.2f} vs {cpu['theta_m']:.2f})", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 10000])
    p.add_argument("--d", type=int, default=784)
    p.add_argument("--repeat", type=int, default=3)
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
