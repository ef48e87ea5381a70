"""Timing real training steps of a preset against the matmul rate (`tagger-torch bench`).

A step is what training does per minibatch (`training.step.make_train_step`: forward over T iterations on
the corrupted path, the cost, backward, the release Adam update), on synthetic data of the preset's
shape. In the same run a matrix product of the preset's largest layer shape, at the same precision,
gives the rate the hardware reaches on this kind of work; the step's achieved GFLOP/s is reported as
a fraction of it (docs/speed.md).
"""
from __future__ import annotations

import os
import time

import torch

from .config import TaggerConfig
from .errors import TaggerError
from .models import Batch, build_model
from .optim import BlocksAdam
from .precision import cpu_bf16_native, cpu_capability
from .tagger import layer_products
from .training.step import make_train_step


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
    B = config.batch_size
    model = build_model(config, seed=config.seed).to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    x, labels = synthetic_batch(config, generator, device)
    batch = Batch(x, x if labels is not None else None, labels)
    optimizer = BlocksAdam(model.parameters(), lr=config.lr)
    step = make_train_step(model, optimizer, precision=precision, compile=compile)

    start = time.perf_counter()
    step(batch, generator)
    _sync(device)
    first_step_s = time.perf_counter() - start
    for _ in range(warmup - 1):
        step(batch, generator)
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        stats = step(batch, generator)
    _sync(device)
    seconds_per_step = (time.perf_counter() - start) / steps
    if not torch.isfinite(stats["cost"]):
        raise TaggerError(f"the training cost became {float(stats['cost'])} while benchmarking")

    flop = model.flop_per_step(B)
    largest = max(layer_products(config, config.n_groups * B, model.mapping), key=lambda p: p[0] * p[1] * p[2])
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
