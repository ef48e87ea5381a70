"""`tagger-torch make-dataset`: one data set generated as the release did (SPEC 9), optionally with
its pixels permuted (docs/permutation.md), written in the release's layout.

NumPy and h5py only (no torch). Generators live in `shapes.py` and `freq20.py`, MNIST in `mnist.py`.
"""
from __future__ import annotations

import os
import time
from typing import Dict, Optional, Tuple

import h5py
import numpy as np

from ..errors import TaggerError
from ..files import atomic_output
from . import freq20, permute, shapes
from .h5layout import write_fuel_file
from .mnist import load_mnist

# the Freq20 data sets -> digits per image
FREQ20_DIGITS = {"freq20-1mnist": 1, "freq20-2mnist": 2}
DATASETS = ("shapes",) + tuple(FREQ20_DIGITS) + ("mnist",)


def check_options(name: str, mnist_source: Optional[str], n_single: Optional[int], n_shapes: Optional[int],
                  permute_seed: Optional[int]) -> None:
    """TaggerError for an option that data set `name` does not take, or a value out of range."""
    if name == "shapes" and mnist_source is not None:
        raise TaggerError("--mnist applies to the freq20 and mnist data sets only")
    if name != "shapes" and n_single is not None:
        raise TaggerError("--n-single applies to the shapes data set only")
    if name != "shapes" and n_shapes is not None:
        raise TaggerError("--n-shapes applies to the shapes data set only")
    if n_shapes is not None and not shapes.MIN_SHAPES <= n_shapes <= shapes.MAX_SHAPES:
        raise TaggerError(f"--n-shapes must be between {shapes.MIN_SHAPES} and {shapes.MAX_SHAPES} "
                          f"(got {n_shapes}; one-shape images are the 'single' split)")
    if permute_seed is not None and not 0 <= permute_seed < 2**32:
        raise TaggerError(f"--permute-seed must be between 0 and 2**32 - 1 (got {permute_seed})")


def generate(name: str, sizes: Dict[str, Optional[int]], mnist_source: Optional[str] = None,
             n_shapes: Optional[int] = None) -> Tuple[Dict[str, Dict[str, np.ndarray]], Optional[str]]:
    """({split: {source: array}}, the file's description) of data set `name`; a size None is the release's."""
    if name == "shapes":
        kwargs = {f"n_{s}": shapes.SPLIT_SIZES[s] if n is None else n for s, n in sizes.items()}
        n_shapes = shapes.N_SHAPES if n_shapes is None else n_shapes
        return shapes.generate_shapes(**kwargs, n_shapes=n_shapes), shapes.description(n_shapes)
    kwargs = {f"n_{s}": freq20.SPLIT_SIZES[s] if n is None else n for s, n in sizes.items() if s != "single"}
    mnist = load_mnist(mnist_source)
    if name == "mnist":
        return freq20.generate_mnist(mnist, **kwargs), None
    return freq20.generate_freq20(mnist, n_digits=FREQ20_DIGITS[name], **kwargs), None


def make_dataset(name: str, out: str, mnist_source: Optional[str] = None, n_train: Optional[int] = None,
                 n_valid: Optional[int] = None, n_test: Optional[int] = None, n_single: Optional[int] = None,
                 n_shapes: Optional[int] = None, permute_seed: Optional[int] = None) -> str:
    """Write data set `name` (DATASETS) to `out`, replaced only when generation succeeds; returns one
    line on what was written. Sizes None are the release's; n_single and n_shapes: Shapes only."""
    check_options(name, mnist_source, n_single, n_shapes, permute_seed)
    started = time.time()
    sizes = {"train": n_train, "valid": n_valid, "test": n_test, "single": n_single}
    with atomic_output(out, label="--out ", make_dirs=True) as tmp:  # fails early on an unwritable --out
        splits, description = generate(name, sizes, mnist_source, n_shapes)
        perm = None
        if permute_seed is not None:
            features = next(iter(splits.values()))["features"]  # (N, *in_dim)
            perm = permute.pixel_permutation(permute_seed, int(np.prod(features.shape[1:])))
            splits = permute.permute_splits(splits, perm)
        with h5py.File(tmp, "w") as f:
            write_fuel_file(f, splits, description)
            if perm is not None:
                permute.write_permutation(f, permute_seed, perm)
    size_mb = os.path.getsize(out) / 2**20
    counts = ", ".join(f"{split} {len(next(iter(s.values())))}" for split, s in splits.items())
    permuted = "" if perm is None else f"; pixels permuted, seed {permute_seed}"
    return f"wrote {out} ({counts}; {size_mb:.1f} MiB, {time.time() - started:.1f} s{permuted})"
