"""Fetch and prepare one tfds dataset, fast and clear when the network or a file is missing.

Order of work: (1) if the dataset is already prepared in the data directory, nothing else
happens (no network); (2) the files already in the manual directory are checked for their
format (a truncated or corrupt file is named); (3) for the files still missing, the
network is probed (DNS, then a TCP connect to the host or the configured proxy) with a
short timeout, so an offline node fails in seconds, not after tfds' minutes of retries;
(4) tfds downloads what is missing and prepares the dataset (array_record); checksums are
verified unless the configuration says to trust hand-placed files.

On failure nothing is left behind: tfds prepares into a temporary directory, and the
directories and temporary downloads this step created are removed.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import pathlib
import shutil
import socket
import struct
import threading
import time
import urllib.parse
import urllib.request
import zlib

from . import DataFetchError, SourceFile, TfdsSource

log = logging.getLogger("ntkvae.fetch_data")

# IDX magic numbers: 0x0803 = unsigned bytes, 3 dimensions (images); 0x0801 = 1 dimension (labels).
_IDX_MAGIC = {3: 0x00000803, 1: 0x00000801}


# ---------------------------------------------------------------- network probe

class Offline(Exception):
    """The network probe failed; the message says how."""


def _endpoint(url: str) -> tuple[str, int, str]:
    """(host, port, what) that a download of `url` connects to first: the proxy if one is set."""
    parsed = urllib.parse.urlsplit(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parsed.scheme)
    if proxy and not urllib.request.proxy_bypass(parsed.hostname or ""):
        p = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        return p.hostname or "", p.port or (443 if p.scheme == "https" else 80), f"proxy {p.hostname}:{p.port}"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed.hostname or "", port, f"{parsed.hostname}:{port}"


def probe(url: str, timeout: float) -> None:
    """Raise Offline unless a TCP connection to the url's host (or proxy) opens within `timeout` seconds."""
    host, port, what = _endpoint(url)
    deadline = time.monotonic() + timeout
    answer: dict = {}

    def resolve():
        try:
            answer["addrs"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as err:
            answer["error"] = err

    # getaddrinfo has no timeout of its own; a resolver that never answers must not hang the job.
    worker = threading.Thread(target=resolve, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise Offline(f"the DNS lookup of {host} did not answer within {timeout:g} s")
    if "error" in answer:
        raise Offline(f"cannot resolve {host} ({answer['error']})")
    last = None
    for family, kind, proto, _, addr in answer["addrs"]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(remaining)
                sock.connect(addr)
            return
        except OSError as err:
            last = err
    if last is None or isinstance(last, TimeoutError):
        raise Offline(f"no connection to {what} within {timeout:g} s")
    raise Offline(f"cannot connect to {what} ({last})")


# ---------------------------------------------------------------- file checks

def _read_gzip(path: pathlib.Path) -> bytes:
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError, zlib.error) as err:
        raise DataFetchError(f"{path} is not a complete gzip file ({type(err).__name__}: {err}); "
                             f"it is truncated or corrupt: delete it and fetch it again") from err


def idx_count(path: pathlib.Path) -> int:
    """Number of items in a gzipped IDX file, after checking its header against its length."""
    data = _read_gzip(path)
    if len(data) < 8:
        raise DataFetchError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    magic, count = struct.unpack(">II", data[:8])
    ndim = magic & 0xFF
    if magic != _IDX_MAGIC.get(ndim):
        raise DataFetchError(f"{path}: not an MNIST IDX file of unsigned bytes (magic {magic:#010x})")
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    expected = 4 + 4 * ndim + int(_prod(dims))
    if len(data) != expected:
        raise DataFetchError(f"{path}: the IDX header announces {dims} ({expected} bytes) but the file holds "
                             f"{len(data)} bytes; it is truncated or corrupt")
    if ndim == 3 and dims[1:] != (28, 28):
        raise DataFetchError(f"{path}: images are {dims[1]}x{dims[2]}, MNIST images are 28x28")
    return count


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def check_dsprites(path: pathlib.Path) -> int:
    """Number of examples in a dSprites HDF5 file, after checking its arrays agree."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            shapes = {k: f[k].shape for k in ("imgs", "latents/classes", "latents/values")}
    except (OSError, KeyError) as err:
        raise DataFetchError(f"{path} is not a readable dSprites HDF5 file with imgs, latents/classes and "
                             f"latents/values ({err}); it is truncated or corrupt") from err
    n = shapes["imgs"][0]
    if shapes["imgs"][1:] != (64, 64) or shapes["latents/classes"] != (n, 6) or shapes["latents/values"] != (n, 6):
        raise DataFetchError(f"{path}: inconsistent dSprites arrays {shapes}")
    return n


def check_manual_files(src: TfdsSource, manual_dir: pathlib.Path) -> dict[str, int]:
    """Check the format of the source files already in the manual directory; item counts where known."""
    counts = {}
    for f in src.files:
        path = manual_dir / f.filename
        if not path.exists():
            continue
        if src.name == "mnist":
            counts[f.filename] = idx_count(path)
        elif src.name == "dsprites":
            counts[f.filename] = check_dsprites(path)
        elif src.name == "cars3d" and path.stat().st_size == 0:
            raise DataFetchError(f"{path} is empty")
    if src.name == "mnist" and len(counts) == 4:
        for split in ("train", "t10k"):
            n_img, n_lab = counts[f"{split}-images-idx3-ubyte.gz"], counts[f"{split}-labels-idx1-ubyte.gz"]
            if n_img != n_lab:
                raise DataFetchError(f"{manual_dir}: {split}-images has {n_img} images but {split}-labels "
                                     f"has {n_lab} labels")
    return counts


# ---------------------------------------------------------------- messages

def offline_message(src: TfdsSource, missing: list[SourceFile], manual_dir: pathlib.Path, reason: str) -> str:
    lines = [f"cannot fetch dataset {src.name!r}: {reason}.",
             "It needs these files, which are not in the manual directory yet:"]
    lines += [f"  {f.url}" for f in missing]
    lines += ["Either run this step where there is internet, e.g. on a cluster's login node:",
              f"  snakemake --cores 1 --configfile <your config> results/data/tfds/{src.name}.json",
              "or download the files elsewhere and place them, under exactly these names, in the",
              f"manual directory (tfds.manual_dir in the config) {manual_dir}:"]
    lines += [f"  {manual_dir / f.filename}" for f in missing]
    lines += ["then rerun the same rule: it prepares the dataset from the placed files",
              "(their checksums are verified unless tfds.verify_checksums is false)."]
    return "\n".join(lines)


# ---------------------------------------------------------------- preparation

def _builder_class(src: TfdsSource):
    import tensorflow_datasets as tfds

    if src.name == "cars3d":
        from . import cars3d  # registers the builder with tfds
        return cars3d.Cars3d
    return tfds.builder_cls(src.tfds_name)


@contextlib.contextmanager
def _patched(obj, name, value):
    """Set a class or module attribute for the duration of the block."""
    had = name in vars(obj)
    old = vars(obj).get(name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        if had:
            setattr(obj, name, old)
        else:
            delattr(obj, name)


@contextlib.contextmanager
def _download_limits(retries: int, timeout: float):
    """Bound tfds' HTTP downloads: fewer retries than its 10, and a connect/read timeout it lacks."""
    from tensorflow_datasets.core.download import downloader

    original = downloader._open_with_requests

    def open_with_timeout(url, **kwargs):
        kwargs.setdefault("timeout", (timeout, max(60.0, timeout)))
        return original(url, **kwargs)

    with _patched(downloader, "MAX_RETRIES", retries), _patched(downloader, "_open_with_requests", open_with_timeout):
        yield


@contextlib.contextmanager
def _trusted_manual_files(cls, src: TfdsSource, manual_dir: pathlib.Path):
    """Make tfds accept the hand-placed files with their own checksums (recorded in the stamp)."""
    from tensorflow_datasets.core.download import checksums

    infos = dict(cls.url_infos or {})
    for f in src.files:
        path = manual_dir / f.filename
        if path.exists():
            info = checksums.compute_url_info(path)
            infos[f.url] = checksums.UrlInfo(size=info.size, checksum=info.checksum, filename=f.filename)
    with _patched(cls, "url_infos", infos):
        yield


@contextlib.contextmanager
def _mnist_counts(counts: dict[str, int]):
    """tfds' MNIST hard-codes 60000/10000 examples; take the counts from the files' IDX headers."""
    from tensorflow_datasets.image_classification import mnist

    train = counts.get("train-images-idx3-ubyte.gz", mnist._TRAIN_EXAMPLES)
    test = counts.get("t10k-images-idx3-ubyte.gz", mnist._TEST_EXAMPLES)
    with _patched(mnist, "_TRAIN_EXAMPLES", train), _patched(mnist, "_TEST_EXAMPLES", test):
        yield


def _new_paths(paths: list[pathlib.Path]) -> list[pathlib.Path]:
    return [p for p in paths if not p.exists()]


def _download_prefixes(src: TfdsSource) -> tuple[str, ...]:
    """Name prefixes of tfds' download paths for this source's URLs (tfds names them after the URL)."""
    from tensorflow_datasets.core.download import resource

    return tuple(resource._sanitize_url(f.url, max_length=46)[0] for f in src.files)


def _cleanup(src: TfdsSource, created: list[pathlib.Path], downloads: pathlib.Path, before: set[str]) -> None:
    """Remove what a failed preparation left: its temporary downloads, and directories it created if empty.

    Only temporary entries of this dataset's URLs are touched: a fetch of another dataset may be
    downloading into the same directory at the same time.
    """
    try:
        prefixes = _download_prefixes(src)
    except Exception:  # a private tfds helper; without it, leave the temporary downloads alone
        prefixes = ()
    if downloads.is_dir() and prefixes:
        # tfds downloads into <downloads>[/<dataset>]/<url-name>.tmp.<uuid>/ and renames on success.
        for entry in sorted(downloads.rglob("*.tmp.*"), key=lambda p: len(p.parts)):
            if str(entry) not in before and entry.name.startswith(prefixes) and entry.exists():
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
    for path in sorted(created, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            path.rmdir()  # only succeeds when empty


def prepare(src: TfdsSource, data_dir: pathlib.Path, manual_dir: pathlib.Path, *, timeout: float,
            retries: int, verify_checksums: bool, download: bool) -> dict:
    """Download (if needed) and prepare `src` in `data_dir`; return a description for the stamp."""
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()  # progress bars make unreadable job logs
    cls = _builder_class(src)
    version = str(cls.VERSION)
    prepared = data_dir / src.tfds_name / version
    if (prepared / "dataset_info.json").exists():
        log.info("%s %s is already prepared in %s; nothing to fetch", src.tfds_name, version, prepared)
        return describe(src, data_dir, version, files={}, strict=verify_checksums)

    counts = check_manual_files(src, manual_dir)
    missing = [f for f in src.files if not (manual_dir / f.filename).exists()]
    if missing:
        if not download:
            raise DataFetchError(offline_message(src, missing, manual_dir, "downloads are off (tfds.download: false)"))
        start = time.monotonic()
        for host_url in {_endpoint(f.url)[:2]: f.url for f in missing}.values():
            try:
                probe(host_url, timeout)
            except Offline as err:
                raise DataFetchError(offline_message(
                    src, missing, manual_dir, f"{err} (checked in {time.monotonic() - start:.1f} s)")) from None
        log.info("network reachable; downloading %d file(s) for %s", len(missing), src.name)
    else:
        log.info("all %d source file(s) of %s are in %s", len(src.files), src.name, manual_dir)

    downloads = data_dir / "downloads"
    created = _new_paths([data_dir, data_dir / src.tfds_name, downloads, downloads / src.tfds_name])
    before = {str(p) for p in downloads.rglob("*.tmp.*")} if downloads.is_dir() else set()
    config = tfds.download.DownloadConfig(manual_dir=str(manual_dir), try_download_gcs=False)
    stack = contextlib.ExitStack()
    with stack:
        stack.enter_context(_download_limits(retries, timeout))
        # Cars3D has no registered SHA-256 (its builder checks the MD5), so tfds finds a hand-placed
        # archive only through this entry.
        if not verify_checksums or src.name == "cars3d":
            stack.enter_context(_trusted_manual_files(cls, src, manual_dir))
        if src.name == "mnist":
            stack.enter_context(_mnist_counts(counts))
        if src.name == "cars3d":
            stack.enter_context(_patched(cls, "VERIFY_MD5", verify_checksums or bool(missing)))
        try:
            builder = tfds.builder(src.tfds_name, data_dir=str(data_dir), file_format="array_record")
            builder.download_and_prepare(download_config=config)
        except DataFetchError:
            _cleanup(src, created, downloads, before)
            raise
        except Exception as err:
            _cleanup(src, created, downloads, before)
            raise DataFetchError(_explain(src, err, manual_dir)) from err
    return describe(src, data_dir, version, files=_source_files(src, manual_dir, missing), strict=verify_checksums)


def _source_files(src: TfdsSource, manual_dir: pathlib.Path, missing: list[SourceFile]) -> dict:
    """Provenance of the source files: URL, and for hand-placed files their size and SHA-256."""
    from tensorflow_datasets.core.download import checksums

    files = {}
    for f in src.files:
        if f in missing:
            files[f.filename] = {"url": f.url, "origin": "downloaded (checksum verified by tfds or the builder)"}
        else:
            info = checksums.compute_url_info(manual_dir / f.filename)
            files[f.filename] = {"url": f.url, "origin": f"manual directory {manual_dir}",
                                 "size": int(info.size), "sha256": info.checksum}
    return files


def _explain(src: TfdsSource, err: Exception, manual_dir: pathlib.Path) -> str:
    text = str(err)
    kind = type(err).__name__
    if kind == "NonMatchingChecksumError":
        return (f"dataset {src.name!r}: a source file has the wrong checksum, so it is truncated, corrupt or a "
                f"different version:\n{text}\nDelete that file and fetch again. If you placed it by hand in "
                f"{manual_dir} and trust it, set tfds.verify_checksums: false.")
    if kind in ("ConnectionError", "Timeout", "ReadTimeout", "ConnectTimeout", "DownloadError"):
        return (f"dataset {src.name!r}: the download failed ({kind}: {text}).\n"
                + offline_message(src, list(src.files), manual_dir, "the download failed"))
    return f"dataset {src.name!r}: preparation failed ({kind}: {text})"


def describe(src: TfdsSource, data_dir: pathlib.Path, version: str, files: dict, strict: bool) -> dict:
    """What the conversion step needs, and provenance: where the prepared data is and how big it is.

    strict (checksums verified): a split of another size than the real dataset's is an error,
    so a reproduction never runs silently on a short dataset; otherwise it is a warning.
    """
    import tensorflow_datasets as tfds

    builder = tfds.builder_from_directory(str(data_dir / src.tfds_name / version))
    splits = {name: int(split.num_examples) for name, split in builder.info.splits.items()}
    if splits.get(src.split, 0) <= 0:
        raise DataFetchError(f"dataset {src.name!r}: the prepared data in {data_dir} has no {src.split!r} examples")
    if splits[src.split] != src.full_size and strict:
        raise DataFetchError(
            f"dataset {src.name!r}: the prepared {src.split} split in {data_dir / src.tfds_name / version} has "
            f"{splits[src.split]} examples, but the real dataset has {src.full_size}. It was prepared from other "
            f"files (with tfds.verify_checksums: false?). Delete that directory and fetch again.")
    if splits[src.split] != src.full_size:
        log.warning("%s: the prepared %s split has %d examples; the real dataset has %d (files placed by hand?)",
                    src.name, src.split, splits[src.split], src.full_size)
    return {"dataset": src.name, "tfds_name": src.tfds_name, "version": version,
            "data_dir": str(data_dir.resolve()), "prepared_dir": str((data_dir / src.tfds_name / version).resolve()),
            "split": src.split, "splits": splits, "full_size": src.full_size,
            "tfds_version": tfds.__version__, "source_files": files}
