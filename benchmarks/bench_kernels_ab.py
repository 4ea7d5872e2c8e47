"""Theta_inf of this checkout against another revision, interleaved in one session.

    python benchmarks/bench_kernels_ab.py [--base main] [--sizes 1000 4000] [--rounds 5]

For a change that must not slow the kernels down, on a shared machine: the two versions run in
two worker processes (`git archive` of --base, and this checkout's src/), each warmed up once
(jit compile excluded), then timed in turns, one run at a time, `--rounds` times per case, so
load that drifts during the session falls on both alike. Prints per case the best and the
median wall time of each side, their ratio (this / base; above 1 is slower) and the median
user+system CPU seconds, then `uptime` before and after. The cases are those of
bench_kernels.py (erf unless said).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
CASES = ("total", "total+W4", "all", "all_direct", "total_f32in", "tanh_all")

WORKER = r'''
import json, os, sys, time
os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, sys.argv[1])
import numpy as np
from ntkvae import kernels
erf, tanh = {"activation": "erf"}, {"activation": "tanh"}
cases = {
    "total": lambda x: kernels.theta_inf(x, arch=erf, groups=()),
    "total+W4": lambda x: kernels.theta_inf(x, arch=erf, groups=("W4",)),
    "all": lambda x: kernels.theta_inf(x, arch=erf),
    "all_direct": lambda x: kernels.theta_inf(x, arch=erf, method="direct"),
    "total_f32in": lambda x: kernels.theta_inf(x.astype(np.float32), arch=erf, groups=()),
    "tanh_all": lambda x: kernels.theta_inf(x, arch=tanh),
}
inputs = {}
for line in sys.stdin:
    case, n, d = line.split()
    n, d = int(n), int(d)
    if (n, d) not in inputs:
        x = np.random.default_rng(0).normal(size=(n, d))
        inputs[n, d] = x * np.sqrt(d) / np.linalg.norm(x, axis=1, keepdims=True)
    x = inputs[n, d]
    fn = (lambda: x @ x.T) if case == "gram" else (lambda: cases[case](x))
    t0, c0 = time.perf_counter(), os.times()
    fn()
    c1 = os.times()
    print(json.dumps([time.perf_counter() - t0, c1.user - c0.user + c1.system - c0.system]), flush=True)
'''


def export(rev: str, into: pathlib.Path) -> pathlib.Path:
    """src/ of `rev` (git archive) under `into`."""
    archive = into / "src.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), rev, "src"], check=True)
    subprocess.run(["tar", "-xf", str(archive), "-C", str(into)], check=True)
    return into / "src"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", default="main", help="git revision to compare against")
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000])
    p.add_argument("--d", type=int, default=784)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    args = p.parse_args()
    uptime = lambda: subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"# {uptime()}")
    with tempfile.TemporaryDirectory() as tmp:
        sides = {"base": export(args.base, pathlib.Path(tmp)), "this": ROOT / "src"}
        workers = {name: subprocess.Popen([sys.executable, "-c", WORKER, str(src)], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, text=True, cwd=tmp)
                   for name, src in sides.items()}

        def run(name, case, n):
            w = workers[name]
            w.stdin.write(f"{case} {n} {args.d}\n")
            w.stdin.flush()
            return json.loads(w.stdout.readline())

        print(f"# Theta_inf, d = {args.d}, base = {args.base}: wall s best / median of {args.rounds} "
              "interleaved runs, median CPU s; ratio = this / base (best, median)")
        for n in args.sizes:
            for case in ("gram",) + tuple(args.cases):
                times = {name: [] for name in workers}
                for name in workers:
                    run(name, case, n)  # warm-up: compile, caches
                for r in range(args.rounds):
                    for name in (("base", "this") if r % 2 == 0 else ("this", "base")):
                        times[name].append(run(name, case, n))
                cell = {}
                for name, ts in times.items():
                    wall = [t[0] for t in ts]
                    cell[name] = (min(wall), statistics.median(wall), statistics.median(t[1] for t in ts))
                b, t = cell["base"], cell["this"]
                print(f"n={n} {case:12s} base {b[0]:.3f} / {b[1]:.3f} ({b[2]:.2f} cpu)  this {t[0]:.3f} / {t[1]:.3f} "
                      f"({t[2]:.2f} cpu)  ratio {t[0] / b[0]:.2f} / {t[1] / b[1]:.2f}", flush=True)
        for w in workers.values():
            w.stdin.close()
            w.wait()
    print(f"# {uptime()}")


if __name__ == "__main__":
    main()
