"""Figures and claims that compare with Theta_inf (F3, F4, F5, F9), on synthetic kernels and probes."""

from __future__ import annotations

import h5py
import pytest

from ntkvae import claims as C
from ntkvae import paths, plot
from synthetic_runs import add_theory_data, spd_kernel, write_dataset, write_kernel, write_run

N = 16
SETTINGS = {
    "convergence_runs": ["mse"], "laziness_runs": ["mse"], "kernel_runs": ["mse"],
    "kl_runs": ["kl_beta1", "kl_beta10"], "activations": [], "wide_run": "vae", "min_width_tolerance": 0.1,
    "claims": {"slope_tolerance": 0.2, "ratio_tolerance": 0.25, "rank_correlation": 0.8, "gap_tolerance": 0.1},
}


@pytest.fixture
def world(tmp_path):
    data_path = tmp_path / paths.DATA.format(dataset="toy")   # found by its path too
    data_path.parent.mkdir(parents=True)
    data = write_dataset(data_path, n=N)
    y = h5py.File(data)["x"][()]
    theta = spd_kernel(N)
    kernel_path = tmp_path / paths.KERNEL.format(dataset="toy", activation="erf")   # found by its path
    kernel_path.parent.mkdir(parents=True)
    kernel = write_kernel(kernel_path, theta)
    return tmp_path, data, y, theta, kernel


def make_runs(tmp_path, y, theta, *, exponent=-0.5, follow=True):
    mse = [add_theory_data(write_run(tmp_path / f"mse{w}.h5", run="mse", width=w, n=N), theta, y,
                           exponent=exponent, follow_theory=follow) for w in (64, 256, 1024)]
    kl = [add_theory_data(write_run(tmp_path / f"kl{b}_{w}.h5", run=f"kl_beta{b}", width=w, n=N, objective="vae",
                                    beta=b), theta, y, follow_theory=follow)
          for b in (1, 10) for w in (64, 1024)]
    return mse, kl


def practical_rows(files, data, kernel):
    claims = C.compute(files, SETTINGS, ["toy"], [kernel], [data])
    return {c.key: c for c in claims if c.setting == C.table.TRAINED_AS_VAES and c.key in
            ("kernel_constancy", "kernel_limit", "practical_mean_kernel")}


def test_practical_kernel_claims_hold_when_training_follows_the_kernel(world):
    tmp_path, data, y, theta, kernel = world
    mse, kl = make_runs(tmp_path, y, theta)
    rows = practical_rows(mse + kl, data, kernel)
    assert len(rows) == 3
    assert {k: r.verdict for k, r in rows.items()} == dict.fromkeys(rows, C.HOLDS), {k: r.measured for k, r in rows.items()}


def test_practical_kernel_claims_fail_when_training_leaves_the_kernel(world):
    tmp_path, data, y, theta, kernel = world
    mse, kl = make_runs(tmp_path, y, theta, exponent=0.0, follow=False)
    rows = practical_rows(mse + kl, data, kernel)
    for key in ("kernel_limit", "practical_mean_kernel"):
        assert rows[key].verdict == C.FAILS, (key, rows[key].measured)


@pytest.mark.parametrize("figure", ["convergence", "kernel_constancy", "rate", "min_width", "krr"])
def test_theory_figures_render(world, figure):
    tmp_path, data, y, theta, kernel = world
    mse, kl = make_runs(tmp_path, y, theta)
    inputs = kl if figure == "krr" else mse
    pdf, png = tmp_path / f"{figure}.pdf", tmp_path / f"{figure}.png"
    assert plot.main([figure, "--inputs", *inputs, "--kernels", kernel, "--data", data, "--dataset", "toy",
                      "--settings", '{}', "--pdf", str(pdf), "--png", str(png),
                      "--dpi", "50"]) == 0
    assert pdf.read_bytes().startswith(b"%PDF")
