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

The two offline sources live here: scikit-learn's bundled handwritten digits (real data,
8x8) and a procedural rendering of the dSprites factor grid (a stand-in with known
factors, not the dSprites files). The tensorflow-datasets sources write the same layout
through `write_dataset`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Mapping

import numpy as np

from . import io

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


def sprites_subset(n: int, seed: int) -> RawSubset:
    """A procedural rendering of the dSprites factor grid: stand-in data with known factors."""
    total = int(np.prod(SPRITE_GRID))
    idx = choose_subset(total, n, seed, "sprites")
    coords = np.stack(np.unravel_index(idx, SPRITE_GRID), axis=1)
    values = np.stack([list(SPRITE_FACTORS.values())[k][coords[:, k]] for k in range(len(SPRITE_GRID))], axis=1)
    images = np.stack([render_sprite(*row) for row in values])[..., None]
    return RawSubset(images=images, index=idx.astype(np.int64), labels=coords[:, 0].astype(np.int64),
                     factors=values.astype(np.float32), factor_names=tuple(SPRITE_FACTORS),
                     source="procedural rendering of the dSprites factor grid (stand-in, not the dSprites files)",
                     stand_in=True)


LOCAL_SOURCES: dict[str, Callable[[int, int], RawSubset]] = {"digits": digits_subset, "sprites": sprites_subset}


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
                          center=bool(center), factor_names=list(raw.factor_names))
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
