"""The claims table's verdicts on synthetic HDF5 inputs whose answer is known."""

from __future__ import annotations

import json

import h5py
import pytest

from ntkvae import claims as C
from ntkvae.claims.__main__ import main as claims_main
from ntkvae.claims.theory import THEORY_CLAIMS
from synthetic_runs import write_run

SETTINGS = {
    "convergence_runs": ["mse"],
    "laziness_runs": ["mse"],
    "kernel_runs": ["mse"],
    "kl_runs": ["kl_beta1", "kl_beta3", "kl_beta10"],
    "activations": ["erf", "relu"],
    "wide_run": "vae",
    "claims": {"slope_tolerance": 0.2, "rank_correlation": 0.8, "gap_tolerance": 0.1},
}


def by_key(claims, key, setting=None):
    return [c for c in claims if c.key == key and (setting is None or c.setting == setting)]


PRACTICAL = C.table.TRAINED_AS_VAES


def laziness_files(tmp_path, exponent):
    return [write_run(tmp_path / f"mse_w{w}.h5", run="mse", width=w, weight_change_exponent=exponent)
            for w in (16, 64, 256)]


def test_weight_change_slope_holds_for_lazy_runs(tmp_path):
    # Relative change = #weights^(-1/2): exactly the NTK prediction, for every moving group.
    claims = C.compute(laziness_files(tmp_path, -0.5), SETTINGS, ["toy"])
    rows = by_key(claims, "weight_change_slope", PRACTICAL)
    assert {r.claim.split(" of ")[1].split()[0] for r in rows} == {"W1", "Wmu", "W3", "W4"}  # Wsigma frozen: no row
    assert all(r.verdict == C.HOLDS for r in rows), [(r.claim, r.measured, r.predicted) for r in rows]


def test_weight_change_slope_fails_when_weights_do_not_settle(tmp_path):
    # Relative change independent of width (exponent 0): not lazy, every group must fail.
    claims = C.compute(laziness_files(tmp_path, 0.0), SETTINGS, ["toy"])
    rows = by_key(claims, "weight_change_slope", PRACTICAL)
    assert rows and all(r.verdict == C.FAILS for r in rows)


def beta_files(tmp_path, kl_by_beta, residual_rate_by_beta):
    return [write_run(tmp_path / f"b{b}.h5", run=f"kl_beta{b:g}", width=64, objective="vae", beta=b, kl=kl,
                      rate=residual_rate_by_beta[b])
            for b, kl in kl_by_beta.items()]


def test_beta_claims_hold_when_kl_falls_and_residual_rises(tmp_path):
    files = beta_files(tmp_path, {1: 3.0, 3: 2.0, 10: 1.0}, {1: 0.05, 3: 0.03, 10: 0.01})
    rows = {c.key: c for c in C.compute(files, SETTINGS, ["toy"]) if c.key.startswith("beta_")}
    assert rows["beta_kl"].verdict == C.HOLDS
    assert rows["beta_residual"].verdict == C.HOLDS


def test_beta_claims_fail_when_kl_grows_with_beta(tmp_path):
    files = beta_files(tmp_path, {1: 1.0, 3: 2.0, 10: 3.0}, {1: 0.01, 3: 0.03, 10: 0.05})
    rows = {c.key: c for c in C.compute(files, SETTINGS, ["toy"]) if c.key.startswith("beta_")}
    assert rows["beta_kl"].verdict == C.FAILS
    assert rows["beta_residual"].verdict == C.FAILS


def test_beta_claim_not_evaluated_with_too_few_betas(tmp_path):
    files = beta_files(tmp_path, {1: 3.0, 3: 2.0}, {1: 0.05, 3: 0.03})
    rows = by_key(C.compute(files, SETTINGS, ["toy"]), "beta_kl")
    assert [r.verdict for r in rows] == [C.NOT_EVALUATED]


@pytest.mark.parametrize("wide_rate, expected", [(0.05, C.HOLDS), (0.001, C.FAILS)])
def test_narrow_vs_wide(tmp_path, wide_rate, expected):
    files = [write_run(tmp_path / "narrow.h5", run="narrow", width=4, objective="vae", rate=0.01),
             write_run(tmp_path / "wide.h5", run="vae", width=256, objective="vae", rate=wide_rate)]
    (row,) = by_key(C.compute(files, SETTINGS, ["toy"]), "narrow_vs_wide")
    assert row.verdict == expected


