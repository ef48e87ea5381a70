"""`make-dataset` options: `--n-shapes N` (the release's nr_shapes) and `--permute-seed S` (the pixel permutation).

Both leave the standard files as they were: without them, or with `--n-shapes 3`, the bytes are those of
the plain command.
"""
import json

import h5py
import numpy as np
import pytest

from tagger_torch.data import dataset_info, load_split
from tagger_torch.data.h5layout import write_fuel_file
from tagger_torch.data.permute import (PERM_ATTR, SEED_ATTR, inverse_permutation, pixel_permutation,
                                       permute_pixels, read_permutation)
from tagger_torch.data.shapes import DESCRIPTION, SQUARE, TRIANGLE, generate_shapes
from test_data_cli import assert_nothing_written
from tiny import TINY, assert_one_line_error, invoke as run

SIZES = {"n_train": 40, "n_valid": 10, "n_test": 20, "n_single": 5}
SMALL = ["--n-train", 40, "--n-valid", 10, "--n-test", 20, "--n-single", 5]


def release_shapes_script(nr_shapes, n_train, n_valid, n_test, n_single):
    """A literal twin of the release's whole data/shapes.py with its `nr_shapes` set (one RandomState,
    splits in order train, valid, test, single; 1 shape in single; the mask table built from nr_shapes)."""
    rng = np.random.RandomState(265076)
    shapes = [SQUARE.astype(int), TRIANGLE.astype(int), TRIANGLE[::-1].astype(int)]

    def image(nr):
        img, grp = np.zeros((20, 20)), np.zeros((20, 20))
        k = 1
        for _ in range(nr):
            shape = shapes[rng.randint(0, len(shapes))]
            sy, sx = shape.shape
            x = rng.randint(0, 20 - sx + 1)
            y = rng.randint(0, 20 - sy + 1)
            img[y:y + sy, x:x + sx][shape != 0] += 1
            grp[y:y + sy, x:x + sx][shape != 0] = k
            k += 1
        grp[img > 1] = 0
        return img != 0, grp

    A = np.eye(nr_shapes + 1, dtype=np.float32)
    A[0] = 1.0 / nr_shapes
    A = A[:, 1:]
    out = {}
    for split, n in (("train", n_train), ("valid", n_valid), ("test", n_test), ("single", n_single)):
        data = np.zeros((n, 20, 20), dtype=np.float32)
        grps = np.zeros_like(data, dtype=np.uint8)
        for i in range(n):
            data[i], grps[i] = image(1 if split == "single" else nr_shapes)
        masks = np.swapaxes(np.swapaxes(A[grps], 3, 2), 2, 1).reshape(-1, nr_shapes, 400)
        out[split] = {"features": data.reshape(-1, 400), "mask": masks,
                      "codes": np.zeros((n, nr_shapes + 1, 400), dtype=np.uint8)}
    return out


# --- --n-shapes --------------------------------------------------------------------------------
@pytest.mark.parametrize("n_shapes", [2, 3, 4])
def test_n_shapes_matches_the_release_script(n_shapes):
    ours = generate_shapes(**SIZES, n_shapes=n_shapes, progress=False)
    theirs = release_shapes_script(n_shapes, *SIZES.values())
    for split in ("train", "valid", "test", "single"):
        for source in ("features", "mask", "codes"):
            np.testing.assert_array_equal(ours[split][source], theirs[split][source])
            assert ours[split][source].dtype == theirs[split][source].dtype
    owned = (ours["test"]["mask"] == 1).any(axis=2).sum(axis=1)  # (N,) groups owning a pixel
    assert owned.max() == n_shapes and owned.mean() > n_shapes - 0.5


