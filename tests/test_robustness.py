"""Issue 13: bad files and bad arguments give one line naming the file or key, never a traceback
or a result computed from garbage (NaN in a file, a full disk, a missing extra, bad JSON)."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import ROOT
from ntkvae import compute_kernels, datasets, io
from ntkvae import predict as predict_cli

TINY_MODEL = {"activation": "erf", "weight_std": 1.0, "bias": False}
TINY_KERNELS = {"probe_size": 4, "block_size": 5}
TINY_TRAINING = {"learning_rate": 0.5, "steps": 10, "log_every": 5, "objective": "mse"}


def error_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.fixture(scope="module")
def kernel_files(tmp_path_factory):
    """A toy dataset (n = 12) and its kernel file, written by the CLIs."""
    tmp = tmp_path_factory.mktemp("kernels")
    rng = np.random.default_rng(0)
    data = tmp / "toy.h5"
    datasets.write_dataset(data, "toy", datasets.RawSubset(images=rng.uniform(size=(12, 3, 3)), index=np.arange(12)),
                           n=12, seed=0, center=True)
    kernel = tmp / "erf.h5"
    assert compute_kernels.main(["kernel", "--data", str(data), "--model", json.dumps(TINY_MODEL), "--kernels",
                                 json.dumps(TINY_KERNELS), "--out", str(kernel)]) == 0
    return data, kernel


def damaged_copy(src, dst, edit):
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        edit(f)
    return dst


def predict(data, kernel, out, training=TINY_TRAINING):
    return predict_cli.main(["--data", str(data), "--kernel", str(kernel), "--training",
                                 json.dumps(training) if isinstance(training, dict) else training, "--out", str(out)])


# ------------------------------------------------------------------ finding 6: NaN inside produced files

def test_nan_eigenvalue_stops_the_prediction_job(kernel_files, tmp_path, caplog):
    """Finding 6: a NaN eigenvalue gave a prediction file full of NaN with exit 0."""
    data, kernel = kernel_files

    def poison(f):
        f["trained/sigma_frozen/eigenvalues"][3] = np.nan

    bad = damaged_copy(kernel, tmp_path / "erf.h5", poison)
    out = tmp_path / "prediction.h5"
    assert predict(data, bad, out) == 1
    assert not out.exists()
    assert any(f"input file {bad}: dataset trained/sigma_frozen/eigenvalues holds 1 non-finite value(s)" in m
               for m in error_lines(caplog)), error_lines(caplog)


def test_prediction_from_an_intact_kernel_file_still_works(kernel_files, tmp_path):
    data, kernel = kernel_files
    assert predict(data, kernel, tmp_path / "p.h5") == 0
    with h5py.File(tmp_path / "p.h5") as f:
        assert np.all(np.isfinite(f["fresh/mean_function_mse"][()]))


def test_probe_size_zero_works_through_kernels_prediction_and_training(kernel_files, tmp_path):
    """Finding 4: kernels.probe_size: 0 is documented as "0: none"; the kernel job, the reader and
    the prediction work without probes, and the training job records none (the figures and claims
    then say so: tests/test_divergence.py)."""
    from types import SimpleNamespace

    from ntkvae.results.kernels import Kernel
    from ntkvae.train import probe_settings

    data, _ = kernel_files
    kernel = tmp_path / "erf.h5"
    assert compute_kernels.main(["kernel", "--data", str(data), "--model", json.dumps(TINY_MODEL), "--kernels",
                                 json.dumps(dict(TINY_KERNELS, probe_size=0)), "--out", str(kernel)]) == 0
    assert Kernel(kernel).probe_groups() == () and Kernel(kernel).probe_block(np.arange(3)).shape == (3, 3)
    assert predict(data, kernel, tmp_path / "p.h5") == 0
    # probes off: no probe program is built and the ntk group gets no attributes
    assert probe_settings(SimpleNamespace(probe_cfg={"probe_size": 0}), SimpleNamespace(n=12, d=4)) == (None, {})


def test_nan_in_the_data_file_stops_the_kernel_job(kernel_files, tmp_path, caplog):
    data, _ = kernel_files

    def poison(f):
        f["x"][2, 1] = np.inf

    bad = damaged_copy(data, tmp_path / "toy.h5", poison)
    assert compute_kernels.main(["kernel", "--data", str(bad), "--model", json.dumps(TINY_MODEL), "--kernels",
                                 json.dumps(TINY_KERNELS), "--out", str(tmp_path / "k.h5")]) == 1
    assert any(str(bad) in m and "'x'" in m for m in error_lines(caplog))


def test_check_finite_allows_only_the_named_rows():
    values = np.ones((3, 4))
    values[1, 2] = np.nan
    io.check_finite(values, "f.h5", "eval/mean_function_mse", allow_rows=[1])   # a recorded divergence
    with pytest.raises(io.InputFileError, match=r"f.h5: dataset eval/mean_function_mse holds 1 .*index \[1, 2\]"):
        io.check_finite(values, "f.h5", "eval/mean_function_mse", allow_rows=[0])
    io.check_finite(np.array([1, 2]), "f.h5", "seeds")                            # integers cannot be NaN


def test_read_dict_checks_every_dataset(tmp_path):
    path = tmp_path / "run.h5"
    with h5py.File(path, "w") as f:
        f["eval/kl"] = np.array([[1.0, 2.0], [np.nan, np.nan]])
        f["train/objective"] = np.array([[1.0, np.inf], [1.0, 1.0]])
    with h5py.File(path) as f:
        with pytest.raises(io.InputFileError, match="dataset eval/kl holds 2 non-finite"):
            io.read_dict(f)
        with pytest.raises(io.InputFileError, match="dataset train/objective holds 1 non-finite"):
            io.read_dict(f, allow_rows={"eval/kl": [1]})
        data = io.read_dict(f, allow_rows=[0, 1])
        assert np.isnan(data["eval"]["kl"][1]).all()


# ------------------------------------------------------------------ finding 8: malformed files, clear lines

@pytest.mark.parametrize(
    "edit,expected",
    [
        (lambda f: f.__delitem__("noise_diagonal"), "lacks the dataset(s) noise_diagonal/total, noise_diagonal/W4"),
        (lambda f: (f.__delitem__("mean_eigenvalues"), f.create_group("mean_eigenvalues")),
         "mean_eigenvalues is a group, not a dataset"),
        (lambda f: (f.__delitem__("mean_eigenvectors"), f.create_dataset("mean_eigenvectors", data=np.eye(12)[:5])),
         "dataset mean_eigenvectors has shape (5, 12), but axis 0 (n) should be 12 as in mean_eigenvalues"),
        (lambda f: (f.__delitem__("mean_eigenvalues"), f.create_dataset("mean_eigenvalues", data=np.ones((12, 2)))),
         "dataset mean_eigenvalues has shape (12, 2), expected (n)"),
    ],
)
def test_malformed_kernel_file_is_named(kernel_files, tmp_path, caplog, edit, expected):
    """Finding 8: openable files with a missing group or a wrong shape gave a traceback."""
    data, kernel = kernel_files
    bad = damaged_copy(kernel, tmp_path / "erf.h5", edit)
    assert predict(data, bad, tmp_path / "p.h5") == 1
    assert any(str(bad) in m and expected in m for m in error_lines(caplog)), error_lines(caplog)


def test_missing_attribute_is_named(tmp_path):
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
        f.attrs["config"] = "{not json"
    with pytest.raises(io.InputFileError, match=r"a.h5 lacks the attribute\(s\) width"):
        with io.open_input(path, ("x",), attrs=("width",)):
            pass
    with io.open_input(path) as f:
        with pytest.raises(io.InputFileError, match="attribute config is not valid JSON"):
            io.read_json_attr(f, "config")
        with pytest.raises(io.InputFileError, match="lacks the attribute run"):
            io.read_json_attr(f, "run")


def test_check_shapes_names_the_disagreeing_dimension():
    arrays = {"x": np.zeros((4, 3)), "mean": np.zeros(3), "scale": np.zeros(5)}
    with pytest.raises(io.InputFileError, match=r"d.h5: dataset scale has shape \(5,\), but axis 0 \(n\) should be 4 "
                                                r"as in x"):
        io.check_shapes("d.h5", arrays, {"x": ("n", "d"), "mean": ("d",), "scale": ("n",)})
    assert io.check_shapes("d.h5", arrays, {"x": ("n", "d"), "mean": ("d",)}) == {"n": 4, "d": 3}


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["--model", "[]"], "--model: model: [] is not of type 'object'"),
        (["--model", "{"], "--model: not valid JSON"),
        (["--model", json.dumps({"activation": "sigmoid"})], "--model: model.activation: 'sigmoid' is not one of"),
        (["--model", '{"activation": "erf", "weight_std": NaN}'], "--model: model.weight_std: nan is not a finite number"),
        (["--model", '{"activation": "erf", "bias_std": Infinity}'], "--model: model.bias_std: inf is not a finite number"),
        (["--kernels", '{"ridges": [0.1]}'], "--kernels: kernels: Additional properties are not allowed ('ridges'"),
        (["--kernels", '{"probe_size": "x"}'], "--kernels: kernels.probe_size: 'x' is not of type 'integer'"),
    ],
)
def test_kernel_command_names_a_bad_argument(kernel_files, tmp_path, caplog, argv, expected):
    """Finding 8: the other CLIs on bad arguments (a traceback, or NaN ridges and betas stored)."""
    data, _ = kernel_files
    args = {"--model": json.dumps(TINY_MODEL), "--kernels": json.dumps(TINY_KERNELS)}
    args.update(dict(zip(argv[::2], argv[1::2])))
    out = tmp_path / "k.h5"
    assert compute_kernels.main(["kernel", "--data", str(data), *sum(args.items(), ()), "--out", str(out)]) == 1
    assert not out.exists()
    assert any(expected in m for m in error_lines(caplog)), error_lines(caplog)


@pytest.mark.parametrize(
    "training,expected",
    [
        ('{"learning_rate": NaN, "steps": 10, "log_every": 5}', "--training: training.learning_rate: nan is not a finite"),
        ('{"steps": 0}', "--training: training.steps: 0 is less than the minimum of 1"),
        ('"mse"', "--training: training: 'mse' is not of type 'object'"),
    ],
)
def test_predict_command_names_a_bad_argument(kernel_files, tmp_path, caplog, training, expected):
    data, kernel = kernel_files
    assert predict(data, kernel, tmp_path / "p.h5", training) == 1
    assert any(expected in m for m in error_lines(caplog)), error_lines(caplog)


# ------------------------------------------------------------------ finding 8: a full disk

def full_disk(monkeypatch):
    """h5py's own ENOSPC error (errno 28, its long message) at the first dataset written."""
    real = h5py.Group.__setitem__

    def no_space(self, name, value):
        raise OSError(errno.ENOSPC, "Can't synchronously write data (file write failed: errno = 28, "
                                    "error message = 'No space left on device')")

    monkeypatch.setattr(h5py.Group, "__setitem__", no_space)
    return real


