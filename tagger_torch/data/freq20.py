"""Freq20-1MNIST and Freq20-2MNIST: MNIST digits cut out of sinusoid textures (SPEC 9).

Reproduces the release's data/FreqMNIST28.ipynb (`gen_textures`, `prepare_data`,
`TexturedMNIST.create_masks` / `compose`) draw for draw:
* 20 textures on a 38x38 grid from RandomState(546298);
* per generator run (the 60000 MNIST training digits with RandomState(52698), split afterwards
  into train 50000 / valid 10000; the 10000 test digits with RandomState(2938)):
  2 digits: permutation(N), permutation(N), binomial(1, 0.5, N); then per image
  choice(20, M+1, replace=False); crop offsets from a fresh RandomState(598), randint(0, 11, 2)
  per (image, layer), image-major;
* layers composited back to front: background texture, then each digit (mask = pixels k/255).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Dict

import numpy as np
from tqdm import tqdm

from ..errors import TaggerError
from .mnist import Mnist

TEXTURE_SEED = 546298
TRAIN_SEED = 52698  # the run over MNIST's 60000 training digits (train + valid)
TEST_SEED = 2938  # the run over MNIST's 10000 test digits
CROP_SEED = 598  # crop offsets; a fresh generator for every run
N_TEXTURES = 20
SIZE = 28  # image side
SHIFT = 2  # 2 digits: digit a moves up-left, digit b down-right by this many pixels
SPLIT_SIZES = {"train": 50000, "valid": 10000, "test": 10000}
CHUNK = 2000  # images composed at a time


def texture_frequencies() -> np.ndarray:
    """(20, 2) integer frequencies: product([4,10,21,32,37], [0,4,8,12]) as 5 rows of 4, with the
    second coordinate of row r raised by r."""
    freqs = np.array(list(itertools.product([4, 10, 21, 32, 37], [0, 4, 8, 12]))).reshape(5, 4, 2)
    freqs[:, :, 1] += np.arange(5)[:, None]
    return freqs.reshape(N_TEXTURES, 2)


def make_textures(seed: int = TEXTURE_SEED) -> np.ndarray:
    """The 20 textures, (20, 38, 38) float32 in [0, 1].

    Texture i is the real part of the inverse 2-D FFT of a 38x38 complex64 grid holding
    exp(2 pi i U), U ~ uniform, at frequency i (one draw per texture, in order), shifted and
    scaled per texture to [0, 1] in float32. The FFT runs in complex128, as NumPy 1.10's did.
    """
    rng = np.random.RandomState(seed)
    freqs = texture_frequencies()
    size = int(freqs.max()) + 1  # 38
    grid = np.zeros((N_TEXTURES, size, size), dtype=np.complex64)
    for i, (u, v) in enumerate(freqs):
        grid[i, u, v] += np.exp(2j * np.pi * rng.rand())
    textures = np.real(np.fft.ifft2(grid.astype(np.complex128))).astype(np.float32)  # (20, 38, 38)
    textures -= textures.min(axis=(1, 2), keepdims=True)
    textures /= textures.max(axis=(1, 2), keepdims=True)
    return textures


def shift_images(images: np.ndarray, d: int) -> np.ndarray:
    """Move the content of (N, H, W) images by d rows and d columns (d < 0: up-left), filling zeros."""
    out = np.zeros_like(images)
    if d >= 0:
        out[:, d:, d:] = images[:, :images.shape[1] - d, :images.shape[2] - d]
    else:
        out[:, :d, :d] = images[:, -d:, -d:]
    return out


def compose(crops: np.ndarray, layers: np.ndarray):
    """Composite back to front (the release's `TexturedMNIST.compose`).

    crops: (n, M+1, 28, 28) textures (layer 0 the background); layers: (n, M, 28, 28) float32
    digit masks d_j in compositing order. res = t_0; for j = 1..M: res = d_j t_j + (1 - d_j) res,
    and the masks of all layers below j are multiplied by (1 - d_j). Returns
    (features (n, 28, 28) float32, masks (n, M+1, 28, 28) float32, summing to 1 per pixel).
    The dtypes follow the release: masks in float32, the image in float64 (its crops were float64).
    """
    crops = crops.astype(np.float64)
    masks = np.ones(crops.shape, dtype=np.float32)
    image = crops[:, 0]
    for j in range(1, crops.shape[1]):
        d = layers[:, j - 1]
        masks[:, j] = d
        masks[:, :j] *= (1 - d)[:, None]
        image = d * crops[:, j] + (1 - d) * image
    return image.astype(np.float32), masks


@dataclass
class Freq20Run:
    """One generator run: the four sources plus the draws needed to re-check them."""

    features: np.ndarray  # (N, 1, 28, 28) float32
    mask: np.ndarray  # (N, M+1, 1, 28, 28) float32, group 0 = background
    codes: np.ndarray  # (N, M+1) int64 texture index of each layer
    targets: np.ndarray  # (N, M) int64 digit labels (2 digits: order set by the coin, see below)
    crop_offsets: np.ndarray  # (N, M+1, 2) int64 (row, column) of each layer's 28x28 crop
    digit_sources: np.ndarray  # (N, M) int64 MNIST image of each digit layer, bottom to top

    def sources(self, rows: slice = slice(None)) -> Dict[str, np.ndarray]:
        """The file's sources (release order) for `rows` of this run."""
        return {"features": self.features[rows], "mask": self.mask[rows],
                "codes": self.codes[rows], "targets": self.targets[rows]}


def generate_run(images: np.ndarray, labels: np.ndarray, n_digits: int, seed: int,
                 textures: np.ndarray, progress: bool = True, desc: str = "freq20") -> Freq20Run:
    """The release's `prepare_data` for one set of MNIST digits (images (N, 28, 28) uint8 k).

    2 digits: digit a = image perm_a[n] shifted up-left by 2, digit b = image perm_b[n] shifted
    down-right by 2; b is composited first and a on top, always (the release applies its coin to
    the masks twice, which cancels), while the targets are (label b, label a) where the coin is 1
    and (label a, label b) where it is 0. 1 digit: the image itself, unshifted.
    """
    if n_digits not in (1, 2):
        raise ValueError("n_digits must be 1 or 2")
    rng = np.random.RandomState(seed)
    n = len(images)
    digits = images.astype(np.float32) / np.float32(255)  # (N, 28, 28) masks k/255
    labels = labels.astype(np.int64)
    if n_digits == 1:
        layers = digits[:, None]  # (N, 1, 28, 28)
        digit_sources = np.arange(n)[:, None]
        targets = labels[:, None]
    else:
        perm_a = rng.permutation(n)
        perm_b = rng.permutation(n)
        coin = rng.binomial(1, 0.5, n)
        layers = np.stack([shift_images(digits[perm_b], SHIFT), shift_images(digits[perm_a], -SHIFT)], 1)
        digit_sources = np.stack([perm_b, perm_a], 1)
        targets = np.where(coin[:, None] == 1, labels[digit_sources], labels[digit_sources[:, ::-1]])
    n_layers = n_digits + 1
    max_offset = textures.shape[-1] - SIZE  # 10
    # (r, c) = randint(0, 11, 2) per (image, layer): one call of size 2*N*(M+1) draws the same stream
    crop_offsets = np.random.RandomState(CROP_SEED).randint(0, max_offset + 1, 2 * n * n_layers)
    crop_offsets = crop_offsets.reshape(n, n_layers, 2)
    run = Freq20Run(features=np.empty((n, 1, SIZE, SIZE), np.float32),
                    mask=np.empty((n, n_layers, 1, SIZE, SIZE), np.float32),
                    codes=np.empty((n, n_layers), np.int64), targets=targets,
                    crop_offsets=crop_offsets, digit_sources=digit_sources)
    pixel = np.arange(SIZE)
    with tqdm(total=n, desc=desc, unit="img", disable=None if progress else True, leave=False) as bar:
        for lo in range(0, n, CHUNK):
            hi = min(lo + CHUNK, n)
            # the generator's last draws, per image in order: distinct textures for the M+1 layers
            codes = np.array([rng.choice(N_TEXTURES, n_layers, replace=False) for _ in range(lo, hi)])
            codes = codes.reshape(hi - lo, n_layers)
            rows = crop_offsets[lo:hi, :, 0, None, None] + pixel[:, None]  # (n, M+1, 28, 1)
            cols = crop_offsets[lo:hi, :, 1, None, None] + pixel[None, :]  # (n, M+1, 1, 28)
            crops = textures[codes[:, :, None, None], rows, cols]  # (n, M+1, 28, 28)
            image, masks = compose(crops, layers[lo:hi])
            run.features[lo:hi, 0] = image
            run.mask[lo:hi, :, 0] = masks
            run.codes[lo:hi] = codes
            bar.update(hi - lo)
    return run


def check_split_sizes(mnist: Mnist, n_train: int, n_valid: int, n_test: int) -> None:
    """The splits' sizes fit in MNIST: train + valid in its training digits, test in its test digits."""
    if n_train + n_valid > len(mnist.train_images):
        raise TaggerError(f"n_train + n_valid = {n_train + n_valid} exceeds the "
                          f"{len(mnist.train_images)} MNIST training digits")
    if n_test > len(mnist.test_images):
        raise TaggerError(f"n_test = {n_test} exceeds the {len(mnist.test_images)} MNIST test digits")


def generate_freq20(mnist: Mnist, n_digits: int, n_train: int = 50000, n_valid: int = 10000,
                    n_test: int = 10000, progress: bool = True) -> Dict[str, Dict[str, np.ndarray]]:
    """{split: sources} for Freq20-{n_digits}MNIST.

    train/valid come from one run over MNIST's first n_train + n_valid training digits, test from
    a run over the first n_test test digits. With fewer digits than the release's, the 2-digit
    pairings change (permutation(N) depends on N); 1-digit files keep their images' prefix.
    """
    check_split_sizes(mnist, n_train, n_valid, n_test)
    textures = make_textures()
    n = n_train + n_valid
    train = generate_run(mnist.train_images[:n], mnist.train_labels[:n], n_digits, TRAIN_SEED, textures,
                         progress, desc="train+valid")
    test = generate_run(mnist.test_images[:n_test], mnist.test_labels[:n_test], n_digits, TEST_SEED,
                        textures, progress, desc="test")
    return {"train": train.sources(slice(0, n_train)), "valid": train.sources(slice(n_train, n)),
            "test": test.sources()}


def generate_mnist(mnist: Mnist, n_train: int = 50000, n_valid: int = 10000,
                   n_test: int = 10000) -> Dict[str, Dict[str, np.ndarray]]:
    """{split: sources} for plain MNIST with Freq20's splits and row layout: a check of the Table-2
    baselines against their own papers, not a data set of the release (docs/baselines.md).

    features (N, 1, 28, 28) float32 k/255 and targets (N, 1) int64; train/valid are MNIST's first
    n_train + n_valid training digits, test its first n_test test digits, as in `generate_freq20`.
    """
    check_split_sizes(mnist, n_train, n_valid, n_test)
    n = n_train + n_valid

    def split(images: np.ndarray, labels: np.ndarray) -> Dict[str, np.ndarray]:
        return {"features": (images.astype(np.float32) / np.float32(255))[:, None],
                "targets": labels.astype(np.int64)[:, None]}

    train = split(mnist.train_images[:n], mnist.train_labels[:n])
    return {"train": {k: v[:n_train] for k, v in train.items()}, "valid": {k: v[n_train:] for k, v in train.items()},
            "test": split(mnist.test_images[:n_test], mnist.test_labels[:n_test])}