def test_three_is_the_default_byte_for_byte(tmp_path):
    default, explicit = tmp_path / "default.h5", tmp_path / "explicit.h5"
    assert run("make-dataset", "shapes", "--out", default, *SMALL).exit_code == 0
    assert run("make-dataset", "shapes", "--out", explicit, *SMALL, "--n-shapes", 3).exit_code == 0
    assert default.read_bytes() == explicit.read_bytes()
    # ... and these are the bytes of the writer fed by the generator's defaults (the code path before the option)
    direct = tmp_path / "direct.h5"
    with h5py.File(direct, "w") as f:
        write_fuel_file(f, generate_shapes(**SIZES, progress=False), DESCRIPTION)
    assert default.read_bytes() == direct.read_bytes()


@pytest.mark.parametrize("n_shapes", [2, 4])
def test_n_shapes_file_summary_and_evaluate(tmp_path, n_shapes):
    out = tmp_path / f"shapes{n_shapes}.h5"
    result = run("make-dataset", "shapes", "--out", out, *SMALL, "--n-shapes", n_shapes)
    assert result.exit_code == 0, result.output
    with h5py.File(out, "r") as f:
        assert f["mask"].shape == (75, n_shapes, 400) and f["codes"].shape == (75, n_shapes + 1, 400)
        assert f"{n_shapes} random shapes each" in f.attrs["description"]
        assert PERM_ATTR not in f.attrs
    assert dataset_info(str(out)).n_mask_groups == n_shapes
    summary = run("data-summary", out)
    assert summary.exit_code == 0 and f"mask groups  {n_shapes}" in summary.stdout
    # an untrained tiny Tagger scored on it: AMI over the file's n_shapes true groups
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"encoder_proj": TINY["encoder_proj"], "n_groups": TINY["n_groups"],
                                  "valid_batch_size": 10}))
    assert run("init-params", "--config", config, "--out", tmp_path / "p.npz").exit_code == 0
    scored = run("evaluate", "--params", tmp_path / "p.npz", "--config", config, "--hdf5", out,
                 "--iterations", 2, "--groups", 4, "--device", "cpu", "--out", tmp_path / "m.json")
    assert scored.exit_code == 0, scored.output
    scores = json.loads((tmp_path / "m.json").read_text())
    assert scores["n_examples"] == 20 and len(scores["ami"]) == 2
    assert all(np.isfinite(scores["ami"])) and all(np.isfinite(scores["ari"]))


@pytest.mark.parametrize("value", [0, -1, 1, 11, 1000])
def test_bad_n_shapes(tmp_path, value):
    assert_one_line_error(run("make-dataset", "shapes", "--out", tmp_path / "x.h5", "--n-shapes", value),
                          "--n-shapes must be between 2 and 10")
    assert_nothing_written(tmp_path)


def test_n_shapes_is_for_shapes_only(tmp_path):
    assert_one_line_error(run("make-dataset", "freq20-2mnist", "--out", tmp_path / "x.h5", "--n-shapes", 2),
                          "--n-shapes applies to the shapes data set only")
    assert_nothing_written(tmp_path)


# --- --permute-seed ----------------------------------------------------------------------------
def test_permutation_helpers():
    perm = pixel_permutation(7, 400)
    np.testing.assert_array_equal(perm, np.random.RandomState(7).permutation(400))
    x = np.arange(2 * 3 * 400).reshape(2, 3, 400)
    y = permute_pixels(x, perm)
    np.testing.assert_array_equal(y[1, 2], x[1, 2][perm])  # new pixel j = old pixel perm[j]
    np.testing.assert_array_equal(permute_pixels(y, inverse_permutation(perm)), x)
    images = np.arange(5 * 2 * 1 * 28 * 28).reshape(5, 2, 1, 28, 28)  # freq20 masks (N, G, 1, 28, 28)
    perm = pixel_permutation(0, 784)
    got = permute_pixels(images, perm)
    assert got.shape == images.shape
    np.testing.assert_array_equal(got.reshape(5, 2, 784), images.reshape(5, 2, 784)[:, :, perm])
    with pytest.raises(ValueError):
        permute_pixels(np.zeros((3, 401)), perm)


