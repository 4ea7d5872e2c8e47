"""Issue 13, findings 5 and 6: a recorded divergence (on_divergence: record) is excluded from every
fit and named by the claims and figures; any other NaN in a training file is an input error."""

from __future__ import annotations

import json
import logging

import h5py
import numpy as np
import pytest

from ntkvae import claims as C
from ntkvae import io, paths, plot
from ntkvae.claims.__main__ import main as claims_main
from ntkvae.results.runs import load_run
from synthetic_runs import add_theory_data, spd_kernel, write_dataset, write_kernel, write_run, write_theorem_run

SETTINGS = {
    "convergence_runs": ["mse"], "laziness_runs": ["mse"], "kernel_runs": ["mse"],
    "kl_runs": ["kl_beta1", "kl_beta3", "kl_beta10"], "activations": ["erf"], "wide_run": "vae",
    "claims": {"slope_tolerance": 0.2, "rank_correlation": 0.8, "gap_tolerance": 0.1},
}
PER_RUN = ("seeds", "train/step", "eval/step", "reconstructions/index", "generation/values", "ntk/probe_index",
           "outputs/step", "examples_index")


def record_divergence(path, steps: dict[int, int], blow_up: float | None = None) -> str:
    """What train.py writes for seeds that diverged with on_divergence: record: from the divergence
    on (the whole row for end-of-training quantities) NaN, or, with `blow_up`, the values times
    that factor: finite but blown up (a divergence caught above a multiple of the initial objective)."""
    with h5py.File(path, "a") as f:
        seeds = list(f["seeds"][()])
        names = []
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        for name in (n for n in names if n not in PER_RUN):
            values = f[name][()].astype(float)
            for seed, step in steps.items():
                row = seeds.index(seed)
                if name.startswith("ntk/init/"):
                    continue                      # computed at initialization, before the divergence
                if name.startswith("train/"):
                    where = (row, f["train/step"][()] >= step)
                elif name.startswith(("eval/", "weight_change")):
                    where = (row, f["eval/step"][()] >= step)
                elif name.startswith("outputs/"):
                    where = (row, f["outputs/step"][()] >= step)
                else:
                    where = (row,)
                values[where] = np.nan if blow_up is None else values[where] * blow_up
            del f[name]
            f[name] = values
        f.attrs["diverged"] = json.dumps({str(seed): int(step) for seed, step in steps.items()})
        if "converged" in f.attrs:                # a seed that diverged did not converge
            converged = json.loads(f.attrs["converged"])
            f.attrs["converged"] = json.dumps({**converged, **{str(seed): None for seed in steps}})
    return str(path)


def laziness_runs(tmp_path, divergences):
    return [record_divergence(write_run(tmp_path / f"mse_w{w}.h5", run="mse", width=w), divergences.get(w, {}))
            for w in (16, 64, 256)]


def rows(claims, key):
    return [c for c in claims if c.key == key]


def test_a_run_diverged_at_every_width_is_named_in_its_claims(tmp_path):
    """On main the convergence row read `fraction decreasing not measured … inconclusive` with
    `L(T)/L(0) per seed nan, nan`, and the weight-change row `widths that did not train: 16, 64,
    256`: neither said that the run diverged."""
    files = laziness_runs(tmp_path, {w: {0: 12, 1: 15} for w in (16, 64, 256)})
    claims = C.compute(files, SETTINGS, ["toy"])
    (conv,) = rows(claims, "convergence")
    assert conv.verdict == C.FAILS and conv.measured == "diverged (seed 0 at step 12, seed 1 at step 15)"
    weight = [r for r in rows(claims, "weight_change_slope") if "widths that did not train" in r.detail]
    assert len(weight) == 1 and weight[0].verdict == C.INCONCLUSIVE and weight[0].measured == "diverged"
    assert "256 (seed 0 diverged at step 12, seed 1 diverged at step 15)" in weight[0].detail
    assert all("nan" not in c.measured.lower() for c in claims), [c.measured for c in claims]


