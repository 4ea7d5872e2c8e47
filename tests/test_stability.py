"""The stability limit at initialization: Lanczos against dense eigensolvers, the trained-groups
Hessian against jax.hessian, and the job refusing a learning rate above the limit."""

from __future__ import annotations

import json

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from conftest import normalized_inputs
from ntkvae import model as M
from ntkvae import objectives, stability
from ntkvae.training import Settings, Trainer
from test_training import digits_file, train_cli  # noqa: F401 (fixture)


def test_lanczos_top_with_a_dominant_negative_eigenvalue():
    """The largest (algebraic) eigenvalue, also when the largest in magnitude is negative:
    a power iteration would return -10 here."""
    rng = np.random.default_rng(0)
    size = 60
    spectra = [np.concatenate([[-10.0, 3.0], rng.uniform(-2, 2.9, size - 2)]),
               np.concatenate([[5.0], rng.uniform(-1, 4.0, size - 1)])]
    mats = []
    for spectrum in spectra:
        q, _ = np.linalg.qr(rng.normal(size=(size, size)))
        mats.append((q * spectrum) @ q.T)
    mats = jnp.asarray(np.stack(mats), jnp.float32)
    top = stability.lanczos_top(lambda a: (lambda v: a @ v), mats, jnp.asarray(rng.normal(size=(2, size)), jnp.float32))
    assert top.converged
    # The bound is the stopping rule (1 %); the Ritz value approaches from below.
    np.testing.assert_allclose(top.value, [3.0, 5.0], rtol=stability.RELATIVE_TOLERANCE)
    assert np.all(top.value <= np.array([3.0, 5.0]) * (1 + 1e-5))


def explicit_lambda_max(trainer: Trainer, state: dict, pos: int, groups) -> float:
    """Largest eigenvalue of jax.hessian of the objective in `groups` (float64, dense)."""
    with jax.enable_x64(True):
        params = jax.tree.map(lambda a: jnp.asarray(np.asarray(a[pos]), jnp.float64), state["params0"])
        eps = jnp.asarray(np.asarray(trainer.training_noise(state["noise_key"][pos], 0)), jnp.float64)
        x = jnp.asarray(np.asarray(trainer.x), jnp.float64)
        flat, unravel = ravel_pytree({g: params[g] for g in groups})
        rest = {g: v for g, v in params.items() if g not in groups}
        s = trainer.settings

        def loss(v):
            out = M.forward({**unravel(v), **rest}, x, eps, trainer.arch)
            return objectives.objective(out, x, kind=s.objective, beta=s.beta, kl_scaling=s.kl_scaling)[0]

        return float(np.linalg.eigvalsh(np.asarray(jax.hessian(loss)(flat)))[-1])


@pytest.mark.parametrize("objective,train_sigma", [("mse", False), ("vae", False), ("vae", True)])
def test_hessian_lambda_max_matches_the_explicit_hessian(objective, train_sigma):
    x = normalized_inputs(10, 6)
    settings = Settings(seeds=(0, 3), objective=objective, train_sigma=train_sigma, beta=2.0)
    trainer = Trainer(M.Architecture(), 5, settings, x)
    state = trainer.init_state()
    # Run Lanczos to convergence (the space has 110 or 135 dimensions): what is left is float32 rounding.
    top = trainer.stability(state, tolerance=1e-6)
    trained = [g for g in state["params0"] if settings.trained(g)]
    for pos in range(2):
        want = explicit_lambda_max(trainer, state, pos, trained)
        np.testing.assert_allclose(top.value[pos], want, rtol=1e-4)
        if not train_sigma:
            # Frozen groups are not differentiated: the Hessian over every group differs.
            assert abs(explicit_lambda_max(trainer, state, pos, list(state["params0"])) - want) > 1e-3 * want
    # The default stopping rule (1 % bound) lands within 1 % of the converged value.
    np.testing.assert_allclose(trainer.stability(state).value, top.value, rtol=stability.RELATIVE_TOLERANCE)


def test_learning_rate_above_the_limit_is_refused(tmp_path, digits_file):  # noqa: F811
    """Width 8 on 24 digits: the limit is 0.35 (2 / lambda_max); learning rate 1 is refused
    before training, with the numbers and what to change, and no output."""
    out = tmp_path / "w8.h5"
    proc = train_cli(tmp_path, digits_file, out, learning_rate=1.0)
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "Traceback" not in proc.stderr
    msg = errors[0]
    for part in ("dataset digits", "run mse", "width 8", "seeds [0, 1]", "learning_rate 1 exceeds",
                 "stability limit", "on_divergence: record"):
        assert part in msg, (part, msg)
    assert "step 5/12" not in proc.stderr  # no training happened
    assert not out.exists() and not list(tmp_path.glob(".w8.h5*"))


def test_learning_rate_above_the_limit_recorded_when_asked(tmp_path, digits_file):  # noqa: F811
    out = tmp_path / "w8.h5"
    proc = train_cli(tmp_path, digits_file, out, learning_rate=1.0, on_divergence="record")
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out) as f:
        limit = f.attrs["stability_learning_rate"]
        assert 0 < limit < 1.0 and f.attrs["lr_over_stability"] == pytest.approx(1.0 / limit)
        assert bool(f["stability"].attrs["converged"])


def test_adam_has_no_stability_limit(tmp_path, digits_file):  # noqa: F811
    out = tmp_path / "w8.h5"
    proc = train_cli(tmp_path, digits_file, out, optimizer="adam", learning_rate=1e-2, steps=5)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out) as f:
        assert f.attrs["stability_learning_rate"] == "not applicable" == f.attrs["lr_over_stability"]
        assert "stability" not in f
        assert json.loads(f.attrs["config"])["training"]["optimizer"] == "adam"
