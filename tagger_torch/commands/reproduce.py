"""`tagger-torch reproduce run|status|publish`: the paper's tables from the plan (tagger_torch/reproduce)."""
from __future__ import annotations

import os
import sys

import click

from ..pretrained import source_results_dir
from .options import adam_option, device_option, precision_option

DEFAULT_RUNS_DIR = "~/tagger-runs"


def _places(runs_dir, data_dir, results, readme, plan):
    from ..reproduce.plan import PAPER, load_plan
    from ..reproduce.runner import Places

    if results is None:  # the source tree's results/ (a checkout), else ./results
        results = source_results_dir() if os.path.isdir(source_results_dir()) else "results"
    if readme is None:
        beside = os.path.join(os.path.dirname(os.path.abspath(results)), "README.md")
        readme = beside if os.path.isfile(beside) else None
    return Places(runs_dir, data_dir, results, readme or None, PAPER if plan is None else load_plan(plan))


def _place_options(f):
    f = click.option("--plan", type=str, metavar="PLAN.json",
                     help="Another plan than the paper's (docs/reproduce.md gives the format).")(f)
    f = click.option("--readme", type=str, metavar="README.md",
                     help="The file whose Table 1 and Table 2 sections are rewritten (default: the README.md beside "
                          "the results folder; '' for none).")(f)
    f = click.option("--results", type=str, metavar="DIR",
                     help="The results folder (default: results/ of the source tree, else ./results).")(f)
    f = click.option("--data-dir", type=str, metavar="DIR",
                     help="Where the data files are, and are made when missing (default: RUNS_DIR/data).")(f)
    return click.option("--runs-dir", default=DEFAULT_RUNS_DIR, show_default=True,
                        help="The run directories, one per planned run (RUNS_DIR/NAME).")(f)


@click.group("reproduce")
def reproduce_command():
    """The paper's tables: train, follow and publish the runs of the plan (docs/reproduce.md)."""


@reproduce_command.command("run")
@click.argument("names", nargs=-1)
@_place_options
@device_option()
@precision_option(" (the fast path where it is proven to learn as fp32 does), as train.")
@adam_option()
def run_command(names, runs_dir, data_dir, results, readme, plan, device, precision, fused_adam):
    """Start or resume the planned runs NAMES (default: all) in the plan's order, score and publish each."""
    from ..precision import resolve_device
    from ..publish import PublishSettings
    from ..reproduce.runner import run_plan

    places = _places(runs_dir, data_dir, results, readme, plan)
    settings = PublishSettings(progress=sys.stderr.isatty())
    code = run_plan(names, places, resolve_device(device), precision, settings, click.echo, fused_adam=fused_adam)
    if code:
        raise SystemExit(code)


@reproduce_command.command("status")
@click.argument("names", nargs=-1)
@_place_options
def status_command(names, runs_dir, data_dir, results, readme, plan):
    """Where every planned run stands: epochs of the protocol's, last validation, seconds per epoch, hours left."""
    from ..precision import cpu_model
    from ..reproduce.runner import selected
    from ..reproduce.state import status_table

    places = _places(runs_dir, data_dir, results, readme, plan)
    click.echo(status_table([places.state(run) for run in selected(names, places.plan)]))
    click.echo(f"run directories: {places.runs_dir}; results: {places.results}; this CPU: {cpu_model()} "
               "(s/epoch: the median of a run's last 5 epochs, on the machine that trained them; AMI: the last "
               "validation's grouping at the last iteration, on the split's first examples, `train --valid-grouping`)")


@reproduce_command.command("publish")
@click.argument("names", nargs=-1, required=True)
@_place_options
@click.option("--note", type=str, help="A sentence on how the run was trained, for the results README.")
@click.option("--force", is_flag=True, help="Recompute every file, also those whose inputs are unchanged.")
def publish_command(names, runs_dir, data_dir, results, readme, plan, note, force):
    """Write results/ for the planned runs NAMES: a finished run's model, cell and READMEs; an unfinished
    run's progress (epochs so far, curves)."""
    from ..publish import PublishSettings
    from ..reproduce.runner import publish, selected

    places = _places(runs_dir, data_dir, results, readme, plan)
    settings = PublishSettings(note=note, force=force, progress=sys.stderr.isatty())
    for run in selected(names, places.plan):
        publish(run, places, settings, click.echo)
