"""Plotting modules: built only from HDF5 files (no JAX, no training or kernel code), and each renders."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

from synthetic_runs import write_dataset, write_run

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "ntkvae"
PLOTTING = sorted((SRC / "figures").glob("*.py")) + [SRC / "plot.py"] + sorted((SRC / "claims").glob("*.py")) + sorted((SRC / "results").glob("*.py"))
ALLOWED_TOP = {"numpy", "matplotlib", "h5py", "__future__", "argparse", "dataclasses", "importlib", "json", "math",
               "logging", "os", "pathlib", "sys", "textwrap", "typing",
               "html", "re"}   # the standard library's, for claims.html (claims/table.py)
# The numpy-only theory modules (spectrum, dynamics, krr, regime) are shared with the kernel jobs, so
# a figure and the job compute a prediction with the same function; paths: the result-path names;
# planning: the FIGURES table of the plot dispatch; groups: the parameter-group names; config: the
# CLIs' JSON arguments checked against the schema (jsonschema and PyYAML are in envs/plot.yaml).
# None imports JAX (checked at run time below).
ALLOWED_NTKVAE = {"ntkvae.io", "ntkvae.groups", "ntkvae.figures", "ntkvae.claims", "ntkvae.results", "ntkvae.spectrum",
                  "ntkvae.dynamics", "ntkvae.krr", "ntkvae.regime", "ntkvae.paths", "ntkvae.planning", "ntkvae.config"}


def imported_modules(path: pathlib.Path) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved inside ntkvae)."""
    package = ["ntkvae"] + list(path.relative_to(SRC).parent.parts)
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names |= {f"{module}.{alias.name}" if not node.module or node.level else module for alias in node.names}
    return names


@pytest.mark.parametrize("path", PLOTTING, ids=lambda p: p.name)
def test_plotting_code_imports_only_numpy_matplotlib_h5py_and_io(path):
    bad = []
    for name in imported_modules(path):
        top = name.split(".")[0]
        if top == "ntkvae":
            if not any(name == ok or name.startswith(ok + ".") for ok in ALLOWED_NTKVAE):
                bad.append(name)
        elif top not in ALLOWED_TOP:
            bad.append(name)
    assert not bad, f"{path.name} imports {bad}"


def test_import_check_catches_a_forbidden_import(tmp_path):
    # The checker itself must be able to fail: a module importing jax and ntkvae.model is flagged.
    fake = SRC / "figures" / "_fake_for_test.py"
    fake.write_text("import jax\nfrom .. import model\nfrom . import style\n")
    try:
        assert {"jax", "ntkvae.model", "ntkvae.figures.style"} <= imported_modules(fake)
    finally:
        fake.unlink()


def test_plotting_never_loads_jax_at_runtime():
    code = ("import sys, ntkvae.plot, ntkvae.claims, ntkvae.claims.__main__, ntkvae.dynamics, ntkvae.krr\n"
            "import ntkvae.figures.{m}\n".format(m=", ntkvae.figures.".join(
                p.stem for p in (SRC / "figures").glob("*.py") if p.stem != "__init__")) +
            "assert 'jax' not in sys.modules, 'jax was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(SRC.parent), "PATH": ""})


def test_param_count_matches_the_model():
    from ntkvae import model as M
    from ntkvae.results import measures

    arch = M.Architecture(latent_width=7)
    shapes = M.param_shapes(arch, 13, 32)
    for group in measures.GROUPS:
        rows, cols = shapes[group]
        assert measures.param_count(group, 32, 13, 7) == rows * cols


def test_predicted_slopes():
    from ntkvae.results import measures

    widths = [64, 256, 1024]
    same = widths                    # m_z = m: hidden-to-latent groups scale with m^2
    assert measures.predicted_weight_change_slope("W1", widths, 64, same) == pytest.approx(-0.5)
    assert measures.predicted_weight_change_slope("W3", widths, 64, same) == pytest.approx(-1.0)
    fixed = [8, 8, 8]                # fixed latent width: every group has one width-sized side
    assert measures.predicted_weight_change_slope("Wmu", widths, 64, fixed) == pytest.approx(-0.5)


def test_decay_rate_and_slope_recover_known_values():
    import numpy as np

    from ntkvae.results import measures

    t = np.arange(0, 101, 10)
    assert measures.decay_rate(t, 3 * np.exp(-0.037 * t)) == pytest.approx(0.037)
    assert measures.loglog_slope([16, 64, 256], [4.0, 2.0, 1.0]) == pytest.approx(-0.5)
    assert measures.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)


@pytest.fixture
def toy_runs(tmp_path):
    data = write_dataset(tmp_path / "toy.h5")
    runs = {}
    for run, widths, extra in (("mse", (16, 64), {}), ("vae", (16, 64), {"objective": "vae"}),
                               ("narrow", (4,), {"objective": "vae"})):
        runs[run] = [write_run(tmp_path / f"{run}_w{w}.h5", run=run, width=w, **extra) for w in widths]
    runs["kl"] = [write_run(tmp_path / f"kl{b}_w{w}.h5", run=f"kl_beta{b}", width=w, objective="vae", beta=b, kl=1 / b)
                  for b in (1, 3, 10) for w in (16, 64)]
    runs["act"] = [write_run(tmp_path / f"act_{a}.h5", run=f"act_{a}", width=32, activation=a)
                   for a in ("erf", "relu", "tanh")]
    return data, runs


FIGURE_INPUTS = {
    "convergence": lambda runs: runs["mse"] + runs["vae"],
    "laziness": lambda runs: runs["mse"],
    "kl_beta": lambda runs: runs["kl"],
    "narrow_wide": lambda runs: runs["narrow"] + runs["vae"][-1:],
    "generation": lambda runs: runs["vae"],
    "activations": lambda runs: runs["act"],
}


@pytest.mark.parametrize("figure", sorted(FIGURE_INPUTS))
def test_figure_renders_pdf_and_png(tmp_path, toy_runs, figure):
    from ntkvae import plot

    data, runs = toy_runs
    pdf, png = tmp_path / f"{figure}.pdf", tmp_path / f"{figure}.png"
    assert plot.main([figure, "--inputs", *FIGURE_INPUTS[figure](runs), "--data", data, "--dataset", "toy",
                      "--pdf", str(pdf), "--png", str(png), "--dpi", "50"]) == 0
    assert pdf.read_bytes().startswith(b"%PDF") and png.read_bytes().startswith(b"\x89PNG")


def test_figure_names_a_missing_input(tmp_path, caplog):
    from ntkvae import plot

    code = plot.main(["laziness", "--inputs", str(tmp_path / "absent.h5"), "--pdf", str(tmp_path / "x.pdf")])
    assert code == 1 and "absent.h5" in caplog.text
