"""Precision and compilation policies for training, evaluation and bench (docs/speed.md).

* ``fp32``: plain float32 (the parity-tested path).
* ``bf16``: matrix products under ``torch.autocast(dtype=bfloat16)``; master weights, normalisation,
  softmax, log/exp and costs stay float32 (`model.project` casts each product back to float32).
  The default (``auto``) on CPUs with AVX-512-BF16/AMX and on CUDA devices that support bf16.
* ``tf32``: CUDA only; float32 storage with TF32 tensor-core products.

``torch.compile`` of the training step pays once a run is long enough to repay the compilation
(about a minute on 2 CPU cores for the Shapes model): `default_compile` decides from the run's size.
"""
from __future__ import annotations

import contextlib
from typing import Optional

import torch

from .errors import TaggerError

PRECISIONS = ("fp32", "bf16", "tf32")

# Below this much work per training step bf16 does not pay: the casts cost more than the products
# save (measured on the 2-core CPU: a 0.003-GFLOP test model steps 25% slower in bf16, the 7.8-GFLOP
# shapes-demo model 1.7x faster).
BF16_PAYS_FROM_GFLOP_PER_STEP = 1.0
# Measured on the 2-core CPU (docs/speed.md): compiling the Shapes step costs ~60 s and saves ~15% of
# the step time at ~150 GFLOP/s achieved, so it pays after about 60 s * 150 GFLOP/s / 0.15 of work.
COMPILE_PAYS_AFTER_GFLOP = 60.0 * 150.0 / 0.15


def resolve_device(device: str | None) -> torch.device:
    """'cpu', 'cuda', 'cuda:1' or None/'auto' (CUDA when present) -> torch.device, with a clear error."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise TaggerError(f"unknown device '{device}' (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TaggerError("--device cuda was asked for, but torch sees no CUDA device")
    return dev


def cpu_has_fast_bf16() -> bool:
    """True where the CPU runs bf16 matrix products natively (AMX or AVX-512 BF16)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return any(f in flags for f in (" amx_bf16", " avx512_bf16"))


def default_precision(device: torch.device, gflop_per_step: Optional[float] = None) -> str:
    """bf16 where the hardware has fast bf16 products (and the model is big enough to gain), else fp32.

    gflop_per_step: the model's work per step (bench.model_flop_per_step / 1e9); None: do not judge.
    """
    if gflop_per_step is not None and gflop_per_step < BF16_PAYS_FROM_GFLOP_PER_STEP:
        return "fp32"
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


def resolve_precision(precision: str | None, device: torch.device, gflop_per_step: Optional[float] = None) -> str:
    """'auto'/None -> `default_precision`; else checked against PRECISIONS and the device."""
    if precision in (None, "auto"):
        return default_precision(device, gflop_per_step)
    if precision not in PRECISIONS:
        raise TaggerError(f"unknown precision '{precision}' (known: auto, {', '.join(PRECISIONS)})")
    if precision == "tf32" and device.type != "cuda":
        raise TaggerError("precision tf32 needs a CUDA device")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise TaggerError(f"precision bf16 is not supported by {torch.cuda.get_device_name(device)}")
    return precision


def default_compile(gflop_to_run: float) -> bool:
    """Compile when the work ahead (GFLOP, e.g. steps x bench.model_flop_per_step) repays compiling."""
    return gflop_to_run >= COMPILE_PAYS_AFTER_GFLOP


def autocast(precision: str, device: torch.device):
    """The context under which forward passes run for `precision` (fp32: none)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = precision == "tf32"
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()

