"""`tagger-torch bench`: time real training steps of a preset and compare with the matmul rate.

A step is what training does per minibatch (`train.make_train_step`: forward over T iterations on
the corrupted path, the cost, backward, the release Adam update), on synthetic data of the preset's
shape. In the same run a matrix product of the preset's largest layer shape, at the same precision,
gives the rate the hardware reaches on this kind of work; the step's achieved GFLOP/s is reported as
a fraction of it (docs/speed.md).
"""
from __future__ import annotations

import json
import os
import time

import click
import torch

from .config import TaggerConfig, get_preset, load_config
from .errors import TaggerError
from .precision import PRECISIONS, cpu_bf16_native, cpu_capability, resolve_device, resolve_precision, warn_if_slow


def layer_products(config: TaggerConfig, rows: int):
    """The (rows, inner, outer) matrix products of one TAG iteration's forward pass (SPEC 4-5)."""
    D, H = config.input_size, config.encoder_proj
    L = len(H) - 1
    products = [(rows, 4 * D, H[0])]  # [A1.5] input projection W
    products += [(rows, H[l - 1], H[l]) for l in range(1, L + 1)]  # encoder f_l_W
    products += [(rows, H[l + 1], H[l]) for l in range(L)]  # decoder g_l_W
    products += [(rows, H[0], D), (rows, H[0], D)]  # [A1.6] heads z_u_W, m_u_W
    return products


