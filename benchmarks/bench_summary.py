"""The end-of-run summary's cost: ntkvae.summary.collect (training files' attributes only) against
reading every training file the way the claims do (results.runs.load_runs, then
recorded_divergences), on the same results directory, interleaved in one process.

    python benchmarks/bench_summary.py [DIR]    # DIR: a workflow's working directory (default .)

Prints a table (median of 5 rounds each) and the load average; both find the same divergences.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from ntkvae import summary  # noqa: E402
from ntkvae.results.runs import load_runs, recorded_divergences  # noqa: E402


def main(directory: str = ".") -> None:
    files = [f for f in summary.training_files(directory)]
    times = {"summary.collect (attributes)": [], "load_runs + recorded_divergences": []}
    for _ in range(5):
        t = time.perf_counter()
        found = summary.collect(directory)
        times["summary.collect (attributes)"].append(time.perf_counter() - t)
        t = time.perf_counter()
        full = recorded_divergences(load_runs(files))
        times["load_runs + recorded_divergences"].append(time.perf_counter() - t)
    same = sorted((d.dataset, d.run, d.width, s, t) for d in found.divergences for s, t in d.seeds.items()) == full
    print(f"{len(files)} training files in {directory}; load average {os.getloadavg()[0]:.2f}; same divergences: {same}")
    base = statistics.median(times["load_runs + recorded_divergences"])
    print(f"{'method':36s} {'median s':>9s} {'ratio':>6s}")
    for name, values in times.items():
        print(f"{name:36s} {statistics.median(values):9.4f} {statistics.median(values) / base:6.2f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
