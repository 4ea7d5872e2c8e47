"""Turning network outputs (normalized vectors) back into images, from the dataset's HDF5 file."""

from __future__ import annotations

import numpy as np

from .. import io


class ImageSpace:
    """The inverse of the dataset normalization: x -> x * scale + mean, reshaped to image_shape."""

    def __init__(self, path):
        with io.open_input(path, ("images", "mean", "scale"), attrs=("image_shape",)) as f:
            self.images = io.read(f, "images")
            self.mean = io.read(f, "mean", ndim=1)
            self.scale = io.read(f, "scale", ndim=1)
            shape = io.read_json_attr(f, "image_shape")
            self.dataset = str(f.attrs.get("dataset", ""))
        if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(k, int) and k > 0 for k in shape)):
            raise io.InputFileError(f"input file {path}: attribute image_shape is {shape!r}, expected [H, W, C]")
        self.shape = tuple(shape)
        io.check_shapes(path, {"images": self.images, "mean": self.mean, "scale": self.scale},
                        {"images": ("n", *self.shape), "mean": (int(np.prod(self.shape)),), "scale": ("n",)})

    def blank(self, count: int) -> np.ndarray:
        """`count` empty (white) images."""
        return np.full((count,) + self.shape, background(self.shape[-1]))

    def to_images(self, x, index=None) -> np.ndarray:
        """Images of outputs x (..., d); per-example scale for data rows `index`, else the median scale."""
        x = np.asarray(x, float)
        scale = np.median(self.scale) if index is None else self.scale[np.asarray(index)][:, None]
        images = x * scale + self.mean
        return np.clip(images.reshape(x.shape[:-1] + self.shape), 0.0, 1.0)


def background(channels: int) -> float:
    """White: 0 for grey images (shown with an inverted map, ink dark), 1 for colour images."""
    return 0.0 if channels == 1 else 1.0


def mosaic(images, rows: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile images (k, H, W, C) or (r, c, H, W, C), or a list of (k, H, W, C), into one array, white padding."""
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[None] if rows is None else images.reshape((rows, -1) + images.shape[1:])
    r, c, h, w, ch = images.shape
    out = np.full((r * (h + pad) - pad, c * (w + pad) - pad, ch), background(ch))
    for i in range(r):
        for j in range(c):
            out[i * (h + pad):i * (h + pad) + h, j * (w + pad):j * (w + pad) + w] = images[i, j]
    return out[..., 0] if ch == 1 else out


def show(ax, array, title=None) -> None:
    ax.imshow(array, cmap="gray_r" if array.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title)
