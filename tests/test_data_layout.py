"""The release's HDF5 layout (SPEC 9): the `split` attribute, the reader API and its errors."""
import os

import h5py
import numpy as np
import pytest

from tagger_torch.data import DatasetInfo, dataset_info, load_split
from tagger_torch.data.h5layout import split_array, write_fuel_file
from tagger_torch.files import atomic_output
from tagger_torch.errors import TaggerError


def test_split_attribute_fields_and_ranges(small_shapes_h5):
    with h5py.File(small_shapes_h5, "r") as f:
        table = f.attrs["split"]
        assert table.dtype.names == ("split", "source", "start", "stop", "indices", "available", "comment")
        assert table.dtype["split"] == np.dtype("S6") and table.dtype["source"] == np.dtype("S8")
        assert table.dtype["start"] == np.int64 and table.dtype["stop"] == np.int64
        assert h5py.check_ref_dtype(table.dtype["indices"]) is h5py.Reference
        assert len(table) == 4 * 4  # one row per (split, source)
        expected = {"train": (0, 300), "valid": (300, 400), "test": (400, 500), "single": (500, 600)}
        for row in table:
            split, source = row["split"].decode(), row["source"].decode()
            assert (int(row["start"]), int(row["stop"])) == expected[split]
            assert source in ("features", "mask", "targets", "codes")
            assert not row["indices"]  # a null reference
            assert row["available"] and row["comment"] == b"."
        assert isinstance(f.attrs["description"], str)
        for source in ("features", "mask", "targets", "codes"):
            assert f[source].compression == "gzip" and f[source].shape[0] == 600


def test_layout_names_shapes_dtypes(small_shapes_h5):
    with h5py.File(small_shapes_h5, "r") as f:
        assert sorted(f) == ["codes", "features", "mask", "targets"]
        assert f["features"].shape == (600, 400) and f["features"].dtype == np.float32
        assert f["mask"].shape == (600, 3, 400) and f["mask"].dtype == np.float32
        assert f["targets"].shape == (600, 1) and f["targets"].dtype == np.uint8
        assert f["codes"].shape == (600, 4, 400) and f["codes"].dtype == np.uint8
        assert not np.any(f["targets"][:]) and not np.any(f["codes"][:])


def test_dataset_info_shapes(small_shapes_h5):
    info = dataset_info(small_shapes_h5)
    assert info == DatasetInfo(path=small_shapes_h5, input_type="binary", in_dim=(400,),
                               splits={"train": 300, "valid": 100, "test": 100, "single": 100},
                               sources=("codes", "features", "mask", "targets"), has_labels=False,
                               objects_per_sample=1, n_mask_groups=3)
    assert dataset_info(small_shapes_h5, input_type="continuous").input_type == "continuous"
    with pytest.raises(TaggerError, match="input type"):
        dataset_info(small_shapes_h5, input_type="gaussian")


def test_load_split_reads_its_rows(small_shapes_h5):
    with h5py.File(small_shapes_h5, "r") as f:
        everything = {s: f[s][:] for s in ("features", "mask", "targets", "codes")}
    arrays = load_split(small_shapes_h5, "valid")
    assert sorted(arrays) == ["features", "mask", "targets"]
    for source, array in arrays.items():
        np.testing.assert_array_equal(array, everything[source][300:400])
        assert array.dtype == everything[source].dtype
    codes = load_split(small_shapes_h5, "single", ("codes",))["codes"]
    assert codes.shape == (100, 4, 400)


def release_like_file(path, n_train=6, n_test=4):
    """A file as Fuel 0.2 + the release's compress_fuel wrote it: rows in another order, names
    padded to other widths, an extra attribute, continuous features and int64 labels."""
    rng = np.random.RandomState(1)
    n = n_train + n_test
    rows = [("test", "targets", n_train, n), ("train", "features", 0, n_train), ("test", "features", n_train, n),
            ("train", "targets", 0, n_train)]
    with h5py.File(path, "w") as f:
        f.create_dataset("features", data=rng.rand(n, 1, 28, 28).astype(np.float32), compression="gzip")
        f.create_dataset("targets", data=rng.randint(0, 10, (n, 2)).astype(np.int64), compression="gzip")
        f.attrs["split"] = split_array(rows)
        f.attrs["description"] = "release-like"
    return path


