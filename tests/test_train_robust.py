"""Issue 13 findings on the training job, each reproduced first: a finite divergence that went
undetected, temporaries left by killed jobs, two live jobs on one checkpoint, a full disk
during a checkpoint, and tracebacks for a bad config."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import yaml

from conftest import ROOT
from ntkvae import checkpoint as K
from ntkvae import datasets, train
from ntkvae.training import first_divergence
from test_training import _env, digits_file, train_cli  # noqa: F401 (fixture)


def test_finite_blow_up_is_a_divergence():
    metrics = np.zeros((2, 4, 3))
    metrics[0, :, 0] = [50.0, 80.0, 4.9e3, 4.99e3]  # bounded growth stays below 100 x 50
    metrics[1, :, 0] = [50.0, 90.0, 5.1e3, 1e15]  # passes 100 x its initial value at step 2
    assert first_divergence(metrics, 10, metrics[:, 0, 0]) == [(1, 12, 5.1e3)]
    metrics[0, 3, 0] = np.nan
    assert [d[:2] for d in first_divergence(metrics, 0, metrics[:, 0, 0])] == [(0, 3), (1, 2)]


@pytest.fixture()
def tiny_lr6(tmp_path):
    """tests/configs/tiny.yaml with learning_rate 6 (the finding: objective 51 -> 1.2e15, exit 0)."""
    cfg = yaml.safe_load((ROOT / "tests/configs/tiny.yaml").read_text())
    cfg["training"]["learning_rate"] = 6
    data = tmp_path / "digits.h5"
    datasets.write_dataset(data, "digits", datasets.digits_subset(32, 0), n=32, seed=0, center=True)
    return cfg, data


def _train_config(tmp_path, cfg, data, out):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "ntkvae.train", "--data", str(data), "--width", "16", "--config", str(path),
           "--run", "mse", "--out", str(out)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=300)


def test_tiny_config_at_learning_rate_6_diverges_on_record(tmp_path, tiny_lr6):
    cfg, data = tiny_lr6
    cfg["training"]["on_divergence"] = "record"
    cfg["kernels"] = {"probe_size": 0}   # no probes: faster, and the documented "0: none" in a real job (finding 4)
    out = tmp_path / "w16.h5"
    proc = _train_config(tmp_path, cfg, data, out)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out) as f:
        diverged = json.loads(f.attrs["diverged"])
        assert set(diverged) == {"0", "1"}, diverged  # on the old main: {} (only NaN/inf counted)
        assert f.attrs["lr_over_stability"] > 1
        assert "ntk" not in f


def test_tiny_config_at_learning_rate_6_fails(tmp_path, tiny_lr6):
    cfg, data = tiny_lr6
    cfg["training"]["on_divergence"] = "fail"
    out = tmp_path / "w16.h5"
    proc = _train_config(tmp_path, cfg, data, out)
    assert proc.returncode == 1 and not out.exists()
    assert "learning_rate 6 exceeds the finite-width stability limit" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_live_writer_refuses_a_second_job(tmp_path, digits_file):  # noqa: F811
    """A job whose output another live process holds refuses to run; once the holder is gone
    (the kernel drops its lock; the lock file stays), the job runs."""
    out = tmp_path / "w8.h5"
    lock = K.lock_path(out)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, b"4242")
    try:
        proc = train_cli(tmp_path, digits_file, out, steps=5)
    finally:
        os.close(fd)  # what the kernel does when the holder dies
    assert proc.returncode == 1 and not out.exists()
    assert "is being written by another live job (pid 4242" in proc.stderr and "Traceback" not in proc.stderr
    assert lock.exists()
    # The lock the training job takes (in process: no second training needed to show it).
    with K.exclusive_writer([out]):
        assert lock.read_text() == str(os.getpid())
    assert not lock.exists()


def test_exclusive_writer_in_process(tmp_path):
    target = tmp_path / "x.h5"
    with K.exclusive_writer([target]):
        with pytest.raises(K.WriterBusy, match=f"pid {os.getpid()}"):
            with K.exclusive_writer([target]):
                pass
    with K.exclusive_writer([target]):  # released
        pass


def test_full_disk_during_a_checkpoint_leaves_nothing(tmp_path, monkeypatch):
    state = {"params": {"W": np.ones(3, np.float32)}, "step": 5}
    history = {"metrics": [np.zeros((1, 5, 3))], "evals": [{"kl": np.zeros(1)}]}
    path = tmp_path / "run.npz"
    K.save_checkpoint(path, state, history, "abc")
    before = path.read_bytes()

    def full_disk(file, **arrays):
        with open(file, "wb") as fh:
            fh.write(b"PK\x03\x04 half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(K.np, "savez", full_disk)
    with pytest.raises(K.CheckpointError, match="No space left on device") as err:
        K.save_checkpoint(path, dict(state, step=10), history, "abc")
    assert str(path) in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"] and path.read_bytes() == before


def test_probes_are_computed_before_the_output_is_opened(tmp_path, digits_file, monkeypatch):  # noqa: F811
    """The kill window of the final write: nothing is computed while the temporary exists. And a
    SIGKILL during the final write or a checkpoint leaves its temporary: the next job removes it."""
    out, ckpt = tmp_path / "w8.h5", tmp_path / "ckpt" / "w8.npz"
    ckpt.parent.mkdir()
    stale = [tmp_path / ".w8.h5.tmp-999999", ckpt.parent / ".w8.npz.tmp-999999.npz", ckpt.parent / "w8.npz.tmp.npz"]
    for path in stale:
        path.write_bytes(b"partial")
    from ntkvae import io, training

    opened = {"now": False, "computed_inside": 0, "computed": 0}
    real_atomic, real_finals = io.atomic_h5, training.Trainer.final_outputs

    def atomic(*a, **k):
        cm = real_atomic(*a, **k)

        class Wrapped:
            def __enter__(self):
                opened["now"] = True
                return cm.__enter__()

            def __exit__(self, *exc):
                opened["now"] = False
                return cm.__exit__(*exc)

        return Wrapped()

    def finals(*a, **k):
        opened["computed_inside"] += opened["now"]
        opened["computed"] += 1
        return real_finals(*a, **k)

    monkeypatch.setattr(io, "atomic_h5", atomic)
    # What the job calls for its probes (init and end), reconstructions and generation: one program.
    monkeypatch.setattr(training.Trainer, "final_outputs", finals)
    settings = {"steps": 2, "seeds": [0], "log_every": 2, "eval_noise_samples": 2, "learning_rate": 0.2}
    code = train.main(["--data", str(digits_file), "--width", "8", "--run", "mse", "--model", '{"activation": "erf"}',
                       "--training", json.dumps(settings), "--probe", '{"probe_size": 4}',
                       "--checkpoint", str(ckpt), "--out", str(out)])
    assert code == 0 and opened["computed"] == 1 and opened["computed_inside"] == 0   # every lane, init and end
    with h5py.File(out) as f:
        assert f["ntk/init/total"].shape == (1, 4, 4)
    assert not any(p.exists() for p in stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ckpt", "digits.h5", "w8.h5"])
    assert list(ckpt.parent.iterdir()) == []  # no checkpoint, lock or temporary left after success


@pytest.mark.parametrize("case", ["schema", "yaml", "unknown_run", "missing_file", "json"])
def test_config_errors_are_one_line(tmp_path, digits_file, caplog, case):  # noqa: F811
    cfg = yaml.safe_load((ROOT / "tests/configs/tiny.yaml").read_text())
    path = tmp_path / "cfg.yaml"
    args = ["--data", str(digits_file), "--width", "8", "--out", str(tmp_path / "o.h5"), "--config", str(path),
            "--run", "mse"]
    want = {"schema": "training.learning_rate", "yaml": "not valid YAML at line",
            "unknown_run": "run 'nope' is not defined", "missing_file": "cannot be read",
            "json": "--training: not valid JSON"}[case]
    if case == "schema":
        cfg["training"]["learning_rate"] = -1
        path.write_text(yaml.safe_dump(cfg))
    elif case == "yaml":
        path.write_text("training:\n  steps: [1, 2\n")
    elif case == "unknown_run":
        path.write_text(yaml.safe_dump(cfg))
        args[-1] = "nope"
    elif case == "json":
        args = args[:6] + ["--run", "mse", "--model", "{}", "--training", "{steps: 3"]
    with caplog.at_level(logging.ERROR, logger="ntkvae.train"):
        code = train.main(args)
    assert code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0] and want in errors[0], errors
    if case != "json":
        assert str(path) in errors[0]
    assert not (tmp_path / "o.h5").exists()


@pytest.mark.parametrize("option,text,want", [
    ("--training", '{"learning_rate": NaN, "steps": 3}', "--training: training.learning_rate: nan is not a finite number"),
    ("--training", '{"learning_rate": 0.1, "steps": -3}', "--training: training.steps: -3 is less than the minimum of 1"),
    ("--training", '{"learning_rate": 0.1, "lerning_rate": 1}', "Additional properties are not allowed ('lerning_rate'"),
    ("--model", '{"activation": "erf", "weight_std": NaN}', "--model: model.weight_std: nan is not a finite number"),
    ("--probe", '{"probe_size": -2}', "--probe: kernels.probe_size: -2 is less than the minimum of 0"),
    ("--probe", '{"probe_noise_samples": Infinity}', "--probe: kernels.probe_noise_samples: inf is not of type"),
])
def test_json_options_are_checked_against_the_schema(tmp_path, digits_file, caplog, option, text, want):  # noqa: F811
    """Findings 3 and 8 on the training CLI run by hand: its JSON options were read unchecked (a NaN
    learning rate, negative steps, a misspelt key or a negative probe size were accepted and
    trained on, or failed deep inside)."""
    options = {"--model": '{"activation": "erf"}', "--training": '{"learning_rate": 0.1, "steps": 3}', option: text}
    args = ["--data", str(digits_file), "--width", "8", "--run", "mse", "--out", str(tmp_path / "o.h5"),
            *(x for pair in options.items() for x in pair)]
    with caplog.at_level(logging.ERROR, logger="ntkvae.train"):
        assert train.main(args) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and want in errors[0] and "\n" not in errors[0], errors
    assert not (tmp_path / "o.h5").exists()
