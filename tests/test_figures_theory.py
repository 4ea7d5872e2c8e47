"""Figures and claims that compare with Theta_inf (F3, F4, F5, F9), on synthetic kernels and probes."""

from __future__ import annotations

import h5py
import pytest

from ntkvae import claims as C
from ntkvae import plot
from synthetic_runs import add_theory_data, spd_kernel, write_dataset, write_kernel, write_run

N = 16
SETTINGS = {
    "convergence_runs": ["mse"], "laziness_runs": ["mse"], "kernel_runs": ["mse"],
    "kl_runs": ["kl_beta1", "kl_beta10"], "activations": [], "wide_run": "vae", "min_width_tolerance": 0.1,
    "claims": {"slope_tolerance": 0.2, "ratio_tolerance": 0.25, "rank_correlation": 0.8},
}


@pytest.fixture
def world(tmp_path):
    data = write_dataset(tmp_path / "toy.h5", n=N)
    y = h5py.File(data)["x"][()]
    theta = spd_kernel(N)
    (tmp_path / "toy").mkdir()
    kernel = write_kernel(tmp_path / "toy" / "erf.h5", theta)
    return tmp_path, data, y, theta, kernel


def make_runs(tmp_path, y, theta, *, exponent=-0.5, follow=True):
    mse = [add_theory_data(write_run(tmp_path / f"mse{w}.h5", run="mse", width=w, n=N), theta, y,
                           exponent=exponent, follow_theory=follow) for w in (64, 256, 1024)]
    kl = [add_theory_data(write_run(tmp_path / f"kl{b}_{w}.h5", run=f"kl_beta{b}", width=w, n=N, objective="vae",
                                    beta=b), theta, y, follow_theory=follow)
          for b in (1, 10) for w in (64, 1024)]
    return mse, kl


def theory_rows(files, data, kernel):
    claims = C.compute(files, SETTINGS, ["toy"], [kernel], [data])
    return {c.key: c for c in claims if c.key in {k for k, _, _ in C.theory.THEORY_CLAIMS}}


def test_theory_claims_hold_when_training_follows_the_kernel(world):
    tmp_path, data, y, theta, kernel = world
    mse, kl = make_runs(tmp_path, y, theta)
    rows = theory_rows(mse + kl, data, kernel)
    assert {k: r.verdict for k, r in rows.items()} == dict.fromkeys(rows, C.HOLDS), {k: r.measured for k, r in rows.items()}
    assert len(rows) == 6


def test_theory_claims_fail_when_training_leaves_the_kernel(world):
    tmp_path, data, y, theta, kernel = world
    mse, kl = make_runs(tmp_path, y, theta, exponent=0.0, follow=False)
    rows = theory_rows(mse + kl, data, kernel)
    for key in ("kernel_constancy", "kernel_limit", "lambda_min", "rate_lambda0", "krr", "min_width"):
        assert rows[key].verdict == C.FAILS, (key, rows[key].measured)


@pytest.mark.parametrize("figure", ["convergence", "kernel_constancy", "rate", "min_width", "krr"])
def test_theory_figures_render(world, figure):
    tmp_path, data, y, theta, kernel = world
    mse, kl = make_runs(tmp_path, y, theta)
    inputs = kl if figure == "krr" else mse
    pdf, png = tmp_path / f"{figure}.pdf", tmp_path / f"{figure}.png"
    assert plot.main([figure, "--inputs", *inputs, "--kernels", kernel, "--data", data, "--dataset", "toy",
                      "--settings", '{"min_width_tolerance": 0.1}', "--pdf", str(pdf), "--png", str(png),
                      "--dpi", "50"]) == 0
    assert pdf.read_bytes().startswith(b"%PDF")
