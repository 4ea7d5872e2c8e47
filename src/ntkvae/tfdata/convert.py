"""Read a prepared tfds dataset (no network, no tf.data) and select the seeded subset.

The prepared data is read with tfds' random-access data source on array_record files,
which needs only `array_record` and Pillow. The subset index is the position in the tfds
`train` split as stored: for MNIST and dSprites that is tfds' own deterministic order
(tfds shuffles examples by a hash of their key when it prepares them), for Cars3D it is
disentanglement_lib's index (the builder stores it unshuffled).
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from .. import datasets
from . import DataFetchError, TfdsSource

DSPRITES_FACTORS = (("shape", "value_shape"), ("scale", "value_scale"), ("orientation", "value_orientation"),
                    ("pos_x", "value_x_position"), ("pos_y", "value_y_position"))
CARS3D_FACTORS = ("elevation", "azimuth", "object_id")


def read_stamp(path) -> dict:
    path = pathlib.Path(path)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DataFetchError(f"fetch record {path} is missing or unreadable ({err}); rerun the fetch rule") from err


def open_source(stamp: dict):
    """The random-access `train` split of the prepared dataset the fetch record points to."""
    import tensorflow_datasets as tfds

    prepared = pathlib.Path(stamp["prepared_dir"])
    if not (prepared / "dataset_info.json").exists():
        raise DataFetchError(f"dataset {stamp['dataset']!r}: the prepared data {prepared} is gone "
                             f"(was the tfds data directory moved or cleaned?); delete "
                             f"results/data/tfds/{stamp['dataset']}.json and rerun the fetch rule")
    builder = tfds.builder_from_directory(str(prepared))
    return builder.as_data_source(split=stamp["split"])


def read_subset(src: TfdsSource, stamp: dict, n: int, seed: int) -> datasets.RawSubset:
    """The seeded subset of n examples: images in [0, 1], labels or factors, provenance."""
    source = open_source(stamp)
    total = len(source)
    if total != stamp["splits"][stamp["split"]]:
        raise DataFetchError(f"dataset {src.name!r}: {stamp['prepared_dir']} holds {total} examples, but the fetch "
                             f"record says {stamp['splits'][stamp['split']]}; rerun the fetch rule")
    idx = datasets.choose_subset(total, n, seed, src.name)  # ValueError when n > total
    examples = source.__getitems__([int(i) for i in idx])
    images = np.stack([np.asarray(ex["image"]) for ex in examples]).astype(np.float32)
    if images.max() > src.pixel_max or images.min() < 0:
        raise DataFetchError(f"dataset {src.name!r}: pixel values in [{images.min()}, {images.max()}] exceed the "
                             f"expected range [0, {src.pixel_max:g}]; the prepared data is not what it should be")
    images /= src.pixel_max
    short = "" if total == src.full_size else f"; NOT the full dataset of {src.full_size}"
    description = (f"{src.description}, {total} examples{short} (tfds {stamp['tfds_name']} {stamp['version']}, "
                   f"tensorflow-datasets {stamp['tfds_version']}, prepared at {stamp['prepared_dir']})")
    raw = datasets.RawSubset(images=images, index=idx.astype(np.int64), source=description)
    if src.name == "mnist":
        raw.labels = np.array([ex["label"] for ex in examples], dtype=np.int64)
    elif src.name == "dsprites":
        raw.labels = np.array([ex["label_shape"] for ex in examples], dtype=np.int64)
        raw.factors = np.array([[ex[key] for _, key in DSPRITES_FACTORS] for ex in examples], dtype=np.float32)
        raw.factor_names = tuple(name for name, _ in DSPRITES_FACTORS)
    elif src.name == "cars3d":
        raw.factors = np.array([[ex[key] for key in CARS3D_FACTORS] for ex in examples], dtype=np.float32)
        raw.factor_names = CARS3D_FACTORS
    return raw
