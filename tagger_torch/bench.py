"""Timing real training steps of a preset against the matmul rate and the step's floor (`tagger-torch bench`).

A step is what training does per minibatch (`training.step.make_train_step`: the model's
`batch_cost` forward, backward, the release Adam update), on synthetic data shaped like the streams
the model trains on. Any registered model benches: what the step multiplies comes from the model
(`models.Model.step_products`), so does its FLOP count. In the same run, at the same precision:
* the peak: the rate of the step's largest product, run back to back; the step's achieved GFLOP/s
  is reported as a fraction of it;
* the floor: every product of the step, forward (m, k, n) and its backward's (the weight's gradient
  (k, m, n), the input's (m, n, k) when autograd computes it), each timed alone with torch.matmul
  (best of FLOOR_REPEATS), summed over the step's list (each pass, each iteration). It is the time
  the products alone take at their own sizes; the step's fraction of it is floor / step time.
A shared machine's speed drifts by up to a third within seconds, so the steps and the floor are timed
in `rounds`, each round its steps then its floor, and each round's fraction pairs two timings made
seconds apart; the figures reported are the rounds' medians.
docs/speed.md gives the fields and measurements.
"""
from __future__ import annotations

import dataclasses
import os
import resource
import statistics
import time
from typing import Dict, Optional, Sequence, Tuple

import torch

from .config import RunConfig
from .errors import TaggerError
from .memory import kept_freed_memory
from .models import Batch, Product, build_model
from .optim import BlocksAdam
from .precision import cpu_bf16_native, cpu_capability
from .training.step import make_train_step