def test_a_diverged_width_is_left_out_of_the_fits_and_named(tmp_path):
    """A seed that diverged at the widest width: the slopes come from the other widths, finite,
    and every row names the divergence (on main: `slope +nan … fails`, no word of it)."""
    files = [record_divergence(write_run(tmp_path / f"mse_w{w}.h5", run="mse", width=w), {1: 20} if w == 512 else {})
             for w in (16, 64, 256, 512)]
    claims = C.compute(files, SETTINGS, ["toy"])
    weight = [r for r in rows(claims, "weight_change_slope") if r.estimate is not None]
    assert {r.claim.split(" of ")[1].split()[0] for r in weight} == {"W1", "Wmu", "W3", "W4"}
    for r in weight:
        assert np.isfinite(r.estimate.value) and "left out): 512 (seed 1 diverged at step 20)" in r.detail
    (conv,) = rows(claims, "convergence")
    assert conv.verdict == C.FAILS and conv.measured == "diverged (seed 1 at step 20)"


def test_loader_keeps_every_seed_and_allows_nan_only_in_diverged_ones(tmp_path):
    path = record_divergence(write_run(tmp_path / "w16.h5", width=16, seeds=(0, 1, 2)), {1: 10})
    run = load_run(path)
    assert run.data["seeds"].tolist() == [0, 1, 2] and run.first_kept_row == 0 and run.usable
    curve = run.data["eval"]["mean_function_mse"]
    assert np.isnan(curve[1, -1]) and np.all(np.isfinite(curve[[0, 2]]))
    with h5py.File(path, "a") as f:
        f["eval/kl"][2, 1] = np.inf                       # a seed not recorded as diverged
    with pytest.raises(io.InputFileError, match=r"dataset eval/kl holds 1 non-finite value\(s\) \(inf at index \[2, 1\]\)"):
        load_run(path)


def beta_runs(tmp_path):
    return [write_run(tmp_path / f"kl{b}_w{w}.h5", run=f"kl_beta{b}", width=w, objective="vae", beta=b, kl=1 / b)
            for b in (1, 3, 10) for w in (16, 64)]


def toy_data_and_kernel(tmp_path, n):
    """The toy dataset and its kernel file at their result paths: (data, kernel, y, Theta)."""
    data, kernel = place(tmp_path, paths.DATA.format(dataset="toy")), place(tmp_path, paths.KERNEL.format(
        dataset="toy", activation="erf"))
    write_dataset(data, n=n)
    with h5py.File(data) as f:
        y = f["x"][()]
    theta = spd_kernel(n)
    write_kernel(kernel, theta)
    return data, kernel, y, theta


@pytest.fixture
def diverged_world(tmp_path):
    return build_diverged_world(tmp_path)


def build_diverged_world(tmp_path, blow_up=None):
    """Every figure's inputs, with the mse run diverged entirely at its widest width and in one seed
    at the other widths, one beta run and one activation run diverged entirely."""
    n = 16
    data, kernel, y, theta = toy_data_and_kernel(tmp_path, n)
    mse = [add_theory_data(write_run(tmp_path / f"mse{w}.h5", run="mse", width=w, n=n), theta, y) for w in (64, 256, 1024)]
    record_divergence(mse[2], {0: 10, 1: 20}, blow_up)
    record_divergence(mse[0], {1: 30}, blow_up)
    vae = [write_run(tmp_path / f"vae{w}.h5", run="vae", width=w, n=n, objective="vae") for w in (16, 64)]
    record_divergence(vae[1], {0: 10, 1: 10}, blow_up)
    narrow = [write_run(tmp_path / "narrow.h5", run="narrow", width=4, n=n, objective="vae")]
    kl = [add_theory_data(write_run(tmp_path / f"kl{b}_{w}.h5", run=f"kl_beta{b}", width=w, n=n, objective="vae",
                                    beta=b, kl=1 / b), theta, y) for b in (1, 3, 10) for w in (64, 1024)]
    record_divergence(kl[5], {0: 10, 1: 10}, blow_up)
    act = [write_run(tmp_path / f"act_{a}.h5", run=f"act_{a}", width=32, n=n, activation=a) for a in ("erf", "relu")]
    record_divergence(act[1], {0: 5, 1: 5}, blow_up)
    inputs = {"convergence": mse + vae, "laziness": mse, "kernel_constancy": mse, "rate": mse, "min_width": mse,
              "krr": kl, "kl_beta": kl, "narrow_wide": narrow + vae[-1:], "generation": vae, "activations": act}
    return tmp_path, data, kernel, inputs