@pytest.mark.parametrize("rate, expected", [(0.02, C.HOLDS), (-0.01, C.FAILS)])
def test_convergence(tmp_path, rate, expected):
    files = [write_run(tmp_path / "w64.h5", run="mse", width=64, rate=rate)]
    (row,) = by_key(C.compute(files, SETTINGS, ["toy"]), "convergence")
    assert row.verdict == expected


def test_activation_claim_fails_if_one_activation_does_not_converge(tmp_path):
    good = [write_run(tmp_path / "erf.h5", run="act_erf", activation="erf", rate=0.02),
            write_run(tmp_path / "relu.h5", run="act_relu", activation="relu", rate=0.03)]
    rows = by_key(C.compute(good, SETTINGS, ["toy"]), "activations")
    assert [r.verdict for r in rows] == [C.HOLDS, C.HOLDS]
    bad = good[:1] + [write_run(tmp_path / "relu_bad.h5", run="act_relu", activation="relu", rate=-0.01)]
    rows = {r.claim.split()[-1]: r for r in by_key(C.compute(bad, SETTINGS, ["toy"]), "activations")}
    assert rows["erf"].verdict == C.HOLDS and rows["relu"].verdict == C.FAILS


def test_theory_claims_not_evaluated_without_kernels(tmp_path):
    claims = C.compute(laziness_files(tmp_path, -0.5), SETTINGS, ["toy"])
    theory = [c for c in claims if c.key in {k for k, *_ in THEORY_CLAIMS} and not c.key.startswith("weight_change")]
    assert theory and all(c.verdict == C.NOT_EVALUATED and "kernel file" in c.detail for c in theory)
    # The weight change needs no kernel: it is still measured.
    assert any(c.key == "weight_change_slope" and c.verdict == C.HOLDS for c in claims)


def test_cli_writes_consistent_md_and_tsv(tmp_path):
    files = laziness_files(tmp_path, 0.0)
    settings = dict(SETTINGS, datasets=["toy"])
    md, tsv = tmp_path / "claims.md", tmp_path / "claims.tsv"
    assert claims_main(["--inputs", *files, "--settings", json.dumps(settings), "--md", str(md), "--tsv", str(tsv)]) == 0
    lines = tsv.read_text().splitlines()
    header = lines[0].split("\t")
    assert header == list(C.Claim.COLUMNS)
    verdicts = [line.split("\t")[header.index("verdict")] for line in lines[1:]]
    assert verdicts.count(C.FAILS) == md.read_text().count("❌ fails") > 0


def test_cli_names_a_corrupt_input(tmp_path, caplog):
    bad = tmp_path / "broken.h5"
    bad.write_text("not hdf5")
    settings = dict(SETTINGS, datasets=["toy"])
    code = claims_main(["--inputs", str(bad), "--settings", json.dumps(settings), "--md", str(tmp_path / "c.md"),
                   "--tsv", str(tmp_path / "c.tsv")])
    assert code == 1 and "broken.h5" in caplog.text


def test_activation_claim_fails_and_says_so_when_a_run_diverged(tmp_path):
    files = [write_run(tmp_path / "erf.h5", run="act_erf", activation="erf", rate=0.02),
             write_run(tmp_path / "sp.h5", run="act_relu", activation="relu", rate=0.02)]
    with h5py.File(files[1], "a") as f:
        f.attrs["diverged"] = json.dumps({"0": 2, "1": 3})   # as train.py records it (on_divergence: record)
    rows = {r.claim.split()[-1]: r for r in by_key(C.compute(files, SETTINGS, ["toy"]), "activations")}
    assert rows["relu"].verdict == C.FAILS and "seed 0 at step 2" in rows["relu"].measured
    assert rows["erf"].verdict == C.HOLDS


def test_one_swapped_pair_among_four_betas_is_within_the_tolerance(tmp_path):
    # Spearman = 0.8 exactly (one adjacent swap), the documented allowance of rank_correlation 0.8.
    files = beta_files(tmp_path, {1: 4.0, 3: 3.0, 10: 2.0, 30: 1.0}, {1: 0.05, 3: 0.04, 10: 0.045, 30: 0.01})
    settings = dict(SETTINGS, kl_runs=["kl_beta1", "kl_beta3", "kl_beta10", "kl_beta30"])
    rows = {c.key: c for c in C.compute(files, settings, ["toy"]) if c.key.startswith("beta_")}
    # Every seed has the same order here, so the interval is the single value 0.8.
    assert rows["beta_residual"].measured == "Spearman +0.80 [+0.80, +0.80]" and rows["beta_residual"].verdict == C.HOLDS
