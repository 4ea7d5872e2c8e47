"""The figure rules end to end: the tiny workflow builds every figure, the claims table and the
report; one figure target builds only its jobs; a plotting-code edit reruns only its figure;
the paper config's dry run lists every figure."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

from deploy_helpers import copy_workflow  # the tracked files, as a user has them (not .venv or results/)

ROOT = pathlib.Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
BASE_FIGURES = ["f1_convergence", "f2_laziness", "f6_kl_beta", "f7_narrow_wide", "f8_generation", "f10_activations"]
THEORY_FIGURES = ["f3_kernel_constancy", "f4_rate", "f5_krr", "f9_min_width"]


def expected_figures():
    theory = (ROOT / "rules" / "kernels.smk").exists()
    return BASE_FIGURES + (THEORY_FIGURES if theory else [])


def snakemake(cwd, *args, check=True):
    # The jobs' `python` must be the one running the tests (the environment with the package's needs).
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    env = dict(os.environ, PYTHONPATH=str(pathlib.Path(cwd) / "src"), PATH=path)
    proc = subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout + proc.stderr


def planned_jobs(output: str) -> dict[str, int]:
    """The job-count table of a dry run: {rule: count}."""
    table = {}
    for line in output.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m and m.group(1) != "total":
            table[m.group(1)] = int(m.group(2))
    return table


@pytest.mark.workflow
@pytest.mark.slow
def test_tiny_workflow_builds_every_figure_claims_and_report(tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    tiny = ["--configfile", "tests/configs/tiny_figures.yaml", "--cores", "2"]

    # One figure target plans only the jobs it needs: its data, its run's training, the figure.
    jobs = planned_jobs(snakemake(wf, *tiny, "-n", "results/figures/f2_laziness_digits.pdf"))
    assert jobs == {"prepare_offline_data": 1, "train": 2, "figure_laziness": 1}, jobs

    snakemake(wf, *tiny)
    figures = wf / "results" / "figures"
    for name in expected_figures():
        for ext in ("pdf", "png"):
            assert (figures / f"{name}_digits.{ext}").stat().st_size > 0, name
    tsv = (wf / "results" / "claims.tsv").read_text()
    assert "weight_change_slope" in tsv and "narrow_vs_wide" in tsv
    assert "| claim |" in (wf / "results" / "claims.md").read_text()

    # Editing one figure's plotting code reruns that figure alone (Snakemake compares the
    # content of small inputs, so the edit must change the file, not only its time).
    code = wf / "src" / "ntkvae" / "figures" / "laziness.py"
    code.write_text(code.read_text() + "\n# an edit\n")
    assert planned_jobs(snakemake(wf, *tiny, "-n")) == {"figure_laziness": 1, "all": 1}

    # The report: self-contained HTML with every figure, its caption and the claims table.
    snakemake(wf, *tiny, "--report", "results/report.html")
    html = (wf / "results" / "report.html").read_text(errors="replace")
    for name in expected_figures():
        assert f"{name}_digits.pdf" in html, name
    assert "claims.tsv" in html and "F2 laziness" in html and "provenance.yaml" in html
    assert "git_commit" in (wf / "results" / "provenance.yaml").read_text()


@pytest.mark.workflow
def test_paper_config_dry_run_lists_every_figure(tmp_path):
    # The paper's data files are fetched by a rule that needs network; placeholders stand in
    # for them so that the dry run exercises the training, kernel and figure parts only.
    for dataset in ("mnist", "dsprites", "cars3d"):
        path = tmp_path / "results" / "data" / f"{dataset}.h5"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    out = snakemake(ROOT, "-n", "--configfile", "configs/paper.yaml", "--directory", str(tmp_path), "--cores", "1")
    for dataset in ("mnist", "dsprites", "cars3d"):
        for name in expected_figures():
            assert f"results/figures/{name}_{dataset}.pdf" in out, (name, dataset)
    assert "results/claims.md" in out
    assert "results/train/mnist/vae/w16384.h5" in out   # paper-scale widths