def model_flop_per_step(config: TaggerConfig, batch_size: int) -> float:
    """FLOP of the matrix products of one training step, counted from the layer shapes.

    A product (m, k) @ (k, n) costs 2mkn forward; backward costs the same again for the weight's
    gradient and, unless its input carries no gradient, for the input's. Each of the T iterations
    runs every product on K*B rows. For binary inputs the first iteration's input of `W`,
    [z0, dz, m0, L(m0)], depends on no parameter, so autograd skips that input gradient (continuous
    inputs: L(m0) depends on `v`). A classifying config (class_cost_x > 0) runs a second, labelled
    pass of the same size. Element-wise work (BN, combinators, softmax, costs, Adam) is not counted.
    """
    products = layer_products(config, config.n_groups * batch_size)
    forward = sum(2 * m * k * n for m, k, n in products)
    m, k, n = products[0]
    flop = config.n_iterations * 3 * forward - (2 * m * k * n if config.input_type == "binary" else 0)
    passes = 2 if config.class_cost_x > 0 else 1
    return float(passes * flop)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(m: int, k: int, n: int, precision: str, device, seconds: float = 1.0) -> float:
    """Measured GFLOP/s of an (m,k)@(k,n) product in the precision's arithmetic (bf16 operands for bf16)."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a = torch.randn(m, k, device=device).to(dtype)
    b = torch.randn(k, n, device=device).to(dtype)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    for _ in range(3):
        a @ b
    _sync(device)
    n_done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(5):
            a @ b
        n_done += 5
        _sync(device)
    elapsed = time.perf_counter() - start
    return 2.0 * m * k * n * n_done / elapsed / 1e9


def synthetic_batch(config: TaggerConfig, generator: torch.Generator, device):
    """x (B, D) like the data (binary: 30% ones; continuous: uniform) and labels when the config classifies."""
    B, D = config.batch_size, config.input_size
    x = torch.rand(B, D, generator=generator, device=device)
    if config.input_type == "binary":
        x = (x < 0.3).float()
    labels = None
    if config.class_cost_x > 0:
        labels = torch.randint(0, config.n_classes, (B, config.objects_per_sample), generator=generator, device=device)
    return x, labels


def run_bench(config: TaggerConfig, steps: int, device, precision: str, compile: bool,
              warmup: int = 3, seed: int = 0) -> dict:
    """Time `steps` training steps after `warmup` untimed ones; see the module docstring."""
    from .model import Tagger
    from .optim import BlocksAdam
    from .train import make_train_step

    B = config.batch_size
    model = Tagger(config, seed=config.seed).to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    x, labels = synthetic_batch(config, generator, device)
    x_labelled = x if labels is not None else None
    optimizer = BlocksAdam(model.parameters(), lr=config.lr)
    step = make_train_step(model, optimizer, config, precision=precision, compile=compile)

    start = time.perf_counter()
    step(x, x_labelled, labels, generator)
    _sync(device)
    first_step_s = time.perf_counter() - start
    for _ in range(warmup - 1):
        step(x, x_labelled, labels, generator)
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        stats = step(x, x_labelled, labels, generator)
    _sync(device)
    seconds_per_step = (time.perf_counter() - start) / steps
    if not torch.isfinite(stats["cost"]):
        raise TaggerError(f"the training cost became {float(stats['cost'])} while benchmarking")

    flop = model_flop_per_step(config, B)
    largest = max(layer_products(config, config.n_groups * B), key=lambda p: p[0] * p[1] * p[2])
    peak = matmul_rate(*largest, precision, device)
    achieved = flop / seconds_per_step / 1e9
    return {
        "images_per_s": B / seconds_per_step,
        "ms_per_step": 1e3 * seconds_per_step,
        "model_gflop_per_step": flop / 1e9,
        "achieved_gflops": achieved,
        "peak_gflops": peak,
        "fraction_of_peak": achieved / peak,
        "precision": precision,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "compiled": compile,
        "first_step_s": first_step_s,
        "peak_shape": list(largest),
        "threads": torch.get_num_threads(),
        "cpu_capability": cpu_capability(),
        "cpu_bf16_native": cpu_bf16_native(),
        "load_avg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "steps": steps,
        "shape": {"in_dim": list(config.in_dim), "encoder_proj": list(config.encoder_proj),
                  "n_groups": config.n_groups, "n_iterations": config.n_iterations, "batch_size": B},
    }


@click.command("bench")
@click.option("--preset", default="shapes50k20x20", show_default=True, help="Model/training shape to time.")
@click.option("--config", "config_path", type=str, help="Config JSON (release field names) instead of a preset.")
@click.option("--steps", default=20, show_default=True, type=click.IntRange(1), help="Timed steps after warm-up.")
@click.option("--warmup", default=3, show_default=True, type=click.IntRange(1),
              help="Untimed steps first (compilation happens in the first).")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--precision", type=click.Choice(("auto",) + PRECISIONS), default="auto", show_default=True,
              help="auto: fp32, as train and evaluate.")
@click.option("--compile/--no-compile", "compile_", default=False, show_default=True,
              help="torch.compile the training step (the first step's time includes compiling).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def bench_command(preset, config_path, steps, warmup, device, precision, compile_, as_json):
    """Time training steps (synthetic data) and report images/s and GFLOP/s against the matmul rate."""
    config = load_config(config_path, get_preset(preset)) if config_path else get_preset(preset)
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)
    warn_if_slow(prec, dev)
    r = run_bench(config, steps, dev, prec, compile_, warmup=warmup)
    if as_json:
        click.echo(json.dumps(r))
        return
    name = config_path or preset
    click.echo(f"{name} on {r['device']} ({r['threads']} threads, load {r['load_avg_1min'] or 0:.1f}), precision {prec}, "
               f"{'compiled' if compile_ else 'eager'}")
    click.echo(f"  first step{' (incl. compilation)' if compile_ else ''}: {r['first_step_s']:.1f} s")
    click.echo(f"  {r['images_per_s']:.0f} images/s, {r['ms_per_step']:.1f} ms/step")
    click.echo(f"  {r['model_gflop_per_step']:.2f} GFLOP/step -> {r['achieved_gflops']:.0f} GFLOP/s, "
               f"{100 * r['fraction_of_peak']:.0f}% of the measured {r['peak_gflops']:.0f} GFLOP/s "
               f"of a {' x '.join(map(str, r['peak_shape']))} product")