def place(root, relative) -> str:
    """A path below `root` where ntkvae.paths recognizes the file (results/data, results/kernels)."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


FIGURES = ("convergence", "laziness", "kernel_constancy", "rate", "krr", "kl_beta", "narrow_wide", "generation",
           "min_width", "activations")


@pytest.mark.parametrize("figure", FIGURES)
def test_every_figure_renders_a_recorded_divergence(diverged_world, figure):
    """Finding 5: on main F2 and F3 crashed (matplotlib: data cannot be log-scaled)."""
    tmp_path, data, kernel, inputs = diverged_world
    pdf = tmp_path / f"{figure}.pdf"
    theory = ["--kernels", kernel] if figure in ("convergence", "kernel_constancy", "rate", "krr", "min_width") else []
    if figure in ("convergence", "laziness", "kernel_constancy", "rate", "krr", "min_width"):
        theory += ["--settings", "{}"]    # the rules pass the figures section to these
    assert plot.main([figure, "--inputs", *inputs[figure], *theory, "--data", data, "--dataset", "toy",
                      "--pdf", str(pdf), "--dpi", "50"]) == 0
    assert pdf.read_bytes().startswith(b"%PDF")


def test_the_claims_of_a_diverged_world_name_the_divergence(diverged_world):
    tmp_path, data, kernel, inputs = diverged_world
    files = sorted({p for paths in inputs.values() for p in paths})
    settings = dict(SETTINGS, activations=["erf", "relu"])
    claims = C.compute(files, settings, ["toy"], [kernel], [data])
    assert all("nan" not in c.measured.lower() for c in claims), [(c.key, c.measured) for c in claims]
    (conv,) = rows(claims, "convergence")                       # mse: the widest width diverged
    assert conv.verdict == C.FAILS and conv.measured.startswith("diverged (seed 0 at step 10")
    (narrow,) = rows(claims, "narrow_vs_wide")                  # the wide run's widest width diverged
    assert "run vae diverged: m = 64 all seeds" in narrow.detail
    relu = [c for c in rows(claims, "activations") if "relu" in c.claim]
    assert relu and relu[0].verdict == C.FAILS and relu[0].measured.startswith("diverged")
    betas = rows(claims, "beta_kl")
    assert betas and "run kl_beta10 diverged: m = 1024 all seeds" in betas[0].detail
    # The mean-kernel claims on the kernel run (mse) name its divergence (on main: `m = 1024: nan`, no word of it).
    practical = rows(claims, "practical_mean_kernel") + rows(claims, "noise_floor_drift")
    assert len(practical) == 2 and all("run mse diverged: m = 1024 all seeds" in c.detail for c in practical)


def claim_texts(claims):
    return [(c.key, c.claim, c.verdict, c.measured, c.detail) for c in claims]


def test_claims_are_the_same_whatever_values_a_diverged_seed_holds(tmp_path):
    """A recorded divergence counts nowhere: seeds blown up to finite values (a divergence caught
    above a multiple of the initial objective) give the very claims that NaN gives. On main the
    blown-up values reached the beta claims' means (`mean 1, 0.333, 1e+05`)."""
    texts = []
    for blow_up in (None, 1e6):
        _, data, kernel, inputs = build_diverged_world(tmp_path / str(blow_up), blow_up)
        files = sorted({p for paths in inputs.values() for p in paths})
        texts.append(claim_texts(C.compute(files, dict(SETTINGS, activations=["erf", "relu"]), ["toy"], [kernel], [data])))
    assert texts[0] == texts[1]


THEOREM_SETTINGS = {"claims": {"slope_tolerance": 0.15, "rank_correlation": 0.8, "gap_tolerance": 0.1},
                    "theorem_runs": {"mse": "thm_mse", "kl": ["thm_kl"]}, "kernel_runs": [], "laziness_runs": ["thm_mse"],
                    "convergence_runs": ["thm_mse"], "kl_runs": [], "activations": [], "wide_run": "vae"}