FLOOR_REPEATS = 5  # timings of each product alone; the floor takes the best
TRAINING_FIELDS = {f.name for f in dataclasses.fields(RunConfig)} - {"model", "in_dim", "batch_size"}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _operands(m: int, k: int, n: int, precision: str, device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Random (m, k) and (k, n) operands in the precision's arithmetic (bf16 operands for bf16)."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    return torch.randn(m, k, device=device).to(dtype), torch.randn(k, n, device=device).to(dtype)


def matmul_rate(m: int, k: int, n: int, precision: str, device, seconds: float = 1.0) -> float:
    """Measured GFLOP/s of an (m,k)@(k,n) product run back to back for `seconds`."""
    a, b = _operands(m, k, n, precision, device)
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


def product_seconds(m: int, k: int, n: int, precision: str, device, repeats: int = FLOOR_REPEATS) -> float:
    """The best of `repeats` timings of one (m,k)@(k,n) torch.matmul alone (after one untimed)."""
    a, b = _operands(m, k, n, precision, device)
    torch.matmul(a, b)
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def floor_seconds(products: Sequence[Product], precision: str, device) -> float:
    """The step's floor: each product's forward and backward products timed alone, summed over the list
    (a shape that recurs is timed once)."""
    timed: Dict[Tuple[int, int, int], float] = {}
    total = 0.0
    for product in products:
        for shape in [tuple(product[:3])] + product.backward():
            if shape not in timed:
                timed[shape] = product_seconds(*shape, precision, device)
            total += timed[shape]
    return total


def optimizer_seconds(optimizer: BlocksAdam, device, repeats: int = FLOOR_REPEATS) -> float:
    """The best of `repeats` timings of the optimizer's update alone, on the gradients it has."""
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        optimizer.step()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def _usage() -> Tuple[int, float]:
    """(minor page faults, system CPU seconds) of this process so far."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_minflt, used.ru_stime


def synthetic_batch(config: RunConfig, generator: torch.Generator, device) -> Batch:
    """One step's examples in the streams the model trains on (config.training_streams): x (B, D) like
    the data (binary inputs: 30% ones; else uniform in [0, 1)), the same x as the labelled batch with
    labels (B, objects_per_sample) in [0, n_classes) when the model reads labels."""
    B, D = config.batch_size, config.input_size
    x = torch.rand(B, D, generator=generator, device=device)
    if config.binary_inputs:
        x = (x < 0.3).float()
    if not config.uses_labels:
        return Batch(x)
    labels = torch.randint(0, config.n_classes, (B, config.objects_per_sample), generator=generator, device=device)
    return Batch(x if "unlabelled" in config.training_streams else None, x, labels)


def run_bench(config: RunConfig, steps: int, device, precision: str, compile: bool,
              warmup: int = 3, seed: int = 0, cuda_graphs: Optional[bool] = None, rounds: int = 1) -> dict:
    """Time `rounds` times `steps` training steps, each round followed by the floor, after `warmup`
    untimed steps; see the module docstring. cuda_graphs: with compile, as `precision.compile_mode`
    (None: on one CUDA device)."""
    B = config.batch_size
    model = build_model(config, seed=config.seed).to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    batch = synthetic_batch(config, generator, device)
    optimizer = BlocksAdam(model.parameters(), lr=config.lr, fused=compile)  # as training pairs them
    step = make_train_step(model, optimizer, precision=precision, compile=compile, cuda_graphs=cuda_graphs)

    start = time.perf_counter()
    step(batch, generator)
    _sync(device)
    first_step_s = time.perf_counter() - start
    for _ in range(warmup - 1):
        step(batch, generator)
    _sync(device)
    products = model.step_products(B)
    timed = []  # per round: (seconds per step, floor seconds)
    kernel = []  # per round: (minor page faults, system seconds) per step
    for _ in range(rounds):
        used, start = _usage(), time.perf_counter()
        for _ in range(steps):
            stats = step(batch, generator)
        _sync(device)
        step_s, now = (time.perf_counter() - start) / steps, _usage()
        kernel.append(((now[0] - used[0]) / steps, (now[1] - used[1]) / steps))
        timed.append((step_s, floor_seconds(products, precision, device)))
        if not torch.isfinite(stats["cost"]):
            raise TaggerError(f"the training cost became {float(stats['cost'])} while benchmarking")

    optimizer_s = optimizer_seconds(optimizer, device)
    flop = model.flop_per_step(B)
    largest = max((tuple(p[:3]) for p in products), key=lambda shape: shape[0] * shape[1] * shape[2])
    peak = matmul_rate(*largest, precision, device)
    seconds_per_step = statistics.median(step_s for step_s, _ in timed)
    floor = statistics.median(floor_s for _, floor_s in timed)
    fractions = [floor_s / step_s for step_s, floor_s in timed]
    achieved = flop / seconds_per_step / 1e9
    return {
        "model": config.model,
        "images_per_s": B / seconds_per_step,
        "ms_per_step": 1e3 * seconds_per_step,
        "model_gflop_per_step": flop / 1e9,
        "achieved_gflops": achieved,
        "peak_gflops": peak,
        "fraction_of_peak": achieved / peak,
        "floor_ms": 1e3 * floor,
        "optimizer_ms": 1e3 * optimizer_s,
        "optimizer": "fused" if optimizer.fused else "foreach",
        # the process's minor page faults and seconds in the kernel per step (memory.py), rounds' medians
        "minor_faults_per_step": statistics.median(faults for faults, _ in kernel),
        "system_s_per_step": statistics.median(system for _, system in kernel),
        "keeps_freed_memory": kept_freed_memory(),
        "fraction_of_floor": statistics.median(fractions),
        "rounds": [{"ms_per_step": 1e3 * step_s, "floor_ms": 1e3 * floor_s, "fraction_of_floor": floor_s / step_s}
                   for step_s, floor_s in timed],
        "precision": precision,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "compiled": compile,
        "cuda_graphs": step.cuda_graphs,
        "first_step_s": first_step_s,
        "peak_shape": list(largest),
        "threads": torch.get_num_threads(),
        "cpu_capability": cpu_capability(),
        "cpu_bf16_native": cpu_bf16_native(),
        "load_avg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "steps": steps,
        # the model's fields that size a step (the config less its training protocol)
        "shape": {k: v for k, v in config.to_dict().items() if k not in TRAINING_FIELDS},
    }