def assert_permuted_file(plain, permuted, seed, n_pixels):
    with h5py.File(plain, "r") as a, h5py.File(permuted, "r") as b:
        assert sorted(a) == sorted(b)
        assert read_permutation(a) is None
        got_seed, perm = read_permutation(b)
        assert got_seed == seed and int(b.attrs[SEED_ATTR]) == seed
        np.testing.assert_array_equal(perm, np.random.RandomState(seed).permutation(n_pixels))
        for source in a:
            x, y = a[source][:], b[source][:]
            assert x.shape == y.shape and x.dtype == y.dtype
            expected = permute_pixels(x, perm) if source in ("features", "mask") else x
            np.testing.assert_array_equal(y, expected)
        fields = ("split", "source", "start", "stop", "available", "comment")  # (null references never compare equal)
        assert a.attrs["split"][list(fields)].tolist() == b.attrs["split"][list(fields)].tolist()
    info_a, info_b = dataset_info(str(plain)), dataset_info(str(permuted))
    assert info_a == info_b.__class__(**{**info_b.__dict__, "path": info_a.path})
    for split in info_b.splits:  # every split, through the reader
        pa, pb = load_split(str(plain), split, ("features", "mask")), load_split(str(permuted), split, ("features", "mask"))
        np.testing.assert_array_equal(permute_pixels(pa["features"], perm), pb["features"])
        np.testing.assert_array_equal(permute_pixels(pa["mask"], perm), pb["mask"])
    summary = run("data-summary", permuted)
    assert summary.exit_code == 0, summary.output
    assert f"pixels       permuted: RandomState({seed}).permutation({n_pixels})" in summary.stdout
    assert "  pixels " not in run("data-summary", plain).stdout


def test_permuted_shapes_file(tmp_path):
    plain, permuted = tmp_path / "plain.h5", tmp_path / "perm.h5"
    assert run("make-dataset", "shapes", "--out", plain, *SMALL).exit_code == 0
    result = run("make-dataset", "shapes", "--out", permuted, *SMALL, "--permute-seed", 5)
    assert result.exit_code == 0 and "pixels permuted, seed 5" in result.stdout
    assert_permuted_file(plain, permuted, 5, 400)
    # the same seed again: the same bytes; with 4 shapes, masks of 4 groups permuted alike
    again = tmp_path / "again.h5"
    assert run("make-dataset", "shapes", "--out", again, *SMALL, "--permute-seed", 5).exit_code == 0
    assert again.read_bytes() == permuted.read_bytes()
    four, four_perm = tmp_path / "four.h5", tmp_path / "four-perm.h5"
    assert run("make-dataset", "shapes", "--out", four, *SMALL, "--n-shapes", 4).exit_code == 0
    assert run("make-dataset", "shapes", "--out", four_perm, *SMALL, "--n-shapes", 4,
               "--permute-seed", 0).exit_code == 0
    assert_permuted_file(four, four_perm, 0, 400)


@pytest.mark.parametrize("name", ["freq20-1mnist", "freq20-2mnist"])
def test_permuted_freq20_file(tmp_path, mnist_sources, name):
    small = ["--n-train", 20, "--n-valid", 10, "--n-test", 10, "--mnist", mnist_sources["npz"]]
    plain, permuted = tmp_path / "plain.h5", tmp_path / "perm.h5"
    assert run("make-dataset", name, "--out", plain, *small).exit_code == 0
    assert run("make-dataset", name, "--out", permuted, *small, "--permute-seed", 3).exit_code == 0
    assert_permuted_file(plain, permuted, 3, 784)
    with h5py.File(permuted, "r") as f:
        assert f["features"].shape == (40, 1, 28, 28)


@pytest.mark.parametrize("value", [-1, 2**32])
def test_bad_permute_seed(tmp_path, value):
    assert_one_line_error(run("make-dataset", "shapes", "--out", tmp_path / "x.h5", "--permute-seed", value),
                          "--permute-seed must be between 0 and 2**32 - 1")
    assert_nothing_written(tmp_path)
