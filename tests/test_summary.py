"""The end-of-run console summary (ntkvae.summary): verdict counts from the claims table, every
recorded divergence by run, width and seed, and where the outputs are; on synthetic worlds with
known answers (a divergence, none, a run that failed before the claims)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

import h5py
import pytest

from ntkvae import paths, summary
from synthetic_runs import write_run

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLAIM_COLUMNS = ("key", "theorem", "setting", "claim", "dataset", "figure", "verdict", "measured")


def train_file(root, dataset, run, width, diverged=None, seeds=(0, 1)):
    path = root / paths.TRAIN.format(dataset=dataset, run=run, width=width)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_run(path, dataset=dataset, run=run, width=width, seeds=seeds)
    if diverged is not None:
        with h5py.File(path, "a") as f:
            f.attrs["diverged"] = json.dumps({str(s): int(t) for s, t in diverged.items()})
    return path


def claims_file(root, verdicts):
    """A claims.tsv as the claims CLI writes it (the columns the summary reads), one row per verdict."""
    path = root / paths.CLAIMS_TSV.pattern
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = ["\t".join(CLAIM_COLUMNS)]
    for i, verdict in enumerate(verdicts):
        key, verdict = verdict if isinstance(verdict, tuple) else (f"claim{i}", verdict)
        rows.append("\t".join([key, "T1", "theorem setting", f"claim {i}", "digits", "f1_convergence_digits",
                               verdict, "1.0"]))
    path.write_text("\n".join(rows) + "\n")
    (root / paths.CLAIMS_MD.pattern).write_text("# Claims table\n")
    return path


def figures(root, stems=("f1_convergence_digits", "f2_laziness_digits")):
    for stem in stems:
        for ext in ("pdf", "png"):
            path = root / paths.FIGURE.pattern.rpartition("/")[0] / f"{stem}.{ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x")


def test_a_world_with_divergences_names_every_diverged_run_width_and_seed(tmp_path):
    train_file(tmp_path, "digits", "mse", 16)
    train_file(tmp_path, "digits", "mse", 1024, diverged={0: 12, 1: 15})
    train_file(tmp_path, "sprites", "sweep_lr1", 64, diverged={1: 30}, seeds=(0, 1, 2))
    time.sleep(0.01)
    claims_file(tmp_path, ["holds"] * 3 + ["fails", "inconclusive", "not evaluated", "not evaluated"])
    figures(tmp_path)
    found = summary.collect(str(tmp_path))
    assert found.claims.counts == {"holds": 3, "fails": 1, "inconclusive": 1, "not evaluated": 2}
    assert not found.claims.stale and found.training_files == 3 and found.diverged_seeds == 3
    assert [(d.dataset, d.run, d.width, d.seeds) for d in found.divergences] == [
        ("digits", "mse", 1024, {0: 12, 1: 15}), ("sprites", "sweep_lr1", 64, {1: 30})]
    text = "\n".join(summary.lines(found, failed=False))
    assert text.startswith("ntkvae: the run finished\n")
    assert "claims: 3 held, 1 failed, 1 inconclusive, 2 not evaluated; table in results/claims.md" in text
    assert "open (failed, then inconclusive): claim3 (digits): fails, claim4 (digits): inconclusive" in text
    assert "DIVERGED: 3 seed(s) in 2 training file(s)" in text
    assert "digits run mse, m = 1024: all seeds (from steps 12, 15)" in text
    assert "sprites run sweep_lr1, m = 64: seed 1 (from step 30)" in text
    assert "figures: 2 PDF and 2 PNG in results/figures/" in text
    assert "report: snakemake --report results/report.html builds it" in text


def test_a_world_without_divergences_says_none_were_recorded(tmp_path):
    for width in (16, 32):
        train_file(tmp_path, "digits", "mse", width, diverged={} if width == 32 else None)
    time.sleep(0.01)
    claims_file(tmp_path, ["holds", "holds"])
    figures(tmp_path)
    (tmp_path / paths.REPORT.pattern).write_text("<html></html>")
    text = summary.text(str(tmp_path))
    assert text.startswith(f"ntkvae: the results in {tmp_path}\n")
    assert "claims: 2 held, 0 failed, 0 inconclusive, 0 not evaluated" in text
    assert "divergences: none recorded in 2 training file(s)" in text and "DIVERGED" not in text
    assert "open (" not in text and "report: results/report.html" in text


def test_a_failed_run_before_the_claims_still_names_its_divergences(tmp_path):
    """The run stopped (a job failed): no claims table yet, but the divergences already recorded
    are named, and an unreadable (half-written) training file is said to be unreadable."""
    train_file(tmp_path, "digits", "mse", 64, diverged={1: 7})
    broken = tmp_path / paths.TRAIN.format(dataset="digits", run="mse", width=128)
    broken.write_bytes(b"not an HDF5 file")
    lines = summary.lines(summary.collect(str(tmp_path)), failed=True, log=[".snakemake/log/x.log"])
    text = "\n".join(lines)
    assert lines[0] == "ntkvae: the run FAILED (Snakemake's log: .snakemake/log/x.log)"
    assert "claims: not computed (results/claims.tsv does not exist: the run stopped before the claims rule)" in text
    assert "digits run mse, m = 64: seed 1 (from step 7)" in text
    assert "could not check for divergences: results/train/digits/mse/w128.h5 (OSError" in text
    assert "figures: none yet in results/figures/" in text


def test_claims_from_an_earlier_run_are_marked_stale(tmp_path):
    claims_file(tmp_path, ["holds"])
    old = time.time() - 100
    os.utime(tmp_path / paths.CLAIMS_TSV.pattern, (old, old))
    train_file(tmp_path, "digits", "mse", 16)
    assert "(older than the newest training file: from an earlier run)" in summary.text(str(tmp_path), failed=True)


@pytest.mark.parametrize("content", ["", "key\tverdict\nk1\tmaybe\n"])
def test_an_unreadable_claims_table_is_named_not_raised(tmp_path, content):
    """--touch leaves empty outputs; a table with an unknown verdict is not counted as anything."""
    path = tmp_path / paths.CLAIMS_TSV.pattern
    path.parent.mkdir(parents=True)
    path.write_text(content)
    assert "claims: unreadable (results/claims.tsv: " in summary.text(str(tmp_path))


def test_the_cli_prints_the_summary(tmp_path):
    train_file(tmp_path, "digits", "mse", 64, diverged={0: 3})
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run([sys.executable, "-m", "ntkvae.summary", "--directory", str(tmp_path), "--failed"],
                          capture_output=True, text=True, env=env, check=True)
    assert "the run FAILED" in proc.stdout and "digits run mse, m = 64: seed 0 (from step 3)" in proc.stdout


def test_open_claims_are_named_once_per_key_failed_first(tmp_path):
    claims_file(tmp_path, [("slope", "inconclusive"), ("slope", "inconclusive"), ("gap", "fails"), ("ok", "holds")])
    assert "open (failed, then inconclusive): gap (digits): fails, slope (digits): inconclusive x2" in \
        summary.text(str(tmp_path))


def test_divergences_in_seed_parts_not_joined_yet_are_named_once(tmp_path):
    """A training job split by seed (paths.TRAIN_PART) records a divergence in its part; once the
    parts are joined the joined file says it, and the parts are not counted again."""
    def part(width, seeds, diverged):
        path = tmp_path / paths.TRAIN_PART.format(dataset="digits", run="mse", width=width, seeds=seeds)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_run(path, dataset="digits", run="mse", width=width, seeds=tuple(int(s) for s in seeds.split("-")))
        with h5py.File(path, "a") as f:
            f.attrs["diverged"] = json.dumps(diverged)
    part(64, "0-1", {"1": 9})           # not joined: only the part knows
    part(128, "2-3", {"2": 4})          # joined below: counted from the joined file
    train_file(tmp_path, "digits", "mse", 128, diverged={2: 4}, seeds=(0, 1, 2, 3))
    found = summary.collect(str(tmp_path))
    assert [(d.width, d.seeds) for d in found.divergences] == [(128, {2: 4}), (64, {1: 9})]