def theorem_world(tmp_path, blow_up=None):
    """Theorem runs (noise fixed, outputs recorded) at three widths and their beta = 0.05 KL runs;
    seed 2 of thm_mse diverged at the widest width, seed 0 of thm_kl at the middle one."""
    n = 12
    data = write_dataset(place(tmp_path, paths.DATA.format(dataset="toy")), n=n, side=4)
    y = h5py.File(data)["x"][()]
    kernel = write_kernel(place(tmp_path, paths.KERNEL.format(dataset="toy", activation="erf")),
                          spd_kernel(n) + 0.4 * np.eye(n), noise=0.4, sigma_noise=0.05)
    runs = {(run, w): write_theorem_run(tmp_path / f"{run}_w{w}.h5", kernel, y, width=w, run=run, seed_spread=0.02,
                                        **({"objective": "vae", "beta": 0.05} if run == "thm_kl" else {}))
            for run in ("thm_mse", "thm_kl") for w in (256, 1024, 4096)}
    record_divergence(runs["thm_mse", 4096], {2: 30}, blow_up)
    record_divergence(runs["thm_kl", 1024], {0: 20}, blow_up)
    return C.compute(list(runs.values()), THEOREM_SETTINGS, ["toy"], [kernel], [data])


def test_a_diverged_theorem_run_is_left_out_and_named(tmp_path):
    """On main a theorem run with a recorded divergence crashed the claims (numpy: Eigenvalues did
    not converge, from the NaN final kernel of the diverged seed in t1_rate's Weyl bound), and the
    KL-ridge claim fitted a ridge to the diverged seed's NaN outputs."""
    claims = theorem_world(tmp_path / "nan")
    found = {c.key: c for c in claims}
    for key in ("t1_gap_slope", "t1_bound", "t1_rate", "min_width"):
        assert found[key].verdict == C.HOLDS, (key, found[key].measured)
        assert "run thm_mse diverged: m = 4096 seed 2 (first at step 30); excluded" in found[key].detail
    rate = found["t1_rate"].estimate.per_seed                        # at the widest width: seed 2 is not in it
    assert len(rate) == 3 and np.isnan(rate[2]) and np.all(np.isfinite(rate[:2]))
    kl = found["t2_kl_drops_out"]
    assert kl.verdict != C.NOT_EVALUATED and np.isnan(kl.estimate.per_seed[0]), kl.estimate
    assert "run thm_kl diverged: m = 1024 seed 0 (first at step 20); excluded" in kl.detail
    assert claim_texts(claims) == claim_texts(theorem_world(tmp_path / "blown_up", 1e6))


# ------------------------------------------------------------------ finding 6 and 8: bad training files

def claims_cli(tmp_path, files):
    settings = dict(SETTINGS, datasets=["toy"])
    return claims_main(["--inputs", *files, "--settings", json.dumps(settings), "--md", str(tmp_path / "c.md"),
                        "--tsv", str(tmp_path / "c.tsv")])


