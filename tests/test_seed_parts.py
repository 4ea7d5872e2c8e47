"""Splitting a training job by seed: the parts' merged file equals the unsplit job's file."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from ntkvae import datasets, parts, stability, train

MODEL = {"activation": "erf", "weight_std": 1.0, "bias": False, "latent_width": "same"}
# learning rate below the stability limit at m = 12 (0.32, measured by the training job)
TRAINING = {"objective": "vae", "optimizer": "sgd", "learning_rate": 0.2, "steps": 6, "seeds": [0, 1, 2],
            "beta": 1.0, "kl_scaling": "inv_sqrt_width", "train_sigma": False, "log_every": 3,
            "eval_noise_samples": 4, "reconstructions": 3, "noise": "fresh", "on_divergence": "fail",
            "checkpoint_every": 0}
PROBE = {"probe_size": 6, "probe_noise_samples": 2, "probe_outputs": 4}
# A vmapped step over 1 or 2 seeds may compile to another fusion than over 3: float32 rounding
# of the same arithmetic, a few ulp per step over 6 steps, relative to each array's own scale
# (an entry near zero carries the rounding of the larger terms it was summed from).
RTOL = 1e-5


def args_for(data, out):
    return ["--data", str(data), "--width", "12", "--run", "vae", "--model", json.dumps(MODEL),
            "--training", json.dumps(TRAINING), "--probe", json.dumps(PROBE), "--out", str(out)]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("parts")
    data = tmp / "digits.h5"
    datasets.write_dataset(data, "digits", datasets.digits_subset(16, 0), n=16, seed=0, center=True)
    assert train.main(args_for(data, tmp / "whole.h5")) == 0
    assert train.main(["--seeds", "2", *args_for(data, tmp / "p2.h5")]) == 0
    assert train.main(["--seeds", "0,1", *args_for(data, tmp / "p01.h5")]) == 0
    # given out of order: the merge sorts the parts by their seeds
    assert train.main(["merge", "--inputs", str(tmp / "p2.h5"), str(tmp / "p01.h5"),
                            "--out", str(tmp / "merged.h5")]) == 0
    return tmp


def datasets_of(f):
    out = {}
    f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def test_merged_file_equals_the_unsplit_one(files):
    with h5py.File(files / "whole.h5") as fw, h5py.File(files / "merged.h5") as fm:
        whole, merged = datasets_of(fw), datasets_of(fm)
        assert sorted(whole) == sorted(merged)
        for name, value in whole.items():
            if name == "stability/error_bound":
                # Lanczos' residual bound: a converged seed's is float32 noise (1e-7 of a value
                # near 1), not a number the parts must reproduce; both must meet the stopping rule.
                lam = np.abs(whole["stability/hessian_lambda_max"])
                assert np.all(merged[name] <= stability.RELATIVE_TOLERANCE * lam) and np.all(value <= stability.RELATIVE_TOLERANCE * lam)
                continue
            scale = float(np.max(np.abs(value))) if np.issubdtype(np.asarray(value).dtype, np.floating) else 0.0
            np.testing.assert_allclose(merged[name], value, rtol=RTOL, atol=RTOL * scale, err_msg=name)
        assert list(fm["seeds"][()]) == [0, 1, 2]
        for key, value in fw.attrs.items():
            if key not in parts.PROCESS_ATTRS:
                if isinstance(value, float):   # the stability limit: the same Lanczos run, float32 rounding
                    assert fm.attrs[key] == pytest.approx(value, rel=1e-6), key
                else:
                    assert fm.attrs[key] == value, key
        assert dict(fm["ntk"].attrs) == dict(fw["ntk"].attrs)


def test_parts_hold_only_their_seeds(files):
    with h5py.File(files / "p01.h5") as f:
        assert list(f["seeds"][()]) == [0, 1] and f["train/objective"].shape[0] == 2
        # the part says whose seeds it holds: the run's, unchanged in its config
        assert json.loads(f.attrs["part_of_seeds"]) == [0, 1, 2]
        assert json.loads(f.attrs["config"])["training"]["seeds"] == [0, 1, 2]


def test_parts_of_different_settings_are_refused(files, tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(files / "p2.h5") as src, h5py.File(other, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        cfg = json.loads(src.attrs["config"])
        cfg["training"]["learning_rate"] = 0.25
        dst.attrs["config"] = json.dumps(cfg)
        for name, value in datasets_of(src).items():
            dst[name] = value
    assert train.main(["merge", "--inputs", str(files / "p01.h5"), str(other), "--out",
                            str(tmp_path / "m.h5")]) == 1
    assert not (tmp_path / "m.h5").exists()


def test_a_seed_not_in_the_run_is_refused(files, tmp_path):
    data = files / "digits.h5"
    assert train.main(["--seeds", "7", *args_for(data, tmp_path / "p7.h5")]) == 1
