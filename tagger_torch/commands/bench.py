"""`tagger-torch bench`: training steps of any model's preset timed against the matmul rate and the
step's floor (`bench.run_bench`)."""
from __future__ import annotations

import json

import click

from ..bench import run_bench
from ..config import resolve_config
from ..precision import resolve_device, resolve_precision, warn_if_slow
from .options import compile_option, config_options, cuda_graphs_option, device_option, precision_option

DEFAULT_PRESET = "shapes50k20x20"


@click.command("bench")
@config_options(preset_help=f"Model/training shape to time, any model's (default without --config: {DEFAULT_PRESET}).",
                config_help="Config JSON (release field names); overrides the preset.")
@click.option("--steps", default=20, show_default=True, type=click.IntRange(1), help="Timed steps after warm-up.")
@click.option("--warmup", default=3, show_default=True, type=click.IntRange(1),
              help="Untimed steps first (compilation happens in the first).")
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(1),
              help="Rounds of --steps steps, each followed by the floor; the medians are reported.")
@device_option()
@precision_option(", as train and evaluate.")
@compile_option(False, "torch.compile the training step (the first step's time includes compiling).")
@cuda_graphs_option()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def bench_command(preset, config_path, steps, warmup, rounds, device, precision, compile_, cuda_graphs, as_json):
    """Time training steps of any model (synthetic data): images/s, GFLOP/s against the matmul rate, and the
    step against its floor (its products timed alone)."""
    config = resolve_config(preset, config_path, default_preset=lambda: DEFAULT_PRESET)
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)
    warn_if_slow(prec, dev)
    r = run_bench(config, steps, dev, prec, compile_, warmup=warmup, cuda_graphs=cuda_graphs, rounds=rounds)
    if as_json:
        click.echo(json.dumps(r))
        return
    name = config_path or preset or DEFAULT_PRESET
    click.echo(f"{name} (model {r['model']}) on {r['device']} ({r['threads']} threads, load "
               f"{r['load_avg_1min'] or 0:.1f}), precision {prec}, {'compiled' if compile_ else 'eager'}"
               + (" with CUDA graphs" if r["cuda_graphs"] else ""))
    click.echo(f"  first step{' (incl. compilation)' if compile_ else ''}: {r['first_step_s']:.1f} s")
    click.echo(f"  {r['images_per_s']:.0f} images/s, {r['ms_per_step']:.1f} ms/step")
    click.echo(f"  {r['model_gflop_per_step']:.2f} GFLOP/step -> {r['achieved_gflops']:.0f} GFLOP/s, "
               f"{100 * r['fraction_of_peak']:.0f}% of the measured {r['peak_gflops']:.0f} GFLOP/s "
               f"of a {' x '.join(map(str, r['peak_shape']))} product")
    fractions = sorted(100 * one["fraction_of_floor"] for one in r["rounds"])
    click.echo(f"  floor {r['floor_ms']:.1f} ms/step (each product alone, forward and backward): the step at "
               f"{100 * r['fraction_of_floor']:.0f}% of its speed (rounds: {', '.join(f'{f:.0f}%' for f in fractions)})")
    click.echo(f"  {r['optimizer']} Adam alone: {r['optimizer_ms']:.2f} ms/step")
    click.echo(f"  {r['minor_faults_per_step']:.0f} minor page faults and {1e3 * r['system_s_per_step']:.0f} ms in the "
               f"kernel per step ({'freed memory kept' if r['keeps_freed_memory'] else 'the C library malloc defaults'})")