def test_reads_release_like_file(tmp_path):
    path = release_like_file(str(tmp_path / "release.h5"))
    info = dataset_info(path)
    assert info.input_type == "continuous" and info.in_dim == (1, 28, 28)
    assert info.splits == {"test": 4, "train": 6}
    assert info.has_labels and info.objects_per_sample == 2 and info.n_mask_groups is None
    arrays = load_split(path, "test", ("features", "targets"))
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(arrays["targets"], f["targets"][6:10])
    with pytest.raises(TaggerError, match="no source 'mask'"):
        load_split(path, "test")  # the default sources include the mask


def test_write_fuel_file_checks_lengths(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as f, pytest.raises(ValueError, match="different lengths"):
        write_fuel_file(f, {"train": {"features": np.zeros((3, 2)), "mask": np.zeros((2, 2))}})


# --- bad input: one TaggerError naming the problem --------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(TaggerError, match="not found"):
        dataset_info(str(tmp_path / "nope.h5"))
    with pytest.raises(TaggerError, match="not found"):
        load_split(str(tmp_path / "nope.h5"), "train")


def test_not_hdf5(tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("hello")
    with pytest.raises(TaggerError, match="not an HDF5 file"):
        dataset_info(str(path))
    with pytest.raises(TaggerError, match="not an HDF5 file"):
        dataset_info(str(tmp_path))


def test_no_split_attribute(tmp_path):
    path = str(tmp_path / "plain.h5")
    with h5py.File(path, "w") as f:
        f["features"] = np.zeros((2, 4), np.float32)
    with pytest.raises(TaggerError, match="no 'split' attribute"):
        dataset_info(path)
    with pytest.raises(TaggerError, match="no 'split' attribute"):
        load_split(path, "train")


def test_absent_split_and_source(small_shapes_h5):
    with pytest.raises(TaggerError, match="no split 'extra'.*train, valid, test, single"):
        load_split(small_shapes_h5, "extra")
    with pytest.raises(TaggerError, match="no source 'labels'"):
        load_split(small_shapes_h5, "train", ("features", "labels"))


def test_mismatched_lengths(tmp_path):
    path = str(tmp_path / "bad.h5")
    with h5py.File(path, "w") as f:
        f["features"] = np.zeros((10, 4), np.float32)
        f["targets"] = np.zeros((10, 1), np.int64)
        f.attrs["split"] = split_array([("train", "features", 0, 8), ("train", "targets", 0, 7)])
    with pytest.raises(TaggerError, match="different lengths.*features 8, targets 7"):
        load_split(path, "train", ("features", "targets"))
    with pytest.raises(TaggerError, match="different lengths"):
        dataset_info(path)


def test_rows_outside_source(tmp_path):
    path = str(tmp_path / "bad.h5")
    with h5py.File(path, "w") as f:
        f["features"] = np.zeros((5, 4), np.float32)
        f.attrs["split"] = split_array([("train", "features", 0, 8)])
    with pytest.raises(TaggerError, match="outside the 5 rows"):
        load_split(path, "train", ("features",))


def test_atomic_output_removes_temp_on_interrupt(tmp_path):
    out = tmp_path / "out.h5"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(str(out)) as tmp:
            assert os.path.basename(tmp).startswith("out.h5.tmp-") and os.path.dirname(tmp) == str(tmp_path)
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []
    with atomic_output(str(out)) as tmp:
        with open(tmp, "w") as f:
            f.write("done")
    assert out.read_text() == "done" and os.listdir(tmp_path) == ["out.h5"]
