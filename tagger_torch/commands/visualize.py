"""`tagger-torch visualize`: the paper's Figure 4 for examples of a split (`visualize.draw_examples`)."""
from __future__ import annotations

import os

import click

from ..data import dataset_info
from ..errors import TaggerError
from ..precision import resolve_device
from ..training.rundir import load_model
from ..visualize import draw_examples
from .options import device_option, pretrained_option, run_or_pretrained


@click.command("visualize")
@click.option("--run", type=str, help="Run directory of `tagger-torch train`.")
@pretrained_option()
@click.option("--hdf5", "hdf5", required=True, type=str, help="Data file in the release's layout.")
@click.option("--out", required=True, type=str, help="PNG file to write.")
@click.option("--split", default="test", show_default=True, help="Split to draw examples from.")
@click.option("--indices", type=str, default="0,1,2", show_default=True,
              help="Examples of the split, comma- or space-separated.")
@click.option("--iterations", type=click.IntRange(1), help="T (default: the trained T).")
@click.option("--groups", type=click.IntRange(2), help="K (default: the trained K).")
@click.option("--remove-group", type=int, help="Figure 4 E2: drop group k (1..K) before the last softmax.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the m0 draws.")
@device_option()
def visualize_command(run, pretrained, hdf5, out, split, indices, iterations, groups, remove_group, seed, device):
    """Draw Tagger's groups and reconstructions per iteration (paper Figure 4)."""
    run = run_or_pretrained(run, pretrained)
    if run is None:
        raise TaggerError("give --run DIR or --pretrained NAME")
    try:
        chosen = [int(i) for i in indices.replace(",", " ").split()]
    except ValueError:
        raise TaggerError(f"--indices must be integers (got {indices!r})") from None
    config, model = load_model(run, device=resolve_device(device))
    config.require("grouping", "visualize")
    K = groups or config.n_groups
    if remove_group is not None and not 1 <= remove_group <= K:
        raise TaggerError(f"--remove-group must be a group number in 1..{K} (got {remove_group})")
    info = dataset_info(hdf5)
    config.check_data(info, split, training=False)
    n = info.splits[split]
    if not chosen or any(not 0 <= i < n for i in chosen):
        raise TaggerError(f"--indices must lie in 0..{n - 1} for split '{split}' (got {indices!r})")
    title = f"{pretrained or os.path.basename(os.path.normpath(run))}, {split} split"
    if remove_group is not None:
        title += f", group {remove_group} removed before the last softmax (Fig. 4 E2)"
    examples = draw_examples(model, hdf5, split, chosen, out, title, masks="mask" in info.sources, n_groups=groups,
                             n_iterations=iterations, seed=seed,
                             remove_group=None if remove_group is None else remove_group - 1)
    for ex in examples:
        if ex["ami"] is not None:
            click.echo(f"example {ex['index']}: AMI per iteration " + " ".join(f"{a:.3f}" for a in ex["ami"]))
    click.echo(f"wrote {out}")
