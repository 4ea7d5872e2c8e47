"""A tensorflow-datasets builder for Cars3D (not in the tfds catalog).

Cars3D is the set of renders of Reed et al. 2015 ("Deep Visual Analogy-Making", NeurIPS):
183 car models x 24 azimuths x 4 elevations, shipped in `nips2015-analogy-data.tar.gz` as
`data/cars/car_XXX_mesh.mat` files, each with `im` of shape (128, 128, 3, 24, 4) uint8
(and `mask`), and `data/cars/list.txt` giving the model order. As the disentanglement
studies use it (disentanglement_lib's `cars3d.py`), each render is resized to 64x64 with a
Lanczos filter (PIL's `thumbnail(..., ANTIALIAS)` there, which for an exact 2x reduction
is a plain Lanczos resize), and the factors are elevation (4), azimuth (24) and object id
(183, the model's position in list.txt).

Examples are stored unshuffled in disentanglement_lib's order, so the position of an
example in the `train` split is its disentanglement_lib index:
    index = elevation * (24 * n_models) + azimuth * n_models + object_id.

The archive has no registered SHA-256 in tfds; the builder checks its MD5 (published with
disent and latte, two independent loaders of the same URL) itself, whether the file was
downloaded or placed by hand in the manual directory. Images are yielded as PNG bytes
encoded with Pillow, so preparing this dataset needs no TensorFlow.
"""

from __future__ import annotations

import hashlib
import io
import pathlib
import tarfile
import zlib

import numpy as np
import tensorflow_datasets as tfds

from . import CARS3D_FILENAME, CARS3D_URL, DataFetchError

CARS3D_MD5 = "4e866a7919c1beedf53964e6f7a23686"
N_AZIMUTH, N_ELEVATION, N_MODELS = 24, 4, 183
RENDER_SHAPE = (128, 128, 3, N_AZIMUTH, N_ELEVATION)
IMAGE_SIZE = 64


def md5sum(path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resize_render(render: np.ndarray) -> np.ndarray:
    """One 128x128x3 uint8 render to 64x64x3 uint8 (Lanczos, as disentanglement_lib)."""
    from PIL import Image

    return np.asarray(Image.fromarray(render).resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS))


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _load_model(data: bytes, where: str) -> np.ndarray:
    """The (24 azimuths, 4 elevations, 64, 64, 3) uint8 views of one car model's .mat file."""
    import scipy.io

    try:
        im = scipy.io.loadmat(io.BytesIO(data))["im"]
    except Exception as err:  # scipy raises many types for a damaged .mat file
        raise DataFetchError(f"{where}: not a readable MATLAB file with an 'im' array ({err})") from err
    if im.shape != RENDER_SHAPE or im.dtype != np.uint8:
        raise DataFetchError(f"{where}: 'im' has shape {im.shape} and dtype {im.dtype}; "
                             f"Cars3D renders are {RENDER_SHAPE} uint8")
    views = np.empty((N_AZIMUTH, N_ELEVATION, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    for az in range(N_AZIMUTH):
        for el in range(N_ELEVATION):
            views[az, el] = resize_render(np.ascontiguousarray(im[:, :, :, az, el]))
    return views


def read_archive(path) -> tuple[list[str], dict[str, np.ndarray]]:
    """Stream through the archive once: model order (list.txt) and the resized views per model."""
    order: list[str] | None = None
    models: dict[str, np.ndarray] = {}
    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                parts = pathlib.PurePosixPath(member.name).parts
                if not member.isfile() or len(parts) < 2 or parts[-2] != "cars":
                    continue
                name = parts[-1]
                data = tar.extractfile(member).read()
                if name == "list.txt":
                    order = [line.strip() for line in data.decode().splitlines() if line.strip()]
                elif name.endswith(".mat"):
                    models[name[:-4]] = _load_model(data, f"{path} member {member.name}")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise DataFetchError(f"Cars3D archive {path} is truncated or corrupt ({type(err).__name__}: {err}); "
                             f"delete it and fetch it again") from err
    if not models:
        raise DataFetchError(f"Cars3D archive {path} has no data/cars/*.mat files")
    if order is None:
        order = sorted(models)
    missing = [m for m in order if m not in models]
    if missing:
        raise DataFetchError(f"Cars3D archive {path}: list.txt names {len(missing)} model(s) without a .mat file, "
                             f"e.g. {missing[0]}.mat; the archive is incomplete")
    return order, models


class Cars3d(tfds.core.GeneratorBasedBuilder):
    """Cars3D renders (Reed et al. 2015) at 64x64 with elevation, azimuth and object id."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release (ntkvae): 64x64 Lanczos, disentanglement_lib order."}
    # The fetch step sets this False only when the configuration trusts hand-placed files.
    VERIFY_MD5 = True

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__.split("\n\n")[1],
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 3)),
                "elevation": tfds.features.ClassLabel(num_classes=N_ELEVATION),
                "azimuth": tfds.features.ClassLabel(num_classes=N_AZIMUTH),
                "object_id": tfds.features.ClassLabel(num_classes=N_MODELS),
            }),
            homepage="http://www.scottreed.info/",
            citation="@inproceedings{reed2015deep, title={Deep Visual Analogy-Making}, "
                     "author={Reed, Scott E and Zhang, Yi and Zhang, Yuting and Lee, Honglak}, "
                     "booktitle={NeurIPS}, year={2015}}",
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        path = pathlib.Path(dl_manager.download(CARS3D_URL))
        if self.VERIFY_MD5:
            got = md5sum(path)
            if got != CARS3D_MD5:
                raise DataFetchError(
                    f"Cars3D archive {path} has MD5 {got}, expected {CARS3D_MD5} ({CARS3D_URL}): it is truncated, "
                    f"corrupt or a different file. Delete it and fetch again (or place a good copy named "
                    f"{CARS3D_FILENAME} in the manual directory).")
        return {"train": self._generate_examples(path)}

    def _generate_examples(self, path):
        order, models = read_archive(path)
        # The verified archive has exactly 183 models; a hand-placed, unverified one may hold fewer.
        if len(order) > N_MODELS or (self.VERIFY_MD5 and len(order) != N_MODELS):
            raise DataFetchError(f"Cars3D archive {path} lists {len(order)} models; Cars3D has {N_MODELS}")
        n_models = len(order)
        for el in range(N_ELEVATION):
            for az in range(N_AZIMUTH):
                for obj, model in enumerate(order):
                    key = el * (N_AZIMUTH * n_models) + az * n_models + obj
                    yield key, {"image": _png(models[model][az, el]), "elevation": el,
                                "azimuth": az, "object_id": obj}
