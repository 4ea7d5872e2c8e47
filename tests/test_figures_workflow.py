"""The figure rules end to end: the tiny workflow builds every figure, the claims table and the
report; one figure target builds only its jobs; a code edit reruns the jobs that run that code
and only those; the paper config's dry run lists every figure."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

import report_browser
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

    # One figure target plans only the jobs it needs: its data, its runs' training (mse at two
    # widths, the theorem run at three), the figure.
    jobs = planned_jobs(snakemake(wf, *tiny, "-n", "results/figures/f2_laziness_digits.pdf"))
    # (mse trains in the batched jobs of its widths, rules train_batch<k>; each width one job)
    others = {rule: count for rule, count in jobs.items() if rule not in training(jobs)}
    assert sum(training(jobs).values()) == 5 and others == {"prepare_offline_data": 1, "figure_f2_laziness": 1}, jobs

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
    code = wf / "src" / "ntkvae" / "figures" / "kl_beta.py"
    code.write_text(code.read_text() + "\n# an edit\n")
    assert planned_jobs(snakemake(wf, *tiny, "-n")) == {"figure_f6_kl_beta": 1, "all": 1}

    # The report: self-contained HTML with every figure, its caption and the claims table, as a
    # reader sees it in a browser (tests/report_browser.py; the PNG of each figure inline on the
    # landing page after the claims, in paper order).
    snakemake(wf, *tiny, "--report", "results/report.html")
    html = (wf / "results" / "report.html").read_text(errors="replace")
    for name in expected_figures():
        assert f"{name}_digits.pdf" in html and f"{name}_digits.png" in html, name
    assert "claims.tsv" in html and "F02 laziness" in html and "provenance.html" in html
    assert "git_commit" in (wf / "results" / "provenance.yaml").read_text()
    rows = len((wf / "results" / "claims.tsv").read_text().splitlines()) - 1
    problem = report_browser.browser_problem()
    if problem and os.geteuid() != 0:
        pytest.skip(f"the report's browser check needs Chromium: {problem}")
    assert problem is None, f"CI runs as root and must check the report in a browser: {problem}"
    in_order = sorted(expected_figures(), key=lambda name: int(name.split("_")[0][1:]))
    assert report_browser.check_report(wf / "results" / "report.html", [f"{n}_digits" for n in in_order], rows) == []


def training(jobs: dict[str, int]) -> dict[str, int]:
    """The training jobs of a job-count table: rule train and the batched rules train_batch<k>."""
    return {rule: count for rule, count in jobs.items() if rule == "train" or rule.startswith("train_batch")}


def planned_files(output: str) -> list[str]:
    """The output files of every job a dry run lists."""
    return [f for line in output.splitlines() if (m := re.match(r"\s+output: (.*)", line)) for f in m.group(1).split(", ")]


def edit(path: pathlib.Path):
    # Snakemake compares the content of small inputs: the edit must change the file, not only its time.
    path.write_text(path.read_text() + "\n# an edit\n")


@pytest.mark.workflow
@pytest.mark.slow  # about 35 s of CPU (user time, measured at load 7): seven Snakemake calls
def test_code_edits_rerun_the_jobs_that_run_that_code(tmp_path):
    """Every rule lists the package modules its CLI imports (planning.module_files) as inputs: an
    edit of the model or the training code reruns training and what reads it, not the data; an
    edit of one figure's module reruns that figure; no edit, nothing. Outputs stand in as empty
    files marked up to date by --touch, so that no job runs."""
    wf = copy_workflow(tmp_path / "wf")
    tiny = ["--configfile", "tests/configs/tiny_figures.yaml", "--cores", "1"]
    first = snakemake(wf, *tiny, "-n")
    everything = planned_jobs(first)
    for path in planned_files(first):
        (wf / path).parent.mkdir(parents=True, exist_ok=True)
        (wf / path).touch()
    snakemake(wf, *tiny, "--touch", "--forceall")   # every job marked done, its inputs recorded
    assert "Nothing to be done" in snakemake(wf, *tiny, "-n")
    src = wf / "src" / "ntkvae"

    model = (src / "model.py").read_text()
    edit(src / "model.py")
    jobs = planned_jobs(snakemake(wf, *tiny, "-n"))
    assert training(jobs) == training(everything) and jobs["figure_f2_laziness"] == 1 and jobs["claims"] == 1
    assert "kernel" in jobs              # the kernels use the model's activations and groups
    assert "prepare_offline_data" not in jobs and jobs["provenance"] == 1   # it lists the training devices
    (src / "model.py").write_text(model)   # a newer file with the same content: nothing to do
    assert "Nothing to be done" in snakemake(wf, *tiny, "-n")

    edit(src / "training.py")
    jobs = planned_jobs(snakemake(wf, *tiny, "-n"))
    assert training(jobs) == training(everything) and "figure_f10_activations" in jobs
    assert "kernel" not in jobs and "predict" not in jobs and "prepare_offline_data" not in jobs
    snakemake(wf, *tiny, "--touch")

    edit(src / "figures" / "kl_beta.py")
    assert planned_jobs(snakemake(wf, *tiny, "-n")) == {"figure_f6_kl_beta": 1, "all": 1}


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
