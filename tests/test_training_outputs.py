"""What the verdicts read from a training job: recorded outputs and their Monte-Carlo variance,
training on the first k examples, and stopping at convergence."""

from __future__ import annotations

import json

import h5py
import jax
import numpy as np
import pytest

from conftest import normalized_inputs
from ntkvae import model as M
from ntkvae.training import Settings, Trainer, convergence
from test_training import digits_file, train_cli  # noqa: F401 (fixture)


def test_recorded_mean_is_debiased_by_its_mc_variance():
    """E||mean_K - g||^2 = ||f_bar - g||^2 + mean_mc_variance: averaged over many K = 3
    evaluations, the corrected squared distance matches the many-draw one; uncorrected it does not."""
    x = normalized_inputs(6, 4)
    few = Trainer(M.Architecture(), 8, Settings(seeds=(0,), eval_noise_samples=3, record_outputs=True), x)
    many = Trainer(M.Architecture(), 8, Settings(seeds=(0,), eval_noise_samples=20000, record_outputs=True), x)
    state = few.init_state()
    g = np.zeros_like(x)  # any fixed target; 0 makes ||f_bar - g||^2 the mean's squared norm
    corrected, raw = [], []
    for step in range(300):  # the step number re-seeds the evaluation noise
        out = few.evaluate(dict(state, step=step))["outputs"]
        raw.append(np.sum((out["mean"][0] - g) ** 2))
        corrected.append(raw[-1] - out["mean_mc_variance"][0])
    reference = np.sum((many.evaluate(state)["outputs"]["mean"][0] - g) ** 2)
    se = np.std(corrected, ddof=1) / np.sqrt(len(corrected))
    # 4 standard errors of the 300-evaluation mean, plus the reference's own MC error (20000 draws).
    band = 4 * se + 0.01 * reference
    assert abs(np.mean(corrected) - reference) < band
    assert np.mean(raw) - reference > band  # the bias the correction removes is visible


def test_recorded_sampled_output_uses_the_training_noise():
    x = normalized_inputs(6, 4)
    trainer = Trainer(M.Architecture(), 8, Settings(seeds=(0, 1), noise="fixed", record_outputs=True), x)
    state = trainer.init_state()
    trainer.run_chunk(state, 3)
    out = trainer.evaluate(state)
    for pos in range(2):
        params = jax.tree.map(lambda a: a[pos], state["params"])
        eps = trainer.training_noise(state["noise_key"][pos], 0)  # fixed: the one draw of step 0
        want = M.forward(params, trainer.x, eps, trainer.arch)["xhat"]
        np.testing.assert_allclose(out["outputs"]["sampled"][pos], want, rtol=1e-5, atol=1e-6)
    # and the objective logged at this point is that output's objective
    np.testing.assert_allclose(out["objective"][0], 0.5 * np.mean(np.sum((out["outputs"]["sampled"][0] - x) ** 2, 1)),
                               rtol=1e-5)


def test_convergence_criterion_both_branches():
    steps = [0, 10, 20, 30, 40]
    # seed 0 falls below tol * L(0) at step 20; seed 1 plateaus (relative change <= tol) at step 30.
    objective = np.array([[100.0, 10.0, 0.5, 0.2, 0.1],
                          [100.0, 60.0, 55.0, 54.9, 54.8]])
    first, stop = convergence(objective, steps, tolerance=0.01)
    assert first == {0: 20, 1: 30} and stop == 30
    # Neither branch: no stop; a seed that never meets it has no entry.
    first, stop = convergence(np.array([[100.0, 50.0, 25.0, 12.0, 6.0]]), steps, tolerance=0.01)
    assert first == {} and stop is None


