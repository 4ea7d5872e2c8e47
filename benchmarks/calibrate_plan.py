"""Measure this CPU's rates for the plan and store them (benchmarks/calibration/cpu.json).

    python benchmarks/calibrate_plan.py [--out benchmarks/calibration/cpu.json] [--quick]

What is measured and how: src/ntkvae/calibration.py. The stored file is what
`python -m ntkvae.plan` reads by default, so that the plan's table is the same on every call;
re-measure on a quiet machine (`uptime` load is recorded in the file) before quoting times.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ntkvae import calibration  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "benchmarks/calibration/cpu.json"))
    p.add_argument("--quick", action="store_true", help="fewer training shapes (about half the time)")
    args = p.parse_args()
    result = calibration.measure(quick=args.quick)
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"{result['date']} {result['machine']['cpu']} ({result['machine']['cores']} cores), load {result['load']}")
    for clock, r in result["rates"].items():
        print(f"[{clock}] products {r['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s, {r['activation_element_s'] * 1e9:.2f} ns "
              f"per activation element, {r['parameter_element_s'] * 1e9:.2f} ns per parameter element, "
              f"{r['step_s'] * 1e6:.0f} us per step, {r['call_s'] * 1e3:.2f} ms per call (fit error "
              f"{r['max_fit_error']:.0%}); float64 GEMM {r['gemm_f64_flops_per_s'] / 1e9:.1f} GFLOP/s, eigh "
              f"{r['eigh_s_per_n3'] * 1e9:.2f} ns/n^3, HDF5 "
              f"{r['write_bytes_per_s'] / 1e6:.0f} MB/s; theta_inf ns/entry "
              + ", ".join(f"{k} {v * 1e9:.0f}" for k, v in r["theta_inf_entry_s"].items()))
    print(f"{'n':>5} {'d':>5} {'width':>6} {'chunk s':>9} {'fit':>9} {'eval s':>9} {'fit':>9}   (wall)")
    for s in result["train_samples"]:
        print(f"{s['n']:>5} {s['d']:>5} {s['width']:>6} {s['chunk_s']['wall']:>9.4f} {s['chunk_fit_s']['wall']:>9.4f} "
              f"{s['evaluate_s']['wall']:>9.4f} {s['evaluate_fit_s']['wall']:>9.4f}")
    print(f"{'job':<12} {'start-up s':>10} {'CPU s':>8} {'base MB':>8}")
    for kind, j in result["jobs"].items():
        print(f"{kind:<12} {j['seconds']:>10.2f} {j['cpu_seconds']:>8.2f} {j['rss_mb']:>8.0f}")
    print(f"wrote {args.out} ({result['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
