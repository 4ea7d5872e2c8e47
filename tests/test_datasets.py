"""Offline datasets: seeded subsets, normalization, the sprites' factors, the HDF5 layout."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from ntkvae import datasets, io


def test_subset_is_seeded_and_distinct():
    a = datasets.choose_subset(1000, 50, 3, "x")
    assert np.array_equal(a, datasets.choose_subset(1000, 50, 3, "x"))
    assert not np.array_equal(a, datasets.choose_subset(1000, 50, 4, "x"))
    assert len(np.unique(a)) == 50
    with pytest.raises(ValueError, match="dataset 'digits' has 1797 examples, but n = 5000"):
        datasets.digits_subset(5000, 0)


@pytest.mark.parametrize("center", [True, False])
def test_normalization_and_inverse(tmp_path, center):
    raw = datasets.digits_subset(40, 1)
    path = tmp_path / "d.h5"
    datasets.write_dataset(path, "digits", raw, n=40, seed=1, center=center)
    with h5py.File(path) as f:
        x, images, mean, scale = f["x"][()], f["images"][()], f["mean"][()], f["scale"][()]
        assert f.attrs["dataset"] == "digits" and int(f.attrs["n"]) == 40 and int(f.attrs["d"]) == 64
        assert list(f["labels"][()]) == list(raw.labels)
    d = x.shape[1]
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), np.sqrt(d), rtol=1e-5)
    np.testing.assert_allclose(x * scale[:, None] + mean, images.reshape(40, -1), atol=1e-5)
    if center:
        np.testing.assert_allclose(mean, images.reshape(40, -1).mean(axis=0), atol=1e-6)
    else:
        assert np.all(mean == 0)
    assert images.min() >= 0 and images.max() <= 1


def test_digits_are_the_bundled_images():
    from sklearn.datasets import load_digits

    raw = datasets.digits_subset(10, 0)
    np.testing.assert_array_equal(raw.images[..., 0] * 16, load_digits().images[raw.index])


def test_sprites_follow_their_factors():
    raw = datasets.sprites_subset(200, 0)
    assert raw.images.shape == (200, 64, 64, 1) and set(np.unique(raw.images)) <= {0.0, 1.0}
    assert raw.factor_names == ("shape", "scale", "orientation", "pos_x", "pos_y") and raw.stand_in
    img = raw.images[..., 0]
    area = img.sum(axis=(1, 2))
    assert np.all(area > 10)
    cols = np.arange(64) + 0.5
    cx = (img.sum(axis=1) * cols).sum(axis=1) / area / 64
    cy = (img.sum(axis=2) * cols).sum(axis=1) / area / 64
    pos_x, pos_y, scale = raw.factors[:, 3], raw.factors[:, 4], raw.factors[:, 1]
    # The centre of mass tracks the position factor (heart's mass centre is offset slightly).
    np.testing.assert_allclose(cx, 0.2 + 0.6 * pos_x, atol=0.03)
    np.testing.assert_allclose(cy, 0.2 + 0.6 * pos_y, atol=0.06)
    # Area grows with scale squared, per shape.
    for shape in range(3):
        sel = raw.factors[:, 0] == shape
        ratio = area[sel] / scale[sel] ** 2
        assert ratio.std() / ratio.mean() < 0.1


def test_zero_norm_example_is_rejected():
    flat = np.ones((3, 4))
    with pytest.raises(ValueError, match="zero norm"):
        datasets.normalize(flat, center=True)


def test_load_inputs_errors_name_the_file(tmp_path):
    missing = tmp_path / "none.h5"
    with pytest.raises(io.InputFileError, match=str(missing)):
        datasets.load_inputs(missing)
    partial = tmp_path / "partial.h5"
    with h5py.File(partial, "w") as f:
        f["x"] = np.zeros((2, 2))
    with pytest.raises(io.InputFileError, match="lacks the dataset"):
        datasets.load_inputs(partial)
