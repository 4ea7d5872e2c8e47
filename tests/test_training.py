"""Training: reproducibility, frozen variance weights, divergence handling, the job's HDF5 file."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import jax
import numpy as np
import pytest

from conftest import ROOT, normalized_inputs
from ntkvae import datasets
from ntkvae import model as M
from ntkvae.training import Settings, Trainer, log_points


def run(settings: Settings, x, width=16, arch=None, chunks=None):
    trainer = Trainer(arch or M.Architecture(), width, settings, x)
    state = trainer.init_state()
    metrics = [trainer.run_chunk(state, c) for c in (chunks or [settings.steps])]
    return trainer, state, np.concatenate(metrics, axis=1)


def test_same_seed_same_numbers():
    x = normalized_inputs(12, 8)
    s = Settings(steps=15, seeds=(0, 1), objective="vae")
    _, state_a, ma = run(s, x)
    _, state_b, mb = run(s, x)
    np.testing.assert_array_equal(ma, mb)
    for k in state_a["params"]:
        np.testing.assert_array_equal(state_a["params"][k], state_b["params"][k])
    # Different seeds differ.
    assert not np.allclose(ma[0], ma[1])


def test_chunking_does_not_change_the_trajectory():
    """Noise comes from fold_in(key, step): splitting the steps into chunks changes nothing."""
    x = normalized_inputs(12, 8)
    s = Settings(steps=12, seeds=(0,), optimizer="adam", learning_rate=1e-2)
    _, sa, ma = run(s, x, chunks=[12])
    _, sb, mb = run(s, x, chunks=[5, 7])
    np.testing.assert_allclose(ma, mb, rtol=1e-6)
    for k in sa["params"]:
        np.testing.assert_allclose(sa["params"][k], sb["params"][k], rtol=1e-6, atol=1e-7)


def test_seed_alone_equals_seed_in_batch():
    """A seed's trajectory does not depend on which other seeds share its vmapped job."""
    x = normalized_inputs(12, 8)
    _, _, alone = run(Settings(steps=10, seeds=(1,)), x)
    _, _, batch = run(Settings(steps=10, seeds=(0, 1)), x)
    # Batched and single matrix products may round differently (float32): 1e-5 relative.
    np.testing.assert_allclose(alone[0], batch[1], rtol=1e-5)


@pytest.mark.parametrize("train_sigma", [False, True])
def test_variance_weights_frozen_unless_trained(train_sigma):
    x = normalized_inputs(12, 8)
    for optimizer in ("sgd", "adam"):
        s = Settings(steps=5, seeds=(0,), objective="vae", train_sigma=train_sigma, optimizer=optimizer,
                     learning_rate=0.05)
        _, state, _ = run(s, x)
        moved = {k: not np.array_equal(state["params"][k], state["params0"][k]) for k in state["params"]}
        assert moved["Wsigma"] == train_sigma
        assert moved["W1"] and moved["Wmu"] and moved["W3"] and moved["W4"]


def test_loss_decreases_and_eval_splits_floor():
    x = normalized_inputs(32, 16)
    s = Settings(steps=60, seeds=(0,), learning_rate=2.0, eval_noise_samples=64)
    trainer, state, metrics = run(s, x, width=256)
    ev = trainer.evaluate(state)
    assert metrics[0, -10:, 0].mean() < 0.5 * metrics[0, :5, 0].mean()
    # expected MSE = mean-function residual + noise floor, and the floor is a variance (>= 0).
    np.testing.assert_allclose(ev["expected_mse"], ev["mean_function_mse"] + ev["noise_floor"], rtol=1e-5)
    assert np.all(ev["noise_floor"] > 0)
    assert set(ev["weight_change"]) == set(M.WEIGHT_GROUPS)


def test_log_points():
    assert log_points(10, 5) == [0, 5, 10]
    assert log_points(12, 5) == [0, 5, 10, 12]


@pytest.fixture()
def digits_file(tmp_path):
    path = tmp_path / "digits.h5"
    datasets.write_dataset(path, "digits", datasets.digits_subset(24, 0), n=24, seed=0, center=True)
    return path


def train_cli(tmp_path, data, out, *, args=(), **training):
    # Learning rate 0.2: below the stability limit at init of width 8 on these 24 digits (0.35).
    settings = {"steps": 12, "seeds": [0, 1], "log_every": 5, "eval_noise_samples": 4, "reconstructions": 3,
                "learning_rate": 0.2}
    settings.update(training)
    cmd = [sys.executable, "-m", "ntkvae.train", "--data", str(data), "--width", "8", "--run", "mse",
           "--model", json.dumps({"activation": "erf"}), "--training", json.dumps(settings), "--out", str(out), *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=300)


def _env():
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src")
    return env


