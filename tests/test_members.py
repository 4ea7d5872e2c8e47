"""Several runs (members) in one job, and runs split by seed into part files and merged:
each run's numbers are those it gets alone."""

from __future__ import annotations

import json
import logging

import h5py
import numpy as np
import pytest

from conftest import normalized_inputs
from ntkvae import model as M
from ntkvae import train
from ntkvae.training import Settings, Trainer
from test_training import digits_file  # noqa: F401 (fixture)

MEMBERS = [Settings(steps=6, seeds=(0, 1), objective="mse", learning_rate=0.5),
           Settings(steps=6, seeds=(1,), objective="vae", beta=2.0, learning_rate=0.3),
           Settings(steps=6, seeds=(0,), objective="vae", beta=1.0, train_sigma=True, learning_rate=0.3,
                    kl_scaling="inv_width")]


@pytest.mark.parametrize("lanes", ["loop", "batched"])
def test_members_train_as_they_would_alone(monkeypatch, lanes):
    monkeypatch.setenv("NTKVAE_LANES", lanes)
    x = normalized_inputs(10, 6)
    together = Trainer(M.Architecture(), 8, MEMBERS, x)
    state = together.init_state()
    metrics = np.concatenate([together.run_chunk(state, 3), together.run_chunk(state, 3)], axis=1)
    evals = together.evaluate(state)
    for i, member in enumerate(MEMBERS):
        alone = Trainer(M.Architecture(), 8, member, x)
        s = alone.init_state()
        m = alone.run_chunk(s, 6)
        lanes_i = together.member_lanes(i)
        # Lanes run the same program alone and together; batched (vmapped) products may round
        # differently in float32: 1e-6 relative.
        np.testing.assert_allclose(metrics[lanes_i], m, rtol=1e-6)
        for g in s["params"]:
            np.testing.assert_allclose(state["params"][g][lanes_i], s["params"][g], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(evals["objective"][lanes_i], alone.evaluate(s)["objective"], rtol=1e-6)
    # The member that freezes Wsigma kept it; the one that trains it moved it.
    assert np.array_equal(state["params"]["Wsigma"][:3], state["params0"]["Wsigma"][:3])
    assert not np.array_equal(state["params"]["Wsigma"][3], state["params0"]["Wsigma"][3])


def test_members_stability_matches_alone():
    x = normalized_inputs(10, 6)
    together = Trainer(M.Architecture(), 5, MEMBERS, x)
    top = together.stability(together.init_state(), tolerance=1e-6)
    for i, member in enumerate(MEMBERS):
        alone = Trainer(M.Architecture(), 5, member, x)
        np.testing.assert_allclose(top.value[together.member_lanes(i)],
                                   alone.stability(alone.init_state(), tolerance=1e-6).value, rtol=1e-4)


def _main(tmp_path, data, runs, extra=(), width=8):
    """In-process `python -m ntkvae.train` with one --run/--training/--out triple per run."""
    args = ["--data", str(data), "--width", str(width), "--model", '{"activation": "erf"}', *extra]
    for name, settings, out in runs:
        args += ["--run", name, "--training", json.dumps(settings), "--out", str(tmp_path / out)]
    return train.main(args)


BASE = {"steps": 8, "log_every": 4, "eval_noise_samples": 3, "reconstructions": 2, "seeds": [0, 1, 2]}


def _same_file(a, b, rtol=1e-5):
    """Same datasets and attributes. The evaluation is vmapped over the job's lanes, and its
    residual is a difference (expected MSE - floor) that amplifies float32 rounding: 1e-5."""
    with h5py.File(a) as fa, h5py.File(b) as fb:
        names = []
        fa.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        other = []
        fb.visititems(lambda n, o: other.append(n) if isinstance(o, h5py.Dataset) else None)
        assert sorted(names) == sorted(other)
        for n in names:
            np.testing.assert_allclose(fa[n][()], fb[n][()], rtol=rtol, atol=1e-6, err_msg=n)
        assert set(fa.attrs) == set(fb.attrs)
        for key in set(fa.attrs) - {"command"}:
            va, vb = fa.attrs[key], fb.attrs[key]
            if isinstance(va, (float, np.floating)):
                # The stability limit: Lanczos runs until every lane of the job converged, so
                # a lane's estimate moves with its company by far less than the 1 % tolerance.
                assert va == pytest.approx(vb, rel=1e-6), key
            else:
                assert str(va) == str(vb), key


def test_members_and_parts_write_the_files_of_separate_jobs(tmp_path, digits_file):  # noqa: F811
    mse = dict(BASE, objective="mse", learning_rate=0.2)
    vae = dict(BASE, objective="vae", beta=3.0, learning_rate=0.1, seeds=[1, 2])
    assert _main(tmp_path, digits_file, [("mse", mse, "mse_alone.h5")]) == 0
    assert _main(tmp_path, digits_file, [("vae", vae, "vae_alone.h5")]) == 0
    assert _main(tmp_path, digits_file, [("mse", mse, "mse.h5"), ("vae", vae, "vae.h5")]) == 0
    _same_file(tmp_path / "mse.h5", tmp_path / "mse_alone.h5")
    _same_file(tmp_path / "vae.h5", tmp_path / "vae_alone.h5")
    # The mse run split into seeds {0, 2} and {1}, then merged.
    assert _main(tmp_path, digits_file, [("mse", mse, "part_a.h5")], ["--seeds", "0,2"]) == 0
    assert _main(tmp_path, digits_file, [("mse", mse, "part_b.h5")], ["--seeds", "1"]) == 0
    with h5py.File(tmp_path / "part_a.h5") as f:
        assert list(f["seeds"][()]) == [0, 2] and json.loads(f.attrs["part_of_seeds"]) == [0, 1, 2]
    assert train.main(["merge", "--inputs", str(tmp_path / "part_b.h5"), str(tmp_path / "part_a.h5"),
                       "--out", str(tmp_path / "merged.h5")]) == 0
    _same_file(tmp_path / "merged.h5", tmp_path / "mse_alone.h5")


def test_merge_refuses_parts_of_different_runs(tmp_path, digits_file, caplog):  # noqa: F811
    a = dict(BASE, objective="mse", learning_rate=0.2, steps=4)
    b = dict(a, learning_rate=0.1)
    assert _main(tmp_path, digits_file, [("mse", a, "a.h5")], ["--seeds", "0"]) == 0
    assert _main(tmp_path, digits_file, [("mse", b, "b.h5")], ["--seeds", "1,2"]) == 0
    with caplog.at_level(logging.ERROR):
        code = train.main(["merge", "--inputs", str(tmp_path / "a.h5"), str(tmp_path / "b.h5"), "--out",
                           str(tmp_path / "m.h5")])
    assert code == 1 and "different settings" in caplog.text and not (tmp_path / "m.h5").exists()


def test_members_that_cannot_share_a_job_are_named(tmp_path, digits_file, caplog):  # noqa: F811
    a = dict(BASE, objective="mse")
    with caplog.at_level(logging.ERROR):
        code = _main(tmp_path, digits_file, [("a", a, "a.h5"), ("b", dict(a, steps=9), "b.h5")])
    assert code == 1 and "must agree on steps" in caplog.text
