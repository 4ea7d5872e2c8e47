"""The empirical NTK Theta_m of one network, by ntkvae and by neural-tangents (a benchmark, not a test).

    python benchmarks/bench_peer_ntk.py                      # the default sizes, 8 GiB per process
    python benchmarks/bench_peer_ntk.py --sizes 16x32 64x256 --mem-limit-gb 8

For each size (n examples x width m; d = 784, the first n of the mnist5k digits, normalized as
the workflow does) this script draws one VAE (ntkvae.model.init_params, erf, NTK
parameterization) and one noise draw eps, and computes the per-output empirical NTK of
xhat(x; eps) with respect to every parameter, averaged over all d outputs, twice:

* ntkvae: `ntkvae.kernels.theta_m(params, x, arch, m, key, samples=1)` (structured form,
  docs/theory.md section 2), in this venv (current JAX). The noise it draws from `key` is
  the eps handed to the peer, so both see the same draw.
* neural-tangents 0.6.5: `nt.empirical_ntk_fn(f, trace_axes=(-1,), vmap_axes=(0, 0, {'eps': 0}),
  implementation=STRUCTURED_DERIVATIVES)` on the same forward pass written in plain jax.numpy,
  in a throwaway venv (PEER_PINS below, built once under ~/.cache/ntkvae-peer): 0.6.5 is the
  last release and does not import with JAX >= 0.6.

Both run in child processes with the same address-space limit (resource.setrlimit), so that
a size that does not fit is reported as out of memory instead of swapping the machine. The
arrays go through .npz files. The script checks that the two forward passes and the two
kernels agree to float32 rounding, and prints one table: each side's time (best of
--repeats, compilation excluded and shown apart), their ratio, each side's peak memory, and
the largest difference. The machine load is printed with it; timings on a shared machine
are ratios within one run.

neural-tangents 0.6.5's __init__ imports its TensorFlow-only `experimental` module (jax2tf /
tf2jax conversion of TF functions), which would need TensorFlow and tf2jax (about half a
gigabyte); `empirical_ntk_fn` does not use it, so the child registers an empty module under
that name instead of installing TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve()
ROOT = HERE.parents[1]
PEER_DIR = pathlib.Path(os.environ.get("NTKVAE_PEER_VENV", "~/.cache/ntkvae-peer")).expanduser()
# Exact versions, installed with --no-deps: JAX 0.4.23 is the last version with which
# neural-tangents 0.6.5 imports and runs structured derivatives; numpy < 2 and scipy < 1.13
# are what jaxlib 0.4.23 was built against.
PEER_PINS = ["jax==0.4.23", "jaxlib==0.4.23", "numpy==1.26.4", "scipy==1.12.0", "ml_dtypes==0.5.4",
             "opt_einsum==3.4.0", "frozendict==2.5.1", "neural-tangents==0.6.5"]
D = 784
DEFAULT_SIZES = ["8x16", "16x32", "32x64", "64x256"]
# Agreement: both sides sum ~10^5-10^6 float32 products per entry in different orders;
# 2e-5 of the largest entry is the bound docs/theory.md uses for theta_m against jax.jacrev.
KERNEL_RTOL = 2e-5
FORWARD_RTOL = 1e-5   # xhat through the same float32 matmuls, in two XLA versions
OOM_MARKERS = ("RESOURCE_EXHAUSTED", "Out of memory", "MemoryError", "bad_alloc", "Cannot allocate memory")


# ---------------------------------------------------------------- children (one side each)

def _limit_memory(gib: float) -> None:
    import resource

    limit = int(gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # kB on Linux


def child_ntkvae(inputs: dict, repeats: int) -> dict:
    import jax
    import numpy as np

    sys.path.insert(0, str(ROOT / "src"))
    from ntkvae import kernels, model as M

    arch = M.Architecture()
    params = {k[2:]: jax.numpy.asarray(v) for k, v in inputs.items() if k.startswith("p_")}
    x = jax.numpy.asarray(inputs["x"])
    key = jax.random.PRNGKey(int(inputs["noise_seed"]))
    m = params["W1"].shape[0]
    eps = jax.random.normal(jax.random.split(key, 1)[0], (x.shape[0], m), x.dtype)  # theta_m's one draw
    xhat = M.forward(params, x, eps, arch)["xhat"]
    start = time.perf_counter()
    theta = kernels.theta_m(params, x, arch, m, key, 1)                               # compile + run
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        theta = kernels.theta_m(params, x, arch, m, key, 1)
        times.append(time.perf_counter() - start)
    out = {"kernel": theta["total"], "eps": np.asarray(eps), "xhat": np.asarray(xhat), "time": min(times),
           "compile": max(first - min(times), 0.0), "peak_mib": _peak_rss_mib()}
    if int(inputs.get("with_jacobian", 0)):
        out.update(_jacobian_contraction(params, x, eps, arch, repeats))
    return out


def _jacobian_contraction(params, x, eps, arch, repeats: int) -> dict:
    """The generic method on this JAX: per-example jax.jacrev, then the contraction over
    outputs and parameters. Tells whether the peer's time is its method's or its old JAX's."""
    import jax
    import jax.numpy as jnp

    from ntkvae import model as M

    n, d = x.shape

    def single(p, xi, ei):
        return M.forward(p, xi[None], ei[None], arch)["xhat"][0]

    @jax.jit
    def contraction(p, x, e):
        jac = jax.vmap(jax.jacrev(single), in_axes=(None, 0, 0))(p, x, e)
        return sum(jnp.einsum("iop,jop->ij", v.reshape(n, d, -1), v.reshape(n, d, -1)) for v in jac.values()) / d

    try:
        kernel = contraction(params, x, eps).block_until_ready()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            kernel = contraction(params, x, eps).block_until_ready()
            times.append(time.perf_counter() - start)
    except Exception as err:
        text = f"{type(err).__name__}: {err}"
        return {"jac_status": "oom" if any(m in text for m in OOM_MARKERS) else "failed"}
    return {"jac_status": "ok", "jac_time": min(times), "jac_kernel": kernel}