def test_full_disk_while_writing_a_kernel_file_is_one_line(kernel_files, tmp_path, caplog, monkeypatch):
    data, _ = kernel_files
    full_disk(monkeypatch)
    out = tmp_path / "k.h5"
    assert compute_kernels.main(["kernel", "--data", str(data), "--model", json.dumps(TINY_MODEL), "--kernels",
                                 json.dumps(TINY_KERNELS), "--out", str(out)]) == 1
    assert any(f"cannot write {out}: No space left on device" in m for m in error_lines(caplog)), error_lines(caplog)
    assert list(tmp_path.iterdir()) == []       # no temporary file left


KILLED_WHILE_WRITING = """
import os, sys
from ntkvae import io
with io.atomic_h5(sys.argv[1]) as f:
    f["x"] = list(range(1000))
    os.kill(os.getpid(), 9)
"""


def test_a_temporary_left_by_a_killed_writer_is_removed_by_the_next(tmp_path):
    """Finding 7: a job SIGKILLed inside its atomic write left its hidden temporary forever (the
    kernel, prediction, data and claims jobs as well as training); the next writer of the path
    removes it, and leaves alone the temporary of a writer that is still alive."""
    out = tmp_path / "erf.h5"
    proc = subprocess.run([sys.executable, "-c", KILLED_WHILE_WRITING, str(out)], capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert proc.returncode == -9
    (left,) = tmp_path.glob(".erf.h5.tmp-*")
    live = tmp_path / f".erf.h5.tmp-{os.getppid()}"    # pytest's parent: alive
    live.write_bytes(b"being written")
    with io.atomic_h5(out) as f:
        f["x"] = [1.0]
    assert not left.exists() and live.exists()
    text = tmp_path / "claims.md"
    stale = tmp_path / f".claims.md.tmp-{left.name.rsplit('-', 1)[1]}"
    stale.write_text("half")
    io.write_text(text, "done")
    assert not stale.exists() and text.read_text() == "done"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["erf.h5", live.name, "claims.md"])


