"""`tagger-torch calibrate`: population statistics of a BatchNorm Tagger, stored with its run
(`calibrate.calibrate_model`, DIR/norm_stats.npz; docs/using.md)."""
from __future__ import annotations

import json
import os

import click

from ..calibrate import calibrate_model, describe
from ..errors import TaggerError
from ..files import atomic_output
from ..normstats import NORM_STATS, save_norm_stats
from ..precision import resolve_device
from ..training.rundir import RUN, load_model
from .options import device_option


def run_data(run: str) -> str:
    """The data file a run was trained on (DIR/run.json), for --hdf5's default."""
    try:
        with open(os.path.join(run, RUN), encoding="utf-8") as f:
            hdf5 = json.load(f).get("hdf5")
    except (OSError, ValueError):
        hdf5 = None
    if not hdf5:
        raise TaggerError(f"{run} does not name its data file ({RUN}): give --hdf5 PATH")
    return hdf5


@click.command("calibrate")
@click.option("--run", required=True, type=str, help="Run directory of `tagger-torch train` (config.json, params.npz).")
@click.option("--hdf5", "hdf5", type=str, help="Data file in the release's layout (default: the run's, run.json).")
@click.option("--split", default="train", show_default=True, help="Split to estimate the statistics on.")
@click.option("--iterations", type=click.IntRange(1), default=5, show_default=True,
              help="T: statistics are kept for iterations 1..T (evaluate and segment may use up to T).")
@click.option("--groups", type=click.IntRange(2), help="K (default: the trained K); the statistics hold for this K.")
@click.option("--max-examples", type=click.IntRange(1), help="Only the first N examples of the split (default: all).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the noise and m0 draws.")
@click.option("--out", type=str, help=f"Where to write the statistics (default: DIR/{NORM_STATS}, where "
              "evaluate and segment look).")
@device_option()
def calibrate_command(run, hdf5, split, iterations, groups, max_examples, seed, out, device):
    """Estimate a BatchNorm model's population statistics per iteration (for one-example use)."""
    config, model = load_model(run, device=resolve_device(device))
    out = out or os.path.join(run, NORM_STATS)
    with atomic_output(out, label="--out ") as tmp:  # fails early on an unwritable --out
        stats = calibrate_model(model, hdf5 or run_data(run), split, iterations, groups, max_examples, seed,
                                progress=os.isatty(2))
        save_norm_stats(tmp, stats)
    sites = next(iter(stats.mean.values()))
    click.echo(f"population statistics of {len(sites)} normalisation sites x 2 paths: {describe(stats)}; "
               f"{stats.facts['seconds']:.1f} s")
    click.echo(f"wrote {out}")