def test_train_cli_writes_complete_file(tmp_path, digits_file):
    out = tmp_path / "w8.h5"
    proc = train_cli(tmp_path, digits_file, out)
    assert proc.returncode == 0, proc.stderr
    assert "step 12/12" in proc.stderr  # progress reaches the log
    with h5py.File(out) as f:
        assert f["train/objective"].shape == (2, 12)
        assert list(f["eval/step"][()]) == [0, 5, 10, 12]
        assert f["eval/mean_function_mse"].shape == (2, 4)
        assert set(f["weight_change"]) == set(M.WEIGHT_GROUPS) == set(f["weight_change_absolute"])
        np.testing.assert_array_equal(f["weight_change/W1"][:, 0], 0.0)
        np.testing.assert_array_equal(f["weight_change_absolute/W1"][:, 0], 0.0)
        # The absolute change is the relative one times ||W(0)||_F (sqrt(8 * 64) for W1 ~ N(0, 1)).
        ratio = f["weight_change_absolute/W1"][:, 1:] / f["weight_change/W1"][:, 1:]
        assert np.allclose(ratio, ratio[:, :1], rtol=1e-5) and np.all(abs(ratio / np.sqrt(8 * 64) - 1) < 0.2)
        np.testing.assert_array_equal(f["weight_change_absolute/Wsigma"][()], 0.0)  # frozen
        assert f["eval/objective"].shape == (2, 4) and list(f["examples_index"][()]) == list(range(24))
        assert int(f.attrs["stopped_at"]) == 12 and "converged" not in f.attrs
        assert f["stability/hessian_lambda_max"].shape == (2,)
        limit = 2 / f["stability/hessian_lambda_max"][()].max()
        np.testing.assert_allclose(f.attrs["stability_learning_rate"], limit)
        np.testing.assert_allclose(f.attrs["lr_over_stability"], 0.2 / limit)
        assert f["reconstructions/mean"].shape == (2, 3, 64)
        assert int(f.attrs["width"]) == 8 and f.attrs["run"] == "mse"
        cfg = json.loads(f.attrs["config"])
        assert cfg["training"]["steps"] == 12
        assert "jax" in json.loads(f.attrs["versions"]) and f.attrs["git_commit"]
        assert str(f.attrs["device"]).startswith("cpu")


def test_train_cli_same_numbers_twice(tmp_path, digits_file):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    assert train_cli(tmp_path, digits_file, a).returncode == 0
    assert train_cli(tmp_path, digits_file, b).returncode == 0
    with h5py.File(a) as fa, h5py.File(b) as fb:
        for key in ("train/objective", "eval/mean_function_mse", "reconstructions/mean", "weight_change/W3"):
            np.testing.assert_array_equal(fa[key][()], fb[key][()])


def test_divergence_fails_loudly_without_output(tmp_path, digits_file):
    """Adam (not subject to the stability check at init) with a huge step diverges in training."""
    out = tmp_path / "bad.h5"
    proc = train_cli(tmp_path, digits_file, out, optimizer="adam", learning_rate=1e3)
    assert proc.returncode == 1
    assert "diverged: run mse, width 8, seed 0" in proc.stderr and "at step" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()
    assert not any(p.name.startswith(".bad.h5") for p in tmp_path.iterdir())  # no temporary left


def test_divergence_recorded_when_asked(tmp_path, digits_file):
    out = tmp_path / "rec.h5"
    proc = train_cli(tmp_path, digits_file, out, learning_rate=1e4, on_divergence="record")
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out) as f:
        diverged = json.loads(f.attrs["diverged"])
    assert set(diverged) == {"0", "1"} and all(0 <= s < 12 for s in diverged.values())


def test_corrupt_input_names_the_file(tmp_path):
    bad = tmp_path / "corrupt.h5"
    bad.write_bytes(b"not an hdf5 file")
    proc = train_cli(tmp_path, bad, tmp_path / "x.h5")
    assert proc.returncode != 0
    assert str(bad) in proc.stderr and "Traceback" not in proc.stderr


def test_residual_and_floor_estimates_are_unbiased():
    """The k-draw estimates of residual and floor average to their many-draw values."""
    x = normalized_inputs(6, 4)
    few = Trainer(M.Architecture(), 8, Settings(seeds=(0,), eval_noise_samples=3), x)
    many = Trainer(M.Architecture(), 8, Settings(seeds=(0,), eval_noise_samples=20000), x)
    state = few.init_state()
    draws = []
    for step in range(300):                       # the step number re-seeds the evaluation noise
        draws.append(few.evaluate(dict(state, step=step)))
    reference = many.evaluate(state)
    se = {}
    for key in ("mean_function_mse", "noise_floor"):
        values = np.array([d[key][0] for d in draws])
        se[key] = values.std(ddof=1) / np.sqrt(len(values))
        # 4 standard errors of the 300-evaluation mean, plus the reference's own error (20000 draws).
        assert abs(values.mean() - reference[key][0]) < 4 * se[key] + 0.01 * abs(reference[key][0]), key
    # Without the correction the 3-draw residual would be high by floor / 3: far outside that band.
    assert reference["noise_floor"][0] / 3 > 4 * se["mean_function_mse"] + 0.01 * reference["mean_function_mse"][0]


def test_fixed_noise_reuses_one_draw():
    """noise: fixed trains a deterministic network of (x_i, eps_i): its objective reaches far lower."""
    x = normalized_inputs(8, 8)
    _, _, fixed = run(Settings(steps=150, seeds=(0,), noise="fixed", learning_rate=2.0), x, width=64)
    _, _, fresh = run(Settings(steps=150, seeds=(0,), noise="fresh", learning_rate=2.0), x, width=64)
    assert fixed[0, -1, 0] < 0.5 * fresh[0, -10:, 0].mean()
    # With the same step's draw, the first steps are identical.
    np.testing.assert_array_equal(fixed[0, 0], fresh[0, 0])