def errors(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_nan_in_a_residual_without_a_recorded_divergence_stops_the_claims(tmp_path, caplog):
    """Finding 6: a NaN in a training file's residual shifted the claims, exit 0."""
    files = laziness_runs(tmp_path, {})
    with h5py.File(files[1], "a") as f:
        f["eval/mean_function_mse"][1, 2] = np.nan
    assert claims_cli(tmp_path, files) == 1
    assert any(f"input file {files[1]}: dataset eval/mean_function_mse holds 1 non-finite" in m
               for m in errors(caplog)), errors(caplog)
    assert not (tmp_path / "c.md").exists()


@pytest.mark.parametrize("edit,expected", [
    (lambda f: f.attrs.__delitem__("width"), "lacks the attribute(s) width"),
    (lambda f: f.attrs.__setitem__("config", "{broken"), "attribute config is not valid JSON"),
    (lambda f: f.attrs.__setitem__("diverged", json.dumps({"7": 3})), "attribute diverged names seeds 7"),
    (lambda f: (f.__delitem__("eval/noise_floor"), f.create_dataset("eval/noise_floor", data=np.ones(5))),
     "dataset eval/noise_floor has shape (5,), expected (seeds, points)"),
    (lambda f: (f.__delitem__("weight_change/W1"), f.create_dataset("weight_change/W1", data=np.ones((3, 5)))),
     "dataset weight_change/W1 has shape (3, 5), but axis 0 (seeds) should be 2"),
    (lambda f: (f.__delitem__("reconstructions/mean"), f.create_dataset("reconstructions/mean", data=np.ones((2, 4, 3)))),
     "dataset reconstructions/mean has shape (2, 4, 3), but axis 2 (d) should be 16"),
    (lambda f: f.__delitem__("eval"), "lacks the dataset(s) eval/step"),
])
def test_malformed_training_file_is_one_line(tmp_path, caplog, edit, expected):
    """Finding 8: openable files with a missing attribute, group or a wrong shape gave a traceback."""
    files = laziness_runs(tmp_path, {})
    with h5py.File(files[0], "a") as f:
        edit(f)
    assert claims_cli(tmp_path, files) == 1
    assert any(str(files[0]) in m and expected in m for m in errors(caplog)), errors(caplog)


@pytest.fixture
def theory_world(tmp_path):
    """A dataset, its kernel file, a prediction file and probed runs that follow the theory."""
    n = 16
    data, kernel, y, theta = toy_data_and_kernel(tmp_path, n)
    mse = [add_theory_data(write_run(tmp_path / f"mse{w}.h5", run="mse", width=w, n=n), theta, y) for w in (64, 256)]
    prediction = place(tmp_path, paths.PREDICTION.format(dataset="toy", run="mse"))
    with h5py.File(prediction, "w") as f:   # the layout of `python -m ntkvae.predict` (what the readers need)
        f["step"] = np.arange(0, 41, 10.0)
        f["fresh/mean_function_mse"] = np.linspace(1.0, 0.1, 5)
        f["fixed/mse"] = np.linspace(1.0, 0.1, 5)
        f["theorem1_bound"] = np.linspace(1.0, 0.2, 5)
        f["lambda0"] = 1.0
        f["lambda_bar"] = 1.0
    return tmp_path, data, kernel, str(prediction), mse


@pytest.mark.parametrize("target,dataset", [("data", "x"), ("kernel", "mean_eigenvalues"),
                                            ("prediction", "fresh/mean_function_mse")])
def test_nan_in_a_data_kernel_or_prediction_file_stops_the_claims(theory_world, caplog, target, dataset):
    """Finding 6: a NaN in a data or prediction file shifted the claims (exit 0)."""
    tmp_path, data, kernel, prediction, mse = theory_world
    path = {"data": data, "kernel": kernel, "prediction": prediction}[target]
    with h5py.File(path, "a") as f:
        f[dataset][1] = np.nan
    settings = dict(SETTINGS, datasets=["toy"])
    code = claims_main(["--inputs", *mse, "--kernels", kernel, prediction, "--data", data, "--settings",
                        json.dumps(settings), "--md", str(tmp_path / "c.md"), "--tsv", str(tmp_path / "c.tsv")])
    assert code == 1
    assert any(f"input file {path}: dataset {dataset} holds" in m for m in errors(caplog)), errors(caplog)


def test_dataset_file_without_image_shape_is_named(theory_world, caplog):
    """Finding 8: a data file lacking an attribute gave a KeyError traceback in F7/F8."""
    tmp_path, data, _, _, _ = theory_world
    vae = [write_run(tmp_path / f"vae{w}.h5", run="vae", width=w, n=16, objective="vae") for w in (16, 64)]
    with h5py.File(data, "a") as f:
        del f.attrs["image_shape"]
    assert plot.main(["generation", "--inputs", *vae, "--data", data, "--pdf", str(tmp_path / "f8.pdf")]) == 1
    assert any(f"input file {data} lacks the attribute(s) image_shape" in m for m in errors(caplog)), errors(caplog)


@pytest.mark.parametrize("figure", ["kernel_constancy", "rate"])
def test_figures_say_when_no_ntk_probes_were_recorded(theory_world, figure):
    """Finding 4: kernels.probe_size: 0 (documented "0: none") crashed F3 and F4 (KeyError 'ntk')."""
    tmp_path, data, kernel, _, _ = theory_world
    runs = [write_run(tmp_path / f"plain{w}.h5", run="mse", width=w, n=16) for w in (64, 256)]
    pdf = tmp_path / f"{figure}.pdf"
    assert plot.main([figure, "--inputs", *runs, "--kernels", kernel, "--data", data, "--settings", "{}",
                      "--pdf", str(pdf)]) == 0
    assert pdf.read_bytes().startswith(b"%PDF")


def drop_probes(path) -> str:
    """A training file as kernels.probe_size: 0 writes it: no ntk group."""
    with h5py.File(path, "a") as f:
        del f["ntk"]
    return str(path)


def test_claims_without_ntk_probes_say_which_rows_are_not_evaluated(tmp_path):
    """Finding 4: kernels.probe_size: 0 (documented "0: none") crashed the claims (KeyError 'ntk' in
    t1_rate's Weyl tolerance), and the laziness rows that need the probes (kernel_constancy,
    kernel_limit, lambda_min) vanished from the table without a word."""
    n = 12
    data = write_dataset(place(tmp_path, paths.DATA.format(dataset="toy")), n=n, side=4)
    y = h5py.File(data)["x"][()]
    kernel = write_kernel(place(tmp_path, paths.KERNEL.format(dataset="toy", activation="erf")),
                          spd_kernel(n) + 0.4 * np.eye(n), noise=0.4, sigma_noise=0.05)
    files = [drop_probes(write_theorem_run(tmp_path / f"thm_w{w}.h5", kernel, y, width=w, seed_spread=0.02))
             for w in (256, 1024)]
    claims = C.compute(files, dict(THEOREM_SETTINGS, theorem_runs={"mse": "thm_mse", "kl": []}), ["toy"], [kernel],
                       [data])
    found = {c.key: c for c in claims if c.setting == C.table.THEOREM_SETTING}
    for key in ("t1_rate", "kernel_constancy", "kernel_limit", "lambda_min"):
        assert found[key].verdict == C.NOT_EVALUATED and "kernels.probe_size" in found[key].detail, key
    assert found["t1_gap_slope"].verdict != C.NOT_EVALUATED and found["weight_change_slope"].verdict != C.NOT_EVALUATED


def test_a_missing_run_is_listed_not_dropped(tmp_path):
    """Finding 4: a laziness run or an activation run without files made its rows vanish silently."""
    files = laziness_runs(tmp_path, {}) + [write_run(tmp_path / "erf.h5", run="act_erf", activation="erf")]
    claims = C.compute(files, dict(SETTINGS, laziness_runs=["mse", "other"], activations=["erf", "relu"]), ["toy"])
    missing = [c for c in claims if "run other" in c.claim]
    assert {c.key for c in missing} == {"weight_change_slope", "kernel_constancy", "kernel_limit", "lambda_min"}
    assert all(c.verdict == C.NOT_EVALUATED and c.detail == "run missing" for c in missing)
    relu = [c for c in rows(claims, "activations") if c.claim.endswith("relu")]
    assert len(relu) == 1 and relu[0].verdict == C.NOT_EVALUATED and relu[0].detail == "run missing"


def test_every_theory_row_is_listed_at_a_single_width(tmp_path):
    """Finding 4: settings the schema allows (one theorem width, one model width) dropped rows from
    the table without a word: t2_not_ridgeless with t2_krr_slope, noise_floor_drift with
    practical_mean_kernel, and t2_kl_ridge_grows whenever no KL run reached its regime."""
    from ntkvae.claims.theory import THEORY_CLAIMS

    n = 12
    data = write_dataset(place(tmp_path, paths.DATA.format(dataset="toy")), n=n, side=4)
    y = h5py.File(data)["x"][()]
    kernel = write_kernel(place(tmp_path, paths.KERNEL.format(dataset="toy", activation="erf")),
                          spd_kernel(n) + 0.4 * np.eye(n), noise=0.4, sigma_noise=0.05)
    files = [write_theorem_run(tmp_path / "thm.h5", kernel, y, width=256, seed_spread=0.02),
             write_theorem_run(tmp_path / "kl.h5", kernel, y, width=256, run="thm_kl", objective="vae", beta=0.05),
             add_theory_data(write_run(tmp_path / "mse.h5", run="mse", width=64, n=n), spd_kernel(n), y)]
    settings = dict(THEOREM_SETTINGS, kernel_runs=["mse"], laziness_runs=["mse"], convergence_runs=["mse"])
    claims = C.compute(files, settings, ["toy"], [kernel], [data])
    listed = {(c.key, c.setting) for c in claims}
    assert {(key, setting) for key, _, setting, _, _ in THEORY_CLAIMS} <= listed
    why = {c.key: c.detail for c in claims if c.verdict == C.NOT_EVALUATED}
    assert why["t2_not_ridgeless"] == why["t2_krr_slope"] == "needs two converged widths of the theorem runs"
    assert why["t2_kl_ridge_grows"].startswith("no KL run-width reaches beta c(m_z) eta T >=")