def test_merging_parts_with_a_broken_attribute_is_one_line(tmp_path, caplog):
    """Finding 8 on the part-merge CLI (python -m ntkvae.train merge): a part file whose config
    attribute is not JSON gave a JSONDecodeError traceback naming no file."""
    from ntkvae import parts

    inputs = []
    for seeds in ([0], [1]):
        path = tmp_path / f"part{seeds[0]}.h5"
        with h5py.File(path, "w") as f:
            f["seeds"] = np.array(seeds)
            f["eval/kl"] = np.ones((1, 3))
            f.attrs.update(config="{broken", part_of_seeds=json.dumps([0, 1]), seeds=json.dumps(seeds))
        inputs.append(str(path))
    assert parts.main(["--inputs", *inputs, "--out", str(tmp_path / "o.h5")]) == 1
    assert any(inputs[0] in m and "not valid JSON" in m for m in error_lines(caplog)), error_lines(caplog)
    assert not (tmp_path / "o.h5").exists()


def test_write_text_failure_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(io.OutputFileError, match=f"cannot write {blocker}/claims.md: "):
        io.write_text(blocker / "claims.md", "x")


def _can_mount_tmpfs(tmp_path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-r", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {tmp_path}"],
                           capture_output=True)
    return probe.returncode == 0