def test_examples_and_record_outputs_in_the_file(tmp_path, digits_file):  # noqa: F811
    out = tmp_path / "w8.h5"
    proc = train_cli(tmp_path, digits_file, out, examples=10, record_outputs=True, reconstructions=20)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out) as f:
        assert int(f.attrs["n"]) == 10 and list(f["examples_index"][()]) == list(range(10))
        assert f["reconstructions/mean"].shape == (2, 10, 64)       # within the k examples
        assert f["ntk/init/total"].shape == (2, 10, 10)
        assert list(f["outputs/step"][()]) == [0, 5, 10, 12] == list(f["eval/step"][()])
        assert f["outputs/sampled"].shape == f["outputs/mean"].shape == (2, 4, 10, 64)
        assert f["outputs/sampled"].dtype == np.float32
        assert f["outputs/mean_mc_variance"].shape == (2, 4) and np.all(f["outputs/mean_mc_variance"][()] > 0)
        objective = f["train/objective"][()]
    # The same as training on a data file of those 10 examples alone.
    with h5py.File(digits_file) as f:
        x = f["x"][:10]
    trainer = Trainer(M.Architecture(), 8, Settings(steps=12, seeds=(0, 1), learning_rate=0.2), x)
    state = trainer.init_state()
    metrics = np.concatenate([trainer.run_chunk(state, c) for c in (5, 5, 2)], axis=1)
    np.testing.assert_allclose(objective, metrics[..., 0], rtol=1e-6)


@pytest.mark.parametrize("tolerance,stops", [(0.08, True), (1e-9, False)])
def test_training_stops_at_convergence(tmp_path, digits_file, tolerance, stops):  # noqa: F811
    out = tmp_path / "w8.h5"
    proc = train_cli(tmp_path, digits_file, out, noise="fixed", convergence_tolerance=tolerance, steps=40)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out) as f:
        stopped = int(f.attrs["stopped_at"])
        converged = json.loads(f.attrs["converged"])
        steps = list(f["eval/step"][()])
        objective = f["eval/objective"][()]
        assert f["train/objective"].shape == (2, stopped) and steps[-1] == stopped
    assert set(converged) == {"0", "1"}
    if stops:
        assert stopped < 40 and all(converged[s] is not None and converged[s] <= stopped for s in converged)
        first, stop = convergence(objective, steps, tolerance)
        assert stop == stopped and first.keys() == {0, 1}
    else:
        assert stopped == 40 and steps == [0, 5, 10, 15, 20, 25, 30, 35, 40]


def test_paired_estimate_is_the_common_noise_mean_at_init_and_its_change():
    """outputs/paired_*: the k-draw mean at init and its change by the end over the same draws,
    recomputed here draw by draw from the model; no change (nor variance) before training;
    after training, the change's MC variance far below the function's (the reason for pairing)."""
    from ntkvae import training

    x = normalized_inputs(6, 4)
    trainer = Trainer(M.Architecture(), 512, Settings(seeds=(0, 1), noise="fixed", record_outputs=True,
                                                      train_sigma=False, eval_noise_samples=8), x)
    state = trainer.init_state()
    before = trainer.final_outputs(state, 1, None)["paired"]
    # zero to float32 rounding (XLA may fuse the two decodes differently): |change| <= 1e-6 |f|
    assert np.abs(before["change_mean"]).max() <= 1e-6 * np.abs(before["initial_mean"]).max()
    assert np.all(before["change_mc_variance"] <= 1e-12 * before["initial_mc_variance"])
    trainer.run_chunk(state, 20)
    paired = trainer.final_outputs(state, 1, None)["paired"]
    for pos in range(2):
        p0, p1 = (jax.tree.map(lambda a: a[pos], state[k]) for k in ("params0", "params"))
        keys = jax.random.split(jax.random.fold_in(state["eval_key"][pos], training.PAIRED_STEP), 8)
        draws0, draws1 = [], []
        for k in keys:
            eps = M.sample_noise(k, 6, trainer.arch, 512)
            draws0.append(np.asarray(M.forward(p0, trainer.x, eps, trainer.arch)["xhat"], np.float64))
            draws1.append(np.asarray(M.forward(p1, trainer.x, eps, trainer.arch)["xhat"], np.float64))
        draws0, change = np.array(draws0), np.array(draws1) - np.array(draws0)
        np.testing.assert_allclose(paired["initial_mean"][pos], draws0.mean(0), atol=1e-5)
        np.testing.assert_allclose(paired["change_mean"][pos], change.mean(0), atol=1e-5)
        np.testing.assert_allclose(paired["change_mc_variance"][pos], change.var(0, ddof=1).sum() / 8, rtol=1e-3)
        np.testing.assert_allclose(paired["final_mc_variance"][pos], np.array(draws1).var(0, ddof=1).sum() / 8,
                                   rtol=1e-3)
        assert paired["change_mc_variance"][pos] < 0.2 * paired["initial_mc_variance"][pos]