def child_peer(inputs: dict, repeats: int) -> dict:
    import types

    sys.modules["neural_tangents.experimental"] = types.ModuleType("neural_tangents.experimental")  # TF-only
    import jax
    import jax.numpy as jnp
    import neural_tangents as nt
    import numpy as np

    def dense(inputs, w):   # as ntkvae.model._dense: sigma_w = 1, NTK parameterization, no bias
        return (inputs @ w.T) * (1.0 / np.sqrt(inputs.shape[-1]))

    def f(params, x, eps):
        h1 = jax.scipy.special.erf(dense(x, params["W1"]))
        mu, s = dense(h1, params["Wmu"]), dense(h1, params["Wsigma"])
        z = mu + jnp.exp(0.5 * s) * eps
        return dense(jax.scipy.special.erf(dense(z, params["W3"])), params["W4"])

    params = {k[2:]: jnp.asarray(v) for k, v in inputs.items() if k.startswith("p_")}
    x, eps = jnp.asarray(inputs["x"]), jnp.asarray(inputs["eps"])
    ntk_fn = nt.empirical_ntk_fn(f, trace_axes=(-1,), vmap_axes=(0, 0, {"eps": 0}),
                                 implementation=nt.NtkImplementation.STRUCTURED_DERIVATIVES)
    start = time.perf_counter()
    compiled = jax.jit(lambda x, p, e: ntk_fn(x, None, p, eps=e)).lower(x, params, eps).compile()
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        kernel = compiled(x, params, eps).block_until_ready()
        times.append(time.perf_counter() - start)
    return {"kernel": np.asarray(kernel), "xhat": np.asarray(f(params, x, eps)), "time": min(times),
            "compile": compile_s, "peak_mib": _peak_rss_mib(), "versions": f"jax {jax.__version__}, nt {nt.__version__}"}