def test_prepare_data_on_a_really_full_disk(tmp_path):
    """A real ENOSPC: a 64 kB tmpfs in a private mount namespace (skipped where not permitted)."""
    mount = tmp_path / "full"
    mount.mkdir()
    if not _can_mount_tmpfs(mount):
        pytest.skip("unprivileged mount namespaces are not available here")
    out = mount / "digits.h5"
    script = (f"mount -t tmpfs -o size=64k tmpfs {mount} && {sys.executable} -m ntkvae.prepare_data "
              f"--dataset digits --n 1000 --seed 0 --out {out}; echo rc=$?; ls -A {mount}")
    proc = subprocess.run(["unshare", "-r", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert "rc=1" in proc.stdout, proc.stdout + proc.stderr
    assert f"cannot write {out}: No space left on device" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout.strip().endswith("rc=1")  # and the mount is empty: no temporary file left


# ------------------------------------------------------------------ finding 8: the data CLIs

def run_blocking(module: str, args: list[str], blocked: str = "tensorflow_datasets") -> subprocess.CompletedProcess:
    """Run `python -m <module> args` with one module made unimportable (as without the data extra)."""
    code = (f"import sys; sys.modules[{blocked!r}] = None; import runpy; sys.argv = ['x', *{args!r}]; "
            f"runpy.run_module({module!r}, run_name='__main__')")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("module,args", [
    ("ntkvae.fetch_data", ["--dataset", "mnist", "--data-dir", "{tmp}/tfds", "--no-download", "--stamp",
                           "{tmp}/mnist.json"]),
    ("ntkvae.convert_data", ["--dataset", "mnist", "--stamp", "{tmp}/mnist.json", "--n", "10", "--out",
                             "{tmp}/mnist.h5"]),
])
def test_tfds_step_without_the_data_extra_names_the_extra(tmp_path, module, args):
    """Finding 8: a tfds dataset without the [data] extra ended in a ModuleNotFoundError traceback."""
    (tmp_path / "mnist.json").write_text(json.dumps({"dataset": "mnist", "prepared_dir": str(tmp_path), "split": "train",
                                                     "splits": {"train": 10}}))
    proc = run_blocking(module, [a.format(tmp=tmp_path) for a in args])
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "tensorflow_datasets is not installed" in proc.stderr
    assert "pip install -c requirements.lock -e '.[data]'" in proc.stderr and "--sdm conda" in proc.stderr


@pytest.mark.parametrize("argv,expected", [
    (["--n", "0"], "argument --n: must be an integer >= 2, got '0'"),
    (["--n", "-3"], "argument --n: must be an integer >= 2, got '-3'"),
    (["--n", "8", "--seed", "-1"], "argument --seed: must be an integer >= 0, got '-1'"),
])
def test_prepare_data_names_a_bad_argument(tmp_path, capsys, argv, expected):
    from ntkvae import prepare_data

    with pytest.raises(SystemExit) as stop:
        prepare_data.main(["--dataset", "digits", *argv, "--out", str(tmp_path / "d.h5")])
    assert stop.value.code == 2 and expected in capsys.readouterr().err
    assert not (tmp_path / "d.h5").exists()


@pytest.mark.parametrize("timeout", ["nan", "inf", "0", "30", "soon"])
def test_fetch_data_rejects_a_bad_timeout(tmp_path, capsys, timeout):
    from ntkvae import fetch_data

    with pytest.raises(SystemExit) as stop:
        fetch_data.main(["--dataset", "mnist", "--data-dir", str(tmp_path), "--timeout", timeout, "--stamp",
                         str(tmp_path / "s.json")])
    assert stop.value.code == 2
    assert f"argument --timeout: must be a finite number > 0 and <= 25, got {timeout!r}" in capsys.readouterr().err


def test_prepare_data_on_a_full_disk_is_one_line(tmp_path, caplog, monkeypatch):
    from ntkvae import prepare_data

    full_disk(monkeypatch)
    out = tmp_path / "digits.h5"
    assert prepare_data.main(["--dataset", "digits", "--n", "8", "--out", str(out)]) == 1
    assert any(f"cannot write {out}: No space left on device" in m for m in error_lines(caplog)), error_lines(caplog)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ finding 8: the plot CLI

@pytest.mark.parametrize("settings,expected", [
    ("{", "--settings: not valid JSON"),
    ('{"claims": {"gap_tolerance": NaN}}', "--settings: figures.claims.gap_tolerance: nan is not a finite number"),
    ('{"claims": {"slope_tolerance": -1}}', "--settings: figures.claims.slope_tolerance: -1 is less than or equal to"),
])
def test_plot_names_a_bad_settings_argument(tmp_path, caplog, settings, expected):
    from ntkvae import plot

    assert plot.main(["min_width", "--inputs", str(tmp_path / "w16.h5"), "--kernels", str(tmp_path / "k.h5"),
                      "--data", str(tmp_path / "d.h5"), "--pdf", str(tmp_path / "f.pdf"), "--settings", settings]) == 1
    assert any(expected in m for m in error_lines(caplog)), error_lines(caplog)


@pytest.mark.parametrize("figure,given,expected", [
    ("generation", [], "figure generation needs --data"),
    ("rate", [], "figure rate needs --kernels and --data"),
    ("kernel_constancy", ["--data", "d.h5"], "figure kernel_constancy needs --kernels"),
])
def test_plot_names_a_missing_option(tmp_path, capsys, figure, given, expected):
    """Finding 8: on main a figure without its --data or --kernels ended in a TypeError traceback."""
    from ntkvae import plot

    with pytest.raises(SystemExit) as stop:
        plot.main([figure, "--inputs", str(tmp_path / "w16.h5"), *given, "--pdf", str(tmp_path / "f.pdf")])
    assert stop.value.code == 2 and expected in capsys.readouterr().err


# ------------------------------------------------------------------ finding 8: the claims CLI

@pytest.mark.parametrize("settings,expected", [
    ("{", "--settings: not valid JSON"),
    ("{}", "--settings: figures: 'datasets' is a required property"),
    ('{"datasets": ["toy"], "claims": {"slope_tolerance": NaN}}',
     "--settings: figures.claims.slope_tolerance: nan is not a finite number"),
    ('{"datasets": []}', "--settings: figures.datasets: [] should be non-empty"),
])
def test_claims_names_a_bad_settings_argument(tmp_path, caplog, settings, expected):
    from ntkvae.claims.__main__ import main

    assert main(["--inputs", str(tmp_path / "w16.h5"), "--settings", settings, "--md", str(tmp_path / "c.md"),
                 "--tsv", str(tmp_path / "c.tsv")]) == 1
    assert any(expected in m for m in error_lines(caplog)), error_lines(caplog)


def test_claims_on_a_full_disk_is_one_line(tmp_path, caplog, monkeypatch):
    from synthetic_runs import write_run

    from ntkvae.claims.__main__ import main

    files = [write_run(tmp_path / f"w{w}.h5", width=w) for w in (16, 64)]
    out = tmp_path / "out"

    def no_space(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    import pathlib
    monkeypatch.setattr(pathlib.Path, "write_text", no_space)
    settings = {"datasets": ["toy"], "kl_runs": []}
    assert main(["--inputs", *files, "--settings", json.dumps(settings), "--md", str(out / "c.md"),
                 "--tsv", str(out / "c.tsv")]) == 1
    assert any(f"cannot write {out}/c.tsv: No space left on device" in m for m in error_lines(caplog)), \
        error_lines(caplog)
    assert list(out.iterdir()) == []


def test_workflow_check_for_the_data_extra(monkeypatch):
    """Before any job: a tfds dataset in the config, no conda, no data extra -> one line."""
    from ntkvae import tfdata

    assert tfdata.data_extra_problem(["digits", "mnist"], conda=False) is None        # installed here
    monkeypatch.setattr(tfdata, "DATA_EXTRA_MODULES", ("tensorflow_datasets", "no_such_module_for_the_test"))
    line = tfdata.data_extra_problem(["digits", "mnist"], conda=False)
    assert line.startswith("dataset 'mnist' is read with tensorflow-datasets, but no_such_module_for_the_test")
    assert tfdata.data_extra_problem(["digits", "mnist"], conda=True) is None         # envs/data.yaml has it
    assert tfdata.data_extra_problem(["digits", "sprites"], conda=False) is None      # offline datasets only


def test_snakemake_stops_before_any_job_without_the_data_extra(tmp_path):
    """A tfds dataset in the config and no data extra: one line at parse time, no job run (on main
    the fetch job failed with a ModuleNotFoundError traceback, after other datasets' jobs had started)."""
    import yaml

    cfg = yaml.safe_load(open(ROOT / "tests/configs/tiny.yaml"))
    cfg["datasets"].append({"name": "mnist", "n": 16})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    code = ("import sys; sys.modules['tensorflow_datasets'] = None; from snakemake.cli import main; "
            f"sys.argv = ['snakemake', '-n', '--cores', '1', '--configfile', {str(path)!r}, '--directory', "
            f"{str(tmp_path)!r}]; main()")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "dataset 'mnist' is read with tensorflow-datasets, but tensorflow_datasets" in out, out
    assert not (tmp_path / "results").exists()
