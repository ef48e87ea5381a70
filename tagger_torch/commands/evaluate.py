"""`tagger-torch evaluate`: a trained model's scores per iteration on a split (`evaluate.evaluate_model`)."""
from __future__ import annotations

import json
import os

import click

from ..calibrate import NORM_CHOICES, choose_normaliser
from ..errors import TaggerError
from ..evaluate import evaluate_model, format_table
from ..files import write_text
from ..precision import resolve_device, resolve_precision, warn_if_slow
from ..training.rundir import load_model
from .options import device_option, precision_option, pretrained_option, run_or_pretrained


@click.command("evaluate")
@click.option("--run", type=str, help="Run directory of `tagger-torch train` (config.json, params.npz).")
@pretrained_option()
@click.option("--params", type=str, help="Parameter file (.npz, release names), with --config.")
@click.option("--config", "config_path", type=str, help="Config JSON of the parameters, with --params.")
@click.option("--hdf5", "hdf5", required=True, type=str, help="Data file in the release's layout.")
@click.option("--split", default="test", show_default=True, help="Split to score.")
@click.option("--iterations", type=click.IntRange(1), default=5, show_default=True,
              help="T at evaluation (the paper trains with 3 and tests with 5).")
@click.option("--groups", type=click.IntRange(2), help="K at evaluation (default: the trained K).")
@click.option("--out", type=str, help="Write the scores as JSON here (e.g. metrics.json).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the noise and m0 draws.")
@click.option("--norm-stats", type=click.Choice(NORM_CHOICES), default="batch", show_default=True,
              help="BatchNorm statistics: each batch's own (the paper's protocol) or the population's of "
                   "`calibrate --run DIR` (docs/using.md).")
@click.option("--batch-size", type=click.IntRange(1), help="Examples per batch (default: valid_batch_size, 100).")
@click.option("--max-examples", type=click.IntRange(1), help="Only the split's first N examples (default: all).")
@device_option()
@precision_option(" (bf16 is faster on CPUs with native bf16, but opt-in; docs/speed.md).")
def evaluate_command(run, pretrained, params, config_path, hdf5, split, iterations, groups, out, seed, norm_stats,
                     batch_size, max_examples, device, precision):
    """Score a trained Tagger: denoising cost, AMI, ARI (and class error) per iteration; a Table-2
    baseline: class cost and error."""
    run = run_or_pretrained(run, pretrained, params, config_path)
    if out is not None and not os.access(os.path.dirname(os.path.abspath(out)), os.W_OK):
        raise TaggerError(f"cannot write {out}: its directory is missing or not writable")
    dev = resolve_device(device)
    config, model = load_model(run, params, config_path, device=dev)
    precision = resolve_precision(precision, dev)
    warn_if_slow(precision, dev)
    options = dict(n_groups=groups, n_iterations=iterations)
    facts = model.evaluation_facts(**options)  # the model's K and T for these options
    normaliser = choose_normaliser(model, run, norm_stats, facts.get("groups"), facts.get("iterations"),
                                   n_examples=batch_size)
    if normaliser is not None:  # None: each batch's own statistics
        options["normaliser"] = normaliser
    result = evaluate_model(model, hdf5, split, seed=seed, progress=os.isatty(2), precision=precision,
                            batch_size=batch_size, max_examples=max_examples, **options)
    result.update(pretrained=pretrained, run=run, params=params, config=config_path)  # the model evaluated
    if config.grouping:
        setting = (f"K={result['groups']} groups, T={result['iterations']} iterations "
                   f"(trained with K={config.n_groups}, T={config.n_iterations})")
    else:
        setting = f"model {config.model}"
    click.echo(f"{split} split of {hdf5}: {result['n_examples']} examples, {setting}, {precision}, "
               + (f"{result['norm_stats']} statistics, " if "norm_stats" in result else "")
               + f"batches of {result['batch_size']}, {result['seconds']:.1f} s")
    click.echo(format_table(result))
    if out is not None:
        write_text(out, json.dumps(result, indent=2) + "\n")
        click.echo(f"wrote {out}")