def child_main(side: str, in_path: str, out_path: str, mem_gib: float, repeats: int) -> int:
    import numpy as np

    _limit_memory(mem_gib)
    inputs = dict(np.load(in_path))
    try:
        out = (child_ntkvae if side == "ntkvae" else child_peer)(inputs, repeats)
    except Exception as err:  # an allocation failure is a result here, not a crash
        text = f"{type(err).__name__}: {err}"
        status = "oom" if any(m in text for m in OOM_MARKERS) else "failed"
        out = {"status": status, "message": text[:500], "peak_mib": _peak_rss_mib()}
    out.setdefault("status", "ok")
    np.savez(out_path, **{k: np.asarray(v) for k, v in out.items()})
    return 0


# ---------------------------------------------------------------- parent

def ensure_peer_venv() -> pathlib.Path:
    """The throwaway venv with neural-tangents 0.6.5, built once (about 80 MB of wheels)."""
    python = PEER_DIR / "bin" / "python"
    marker = PEER_DIR / "pins.txt"
    if marker.exists() and marker.read_text().split() == PEER_PINS and python.exists():
        return python
    print(f"building {PEER_DIR} with {' '.join(PEER_PINS)} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEER_DIR)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", *PEER_PINS], check=True)
    marker.write_text("\n".join(PEER_PINS) + "\n")
    return python


def run_child(python, side, in_path, out_path, mem_gib, repeats) -> dict:
    import numpy as np

    env = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("PYTHONPATH", None)   # the peer venv must not see this venv's packages
    proc = subprocess.run([str(python), str(HERE), "--child", side, str(in_path), str(out_path),
                           "--mem-limit-gb", str(mem_gib), "--repeats", str(repeats)],
                          capture_output=True, text=True, env=env)
    if not pathlib.Path(out_path).exists():   # killed before it could write (e.g. an abort in XLA)
        text = proc.stderr[-2000:]
        status = "oom" if any(m in text for m in OOM_MARKERS) else "failed"
        return {"status": status, "message": f"exit {proc.returncode}: {text[-500:]}"}
    out = {k: v[()] if v.ndim == 0 else v for k, v in np.load(out_path).items()}
    out["status"] = str(out["status"])
    return out


def make_inputs(n: int, m: int, seed: int) -> dict:
    import jax
    import numpy as np

    sys.path.insert(0, str(ROOT / "src"))
    from ntkvae import datasets, model as M

    raw = datasets.mnist5k_subset(n, seed)
    x, _, _ = datasets.normalize(raw.images.reshape(n, -1), center=True)
    params = M.init_params(jax.random.PRNGKey(seed), M.Architecture(), D, m)
    return {"x": x, "noise_seed": np.int64(seed + 1), **{f"p_{k}": np.asarray(v) for k, v in params.items()}}


