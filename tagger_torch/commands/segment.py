"""`tagger-torch segment`: a trained model on one's own arrays or PNG images (`segment.py`;
docs/using.md): masks and reconstructions per iteration to an .npz, and a Figure-4 picture."""
from __future__ import annotations

import os

import click

from ..calibrate import NORM_CHOICES, choose_normaliser
from ..errors import TaggerError
from ..files import atomic_output
from ..norms import uses_batch_statistics
from ..precision import resolve_device
from ..segment import draw_segmentation, read_inputs, save_segmentation, segment_examples
from ..training.rundir import load_model
from .options import device_option


@click.command("segment")
@click.option("--run", required=True, type=str, help="Run directory of `tagger-torch train` (config.json, params.npz).")
@click.option("--input", "inputs", required=True, multiple=True, metavar="FILE",
              help="An .npy of examples (N, *in_dim), (N, D) or (N, H, W), or a PNG image of the trained size; "
                   "repeat for more.")
@click.option("--out", required=True, metavar="OUT.npz",
              help="Masks and reconstructions per iteration; the picture goes to OUT.png.")
@click.option("--iterations", type=click.IntRange(1), default=5, show_default=True, help="T.")
@click.option("--groups", type=click.IntRange(2), help="K (default: the trained K).")
@click.option("--norm-stats", type=click.Choice(("auto",) + NORM_CHOICES), default="auto", show_default=True,
              help="auto: population statistics for a calibrated BatchNorm model, none needed for LayerNorm.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the m0 draws.")
@click.option("--batch-size", type=click.IntRange(1), help="Examples per batch (default: valid_batch_size, 100); "
              "with population statistics or LayerNorm the results do not depend on it.")
@click.option("--figure-examples", type=click.IntRange(0), default=4, show_default=True,
              help="Examples drawn in OUT.png (0: no picture).")
@device_option()
def segment_command(run, inputs, out, iterations, groups, norm_stats, seed, batch_size, figure_examples, device):
    """Group your own images or arrays with a trained Tagger (paper Figure 4)."""
    if not out.endswith(".npz"):
        raise TaggerError(f"--out must name an .npz file (got {out})")
    config, model = load_model(run, device=resolve_device(device))
    config.require("grouping", "segment")
    K = groups or config.n_groups
    x, names = read_inputs(inputs, config)
    batch = min(batch_size or config.valid_batch_size, x.shape[0])
    normaliser = choose_normaliser(model, run, norm_stats, K, iterations, n_examples=batch, paths=("clean",))
    batch_norm = uses_batch_statistics(config.norm)
    used = "population" if normaliser is not None else "batch" if batch_norm else "none (LayerNorm)"
    if normaliser is None and batch_norm and batch < config.valid_batch_size:
        click.echo(f"Warning: batch statistics over {batch} examples (the protocol uses batches of "
                   f"{config.valid_batch_size}): each result depends on the others; "
                   f"`tagger-torch calibrate --run {run}` makes them independent", err=True)
    states = segment_examples(model, x, K, iterations, normaliser, seed, batch)
    figure = out[:-len(".npz")] + ".png"
    with atomic_output(out, label="--out ") as tmp:
        save_segmentation(tmp, x, states, names, dict(norm_stats=used, seed=seed, run=os.path.abspath(run)))
        if figure_examples:
            title = f"{os.path.basename(os.path.normpath(run))}, K={K}, T={iterations}, statistics: {used}"
            draw_segmentation(figure, x, states, names, config.in_dim, figure_examples, title)
    N = x.shape[0]
    click.echo(f"{N} example{'s' if N > 1 else ''}, K={K} groups, T={iterations} iterations, normalisation "
               f"statistics: {used}")
    click.echo(f"wrote {out}" + (f" and {figure}" if figure_examples else ""))
