"""The paper's datasets through tensorflow-datasets: MNIST, dSprites and Cars3D.

Two steps, each a CLI run by a Snakemake rule:

- `python -m ntkvae.fetch_data` (a local rule: it may need the network) downloads the
  source files, or takes them from the manual directory, and prepares the dataset with
  tfds (array_record) in the configured data directory. It checks the network first and
  fails within seconds when there is none, naming the files to place by hand.
- `python -m ntkvae.convert_data` reads the prepared dataset (no network) and writes the
  seeded subset in the common HDF5 layout through `ntkvae.datasets.write_dataset`.

This module holds only the static description of the sources; it imports neither
TensorFlow nor tensorflow-datasets, so the config validation and the rules can use it.
Only the data environment (envs/data.yaml) has TensorFlow; training, kernel and figure
jobs read the HDF5 files only.
"""

from __future__ import annotations

import dataclasses


class DataFetchError(RuntimeError):
    """A dataset that cannot be fetched, prepared or read; the message says what to do."""


# Modules of the `data` extra (pyproject.toml) that the data steps import.
DATA_EXTRA_MODULES = ("tensorflow_datasets", "tensorflow", "array_record", "importlib_resources", "PIL")


def require_data_extra() -> None:
    """ModuleNotFoundError (with its name) unless every module of the data extra is installed:
    checked first, so that a data step without it stops at once with `missing_data_extra`'s line,
    not after a network probe or in the middle of preparing."""
    import importlib.util

    for name in DATA_EXTRA_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):   # ValueError: a module blocked as None in sys.modules
            found = False
        if not found:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def data_extra_problem(datasets, conda: bool) -> str | None:
    """The line to stop a workflow with, before any job, when the config lists a
    tensorflow-datasets source but its steps would run here without the data extra (no conda
    env for them); None when all is well."""
    wanted = [d for d in datasets if d in SOURCES]
    if not wanted or conda:
        return None
    try:
        require_data_extra()
    except ModuleNotFoundError as err:
        return missing_data_extra(wanted[0], err)
    return None


def missing_data_extra(dataset: str, err: ModuleNotFoundError) -> str:
    """One line for a data step run without the `data` extra: what is missing and how to get it."""
    return (f"dataset {dataset!r} is read with tensorflow-datasets, but {err.name or err} is not installed in this "
            "environment: install the data extra (pip install -c requirements.lock -e '.[data]') or run the "
            "workflow with --sdm conda (envs/data.yaml); see docs/datasets.md")


@dataclasses.dataclass(frozen=True)
class SourceFile:
    url: str
    filename: str       # the name tfds looks for in the manual directory


@dataclasses.dataclass(frozen=True)
class TfdsSource:
    """What the workflow needs to know about one tfds dataset."""

    name: str                         # the workflow's dataset name (config datasets[].name)
    tfds_name: str                    # the tfds builder name
    files: tuple[SourceFile, ...]     # what the builder downloads
    full_size: int                    # examples in `split` of the real dataset
    pixel_max: float                  # stored pixel value that means 1.0 (dSprites stores 0/1)
    split: str = "train"
    description: str = ""


_MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

DSPRITES_FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5"
DSPRITES_URL = f"https://github.com/deepmind/dsprites-dataset/blob/master/{DSPRITES_FILENAME}?raw=true"

# The renders of Reed et al. 2015 ("Deep Visual Analogy-Making"), as disentanglement_lib uses them.
CARS3D_FILENAME = "nips2015-analogy-data.tar.gz"
CARS3D_URL = f"http://www.scottreed.info/files/{CARS3D_FILENAME}"

SOURCES: dict[str, TfdsSource] = {
    "mnist": TfdsSource(
        "mnist", "mnist", tuple(SourceFile(_MNIST_URL + f, f) for f in MNIST_FILES),
        full_size=60000, pixel_max=255.0,
        description="MNIST handwritten digits (LeCun et al.), tfds 'mnist', train split"),
    "dsprites": TfdsSource(
        "dsprites", "dsprites", (SourceFile(DSPRITES_URL, DSPRITES_FILENAME),),
        full_size=737280, pixel_max=1.0,
        description="dSprites (Matthey et al. 2017), tfds 'dsprites', train split"),
    "cars3d": TfdsSource(
        "cars3d", "cars3d", (SourceFile(CARS3D_URL, CARS3D_FILENAME),),
        full_size=183 * 24 * 4, pixel_max=255.0,
        description="Cars3D (Reed et al. 2015), 64x64, ntkvae's tfds builder 'cars3d', train split"),
}


def source(name: str) -> TfdsSource:
    try:
        return SOURCES[name]
    except KeyError:
        raise DataFetchError(f"{name!r} is not a tensorflow-datasets source; known: {', '.join(SOURCES)}") from None