def fmt_time(out: dict) -> str:
    if out["status"] == "ok":
        return f"{out['time']:.3g} s"
    asked = re.search(r"allocating (\d+) bytes", str(out.get("message", "")))
    return out["status"].upper() + (f" (asked for {int(asked[1]) / 2**30:.1f} GiB)" if asked else "")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="+", default=DEFAULT_SIZES, help="n x m, e.g. 16x32 (d = 784)")
    p.add_argument("--mem-limit-gb", type=float, default=8.0, help="address-space limit of each child (GiB)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--with-jacobian", action="store_true",
                   help="also time the generic jax.jacrev contraction on this venv's JAX (ntkvae's child)")
    p.add_argument("--child", nargs=3, metavar=("SIDE", "IN", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child_main(*args.child, args.mem_limit_gb, args.repeats)

    import numpy as np

    peer = ensure_peer_venv()
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} CPUs); "
          f"each child limited to {args.mem_limit_gb:g} GiB of address space; d = {D}, erf, one noise draw, "
          f"all {D} outputs, float32; best of {args.repeats}", flush=True)
    rows, ok, peer_versions = [], True, "?"
    with tempfile.TemporaryDirectory(prefix="ntkvae-peer-") as tmp:
        for size in args.sizes:
            n, m = (int(v) for v in size.lower().split("x"))
            inputs = {**make_inputs(n, m, args.seed), "with_jacobian": np.int64(args.with_jacobian)}
            in_path = pathlib.Path(tmp, f"in_{n}x{m}.npz")
            np.savez(in_path, **inputs)
            ours = run_child(sys.executable, "ntkvae", in_path, pathlib.Path(tmp, f"ntkvae_{n}x{m}.npz"),
                             args.mem_limit_gb, args.repeats)
            if ours["status"] != "ok":
                print(f"n={n} m={m}: ntkvae {ours['status']}: {ours['message']}", flush=True)
                rows.append((n, m, ours, {"status": "skipped"}, "", ""))
                continue
            np.savez(in_path, **inputs, eps=ours["eps"])      # the peer gets theta_m's noise draw
            theirs = run_child(peer, "peer", in_path, pathlib.Path(tmp, f"peer_{n}x{m}.npz"),
                               args.mem_limit_gb, args.repeats)
            diff = fwd = ""
            if theirs["status"] == "ok":
                scale = np.abs(ours["kernel"]).max()
                rel = float(np.abs(ours["kernel"] - theirs["kernel"]).max() / scale)
                rel_fwd = float(np.abs(ours["xhat"] - theirs["xhat"]).max() / np.abs(ours["xhat"]).max())
                diff, fwd = f"{rel:.1e}", f"{rel_fwd:.1e}"
                if rel > KERNEL_RTOL or rel_fwd > FORWARD_RTOL:
                    ok = False
                    diff += " DISAGREE"
            else:
                print(f"n={n} m={m}: neural-tangents {theirs['status']}: {theirs.get('message', '')[:300]}",
                      flush=True)
            rows.append((n, m, ours, theirs, diff, fwd))
            if "versions" in theirs:
                peer_versions = str(theirs["versions"])
            print(f"  done n={n} m={m}: ntkvae {fmt_time(ours)}, neural-tangents {fmt_time(theirs)}", flush=True)
    import jax

    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; "
          f"ntkvae on jax {jax.__version__}, the peer on {peer_versions}")
    print()
    jac_col = " jax.jacrev contraction (this JAX) |" if args.with_jacobian else ""
    print("| n | m | parameters | ntkvae theta_m | neural-tangents (structured) | ratio NT / ntkvae "
          f"| compile ntkvae / NT | peak memory ntkvae / NT | max rel. difference (kernel, xhat) |{jac_col}")
    print("|---|---|---|---|---|---|---|---|---|" + ("---|" if args.with_jacobian else ""))
    for n, m, ours, theirs, diff, fwd in rows:
        if ours["status"] != "ok":
            print(f"| {n} | {m} | {2 * m * D + 3 * m * m:,} | {fmt_time(ours)} | not run | - | - | - | - |")
            continue
        jac = ""
        if args.with_jacobian:
            jac = f" {ours['jac_time']:.3g} s |" if ours.get("jac_status") == "ok" else f" {ours.get('jac_status', '-')} |"
            if ours.get("jac_status") == "ok":
                rel = np.abs(ours["jac_kernel"] - ours["kernel"]).max() / np.abs(ours["kernel"]).max()
                if rel > KERNEL_RTOL:
                    ok = False
                    jac = jac[:-1] + f"DISAGREE {rel:.1e} |"
        n_params = 2 * m * D + 3 * m * m
        ratio = f"{theirs['time'] / ours['time']:.0f}x" if theirs["status"] == "ok" else "-"
        comp = (f"{ours['compile']:.2g} s / " + (f"{theirs['compile']:.2g} s" if theirs["status"] == "ok" else "-"))
        peak = f"{ours['peak_mib']:.0f} / " + (f"{theirs['peak_mib']:.0f} MiB" if theirs["status"] == "ok" else "- MiB")
        agree = f"{diff}, {fwd}" if diff else "-"
        print(f"| {n} | {m} | {n_params:,} | {fmt_time(ours)} | {fmt_time(theirs)} | {ratio} | {comp} | {peak} "
              f"| {agree} |{jac}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
